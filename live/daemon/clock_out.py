"""``--clock-out``: Cadenza as the clock master, its MIDI clock planned a little ahead.

The worker hands the scheduler ``CLOCK_PLAN`` seconds of ticks at a time,
each at its exact time on the engine's internal clock: the grid is computed
from the start, not accumulated interval by interval.
"""

from __future__ import annotations

import logging

import mido

from cadenza.live.engine.clock import TICKS_PER_BEAT, InternalClock, MidiClockFollower
from cadenza.live.engine.events import Event

log = logging.getLogger(__name__)

CLOCK_PLAN = 0.1  # seconds of outgoing MIDI clock handed to the scheduler at a time
CLOCK_CATCH_UP = 0.5  # seconds: clock ticks later than this are skipped, not sent


class ClockOut:
    """The outgoing clock's place: the next tick to plan and how far it is planned."""

    def __init__(self) -> None:
        self.next_tick = 0  # the next tick number to schedule
        self.until = 0.0  # ticks are planned up to this time

    @property
    def next_plan(self) -> float:
        """When to plan again: halfway through what is planned."""
        return self.until - CLOCK_PLAN / 2

    def plan(self, clock: InternalClock | MidiClockFollower, now: float) -> list[Event]:
        """The ticks of the next ``CLOCK_PLAN`` seconds after ``now``."""
        until = now + CLOCK_PLAN
        ticks = []
        while True:
            at = clock.time_at(self.next_tick / TICKS_PER_BEAT)
            if at is None or at > until:
                break
            if at < now - CLOCK_CATCH_UP:
                # Far behind (a clock reset, a long stall): resume on the grid
                # rather than send a burst a listener could not follow.
                skipped = int((now - at) * TICKS_PER_BEAT * clock.bpm / 60.0)
                log.warning("clock out: %d ticks behind after a stall; skipping them", skipped)
                self.next_tick += max(1, skipped)
                continue
            # A late tick is still sent: a device that counts ticks would
            # otherwise stay a tick behind for good.
            ticks.append(Event(at, mido.Message("clock")))
            self.next_tick += 1
        self.until = until
        return ticks
