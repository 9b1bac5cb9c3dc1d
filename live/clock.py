"""Musical time: tempo, the note grid, and following a MIDI clock master.

The engine thinks in beats (quarter notes) and the caller thinks in seconds.
A clock converts between the two.  ``InternalClock`` runs at a set tempo
from an anchor; ``MidiClockFollower`` listens to a master's 24-per-quarter
ticks and estimates the beat position by a least-squares line through the
last few dozen ticks, so a master whose ticks jitter by a few milliseconds
still gives a steady grid.

No wall clock is read here: every method takes the time from its caller.
"""

from __future__ import annotations

import math
from collections import deque

from cadenza.config import GRID_BEATS
from cadenza.errors import ConfigError

TICKS_PER_BEAT = 24  # MIDI clock: 24 pulses per quarter note
TICKS_PER_SPP_UNIT = 6  # a Song Position Pointer counts sixteenths

MIN_SLOPE_TICKS = 12  # ticks before the tempo itself is fitted (half a beat)

BEATS_PER_BAR = 4  # answers and --bars count bars of 4/4

# Grid arithmetic rounds by this many beats so that a step computed as
# k * (1/3) lands on step k and not, by float error, just before it.
_EPS = 1e-9


def grid_beats(grid: str) -> float:
    """Beats per grid step for a grid name such as ``1/8`` or ``1/8t``."""
    try:
        return GRID_BEATS[grid]
    except KeyError:
        raise ConfigError(f"unknown grid {grid!r} (known: {', '.join(GRID_BEATS)})") from None


def step_at_or_after(beat: float, step: float) -> float:
    """The first grid step at or after ``beat`` (steps are multiples of ``step``)."""
    return math.ceil(beat / step - _EPS) * step


def step_after(beat: float, step: float) -> float:
    """The first grid step strictly after ``beat``."""
    return (math.floor(beat / step + _EPS) + 1) * step


def snap(beats: float, step: float) -> int:
    """``beats`` rounded to a whole number of grid steps (halves round up)."""
    return math.floor(beats / step + 0.5 + _EPS)


class InternalClock:
    """A steady tempo from an anchor; tempo changes keep the beat position continuous."""

    running = True

    def __init__(self, bpm: float, start_time: float = 0.0) -> None:
        self._bpm = float(bpm)
        self._anchor_time = float(start_time)
        self._anchor_beat = 0.0

    @property
    def bpm(self) -> float:
        return self._bpm

    def set_bpm(self, bpm: float, now: float) -> None:
        """Change tempo at ``now`` without moving the beat position at ``now``."""
        self._anchor_beat = self.beat_at(now)
        self._anchor_time = now
        self._bpm = float(bpm)

    def beat_at(self, time: float) -> float:
        return self._anchor_beat + (time - self._anchor_time) * self._bpm / 60.0

    def time_at(self, beat: float) -> float:
        return self._anchor_time + (beat - self._anchor_beat) * 60.0 / self._bpm


class MidiClockFollower:
    """The beat position and tempo of a MIDI clock master.

    ``tick``, ``start``, ``stop``, ``continue_`` and ``song_position`` are
    called with the arrival time of each message.  While running, the beat
    position is a least-squares line through the last ``window`` ticks
    (tick number against arrival time): jitter averages out, and a tempo
    change is followed within that many ticks.  Position 0 is the first
    tick after Start; Continue resumes from the last Song Position Pointer
    (or where Stop left off).
    """

    def __init__(self, bpm: float = 120.0, window: int = 96) -> None:
        if window < 2:
            raise ConfigError(f"clock window must be at least 2 ticks, got {window}")
        self._period = 60.0 / (float(bpm) * TICKS_PER_BEAT)  # seconds per tick
        self._ticks: deque[tuple[int, float]] = deque(maxlen=window)
        self.running = False
        self._position = 0  # tick number the next tick will carry
        self._line: tuple[float, float, float] | None = None  # (t0, tick at t0, ticks/s)
        self._last_tick_time: float | None = None

    @property
    def bpm(self) -> float:
        return 60.0 / (self._period * TICKS_PER_BEAT)

    @property
    def position_ticks(self) -> int:
        return self._position

    def start(self, now: float) -> None:
        self._position = 0
        self._begin()

    def continue_(self, now: float) -> None:
        self._begin()

    def _begin(self) -> None:
        self.running = True
        self._ticks.clear()
        self._line = None

    def stop(self, now: float) -> None:
        self.running = False
        self._line = None
        self._ticks.clear()

    def song_position(self, sixteenths: int) -> None:
        """A Song Position Pointer: where Continue resumes (ignored while running)."""
        if not self.running:
            self._position = int(sixteenths) * TICKS_PER_SPP_UNIT

    def tick(self, now: float) -> None:
        previous = self._last_tick_time
        self._last_tick_time = now
        # A gap of several periods means the master paused without saying
        # so: the old ticks no longer lie on the same line.
        if previous is not None and now - previous > 4 * self._period:
            self._ticks.clear()
        if not self.running:
            # A stopped master often keeps sending ticks: learn its tempo.
            if previous is not None and 0 < now - previous <= 4 * self._period:
                self._period += 0.1 * ((now - previous) - self._period)
            return
        self._ticks.append((self._position, now))
        self._position += 1
        self._fit()

    def _fit(self) -> None:
        ticks = self._ticks
        n = len(ticks)
        t0 = ticks[0][1]
        k0 = ticks[0][0]
        if n < min(MIN_SLOPE_TICKS, ticks.maxlen or n):
            # A slope through a handful of jittery ticks is wild: keep the
            # period known so far and fit only the phase (the line through
            # the ticks' centroid).
            mean_t = sum(t for _, t in ticks) / n
            mean_k = sum(k for k, _ in ticks) / n
            self._line = (mean_t, mean_k, 1.0 / self._period)
            return
        # Times relative to the oldest tick keep the sums well conditioned.
        sum_t = sum_k = sum_tt = sum_tk = 0.0
        for k, t in ticks:
            dt = t - t0
            dk = k - k0
            sum_t += dt
            sum_k += dk
            sum_tt += dt * dt
            sum_tk += dt * dk
        mean_t = sum_t / n
        mean_k = sum_k / n
        var_t = sum_tt / n - mean_t * mean_t
        if var_t <= 0:
            return
        rate = (sum_tk / n - mean_t * mean_k) / var_t
        if rate <= 0:
            return
        self._period = 1.0 / rate
        self._line = (t0 + mean_t, k0 + mean_k, rate)

    def beat_at(self, time: float) -> float | None:
        """Beat position at ``time`` from the fitted line; None before the first tick."""
        if not self.running or self._line is None:
            return None
        t_ref, k_ref, rate = self._line
        return (k_ref + (time - t_ref) * rate) / TICKS_PER_BEAT

    def time_at(self, beat: float) -> float | None:
        """When ``beat`` will come; None when unknown or more than a beat past the last tick.

        The horizon keeps a master that vanished without a Stop from
        leaving Cadenza playing alone at its last tempo: nothing is
        planned more than a beat beyond what the master has confirmed.
        """
        if not self.running or self._line is None:
            return None
        t_ref, k_ref, rate = self._line
        time = t_ref + (beat * TICKS_PER_BEAT - k_ref) / rate
        if self._last_tick_time is not None and time > self._last_tick_time + TICKS_PER_BEAT / rate:
            return None
        return time
