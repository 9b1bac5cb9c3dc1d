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
port comes back.  On JACK it also keeps the input from going deaf after a
broken sysex (``SysexGuard``).

The handlers of ``cadenza ports`` and ``cadenza panic`` live here too.
"""

from __future__ import annotations

import argparse
import ctypes
import ctypes.util
import logging
import re
import sys
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import mido

from cadenza.config import Config
from cadenza.errors import PortError
from cadenza.live.ledger import silence_messages
from cadenza.live.midi_backend import rtmidi_import_error
from cadenza.live.scheduler import favoured

try:
    import rtmidi
except ImportError as err:  # a system library it links is missing: say which, no traceback
    raise rtmidi_import_error(err) from err

log = logging.getLogger(__name__)

CLIENT_NAME = "Cadenza"
VIRTUAL_IN = "Cadenza In"
VIRTUAL_OUT = "Cadenza Out"
SYSEX_GUARD_PORT = "Cadenza Sysex Guard"
# An empty, complete sysex: it ends any sysex RtMidi thinks is still going,
# and, since Cadenza's input ignores sysex, it never reaches Cadenza itself.
SYSEX_RESET = [0xF0, 0xF7]

API_IDS = {
    "alsa": rtmidi.API_LINUX_ALSA,
    "jack": rtmidi.API_UNIX_JACK,
    "coremidi": rtmidi.API_MACOSX_CORE,
    "windows": rtmidi.API_WINDOWS_MM,
}
API_LABELS = {"alsa": "ALSA", "jack": "JACK", "coremidi": "CoreMIDI", "windows": "Windows MM"}

#: What a user can do when an API does not work.
INSTALL_HINTS = {
    "alsa": "ALSA: needs the sequencer device /dev/snd/seq, from a kernel with snd-seq "
    "(`sudo modprobe snd-seq`)",
    "jack": "JACK: install jackd2 and start a server (`jackd -d alsa`, or "
    "`jackd -d dummy` without a sound card)",
    "coremidi": "CoreMIDI: comes with macOS",
    "windows": "Windows MM: comes with Windows; for virtual ports install loopMIDI",
}

# JACK (and CoreMIDI) hand sent messages to the MIDI system on its next cycle,
# and a connection made by name takes effect a cycle or two later: closing a
# port right after sending, or sending right after connecting, loses messages.
DRAIN = 0.1  # seconds kept open after the last message before a port is closed
SETTLE = 0.1  # seconds after connecting by name before the first message matters
CALLBACK_SETTLE = 0.02  # seconds for a callback under way to finish before its port closes
PANIC_PACING = 0.001  # seconds between panic messages: a burst can overrun a small device
# A panic is rare and must not lose a message: wait longer than a normal
# connection does, before the first message and before closing.
PANIC_SETTLE = 0.3

# rtmidi reports trouble as RtMidiError subclasses, some of them also OSError/ValueError.
RTMIDI_ERRORS = (rtmidi.RtMidiError, RuntimeError, OSError, ValueError)

InputCallback = Callable[[list[int], float], None]


def native_api(platform: str = sys.platform) -> str:
    if platform.startswith("darwin"):
        return "coremidi"
    if platform.startswith(("win32", "cygwin")):
        return "windows"
    return "alsa"


def compiled_apis() -> list[str]:
    """The APIs this python-rtmidi was built with, by our names."""
    compiled = set(rtmidi.get_compiled_api())
    return [name for name, api in API_IDS.items() if api in compiled]


def candidate_apis(api: str = "auto") -> list[str]:
    """The APIs to try, in order: ``auto`` is the system's own MIDI, then JACK."""
    compiled = compiled_apis()
    if api == "auto":
        return [name for name in dict.fromkeys([native_api(), "jack"]) if name in compiled]
    if api not in API_IDS:
        raise PortError(f"unknown MIDI API {api!r} (known: auto, {', '.join(API_IDS)})")
    if api not in compiled:
        raise PortError(
            f"MIDI API {api!r} is not built into this python-rtmidi "
            f"(it has: {', '.join(compiled) or 'none'})"
        )
    return [api]


def no_midi_error(failures: dict[str, str]) -> PortError:
    """The error for "no MIDI system works here", with what to install."""
    tried = "; ".join(f"{API_LABELS[name]}: {why}" for name, why in failures.items())
    hints = " ".join(f"{INSTALL_HINTS[name]}." for name in failures)
    return PortError(
        f"no MIDI system is available (tried {tried or 'nothing'}). {hints} "
        "To hear Cadenza without a MIDI system, run `cadenza simulate --out duet.mid`."
    )


