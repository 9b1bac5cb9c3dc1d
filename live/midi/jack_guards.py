"""Workarounds for JACK: hearing the server die (``JackWatch``) and keeping the
input from going deaf after a broken sysex (``SysexGuard``).

Both reach below python-rtmidi: ``JackWatch`` opens a client of its own
through libjack (ctypes) for the server's shutdown callback; ``SysexGuard``
is a small output client connected to Cadenza's own input.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import logging
import threading
from collections.abc import Callable

from cadenza.errors import PortError
from cadenza.live.midi.midi_api import (
    CLIENT_NAME,
    RTMIDI_ERRORS,
    VIRTUAL_IN,
    close_client,
    open_client,
)
from cadenza.live.midi.midi_backend import rtmidi

log = logging.getLogger(__name__)

SYSEX_GUARD_PORT = "Cadenza Sysex Guard"
# An empty, complete sysex: it ends any sysex RtMidi thinks is still going,
# and, since Cadenza's input ignores sysex, it never reaches Cadenza itself.
SYSEX_RESET = [0xF0, 0xF7]

def libjack_path() -> str | None:
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
        path = libjack_path()
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
            close_client(client)
        except RTMIDI_ERRORS as err:
            log.debug("closing the sysex guard failed: %s", err)
