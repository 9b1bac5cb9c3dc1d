#!/usr/bin/env bash
# Export a trained model folder and measure its prediction latency.
#
#   scripts/bench_model.sh MODEL_DIR [BUNDLE_DIR] [CALLS]
#
# MODEL_DIR is what `cadenza train` wrote (model.keras, vocab.json, report.json,
# heldout.json).  The bundle goes to BUNDLE_DIR (default: MODEL_DIR-bundle), with
# int8 graphs where they hold up; the results go to BUNDLE_DIR-bench.json.
# Timing the Keras loop needs TensorFlow and takes minutes (about 0.1 s per call).
set -euo pipefail
cd "$(dirname "$0")/.."

model=${1:?usage: scripts/bench_model.sh MODEL_DIR [BUNDLE_DIR] [CALLS]}
bundle=${2:-${model%/}-bundle}
calls=${3:-1000}
export TF_CPP_MIN_LOG_LEVEL=2 CUDA_VISIBLE_DEVICES=""
cadenza=${CADENZA:-.venv/bin/cadenza}

"$cadenza" export --model "$model" --out "$bundle" --int8
"$cadenza" bench --model "$bundle" --keras "$model" --calls "$calls" --json "${bundle%/}-bench.json"
