#!/usr/bin/env bash
# The original notebook's run, reproduced: the seed preset on its three Mozart
# pieces, shuffled-window split, 120 epochs, batch 512.  About 40 s an epoch
# on two CPU cores.  Every epoch is checkpointed; run this again after a kill
# (or a shutdown) and it goes on from the last finished epoch.  When it
# has finished, the report, history and plots are copied to docs/results/.
#
#   scripts/reproduce_seed.sh [RUN_DIR] [CONFIG]
#
# RUN_DIR defaults to runs/mozart-seed-windows; CONFIG (default: none, the
# built-in settings) adds settings, e.g. scripts/seed-keras2.toml for the
# LSTM gates of the original's Keras (runs/mozart-seed-windows-keras2).
set -euo pipefail
cd "$(dirname "$0")/.."

run=${1:-runs/mozart-seed-windows}
config=${2:-/dev/null}
cadenza=${CADENZA:-.venv/bin/cadenza}
export TF_CPP_MIN_LOG_LEVEL=2 CUDA_VISIBLE_DEVICES=""

"$cadenza" --config "$config" train --preset seed --split windows \
    --data ../shared/data/seed-mozart --epochs 120 --batch-size 512 --seed 42 \
    --out "$run" --resume
results=docs/results/$(basename "$run")
mkdir -p "$results"
cp "$run"/report.json "$run"/history.csv "$run"/accuracy.png "$run"/loss.png "$results"/
echo "copied the run's report, history and plots to $results"