def open_client(direction: str, api: str) -> rtmidi.MidiIn | rtmidi.MidiOut:
    """A MIDI client ("in" or "out") of ``api``, with no port open yet."""
    cls = rtmidi.MidiIn if direction == "in" else rtmidi.MidiOut
    try:
        client = cls(API_IDS[api], CLIENT_NAME)
    except RTMIDI_ERRORS as err:
        raise PortError(f"{API_LABELS[api]} MIDI is not available: {err}") from err
    if direction == "in":
        # MIDI clock must reach the engine; sysex and active sensing need not.
        client.ignore_types(sysex=True, timing=False, active_sense=True)
    return client


def _close(client: rtmidi.MidiIn | rtmidi.MidiOut | None) -> None:
    if client is None:
        return
    if isinstance(client, rtmidi.MidiIn):
        # Remove the callback first: no call may arrive into a half-closed port.
        client.cancel_callback()
        # python-rtmidi closes a port holding the GIL, and JACK's server waits
        # for the client's cycle to end: a callback already under way, waiting
        # for the GIL, would never end.  Let it finish first.
        time.sleep(CALLBACK_SETTLE)
    try:
        client.close_port()
    finally:
        # Only deleting the C++ object closes a virtual port and its client now.
        client.delete()


def select_api(api: str = "auto") -> str:
    """The first API in ``candidate_apis(api)`` that opens a client."""
    failures: dict[str, str] = {}
    for name in candidate_apis(api):
        try:
            _close(open_client("out", name))
        except PortError as err:
            failures[name] = str(err.__cause__ or err)
            log.debug("%s unavailable: %s", name, failures[name])
            continue
        return name
    raise no_midi_error(failures)


@dataclass(frozen=True)
class PortListing:
    api: str
    inputs: tuple[str, ...]  # ports Cadenza can listen to (other programs' outputs)
    outputs: tuple[str, ...]  # ports Cadenza can play to


def list_ports(api: str) -> PortListing:
    """The ports of one API; PortError when the API does not work here."""
    midi_in = open_client("in", api)
    try:
        midi_out = open_client("out", api)
        try:
            return PortListing(api, tuple(midi_in.get_ports()), tuple(midi_out.get_ports()))
        finally:
            _close(midi_out)
    finally:
        _close(midi_in)


def _bare(name: str) -> str:
    # ALSA appends "client:port" numbers that change when a device is replugged.
    return re.sub(r"\s+\d+:\d+$", "", name).casefold()


def match_port(available: Sequence[str], wanted: str, what: str) -> str:
    """The one port whose name contains ``wanted`` (case-insensitive).

    A name equal to ``wanted`` (whole, or after ``client:``) wins over longer
    ones that merely contain it.  Unknown or ambiguous: PortError listing the
    ports there are.
    """
    needle = wanted.casefold()
    hits = [name for name in available if needle in name.casefold()]
    if len(hits) == 1:
        return hits[0]
    exact = [n for n in hits if needle in (_bare(n), _bare(n).split(":", 1)[-1])]
    if len(exact) == 1:
        return exact[0]
    shown = ", ".join(repr(n) for n in available) or "none"
    if not hits:
        raise PortError(
            f"no MIDI {what} port matches {wanted!r}; {what} ports: {shown}. "
            f"`cadenza ports` lists them all; leave out --{'in' if what == 'input' else 'out'} "
            f"to get Cadenza's own virtual port instead"
        )
    raise PortError(
        f"{wanted!r} matches several MIDI {what} ports ({', '.join(repr(n) for n in hits)}); "
        f"give more of the name. {what.capitalize()} ports: {shown}"
    )


def _libjack_path() -> str | None:
    """The libjack this process already uses (python-rtmidi's wheel bundles its
    own copy), else the system's."""
    try:
        with open("/proc/self/maps", encoding="utf-8") as maps:
            for line in maps:
                if "libjack" in line and "/" in line:
                    return line[line.index("/"):].strip()
    except OSError:
        pass
    return ctypes.util.find_library("jack")


_SHUTDOWN_CALLBACK = ctypes.CFUNCTYPE(None, ctypes.c_void_p)
_JACK_NO_START_SERVER = 0x01


