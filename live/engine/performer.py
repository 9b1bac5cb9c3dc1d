"""The performer as the engine knows them: the keys held down, the recent
register and the recent dynamics.  The one record of what the performer
holds: the daemon asks the engine to let go of it when the keyboard goes away.

The register is that of the performer's current phrase (the notes since
their last pause, the latest ``RECENT_NOTES`` of them): an answer follows
the call it answers, not a blend with the one before.
"""

from __future__ import annotations

import statistics
from collections import deque

RECENT_NOTES = 16  # performer notes (of the current phrase) that define "the recent register"
RECENT_VELOCITIES = 8  # performer onsets that define "the recent dynamics"
DEFAULT_VELOCITY = 80  # before the performer has played anything
DEFAULT_CENTRE = 60  # chords are voiced around middle C until the performer plays


class Performer:
    def __init__(self) -> None:
        self.held: set[tuple[int, int]] = set()  # (channel, note) keys down
        self._recent_notes: deque[int] = deque(maxlen=RECENT_NOTES)
        self._recent_velocities: deque[int] = deque(maxlen=RECENT_VELOCITIES)

    def new_phrase(self) -> None:
        """The performer starts again after a pause: the register is theirs afresh."""
        self._recent_notes.clear()

    def press(self, channel: int, note: int) -> None:
        self.held.add((channel, note))
        self._recent_notes.append(note)

    def release(self, channel: int, note: int) -> bool:
        """Let go of a key; False if it was not held (pressed before Cadenza listened)."""
        if (channel, note) not in self.held:
            return False
        self.held.discard((channel, note))
        return True

    def onset(self, velocity: int) -> None:
        """A chord group (or single note) entered the window with this velocity."""
        self._recent_velocities.append(velocity)

    def centre(self, octave: int) -> int:
        """The register to place answers around: a fixed ``octave`` (0..8), or the
        median of the recent notes (-1)."""
        if octave >= 0:
            return (octave + 1) * 12 + 6
        if self._recent_notes:
            return int(statistics.median(self._recent_notes))
        return DEFAULT_CENTRE

    def velocity(self) -> int:
        """The mean of the recent onsets' velocities (a default before any)."""
        if self._recent_velocities:
            return max(1, min(127, round(statistics.fmean(self._recent_velocities))))
        return DEFAULT_VELOCITY
