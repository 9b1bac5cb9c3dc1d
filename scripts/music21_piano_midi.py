"""Write the keyboard pieces of music21's own corpus as MIDI files: piano music
that is not in piano-midi.de, for a second, independent ``cadenza evaluate``.

    python scripts/music21_piano_midi.py --out /tmp/music21-piano
    cadenza evaluate --data /tmp/music21-piano --calls-per-piece 6

A piece music21 cannot read or write is reported and left out.
"""

from __future__ import annotations

import argparse
import logging
from pathlib import Path

# Keyboard works of the corpus shipped with music21 (Chopin's mazurka op. 6
# no. 2 is left out: music21 cannot expand its repeats).
PIECES = (
    "joplin/maple_leaf_rag.mxl",
    "schumann_clara/polonaise_op1n1.mxl",
    "schumann_clara/polonaise_op1n2.mxl",
    "schumann_clara/polonaise_op1n3.mxl",
    "schumann_clara/polonaise_op1n4.mxl",
    "beach/prayer_of_a_tired_child.musicxml",
    "cpebach/h186.mxl",
)

log = logging.getLogger("music21_piano_midi")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, required=True, help="folder for the MIDI files")
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    from music21 import corpus

    args.out.mkdir(parents=True, exist_ok=True)
    written = 0
    for name in PIECES:
        target = args.out / (name.replace("/", "_").rsplit(".", 1)[0] + ".mid")
        try:
            corpus.parse(name).write("midi", fp=str(target))
        except Exception as err:  # music21 raises many types for a score it cannot handle
            log.warning("%s: left out: %s", name, err)
            continue
        written += 1
        log.info("%s -> %s", name, target)
    log.info("%d of %d pieces written to %s", written, len(PIECES), args.out)
    return 0 if written else 1


if __name__ == "__main__":
    raise SystemExit(main())