class JackWatch:
    """Hears the JACK server go away, the moment it does.

    When jackd dies, the clients python-rtmidi holds keep answering port
    lists from a stale copy of the graph, so a dead server cannot be seen
    from them.  This is one more JACK client, with no ports and never
    activated (it costs the audio graph nothing), that registers JACK's
    shutdown callback: ``gone`` is set and ``on_shutdown`` called (on a JACK
    thread: keep it short) when the server stops.
    """

    def __init__(self, on_shutdown: Callable[[], None] | None = None) -> None:
        self.gone = threading.Event()
        self._on_shutdown = on_shutdown
        self._lib: ctypes.CDLL | None = None
        self._client: int | None = None
        # Keep a reference: JACK calls it after this method has returned.
        self._callback = _SHUTDOWN_CALLBACK(self._shutdown)

    def _shutdown(self, _arg: object) -> None:
        self.gone.set()
        if self._on_shutdown is not None:
            self._on_shutdown()

    def open(self) -> bool:
        """Start watching; False when libjack or the server cannot be reached."""
        path = _libjack_path()
        if path is None:
            log.debug("libjack not found: a JACK server restart will not be noticed")
            return False
        try:
            lib = ctypes.CDLL(path)
            lib.jack_client_open.restype = ctypes.c_void_p
            lib.jack_client_open.argtypes = [ctypes.c_char_p, ctypes.c_int, ctypes.POINTER(ctypes.c_int)]
            lib.jack_on_shutdown.argtypes = [ctypes.c_void_p, _SHUTDOWN_CALLBACK, ctypes.c_void_p]
            lib.jack_client_close.argtypes = [ctypes.c_void_p]
        except (OSError, AttributeError) as err:
            log.debug("cannot use %s to watch the JACK server: %s", path, err)
            return False
        status = ctypes.c_int()
        client = lib.jack_client_open(
            f"{CLIENT_NAME}-watch".encode(), _JACK_NO_START_SERVER, ctypes.byref(status)
        )
        if not client:
            return False
        lib.jack_on_shutdown(client, self._callback, None)
        self._lib, self._client = lib, client
        return True

    def close(self) -> None:
        if self._lib is not None and self._client:
            self._lib.jack_client_close(self._client)
        self._client = None


class SysexGuard:
    """Keeps a JACK input from going deaf after an unterminated sysex.

    RtMidi's JACK input treats every event after a sysex start (``0xF0``) as
    more of that sysex until an event ends in ``0xF7``; with sysex ignored it
    throws them all away.  One broken sysex from a controller would make
    Cadenza deaf until that controller's next good one.  The guard is an
    output port of Cadenza's own, connected to Cadenza's input, through
    which ``reset()`` sends an empty sysex (``F0 F7``) about once a second:
    it ends a broken sysex (which Cadenza ignores anyway), so the input is
    deaf for at most a second, and otherwise it is dropped unseen.
    """

    def __init__(self) -> None:
        self._client: rtmidi.MidiOut | None = None
        self._before: list[str] = []

    def prepare(self) -> None:
        """Before the input port opens: note the ports there are already."""
        try:
            self._client = open_client("out", "jack")
            self._before = self._client.get_ports()
        except (PortError, *RTMIDI_ERRORS) as err:
            log.warning("no sysex guard for the JACK input: %s", err)
            self.close()

    def connect(self) -> bool:
        """After the input port opened: connect to it, the one new port of its name."""
        if self._client is None:
            return False
        try:
            now = self._client.get_ports()
            ours = [name for name in now
                    if name not in self._before and name.endswith(f":{VIRTUAL_IN}")]
            if len(ours) != 1:
                raise PortError(f"cannot tell Cadenza's own input among {ours or 'no ports'}")
            self._client.open_port(now.index(ours[0]), SYSEX_GUARD_PORT)
        except (PortError, *RTMIDI_ERRORS) as err:
            log.warning(
                "no sysex guard for the JACK input (%s): a broken sysex from a "
                "controller may make Cadenza deaf until its next complete sysex", err,
            )
            self.close()
            return False
        log.debug("sysex guard connected to %r", ours[0])
        return True

    def reset(self) -> None:
        if self._client is None:
            return
        try:
            self._client.send_message(SYSEX_RESET)
        except RTMIDI_ERRORS as err:
            log.debug("sysex guard could not send: %s", err)

    def close(self) -> None:
        client, self._client = self._client, None
        if client is None:
            return
        try:
            _close(client)
        except RTMIDI_ERRORS as err:
            log.debug("closing the sysex guard failed: %s", err)


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

    ``on_input(data, timestamp)`` is called on the MIDI system's thread with
    the raw bytes and ``clock()`` at arrival; it must return quickly.
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
        self._jack_watch: JackWatch | None = None
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
            self._on_input(event[0], now)

    def open(self) -> MidiPorts:
        """Open every direction not open yet; PortError (and nothing opened) on failure."""
        self._open_sides([side for side in self._sides() if side.client is None])
        return self

    def _open_sides(self, closed: list[_Side]) -> None:
        api = self.api or select_api(self.requested_api)
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
            if api == "jack" and any(side.direction == "in" for side in closed):
                guard = SysexGuard()
                guard.prepare()
            for side in closed:
                self._open_port(side, clients[side.direction], targets.get(side.direction), api)
            if guard is not None and not guard.connect():
                guard = None
        except BaseException as err:
            if guard is not None:
                guard.close()
            for client in clients.values():
                _close(client)
            if isinstance(err, RTMIDI_ERRORS) and not isinstance(err, PortError):
                raise PortError(f"cannot open {API_LABELS[api]} MIDI ports: {err}") from err
            raise
        with self._lock:
            for side in closed:
                side.client = clients[side.direction]
            if guard is not None:
                self._sysex_guard = guard
        self.api = api
        if api == "jack" and self._jack_watch is None:
            watch = JackWatch(self._on_change)
            self._jack_watch = watch if watch.open() else None
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
            _close(client)
        except RTMIDI_ERRORS as err:
            log.debug("closing the %s failed: %s", side.label, err)
        # After the input: closing an rtmidi JACK output waits (up to a
        # second) for a process cycle, which never comes when the server died.
        if guard is not None:
            guard.close()

    def _server_gone(self) -> bool:
        return self._jack_watch is not None and self._jack_watch.gone.is_set()

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
        if self._jack_watch is not None:
            self._jack_watch.close()
            self._jack_watch = None

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
            self._jack_watch.close()
            self._jack_watch = None
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


