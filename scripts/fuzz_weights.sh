#!/usr/bin/env bash
# Fuzz the native weights loader with libFuzzer (ASan + UBSan), reproducibly:
#   scripts/fuzz_weights.sh [SECONDS] [BUILD_DIR]    (defaults: 600, build/fuzz)
# Builds cadenza_fuzz_weights with clang (-DCADENZA_FUZZ=ON), seeds a fresh
# corpus (scripts/fuzz_seeds.py: small valid files of every kind, truncations,
# the bundled model's head), runs at low priority with a fixed seed and
# budget, and leaves the log, the grown corpus and any crash in BUILD_DIR.
set -euo pipefail
seconds=${1:-600}
build=${2:-build/fuzz}
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
python=${PYTHON:-.venv/bin/python}

CC=clang CXX=clang++ cmake -S native -B "$build" -DCMAKE_BUILD_TYPE=Release -DCADENZA_FUZZ=ON >/dev/null
cmake --build "$build" --target cadenza_fuzz_weights -j 2 >/dev/null

rm -rf "$build/corpus" "$build/seeds" "$build/crashes"
mkdir -p "$build/corpus" "$build/crashes"
"$python" scripts/fuzz_seeds.py "$build/seeds"

# Inputs that once failed must pass first.
"$build/cadenza_fuzz_weights" native/tests/fuzz_regressions/* >/dev/null 2>&1 \
  || { echo "a regression input fails: $build/cadenza_fuzz_weights native/tests/fuzz_regressions/*"; exit 1; }

# -max_len bounds each input (the seeds are under 1 KiB but the bundled head);
# -rss_limit_mb keeps a header that asks for a huge table from exhausting memory.
status=0
nice -n 19 "$build/cadenza_fuzz_weights" "$build/corpus" "$build/seeds" \
  -max_total_time="$seconds" -seed=1 -max_len=8192 -rss_limit_mb=2048 \
  -artifact_prefix="$build/crashes/" -print_final_stats=1 >"$build/fuzz.log" 2>&1 || status=$?
grep -E "^(Done|stat::)|ERROR|SUMMARY" "$build/fuzz.log" || tail -5 "$build/fuzz.log"
grep -E "^#[0-9]+" "$build/fuzz.log" | tail -1
echo "crashes: $(ls "$build/crashes" | wc -l)"
exit "$status"
