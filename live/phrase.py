"""What Cadenza plays and when, in beats: the call as heard, and the answer's slots.

An answer is planned when it starts: ``plan_answer`` turns the call (its
onsets, lengths and velocities) into one slot per token, on the grid
(``rhythm = "grid"``: as many steps as the call had onsets) or in the
call's own rhythm (``"mirror"``: its onsets and lengths snapped to the
grid, repeated to fill ``answer_bars``).  Pure arithmetic: no model, no time.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from cadenza.live.clock import BEATS_PER_BAR, snap


@dataclass
class Slot:
    """A place for one Cadenza token: where, how long, how loud (None: follow)."""

    beat: float
    length: float  # beats the note sounds (before the gate)
    velocity: int | None = None
    start_marker: bool = False  # call-response: "the answer starts here", plan not built yet


@dataclass
class CallNote:
    """One onset of the performer's call (a chord group counts once)."""

    beat: float
    velocity: int
    open_notes: set[int]
    end_beat: float | None = None


def plan_answer(
    call: Sequence[CallNote],
    start: float,
    step: float,
    *,
    rhythm: str,
    answer_bars: int,
    max_notes: int,
    follow_velocity: bool,
) -> list[Slot]:
    """The answer's slots from ``start``: as many as the call's onsets (or
    ``answer_bars`` bars of them), at most ``max_notes``."""
    bar_limit = start + answer_bars * BEATS_PER_BAR if answer_bars else None
    slots: list[Slot] = []
    if rhythm == "mirror" and call:
        pattern = mirror_pattern(call, step, follow_velocity)
        period = max(offset + length for offset, length, _ in pattern)
        repeat = 0
        while len(slots) < (max_notes if bar_limit else min(max_notes, len(pattern))):
            offset, length, velocity = pattern[len(slots) % len(pattern)]
            beat = start + (repeat * period + offset) * step
            if bar_limit is not None and beat >= bar_limit - 1e-9:
                break
            slots.append(Slot(beat, length * step, velocity))
            if len(slots) % len(pattern) == 0:
                repeat += 1
        return slots
    count = len(call) if bar_limit is None else 10**9
    index = 0
    while len(slots) < min(max_notes, count):
        beat = start + index * step
        if bar_limit is not None and beat >= bar_limit - 1e-9:
            break
        slots.append(Slot(beat, step))
        index += 1
    return slots


def mirror_pattern(
    call: Sequence[CallNote], step: float, follow_velocity: bool
) -> list[tuple[int, int, int | None]]:
    """The call's onsets and lengths in grid steps from its first onset (and velocities)."""
    first = call[0].beat
    offsets: list[int] = []
    for entry in call:
        offset = snap(entry.beat - first, step)
        if offsets and offset <= offsets[-1]:
            offset = offsets[-1] + 1  # two onsets on one step: push the later one on
        offsets.append(offset)
    pattern = []
    for i, entry in enumerate(call):
        length = 1
        if entry.end_beat is not None:
            length = max(1, snap(entry.end_beat - entry.beat, step))
        if i + 1 < len(offsets):
            length = min(length, offsets[i + 1] - offsets[i])
        pattern.append((offsets[i], length, entry.velocity if follow_velocity else None))
    return pattern
