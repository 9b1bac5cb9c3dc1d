"""Write the example performer phrase that ``cadenza simulate`` plays by default.

Two short calls with room for an answer after each: a melodic line, then one
that opens with a C major chord whose keys land a few milliseconds apart, as
a hand strikes them (Cadenza groups them into one chord token).  The file is
written twice: examples/phrase.mid for people, live/examples/phrase.mid for
the installed package.

    python scripts/make_example_phrase.py
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path

import mido

REPO = Path(__file__).resolve().parents[1]
OUTPUTS = (REPO / "examples" / "phrase.mid", REPO / "live" / "examples" / "phrase.mid")
BPM = 120
TICKS_PER_BEAT = 480

# (start beat, length in beats, MIDI notes, velocity, spread of the onsets in ticks)
CALL_1 = [
    (0.0, 0.5, [60], 84, 0),   # C4
    (0.5, 0.5, [62], 70, 0),   # D4
    (1.0, 0.5, [64], 78, 0),   # E4
    (1.5, 0.5, [67], 72, 0),   # G4
    (2.0, 1.0, [65], 88, 0),   # F4
    (3.0, 0.5, [64], 70, 0),   # E4
    (3.5, 0.5, [62], 66, 0),   # D4
    (4.0, 2.0, [60], 80, 0),   # C4, held
]
CALL_2 = [
    (12.0, 1.0, [48, 52, 55], 90, 9),  # C major triad, keys 9 ticks (~9 ms) apart
    (13.0, 0.5, [64], 76, 0),          # E4
    (13.5, 0.5, [65], 72, 0),          # F4
    (14.0, 0.5, [67], 84, 0),          # G4
    (14.5, 0.5, [69], 80, 0),          # A4
    (15.0, 1.0, [67], 86, 0),          # G4
    (16.0, 0.5, [65], 70, 0),          # F4
    (16.5, 0.5, [64], 68, 0),          # E4
    (17.0, 1.0, [62], 74, 0),          # D4
    (18.0, 2.0, [43, 47, 50, 53], 82, 6),  # G7 in the left hand
]
END_BEAT = 24.0  # two bars of silence after the last call, for the answer


def phrase() -> mido.MidiFile:
    events: list[tuple[int, int, mido.Message]] = []
    for start, length, notes, velocity, spread in CALL_1 + CALL_2:
        begin = round(start * TICKS_PER_BEAT)
        # Release a little early, as a player lifts the key before the next one.
        end = round((start + length * 0.9) * TICKS_PER_BEAT)
        for i, note in enumerate(notes):
            events.append((begin + i * spread, 1, mido.Message("note_on", note=note, velocity=velocity - 4 * i)))
            events.append((end, 0, mido.Message("note_off", note=note, velocity=0)))
    events.sort(key=lambda e: (e[0], e[1], e[2].note))
    track = mido.MidiTrack()
    track.append(mido.MetaMessage("track_name", name="Performer", time=0))
    track.append(mido.MetaMessage("set_tempo", tempo=mido.bpm2tempo(BPM), time=0))
    track.append(mido.MetaMessage("time_signature", numerator=4, denominator=4, time=0))
    previous = 0
    for tick, _, message in events:
        track.append(message.copy(time=tick - previous))
        previous = tick
    track.append(mido.MetaMessage("end_of_track", time=round(END_BEAT * TICKS_PER_BEAT) - previous))
    midi = mido.MidiFile(type=1, ticks_per_beat=TICKS_PER_BEAT)
    midi.tracks.append(track)
    return midi


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, nargs="*", default=list(OUTPUTS), help="files to write")
    args = parser.parse_args(argv)
    midi = phrase()
    for path in args.out:
        path.parent.mkdir(parents=True, exist_ok=True)
        midi.save(path)
        print(f"wrote {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
