"""How far JACK's frame clock has fallen behind the wall clock (``JackLag``).

A JACK client lives on the server's frame clock: jack_midi_clock, a DAW or
a synth places its MIDI at frames, not at instants.  The frame clock
advances one period per process cycle, and a cycle that comes late (an
xrun: the server or a client did not get the CPU in time) is never made
up: the dummy driver re-anchors its timer, a sound card's driver restarts
the stream, and from then on every frame processed falls that much later
in wall time.  Under load this adds up (about 150 ms in 20 s, at a few xruns a
second, on the 2-core machine of issue 13).

For a clock follower that reads its ticks by wall time, each such stall
is a master that paused: a tick that arrives two intervals after the last
is one tick late, not one lost (JACK delivered every tick; the master sent
none in the frames that were never processed).  ``JackLag.lag(now)`` is how
far the master's time line (the frames JACK has processed) is behind
``now``, less the first reading: the follower subtracts it from each tick's
arrival, which puts the ticks back on the master's own time line, where a
gap of two intervals really is a lost tick.

Two readings make it up, both from one more client of libjack (ctypes),
with no ports and never activated, which costs the graph nothing:

- ``jack_get_cycle_times``: the frame at which the current cycle began, on
  JACK's frame timer.  A late cycle that JACK does not call an xrun only
  comes late: the timer's frames fall behind with it.
- JACK transport's frame (``jack_transport_query``), which moves by exactly
  the frames processed while it rolls.  After an xrun JACK moves its frame
  timer on by the periods it missed (its own estimate of the time lost);
  the transport, as jack_midi_clock, a DAW and jack_midi_dump, does not.
  What the timer gained over the transport between two readings is time
  the master never had, and counts as lag.  A transport that stands, or
  jumps (a locate, a loop), says nothing and is not read.
"""

from __future__ import annotations

import ctypes
import logging
import sys

from cadenza.live.midi.jack_guards import libjack_path
from cadenza.live.midi.midi_api import CLIENT_NAME

log = logging.getLogger(__name__)

_JACK_NO_START_SERVER = 0x01
_FRAME_WRAP = 1 << 32  # jack_nframes_t is 32 bits: it wraps after a day at 48 kHz
_ROLLING = 1  # JackTransportRolling
# jack_position_t is packed: unique_1 (8 bytes), usecs (8), frame_rate (4), frame (4), ...
_POSITION_BYTES = 256  # more than the struct's 136: libjack writes all of it
_POSITION_FRAME = 20
MAX_STALL = 2.0  # seconds: a larger gain of the timer over the transport is a locate
MAX_TEAR = 4096  # frames: a cycle begun between the two readings (a period, at most this)
# An event this soon after the previous one is part of a burst, delivered
# in one cycle, and shares that cycle's reading (for at most a period): a
# storm of thousands of events must not cost two libjack calls each on the
# MIDI thread.  Ticks of any real tempo are milliseconds apart and are
# always read afresh.
BURST_SECONDS = 0.0002


def _signed(difference: int) -> int:
    """A difference of two 32-bit frame counts, wrapped into -2**31 .. 2**31."""
    return (difference + _FRAME_WRAP // 2) % _FRAME_WRAP - _FRAME_WRAP // 2


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
        self._position = ctypes.create_string_buffer(_POSITION_BYTES)
        self._last_rolling: tuple[int, int] | None = None  # (timer, transport) frames
        self._lost_frames = 0  # frames the timer gained over a rolling transport
        self.last_cycle = (0, 0)  # (frame, JACK microseconds) of the cycle read last
        self._read_at: float | None = None  # the caller's time of the last reading
        self._asked_at: float | None = None  # the caller's time of the last call
        self._period_seconds = 0.0
        self._cycle_start = 0.0  # when that cycle began on the master's time line, seconds
        # One set of out-arguments, reused: nothing allocated per event.
        self._frames, self._usecs = ctypes.c_uint32(), ctypes.c_uint64()
        self._next_usecs, self._period = ctypes.c_uint64(), ctypes.c_float()

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
            lib.jack_transport_query.argtypes = [ctypes.c_void_p, ctypes.c_void_p]
            lib.jack_transport_query.restype = ctypes.c_int
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
        self._last_rolling, self._lost_frames = None, 0
        return True

    def lag(self, now: float) -> float:
        """How far the master's time line is behind ``now`` (the caller's clock), less the first reading.

        Read while an event is delivered (on JACK's process thread), ``now -
        lag`` is when the cycle that brought it began on that time line:
        exact to a period however late the callback itself ran.  0.0 when
        closed.
        """
        lib, client = self._lib, self._client
        if lib is None or client is None:
            return 0.0
        asked, self._asked_at = self._asked_at, now
        if self._read_at is not None and self._base is not None and asked is not None \
                and 0.0 <= now - asked < BURST_SECONDS \
                and now - self._read_at < self._period_seconds:
            self._latest = now - self._cycle_start - self._base
            return self._latest
        frames, usecs = self._frames, self._usecs
        if lib.jack_get_cycle_times(client, ctypes.byref(frames), ctypes.byref(usecs),
                                    ctypes.byref(self._next_usecs), ctypes.byref(self._period)) != 0:
            return self._latest
        if frames.value + _FRAME_WRAP // 2 < self._last_frames:
            self._wraps += 1
        self._last_frames = frames.value
        whole = frames.value + self._wraps * _FRAME_WRAP
        self._follow_transport(lib, client, whole)
        processed = whole - self._lost_frames
        self.last_cycle = (processed, usecs.value)
        self._read_at, self._cycle_start = now, processed / self._rate
        self._period_seconds = min(self._period.value * 1e-6, MAX_TEAR / self._rate)
        behind = now - self._cycle_start
        if self._base is None:
            self._base = behind
        self._latest = behind - self._base
        return self._latest

    def _follow_transport(self, lib: ctypes.CDLL, client: int, timer: int) -> None:
        state = lib.jack_transport_query(client, self._position)
        if state != _ROLLING:
            self._last_rolling = None
            return
        transport = int.from_bytes(self._position.raw[_POSITION_FRAME:_POSITION_FRAME + 4], sys.byteorder)
        if self._last_rolling is not None:
            timer_moved = timer - self._last_rolling[0]
            transport_moved = _signed(transport - self._last_rolling[1])
            gained = timer_moved - transport_moved
            # The two are read a moment apart: a cycle may begin between
            # them (a period either way, which the next reading gives back).
            # A transport that went back (a loop) or leapt ahead (a locate)
            # is no stall.
            if transport_moved >= 0 and -MAX_TEAR <= gained <= MAX_STALL * self._rate:
                self._lost_frames += gained
        self._last_rolling = (timer, transport)

    def close(self) -> None:
        lib, client = self._lib, self._client
        self._client = None
        if lib is not None and client:
            lib.jack_client_close(client)
