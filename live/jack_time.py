"""How far JACK's frame clock has fallen behind the wall clock (``JackLag``).

A JACK client lives on the server's frame clock: jack_midi_clock, a DAW or
a synth places its MIDI at frames, not at instants.  The frame clock
advances one period per process cycle, and a cycle that comes late (an
xrun: the server or a client did not get the CPU in time) is never made
up: the dummy driver re-anchors its timer, a sound card's driver restarts
the stream, and from then on every frame falls that much later in wall
time.  Under load this adds up (about 150 ms in 20 s, at a few xruns a
second, on the 2-core machine of issue 13).

For a clock follower that reads its ticks by wall time, each such stall
is a master that paused: a tick that arrives two intervals after the last
is one tick late, not one lost (JACK delivered every tick; the master sent
none in the frames that were never processed).  ``JackLag.lag()`` is the
amount the frame clock has fallen behind since the client opened: the
follower subtracts it from each tick's arrival, which puts the ticks back
on the master's own time line, where a gap of two intervals really is a
lost tick.

It is one more client of libjack (ctypes), with no ports and never
activated, read with ``jack_get_cycle_times``: the frame at which the
current cycle began.  (Not JACK's own estimate of when it began: that is
smoothed by a DLL, which takes many cycles to follow a stall.)  It costs
the graph nothing and may be read from any thread.
"""

from __future__ import annotations

import ctypes
import logging

from cadenza.live.jack_guards import libjack_path
from cadenza.live.midi_api import CLIENT_NAME

log = logging.getLogger(__name__)

_JACK_NO_START_SERVER = 0x01
_FRAME_WRAP = 1 << 32  # jack_nframes_t is 32 bits: it wraps after a day at 48 kHz


class JackLag:
    """Seconds JACK's frame clock has lost against the caller's clock since ``open``."""

    def __init__(self) -> None:
        self._lib: ctypes.CDLL | None = None
        self._client: int | None = None
        self._rate = 0.0
        self._base: float | None = None
        self._latest = 0.0
        self._last_frames = 0
        self._wraps = 0
        self.last_cycle = (0, 0)  # (frame, JACK microseconds) of the cycle read last

    @property
    def is_open(self) -> bool:
        return self._client is not None

    def open(self) -> bool:
        """Start reading the server's cycle times; False (lag stays 0) when that cannot be done."""
        path = libjack_path()
        if path is None:
            return False
        try:
            lib = ctypes.CDLL(path)
            lib.jack_client_open.restype = ctypes.c_void_p
            lib.jack_client_open.argtypes = [ctypes.c_char_p, ctypes.c_int, ctypes.POINTER(ctypes.c_int)]
            lib.jack_client_close.argtypes = [ctypes.c_void_p]
            lib.jack_get_sample_rate.argtypes = [ctypes.c_void_p]
            lib.jack_get_sample_rate.restype = ctypes.c_uint32
            lib.jack_get_cycle_times.argtypes = [
                ctypes.c_void_p, ctypes.POINTER(ctypes.c_uint32), ctypes.POINTER(ctypes.c_uint64),
                ctypes.POINTER(ctypes.c_uint64), ctypes.POINTER(ctypes.c_float),
            ]
            lib.jack_get_cycle_times.restype = ctypes.c_int
        except (OSError, AttributeError) as err:
            log.debug("cannot read JACK's cycle times through %s: %s", path, err)
            return False
        status = ctypes.c_int()
        client = lib.jack_client_open(f"{CLIENT_NAME}-time".encode(), _JACK_NO_START_SERVER,
                                      ctypes.byref(status))
        if not client:
            return False
        rate = lib.jack_get_sample_rate(client)
        if rate <= 0:
            lib.jack_client_close(client)
            return False
        self._lib, self._client, self._rate = lib, client, float(rate)
        self._base, self._wraps = None, 0
        return True

    def lag(self, now: float) -> float:
        """How far the frame clock is behind ``now`` (the caller's clock), less the first reading.

        Read while an event is delivered (on JACK's process thread), ``now -
        lag`` is the frame of the cycle that brought it, in seconds: the
        master's own time, exact to a period however late the callback
        itself ran.  0.0 when closed.
        """
        lib, client = self._lib, self._client
        if lib is None or client is None:
            return 0.0
        frames, usecs = ctypes.c_uint32(), ctypes.c_uint64()
        next_usecs, period = ctypes.c_uint64(), ctypes.c_float()
        if lib.jack_get_cycle_times(client, ctypes.byref(frames), ctypes.byref(usecs),
                                    ctypes.byref(next_usecs), ctypes.byref(period)) != 0:
            return self._latest
        if frames.value + _FRAME_WRAP // 2 < self._last_frames:
            self._wraps += 1
        self._last_frames = frames.value
        whole = frames.value + self._wraps * _FRAME_WRAP
        self.last_cycle = (whole, usecs.value)
        behind = now - whole / self._rate
        if self._base is None:
            self._base = behind
        self._latest = behind - self._base
        return self._latest

    def close(self) -> None:
        lib, client = self._lib, self._client
        self._client = None
        if lib is not None and client:
            lib.jack_client_close(client)
