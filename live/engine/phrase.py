"""What Cadenza plays and when, in beats: the call as heard, and the answer's slots.

An answer is planned when it starts: ``plan_answer`` turns the call (its
onsets, lengths and velocities) into one slot per token, on the grid
(``rhythm = "grid"``: as many steps as the call had onsets) or in the
call's own rhythm (``"mirror"``: its onsets and lengths snapped to the
grid, repeated to fill ``answer_bars``).  Pure arithmetic: no model, no time.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Sequence
from dataclasses import dataclass, field

from cadenza.live.engine.clock import BEATS_PER_BAR, snap, step_after, step_at_or_after


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


@dataclass
class Phrase:
    """Where the music stands in beats: the call being heard, the answer being
    played, and the marks each mode plans its next slot from."""

    resume_beat: float = 0.0  # where play (re)starts: Start, Continue, a mode change
    call: list[CallNote] = field(default_factory=list)
    plan: deque[Slot] = field(default_factory=deque)
    last_slot_beat: float | None = None
    activity_beat: float | None = None  # last performer onset or release
    phrase_onset_beat: float | None = None  # first onset after a pause

    def next_slot(
        self, mode: str, step: float, pause_beats: float, *,
        performer_active: bool, keys_down: bool,
    ) -> Slot | None:
        """Where the mode's next token goes, as far as is known now.

        ``performer_active``: keys are down or a chord group is still open;
        ``keys_down``: keys are down.
        """
        if mode == "call-response":
            if self.plan:
                return self.plan[0]
            if not self.call or performer_active:
                return None
            base = self.activity_beat if self.activity_beat is not None else self.resume_beat
            start = step_at_or_after(base + pause_beats, step)
            return Slot(start, step, start_marker=True)
        if mode == "accompany":
            onset = self.phrase_onset_beat
            if onset is None or self.activity_beat is None:
                return None
            after = onset if self.last_slot_beat is None else max(onset, self.last_slot_beat)
            beat = step_after(after, step)
            if keys_down or beat < self.activity_beat + pause_beats:
                return Slot(beat, step)
            return None
        # continue
        if self.last_slot_beat is None:
            return Slot(step_at_or_after(self.resume_beat, step), step)
        return Slot(step_after(self.last_slot_beat, step), step)
