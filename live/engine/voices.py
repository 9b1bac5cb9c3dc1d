"""The notes Cadenza has sounding: when each was turned on, and when it must end.

Every note-on the engine hands out gets an entry here, and every entry ends
in exactly one note-off, whichever way the note ends: its own end, a
retrigger of the same key, the performer cutting an answer short, or a stop.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import mido

from cadenza.live.engine.events import Event


@dataclass
class _Sounding:
    on_time: float
    on_beat: float | None
    off_time: float
    answer: bool  # part of a call-response answer (cut short when the performer returns)


class Voices:
    def __init__(self) -> None:
        self._sounding: dict[tuple[int, int], _Sounding] = {}

    def __len__(self) -> int:
        return len(self._sounding)

    @property
    def keys(self) -> frozenset[tuple[int, int]]:
        """(channel 0-15, note) turned on and not yet turned off."""
        return frozenset(self._sounding)

    @property
    def answering(self) -> bool:
        return any(s.answer for s in self._sounding.values())

    def start(self, channel: int, note: int, velocity: int, on_time: float,
              on_beat: float | None, off_time: float, answer: bool) -> list[Event]:
        """The note-on (after a note-off, if the key is already sounding: a retrigger)."""
        key = (channel, note)
        out = []
        if key in self._sounding:
            # Retrigger: the old note ends where the new one begins.
            del self._sounding[key]
            out.append(Event(on_time, mido.Message("note_off", channel=channel, note=note)))
        out.append(Event(on_time, mido.Message("note_on", channel=channel, note=note,
                                               velocity=velocity)))
        self._sounding[key] = _Sounding(on_time, on_beat, off_time, answer)
        return out

    def cut_answers(self, cutoff: Callable[[float | None], float]) -> None:
        """End the answer's notes early: each at ``cutoff(its onset beat)``, never
        before its own onset."""
        for sounding in self._sounding.values():
            if sounding.answer:
                end = cutoff(sounding.on_beat)
                sounding.off_time = max(sounding.on_time, min(sounding.off_time, end))

    def release_due(self, until: float) -> list[Event]:
        """Note-offs for the notes ending by ``until``."""
        out = []
        for key, sounding in list(self._sounding.items()):
            if sounding.off_time <= until:
                del self._sounding[key]
                out.append(Event(sounding.off_time,
                                 mido.Message("note_off", channel=key[0], note=key[1])))
        return out

    def release_all(self, now: float) -> list[Event]:
        """Note-offs for everything, now; a note not yet begun ends at its own onset.

        Released after its note-on (in a queue that keeps insertion order), so
        the caller's queue never holds a note-on without its note-off.
        """
        out = [
            Event(max(now, s.on_time), mido.Message("note_off", channel=key[0], note=key[1]))
            for key, s in self._sounding.items()
        ]
        self._sounding.clear()
        return out

    def next_end(self) -> float | None:
        return min((s.off_time for s in self._sounding.values()), default=None)
