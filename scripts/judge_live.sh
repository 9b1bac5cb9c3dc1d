#!/usr/bin/env bash
# Judge one set of [live] settings where none of them was chosen: the report
# half of the bundled model's held-out piano-midi pieces (3 calls a piece) and
# the keyboard pieces of music21's corpus (6 calls a piece), seeds 0, 1 and 2,
# each with rhythm grid and mirror (the same pitches: only the rhythm moves).
#
#     scripts/judge_live.sh OUT [--set KEY=VALUE ...]
#
# OUT/report-half-seed<S>/ and OUT/music21-corpus-piano-seed<S>/ get one
# `cadenza evaluate` report per rhythm (scripts/tune_live.py, so a stopped
# run resumes); the music21 pieces are written once to OUT/music21-piano.
# Then: python scripts/judge_summary.py OUT
set -euo pipefail
out=${1:?usage: scripts/judge_live.sh OUT [--set KEY=VALUE ...]}
shift
here=$(cd "$(dirname "$0")/.." && pwd)
python=${PYTHON:-python}
shared=${CADENZA_SHARED:-$here/../shared}
mkdir -p "$out"
if [ ! -f "$out/music21-piano/.done" ]; then
    "$python" "$here/scripts/music21_piano_midi.py" --out "$out/music21-piano"
    touch "$out/music21-piano/.done"
fi
for seed in 0 1 2; do
    "$python" "$here/scripts/tune_live.py" --data "$shared/data/piano-midi" --held-out \
        --part report --calls-per-piece 3 --seed "$seed" --grid rhythm=grid,mirror "$@" \
        --out "$out/report-half-seed$seed"
    "$python" "$here/scripts/tune_live.py" --data "$out/music21-piano" --calls-per-piece 6 \
        --seed "$seed" --grid rhythm=grid,mirror "$@" --out "$out/music21-corpus-piano-seed$seed"
done
