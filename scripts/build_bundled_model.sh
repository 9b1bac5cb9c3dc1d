#!/usr/bin/env bash
# Rebuild the bundled model, models/default/, from scratch (`make bundle`):
#
#   1. train the default preset on piano-midi.de's 294 files (beside the
#      repository, ../shared/data/piano-midi; Bernd Krüger, CC BY-SA 3.0 DE)
#      in all 12 keys, with the settings of models/default.toml (LSTM 128,
#      13 epochs, whole pieces held out before transposing), into
#      runs/bundled-default/;
#   2. export it to models/default/ with int8 graphs where they qualify,
#      carrying the data's attribution and licence ([export] notice).
#
# models/README.md says how long it took on the development machine (2 CPU
# cores, no GPU); it prints its own timings at the end.  A GPU, where
# TensorFlow finds one, is used; KERAS_BACKEND=jax trains on JAX (see
# docs/training.md), and the export then needs TensorFlow on this machine.
#
#   bash scripts/build_bundled_model.sh
#   CADENZA=/path/to/cadenza EPOCHS=2 bash scripts/build_bundled_model.sh   # a quick try
#
# EPOCHS overrides the epoch count (the report then says so); RUN and BUNDLE
# the two output folders.  The parse cache is $CADENZA_CACHE_DIR, else
# ~/.cache/cadenza.
set -euo pipefail
cd "$(dirname "$0")/.."

cadenza=${CADENZA:-.venv/bin/cadenza}
config=models/default.toml
run=${RUN:-runs/bundled-default}
bundle=${BUNDLE:-models/default}
export TF_CPP_MIN_LOG_LEVEL=${TF_CPP_MIN_LOG_LEVEL:-2}

data=../shared/data/piano-midi
if [[ ! -d "$data" ]]; then
  echo "build_bundled_model: $data not found: the bundled model trains on piano-midi.de's" \
    "files (http://www.piano-midi.de, CC BY-SA 3.0 DE), expected beside the repository" >&2
  exit 2
fi

epochs=()
if [[ -n "${EPOCHS:-}" ]]; then
  epochs=(--epochs "$EPOCHS")
fi

started=$(date +%s)
# nice: training takes every core it gets; the desktop should stay usable.
nice -n 5 "$cadenza" --config "$config" train --out "$run" "${epochs[@]}"
trained=$(date +%s)
"$cadenza" --config "$config" export --model "$run" --out "$bundle" --int8
exported=$(date +%s)

echo "build_bundled_model: trained in $((trained - started)) s, exported in $((exported - trained)) s;" \
  "total $(((exported - started) / 60)) min $(((exported - started) % 60)) s" >&2
echo "build_bundled_model: $bundle:" >&2
ls -l "$bundle" >&2
du -sh "$bundle" >&2
