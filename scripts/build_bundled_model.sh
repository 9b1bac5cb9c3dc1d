#!/usr/bin/env bash
# Rebuild the bundled model, models/default/, from scratch (`make bundle`):
#
#   1. train the default preset on the Bach chorales inside music21, with the
#      settings of models/default.toml (LSTM 128, 18 epochs, whole chorales
#      held out), into runs/bundled-default/;
#   2. export it to models/default/ with int8 graphs where they qualify.
#
# On the development machine (2 CPU cores shared with other work, no GPU)
# this took 38 minutes with the parse cache filled (training 37 min: 18
# epochs, median 106 s each; export 18 s), plus 2-4 minutes the first time to
# parse the 413 scores.  It prints its own timings at the end.  A GPU, where
# TensorFlow finds one, is used.
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
