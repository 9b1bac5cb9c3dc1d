"""MIDI ports: pick a MIDI system, list its ports, open Cadenza's pair of ports.

Cadenza talks to MIDI through python-rtmidi, which wraps each system behind
one API: ALSA (Linux), CoreMIDI (macOS), Windows MM, and JACK.  ``--api auto``
tries the system's own MIDI first, then JACK.  By default Cadenza creates two
virtual ports, ``Cadenza In`` and ``Cadenza Out``, for a DAW or a patchbay to
connect; ``--in``/``--out`` connect to existing ports instead, found by a
case-insensitive piece of their name.

``MidiPorts`` keeps the pair open for the daemon and notices when a port goes
away (a JACK server restarted, a keyboard unplugged): ``poll()``, called about
once a second, closes the direction that went away and reopens it when its
port comes back.  What one MIDI system needs beyond python-rtmidi's calls
(JACK: its time line, the sysex guard, the server watch) is its backend
class (``backends``).

Choosing the MIDI system and finding ports: ``midi_api``; the JACK
workarounds: ``jack_guards`` and ``jack_time``; the ``ports`` and ``panic``
commands: ``port_commands``.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable

import mido

from cadenza.errors import PortError
from cadenza.live.midi.backends import Backend, backend_for
from cadenza.live.midi.jack_guards import SysexGuard
from cadenza.live.midi.midi_api import (
    API_LABELS,
    RTMIDI_ERRORS,
    VIRTUAL_IN,
    VIRTUAL_OUT,
    close_client,
    match_port,
    open_client,
    select_api,
)
from cadenza.live.midi.midi_backend import rtmidi
from cadenza.live.realtime import favoured

log = logging.getLogger(__name__)

# JACK (and CoreMIDI) hand sent messages to the MIDI system on its next cycle,
# and a connection made by name takes effect a cycle or two later: closing a
# port right after sending, or sending right after connecting, loses messages.
DRAIN = 0.1  # seconds kept open after the last message before a port is closed
SETTLE = 0.1  # seconds after connecting by name before the first message matters
PANIC_PACING = 0.001  # seconds between panic messages: a burst can overrun a small device
# A panic is rare and must not lose a message: wait longer than a normal
# connection does, before the first message and before closing.
PANIC_SETTLE = 0.3

InputCallback = Callable[[list[int], float, float], None]


class _Side:
    """One direction: its client, what it should connect to, the port it has."""

    def __init__(self, direction: str, wanted: str) -> None:
        self.direction = direction
        self.wanted = wanted  # part of an existing port's name; "" for a virtual port
        self.client: rtmidi.MidiIn | rtmidi.MidiOut | None = None
        self.port_name = ""  # the external port connected to, or our virtual port's name

    @property
    def label(self) -> str:
        return "input" if self.direction == "in" else "output"

    @property
    def own_name(self) -> str:
        return VIRTUAL_IN if self.direction == "in" else VIRTUAL_OUT


class MidiPorts:
    """Cadenza's input and output, virtual or connected by name.

    ``on_input(data, timestamp, master_time)`` is called on the MIDI
    system's thread with the raw bytes, ``clock()`` at arrival and when the
    message happened on its sender's time line, corrected here (on JACK, a
    clock tick's arrival less how far the server's frame clock has fallen
    behind: ``JackLag``; the arrival elsewhere); it must return quickly.
    ``send`` may be called from any thread.  Use as a context manager, or
    ``open()`` / ``close()``; ``poll()`` about once a second notices a port
    that went away and reopens it when it is back.  The two directions are
    handled apart: an unplugged keyboard does not close the way to the synth.
    """

    def __init__(
        self,
        api: str = "auto",
        in_port: str = "",
        out_port: str = "",
        on_input: InputCallback | None = None,
        *,
        clock: Callable[[], float] = time.monotonic,
        want_input: bool = True,
        on_change: Callable[[], None] | None = None,
    ) -> None:
        self.requested_api = api
        self.api = ""
        self._in = _Side("in", in_port) if want_input else None
        self._out = _Side("out", out_port)
        self._on_input = on_input
        self._clock = clock
        self._lock = threading.Lock()  # guards _out.client against a swap while sending
        self._backend: Backend | None = None  # chosen when the ports first open
        self._on_change = on_change  # wakes whoever calls poll(), e.g. on a JACK shutdown
        self._last_sent: float | None = None
        self._sysex_guard: SysexGuard | None = None
        # JACK servers lost so far; counted once their clients are all closed.
        self.server_losses = 0

    def _sides(self) -> list[_Side]:
        return [side for side in (self._in, self._out) if side is not None]

    @property
    def connected(self) -> bool:
        """Both directions are open."""
        return all(side.client is not None for side in self._sides())

    @property
    def output_open(self) -> bool:
        return self._out.client is not None

    @property
    def input_name(self) -> str:
        return self._in.port_name if self._in else ""

    @property
    def output_name(self) -> str:
        return self._out.port_name

    # -- opening and closing ---------------------------------------------

    def _callback(self, event: tuple[list[int], float], _data: object = None) -> None:
        # Runs on the MIDI system's thread: timestamp first, hand over, return.
        now = self._clock()
        if self._on_input is not None:
            data = event[0]
            self._on_input(data, now, self._backend.master_time(data, now))

    def open(self) -> MidiPorts:
        """Open every direction not open yet; PortError (and nothing opened) on failure."""
        self._open_sides([side for side in self._sides() if side.client is None])
        return self

    def _open_sides(self, closed: list[_Side]) -> None:
        api = self.api or select_api(self.requested_api)
        if self._backend is None:
            self._backend = backend_for(api, self._on_change)
        backend = self._backend
        backend.prepare(with_input=self._in is not None)
        clients: dict[str, rtmidi.MidiIn | rtmidi.MidiOut] = {}
        guard = None
        try:
            # The MIDI system's threads start with the clients and inherit
            # the raised priority: they deliver input and move output on time.
            with favoured():
                for side in closed:
                    clients[side.direction] = open_client(side.direction, api)
            # Resolve every name before creating a port of ours, so that
            # "--out cadenza" can never pick our own input.
            targets = {
                side.direction: self._resolve(side, clients[side.direction])
                for side in closed if side.wanted
            }
            guard = backend.sysex_guard(any(side.direction == "in" for side in closed))
            for side in closed:
                self._open_port(side, clients[side.direction], targets.get(side.direction), api)
            if guard is not None and not guard.connect():
                guard = None
        except BaseException as err:
            if guard is not None:
                guard.close()
            for client in clients.values():
                close_client(client)
            if isinstance(err, RTMIDI_ERRORS) and not isinstance(err, PortError):
                raise PortError(f"cannot open {API_LABELS[api]} MIDI ports: {err}") from err
            raise
        with self._lock:
            for side in closed:
                side.client = clients[side.direction]
            if guard is not None:
                self._sysex_guard = guard
        self.api = api
        backend.opened()
        for side in closed:
            log.info("MIDI %s open (%s): %r", side.label, API_LABELS[api], side.port_name)

    def _resolve(self, side: _Side, client: rtmidi.MidiIn | rtmidi.MidiOut) -> tuple[int, str]:
        available = client.get_ports()
        ours = [o.own_name for o in self._sides() if o is not side and o.client and not o.wanted]
        candidates = [name for name in available if not any(own in name for own in ours)]
        name = match_port(candidates, side.wanted, side.label)
        return available.index(name), name

    def _open_port(
        self, side: _Side, client: rtmidi.MidiIn | rtmidi.MidiOut,
        target: tuple[int, str] | None, api: str,
    ) -> None:
        if target is not None:
            client.open_port(target[0], side.own_name)
            side.port_name = target[1]
        else:
            try:
                client.open_virtual_port(side.own_name)
            except rtmidi.UnsupportedOperationError as err:
                raise PortError(
                    f"{API_LABELS[api]} cannot create virtual ports; connect to existing "
                    "ones with --in and --out (e.g. loopMIDI ports)"
                ) from err
            side.port_name = side.own_name
        if side.direction == "in":
            client.set_callback(self._callback)

    def _close_side(self, side: _Side) -> None:
        with self._lock:
            client, side.client = side.client, None
            guard = None
            if side.direction == "in":  # the guard feeds the input: it goes with it
                guard, self._sysex_guard = self._sysex_guard, None
        try:
            close_client(client)
        except RTMIDI_ERRORS as err:
            log.debug("closing the %s failed: %s", side.label, err)
        # After the input: closing an rtmidi JACK output waits (up to a
        # second) for a process cycle, which never comes when the server died.
        if guard is not None:
            guard.close()

    def _server_gone(self) -> bool:
        return self._backend is not None and self._backend.server_gone()

    def close(self) -> None:
        """Close both directions (the input's callback is removed first).

        When something was sent within ``DRAIN`` seconds, the output stays
        open that long first, so the last note-offs reach the listener.
        """
        last = self._last_sent
        if self.output_open and last is not None and not self._server_gone():
            time.sleep(max(0.0, last + DRAIN - self._clock()))
        for side in self._sides():
            self._close_side(side)
        if self._backend is not None:
            self._backend.close()  # after the input, whose callback reads it

    def __enter__(self) -> MidiPorts:
        return self.open()

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- use ---------------------------------------------------------------

    def send(self, message: mido.Message) -> bool:
        """Send one message; False (nothing sent) while the output is gone."""
        data = message.bytes()
        with self._lock:
            client = self._out.client
            if client is None:
                return False
            client.send_message(data)
        self._last_sent = self._clock()
        return True

    def server_gone(self) -> bool:
        """The JACK server went away (noticed the moment it did)."""
        return self._server_gone()

    def _missing(self, side: _Side) -> bool:
        # A port we connected to must keep its name in our client's list.
        # (Our own virtual ports go away only with the whole MIDI system.)
        if not side.wanted or side.client is None:
            return False
        try:
            return side.port_name not in side.client.get_ports()
        except RTMIDI_ERRORS:
            return True

    def poll(self) -> tuple[list[str], list[str]]:
        """Check the ports: ``(lost, restored)`` directions ("in", "out") since
        the last call.  A lost one is closed, then tried again at each call.
        On JACK, also end any sysex the input may be stuck in (``SysexGuard``)."""
        lost = []
        if self._server_gone():
            # Close the dead server's clients now, before any new client opens:
            # the first one to open makes libjack free the old clients' state,
            # and closing them after that crashes inside libjack.
            # The input goes first (the quick one; each output takes a second).
            log.warning("lost the JACK server; waiting for it to come back")
            lost = [side.direction for side in self._sides() if side.client is not None]
            for side in self._sides():
                self._close_side(side)
            self._backend.forget_server()
            self.server_losses += 1
        else:
            for side in self._sides():
                if self._missing(side):
                    log.warning("MIDI %s %r disappeared; waiting for it to come back",
                                side.label, side.port_name)
                    self._close_side(side)
                    lost.append(side.direction)
        restored = []
        for side in self._sides():
            if side.client is None and side.direction not in lost:
                try:
                    self._open_sides([side])
                except PortError as err:
                    log.debug("%s not back yet: %s", side.label, err)
                    continue
                restored.append(side.direction)
        with self._lock:
            guard = self._sysex_guard
        if guard is not None and not self._server_gone():
            guard.reset()
        return lost, restored
