"""Grouping a performer's simultaneous notes into one token.

Hands never strike a chord's keys at exactly the same instant.  A group
opens with a note-on; every note-on less than ``window`` seconds after the
group's first note joins it (one exactly on the edge does too); the group
closes once that window has passed.  A closed group is a single note or a
chord and becomes a token through ``cadenza.tokens.notes_token``, the code
training uses.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from cadenza.tokens import notes_token


@dataclass
class NoteGroup:
    """Notes whose onsets fell within one chord window."""

    time: float  # onset of the first note (seconds)
    notes: list[int] = field(default_factory=list)  # MIDI numbers, in arrival order
    velocities: list[int] = field(default_factory=list)

    @property
    def token(self) -> str:
        return notes_token(self.notes)

    @property
    def velocity(self) -> int:
        return max(self.velocities)


class ChordGrouper:
    """Collects note-ons and hands back closed groups, driven by explicit time."""

    def __init__(self, window_ms: float) -> None:
        self.window = window_ms / 1000.0
        self._open: NoteGroup | None = None

    def note_on(self, note: int, velocity: int, time: float) -> NoteGroup | None:
        """Add a note-on; returns the previous group if this note closed it."""
        closed = None
        if self._open is not None and time - self._open.time > self.window:
            closed, self._open = self._open, None
        if self._open is None:
            self._open = NoteGroup(time)
        self._open.notes.append(note)
        self._open.velocities.append(velocity)
        return closed

    def deadline(self) -> float | None:
        """When the open group closes (None when no group is open)."""
        return None if self._open is None else self._open.time + self.window

    def flush(self, now: float) -> NoteGroup | None:
        """The open group if its window has passed by ``now``."""
        if self._open is not None and now >= self._open.time + self.window:
            closed, self._open = self._open, None
            return closed
        return None

    def close(self) -> NoteGroup | None:
        """Close the open group now, whatever its age."""
        closed, self._open = self._open, None
        return closed

    @property
    def pending(self) -> NoteGroup | None:
        return self._open
