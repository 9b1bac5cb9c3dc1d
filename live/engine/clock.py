"""Musical time: tempo, the note grid, and following a MIDI clock master.

The engine thinks in beats (quarter notes) and the caller thinks in seconds.
A clock converts between the two.  ``InternalClock`` runs at a set tempo
from an anchor; ``MidiClockFollower`` listens to a master's 24-per-quarter
ticks and places each one on the master's grid by time (``TickTracker``, a
Kalman filter that counts lost and bunched ticks as a hardware slave does),
so a master whose ticks jitter, wander or go missing still gives a steady
grid.

No wall clock is read here: every method takes the time from its caller.
"""

from __future__ import annotations

import math

from cadenza.config import GRID_BEATS
from cadenza.errors import ConfigError
from cadenza.live.engine.tick_tracker import TickTracker

TICKS_PER_BEAT = 24  # MIDI clock: 24 pulses per quarter note
TICKS_PER_SPP_UNIT = 6  # a Song Position Pointer counts sixteenths


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
    called with the arrival time of each message.  Ticks are placed by time
    (see ``TickTracker``), as a hardware slave does: a lost tick, or a bunch
    delivered late after a stall, leaves the grid where the master has it.
    ``window`` bounds the tracker's memory: it never averages over more ticks
    than a least-squares line through that many would.  Position 0 is the
    first tick after Start; Continue resumes from the last Song Position
    Pointer (or the MIDI beat where Stop left off).

    A tick may come with its ``master_time``: when it happened on the
    master's own time line, where the caller knows that apart from arrival
    (the caller corrects it: on JACK, arrival minus how far the frame clock,
    which loses the time of every xrun for good, had fallen behind; see
    ``cadenza.live.midi.jack_time``).  A JACK stall is a master that paused,
    not one whose ticks were lost, so ticks are tracked on the master's time
    line and the grid is handed back on the caller's (shifted by the latest
    tick's offset between the two: stalls come several times a second under
    load, and a filter that waited to be sure of one would place the notes
    after it on the old mapping; a tick read late only moves the notes after
    it by as much).
    """

    def __init__(self, bpm: float = 120.0, window: int = 96) -> None:
        if window < 2:
            raise ConfigError(f"clock window must be at least 2 ticks, got {window}")
        self._tracker = TickTracker(60.0 / (float(bpm) * TICKS_PER_BEAT), window=window)
        self.running = False
        self._origin = 0  # the number the first tick after Start or Continue carries
        self._resume = 0  # while stopped: where Continue resumes
        self._lag = 0.0  # the master's time line is the caller's minus this (latest tick's)

    @property
    def tracker(self) -> TickTracker:
        return self._tracker

    @property
    def bpm(self) -> float:
        return 60.0 / (self._tracker.period * TICKS_PER_BEAT)

    @property
    def position_ticks(self) -> int:
        """The number the next tick will carry (while stopped: where Continue resumes)."""
        if not self.running:
            return self._resume
        return self._origin + self._tracker.count + 1

    def start(self, now: float) -> None:
        self._origin = 0
        self._resume = 0
        self._begin()

    def continue_(self, now: float) -> None:
        if self.running:
            self.stop(now)  # a Continue while running: resume from the beat reached
        self._origin = self._resume
        self._begin()

    def _begin(self) -> None:
        # The master's first tick after Start or Continue sets the phase
        # afresh; the tempo learnt so far is a good first guess.
        self.running = True
        self._tracker.reset()

    def stop(self, now: float) -> None:
        # A master stops on a MIDI beat (six ticks) and resumes from one: a
        # tick it sent after that beat is not yet part of the song.
        position = self.position_ticks
        self._resume = position - position % TICKS_PER_SPP_UNIT
        self.running = False
        self._tracker.reset()

    def song_position(self, sixteenths: int) -> None:
        """A Song Position Pointer: where Continue resumes (ignored while running)."""
        if not self.running:
            self._resume = int(sixteenths) * TICKS_PER_SPP_UNIT

    def tick(self, now: float, master_time: float | None = None) -> None:
        """A tick that arrived at ``now``; ``master_time``: its time on the
        master's time line, already corrected by the caller (default: ``now``)."""
        # A stopped master often keeps sending ticks: they teach the tempo,
        # and their count is forgotten (Continue resumes from the song position).
        if master_time is None:
            master_time = now
        self._lag = now - master_time
        self._tracker.observe(master_time)

    def beat_at(self, time: float) -> float | None:
        """Beat position at ``time``; None before the first tick (or while stopped)."""
        if not self.running or not self._tracker.locked:
            return None
        return (self._origin + self._tracker.tick_at(time - self._lag)) / TICKS_PER_BEAT

    def time_at(self, beat: float) -> float | None:
        """When ``beat`` will come; None when unknown or more than a beat past the last tick.

        The horizon keeps a master that vanished without a Stop from
        leaving Cadenza playing alone at its last tempo: nothing is
        planned more than a beat beyond what the master has confirmed.
        """
        tracker = self._tracker
        if not self.running or not tracker.locked:
            return None
        tick = beat * TICKS_PER_BEAT - self._origin
        if tick > tracker.count + TICKS_PER_BEAT:
            return None
        return tracker.time_of(tick) + self._lag
