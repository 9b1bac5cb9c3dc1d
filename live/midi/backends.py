"""One class per MIDI system: what Cadenza's ports need beyond python-rtmidi's own calls.

python-rtmidi already wraps each system behind one API; what differs is
around it.  ``Backend`` serves ALSA, CoreMIDI and Windows MM as they are.
``JackBackend`` adds what JACK needs: its time line for clock ticks
(``JackLag``), the guard that keeps the input from going deaf after a
broken sysex (``SysexGuard``) and the watch that notices the server going
away (``JackWatch``).  ``MidiPorts`` calls these hooks and never asks which
system it runs on.
"""

from __future__ import annotations

from collections.abc import Callable

from cadenza.live.midi.jack_guards import JackWatch, SysexGuard
from cadenza.live.midi.jack_time import JackLag

_CLOCK_TICK = 0xF8  # MIDI timing clock: the one message whose time comes from JACK's time line


class Backend:
    """A MIDI system with nothing to add: ALSA, CoreMIDI, Windows MM."""

    def __init__(self, api: str, on_change: Callable[[], None] | None = None) -> None:
        self.api = api
        self._on_change = on_change

    def prepare(self, with_input: bool) -> None:
        """Before any client opens (and before the input's callback can run)."""

    def sysex_guard(self, opening_input: bool) -> SysexGuard | None:
        """A guard for the input being opened, prepared; None where none is needed."""
        return None

    def opened(self) -> None:
        """The ports have opened."""

    def master_time(self, data: list[int], now: float) -> float:
        """When input that arrived at ``now`` happened on its sender's time line."""
        return now

    def server_gone(self) -> bool:
        """The MIDI system's server went away (only a JACK server does)."""
        return False

    def forget_server(self) -> None:
        """The server went away: drop what was tied to it (its clients are closed)."""

    def close(self) -> None:
        """After the ports have closed."""


class JackBackend(Backend):
    """JACK: its time line for clock ticks, the sysex guard and the server watch."""

    def __init__(self, api: str, on_change: Callable[[], None] | None = None) -> None:
        super().__init__(api, on_change)
        self.lag = JackLag()
        self._watch: JackWatch | None = None

    def prepare(self, with_input: bool) -> None:
        if with_input and not self.lag.is_open:
            self.lag.open()  # before the input's callback is set, which reads it

    def sysex_guard(self, opening_input: bool) -> SysexGuard | None:
        if not opening_input:
            return None
        guard = SysexGuard()
        guard.prepare()
        return guard

    def opened(self) -> None:
        if self._watch is None:
            watch = JackWatch(self._on_change)
            self._watch = watch if watch.open() else None

    def master_time(self, data: list[int], now: float) -> float:
        # Only a clock tick is placed by JACK's time line (the frame clock
        # loses the time of every xrun); everything else goes by arrival,
        # and need not pay for the reading.
        if data and data[0] == _CLOCK_TICK:
            return now - self.lag.lag(now)
        return now

    def server_gone(self) -> bool:
        return self._watch is not None and self._watch.gone.is_set()

    def forget_server(self) -> None:
        if self._watch is not None:
            self._watch.close()
            self._watch = None
        self.lag.close()

    def close(self) -> None:
        self.forget_server()  # the lag after the input, whose callback reads it


def backend_for(api: str, on_change: Callable[[], None] | None = None) -> Backend:
    """The backend class of ``api`` (a name ``select_api`` returned)."""
    return (JackBackend if api == "jack" else Backend)(api, on_change)
