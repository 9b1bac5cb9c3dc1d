"""The bounded queue between the MIDI system's thread and the engine's worker.

The MIDI callback only timestamps raw bytes and puts them here; parsing and
everything musical happen on the worker, which takes them off in order.
What the worker takes off is typed: ``Input`` (MIDI from the performer or a
master), or one of the supervisor's commands: ``Reload``, ``PortLost``,
``Stop``.
"""

from __future__ import annotations

import threading
from collections import deque
from dataclasses import dataclass
from typing import Any

import mido

from cadenza.live.engine.events import ALL_NOTES_OFF, ALL_SOUND_OFF, is_release_status


@dataclass(frozen=True)
class Input:
    """Raw MIDI bytes that arrived at ``time``; ``master_time``: a clock
    tick's time on its master's own time line, as the port corrected it
    (``time`` for everything else)."""

    time: float
    data: list[int]
    master_time: float


@dataclass(frozen=True)
class Reload:
    """New settings for the engine (SIGHUP)."""

    settings: Any


@dataclass(frozen=True)
class PortLost:
    """A port went away: ``direction`` "in" or "out"."""

    direction: str


@dataclass(frozen=True)
class Stop:
    """The worker returns."""


Command = Reload | PortLost | Stop


def is_release(data: list[int]) -> bool:
    """Raw bytes of a note-off (or a note-on of velocity 0), or All Notes/Sound Off."""
    if len(data) != 3:
        return False
    return is_release_status(data[0], data[2]) or (
        data[0] & 0xF0 == 0xB0 and data[1] in (ALL_SOUND_OFF, ALL_NOTES_OFF)
    )


def parse_input(data: list[int]) -> mido.Message | None:
    """The message in raw input bytes; None for bytes that are not one.

    mido raises IndexError, not ValueError, for some truncated messages (a
    lone pitch-bend status byte, an empty event): both mean "not a message".
    """
    try:
        return mido.Message.from_bytes(data)
    except (ValueError, IndexError):
        return None


class InputQueue:
    """MIDI input and control items for the worker, behind one condition.

    Input is bounded: beyond ``size`` waiting messages the newest is dropped
    and counted (the worker warns once a second).  Dropping the newest keeps
    what is already queued in order, and a flood (a runaway controller)
    cannot grow memory without bound.  Releases (note-offs, All Notes Off)
    still get in while fewer than ``2 * size`` messages wait: a dropped
    note-off would leave the performer's key held in the engine, and a call
    that never ends is never answered.  Control items (stop, reload, a lost
    port) are never dropped and go before input.
    """

    def __init__(self, size: int) -> None:
        self.size = size
        self.dropped = 0
        self.taken = 0  # input messages handed to the worker
        self.peak = 0  # the most input messages ever waiting at once (<= size)
        self._input: deque[tuple[float, list[int], float]] = deque()
        self._control: deque[Command] = deque()
        self._cond = threading.Condition()

    def put(self, data: list[int], timestamp: float, master_time: float | None = None) -> None:
        """From the MIDI thread: enqueue and return, never block on the worker.

        ``master_time``: see ``Input`` (default ``timestamp``).
        """
        with self._cond:
            waiting = len(self._input)
            if waiting >= self.size and not (waiting < 2 * self.size and is_release(data)):
                self.dropped += 1
            else:
                self._input.append(
                    (timestamp, data, timestamp if master_time is None else master_time)
                )
                self.peak = max(self.peak, len(self._input))
            self._cond.notify()

    def put_command(self, command: Command) -> None:
        """From the supervisor: never dropped, taken before any input."""
        with self._cond:
            self._control.append(command)
            self._cond.notify()

    def waiting(self) -> int:
        """Items waiting (input and commands): the worker's "is anything next"."""
        with self._cond:
            return len(self._input) + len(self._control)

    def get(self, timeout: float | None) -> Input | Command | None:
        """The next command, else the next ``Input``; None on timeout."""
        with self._cond:
            if not self._control and not self._input:
                self._cond.wait(timeout)
            if self._control:
                return self._control.popleft()
            if self._input:
                self.taken += 1
                return Input(*self._input.popleft())
            return None