# -- command handlers ------------------------------------------------------


def format_listing(listings: list[PortListing], failures: dict[str, str]) -> str:
    lines = []
    for listing in listings:
        lines.append(f"{API_LABELS[listing.api]} ({listing.api}):")
        lines.append("  inputs (Cadenza can listen to, --in):")
        lines.extend(f"    {name}" for name in listing.inputs or ("(none)",))
        lines.append("  outputs (Cadenza can play to, --out):")
        lines.extend(f"    {name}" for name in listing.outputs or ("(none)",))
    for api, why in failures.items():
        lines.append(f"{API_LABELS[api]} ({api}): not available: {why}")
    return "\n".join(lines) + "\n"


def run_ports(args: argparse.Namespace, config: Config) -> int:
    """``cadenza ports``: the ports of each API (or of ``--api``)."""
    api = config.live.api
    names = compiled_apis() if api == "auto" else candidate_apis(api)
    listings, failures = [], {}
    for name in names:
        try:
            listings.append(list_ports(name))
        except PortError as err:
            failures[name] = str(err.__cause__ or err)
    sys.stdout.write(format_listing(listings, failures))
    if not listings:
        raise no_midi_error(failures)
    return 0


def panic_messages(channel: int) -> list[mido.Message]:
    """What ``cadenza panic`` sends: a note-off for every note on the output
    channel (a synth may ignore the controllers), then CC 123 and CC 120 on
    all 16 channels."""
    offs = [mido.Message("note_off", channel=channel, note=n, velocity=0) for n in range(128)]
    return offs + silence_messages(range(16))


def run_panic(args: argparse.Namespace, config: Config) -> int:
    """``cadenza panic --out NAME``: silence a port Cadenza left sounding."""
    settings = config.live
    if not settings.out_port:
        raise PortError("cadenza panic needs --out NAME: the port to silence")
    ports = MidiPorts(settings.api, out_port=settings.out_port, want_input=False)
    messages = panic_messages(settings.channel - 1)
    with ports:
        time.sleep(PANIC_SETTLE)
        for message in messages:
            ports.send(message)
            time.sleep(PANIC_PACING)
        time.sleep(PANIC_SETTLE)
    log.info("sent %d panic messages to %r", len(messages), ports.output_name)
    return 0
