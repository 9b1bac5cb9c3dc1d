"""Where a master's clock ticks fall: a Kalman tracker that counts ticks by time.

A MIDI clock master sends 24 ticks a beat, and JACK (or any MIDI transport
under load) loses some, delivers others late, and now and then hands over
several at once.  A follower that counts ticks moves its grid by 1/24 beat
for every tick lost and every extra one it thinks it heard.  Hardware slaves
count by time instead, and so does this tracker: each arrival is placed on
the tick nearest to where the filtered grid puts it, so a gap of about two
tick intervals is one lost tick, and a tick that lands on a tick already
placed is a late one from a bunch, not a new tick.

The grid itself (the time of the last placed tick, and the tick interval) is
a two-state Kalman filter.  Its noise model is learnt from the ticks:

- a master whose every interval wanders (a human-driven or jittering clock:
  the phase is a random walk) shows intervals that are uncorrelated;
- a steady master seen through a transport that rounds arrival times (JACK
  moves MIDI once a period) shows intervals that are anti-correlated: one
  late arrival makes one long interval and one short one.

The variance and lag-1 covariance of the intervals separate the two
(var = q + 2r, cov = -r), so the filter leans on the latest tick when the
master wanders and averages many when it is steady.  A small allowance for
tempo change lets it follow a ramp without re-seeding; a tempo step shows up
as a run of regular intervals that disagree with the filter, and re-seeds
it from those arrivals, counted one tick each.

Nothing here knows MIDI or reads a clock: times are passed in (seconds).
"""

from __future__ import annotations

import math
from collections import deque

# A tick arriving within this fraction of an interval of the last raw
# arrival belongs to a bunch (delivered together after a stall).
BUNCH_FRACTION = 0.25
BUNCH_SECONDS = 0.003  # the same, while the interval is still a guess
ACQUIRE_TICKS = 8  # after a reset, the first arrivals are counted by their own gaps (acquisition_steps)
MAX_LOST = 8  # a gap of more than this many lost ticks is a master that paused
STOPPED_SECONDS = 0.25  # Ardour's rule: this long without a tick, the master is stopped
# The filter allows the tempo to change this much (relative) per tick: enough
# for a DAW's ritardando (120 -> 80 BPM over four bars is 0.1 % a tick).
TEMPO_WANDER = 2e-3
BIAS_MEMORY = 16  # innovations in the running mean that tells a lagging filter
BIAS_SIGMAS = 2.0  # ... and how far from 0 (in its own standard errors) that mean must lean
WANDER_RISE, WANDER_FALL, WANDER_FLOOR = 2.0, 0.98, 0.05
FIRST_NOISE = 5e-4  # seconds: the arrival noise assumed until it is measured
MIN_NOISE = 1e-4  # seconds: no transport delivers ticks more exactly than this
NOISE_MEMORY = 128  # intervals in the running noise estimate
WANDER_DOUBT = 0.25  # its uncertainty, as a fraction of the interval variance
OUTLIER_SIGMAS = 3.0  # innovations beyond this are clipped (a stall, not the master)
OUTLIER_FRACTION = 0.05  # ... and never clipped closer than this fraction of an interval
GAP_DOUBT = 0.25  # the arrival noise of a tick after a gap, as a fraction of an interval
RESEED_RUN = 6  # this many regular intervals that disagree with the filter re-seed it
RESEED_SPREAD = 0.25  # "regular": each within this fraction of their median
RESEED_DISAGREE = 0.08  # "disagree": their median this far (relative) from the filter's
RESEED_FIT = 4  # ... from a line through the latest this many of them
RESEED_OBVIOUS = 0.3  # ... or this far, when the errors need not agree


def memory_gains(window: int) -> tuple[float, float]:
    """Phase and interval gains of a least-squares line through ``window`` points.

    These are the floors under the Kalman gains: however steady the master,
    the tracker forgets a tick after about ``window`` more.
    """
    n = max(2, int(window))
    return 2.0 * (2 * n - 1) / (n * (n + 1)), 6.0 / (n * (n + 1))


def acquisition_steps(gaps: list[float]) -> list[int]:
    """How many ticks each gap between a master's first arrivals holds, by the gaps alone.

    A gap is never shorter than one interval (bunches are left out before),
    and a lost tick makes it whole intervals longer, so most gaps are one
    interval and the lower median of them is one (of two gaps, the shorter);
    each gap holds about so many of it.  A jittering master or a transport
    that rounds to its period leaves a one-interval gap under 1.5 of it.
    """
    unit = sorted(gaps)[(len(gaps) - 1) // 2]
    return [max(1, round(gap / unit)) for gap in gaps]


class TickTracker:
    """The tick grid of one master: ``observe`` each arrival, ask ``time_of``.

    Ticks are numbered from 0 (the first arrival after ``reset``);
    ``observe`` returns how many ticks an arrival moved the count on: 1
    normally, 0 for a late tick of a bunch, 1 + n after n lost ticks.
    """

    def __init__(self, period: float, *, window: int = 96) -> None:
        if period <= 0:
            raise ValueError(f"tick interval must be positive, got {period}")
        self.period = float(period)  # seconds per tick
        self._floor = memory_gains(window)
        self._p_period = (0.1 * self.period) ** 2  # how unsure the interval is
        self._noise = _IntervalNoise()
        self._clean = False  # the last arrival was an ordinary tick (its interval is noise data)
        # How much tempo change the filter allows, relative to TEMPO_WANDER:
        # low while the master is steady (so jitter averages out), raised
        # while the errors lean one way (a ramp the filter lags).
        self._wander_scale = 1.0
        self._bias = 0.0
        self._lean = 0
        # Counters for stats and tests.
        self.lost = 0
        self.bunched = 0
        self.clipped = 0
        self.reseeds = 0
        self.reset()

    # -- state ------------------------------------------------------------

    def reset(self) -> None:
        """Forget the phase (a Start, Continue or a paused master); keep the interval."""
        self.count = -1  # number of the last placed tick; -1 before the first
        self.phase = 0.0  # filtered time of tick ``count``
        self._p = [0.0, 0.0, 0.0]  # covariance: phase, phase x period, period
        self.last_arrival: float | None = None
        self._acquired = 0
        self._recent: deque[tuple[float, int]] = deque(maxlen=RESEED_RUN + 1)
        self._noise.break_run()

    @property
    def locked(self) -> bool:
        return self.count >= 0

    def time_of(self, tick: float) -> float:
        """When tick number ``tick`` (fractional ticks allowed) falls."""
        return self.phase + (tick - self.count) * self.period

    def tick_at(self, time: float) -> float:
        """The (fractional) tick number at ``time``."""
        return self.count + (time - self.phase) / self.period

    # -- input ------------------------------------------------------------

    def observe(self, now: float) -> int:
        """One tick arrived at ``now``; returns how far it moved the count."""
        previous = self.last_arrival
        self.last_arrival = now
        if self.count < 0:
            self._anchor(now, 0)
            return 1
        raw = now - previous if previous is not None else math.inf
        if now - self.phase > max(STOPPED_SECONDS, (MAX_LOST + 1.5) * self.period):
            # The master paused without a Stop: its ticks resume one after the last.
            self._anchor(now, self.count + 1)
            self._noise.break_run()
            return 1
        if self._acquired < ACQUIRE_TICKS:
            return self._acquire(now, raw)
        steps = round((now - self.phase) / self.period)
        if steps > 1 and self._lean > 0:
            # The filter lags (the master is slowing): its own lag is no
            # evidence of a lost tick, only the interval since the last is.
            steps = max(1, min(steps, round(raw / self.period)))
        if steps <= 0:
            # Nearest to a tick already placed: a late one of a bunch.
            self.bunched += 1
            self._clean = False
            self._noise.break_run()
            self._remember(now, raw)  # unless bunched, it may be a faster tempo
            self._maybe_reseed()
            return 0
        self.lost += steps - 1
        self._update(now, steps, raw)
        self._remember(now, raw)
        self._maybe_reseed()
        return steps

    def _anchor(self, now: float, count: int) -> None:
        self.count = count
        self.phase = now
        self._p = [self._noise.measurement(), 0.0, self._p_period]
        self._acquired = 1
        self._clean = False
        self._recent.clear()
        self._recent.append((now, count))

    def _acquire(self, now: float, raw: float) -> int:
        # Until a few ticks have come, the interval may be a wrong guess (the
        # configured tempo), so it says nothing about how many ticks a gap
        # holds; the gaps themselves do (acquisition_steps), and are read
        # afresh at each arrival: a master that skipped a tick in its first
        # few (an xrun at Start) must not leave the count one short for good.
        if raw < min(BUNCH_SECONDS, BUNCH_FRACTION * self.period):
            self.bunched += 1
            return 0
        self._acquired += 1
        before = self.count
        times = [t for t, _ in self._recent] + [now]
        number = self._recent[0][1]
        points = [(times[0], number)]
        gaps = [b - a for a, b in zip(times, times[1:], strict=False)]
        for time, steps in zip(times[1:], acquisition_steps(gaps), strict=True):
            number += steps
            points.append((time, number))
        self._recent.clear()
        self._recent.extend(points)
        self._fit(points, keep_period=len(points) < 3)
        moved = self.count - before
        self.lost += max(0, moved - 1)
        return max(moved, 0)

    def _fit(self, points: list[tuple[float, int]], *, keep_period: bool = False) -> None:
        """Phase and interval from a least-squares line through (time, tick) points."""
        n = len(points)
        mean_t = sum(t for t, _ in points) / n
        mean_k = sum(k for _, k in points) / n
        var_k = sum((k - mean_k) ** 2 for _, k in points)
        if not keep_period and var_k > 0:
            slope = sum((k - mean_k) * (t - mean_t) for t, k in points) / var_k
            if slope > 0:
                self.period = slope
        last = points[-1][1]
        self.count = last
        self.phase = mean_t + (last - mean_k) * self.period
        r = self._noise.measurement()
        # A line through n points: the phase is known to about r/n, the
        # interval to r over the spread of tick numbers.
        self._p = [r * 4.0 / n, 0.0, r * 12.0 / max(var_k, 1.0) + self._p_period * (n < 3)]

    def _update(self, now: float, steps: int, raw: float) -> None:
        q_phase, r = self._noise.wander(), self._noise.measurement()
        q_period = (self._wander_scale * TEMPO_WANDER * self.period) ** 2
        pp, pc, cc = self._p
        for _ in range(steps):  # predict one tick at a time: F = [[1, 1], [0, 1]]
            pp, pc, cc = pp + 2 * pc + cc + q_phase, pc + cc, cc + q_period
        predicted = self.phase + steps * self.period
        error = now - predicted
        if steps > 1:
            # The tick after a gap is the first of a bunch as often as not
            # (held back by the same stall that lost the others): its time
            # says little.
            r += (GAP_DOUBT * self.period) ** 2
        s = pp + r
        gain_phase, gain_period = pp / s, pc / s
        floor_phase, floor_period = self._floor
        gain_phase = max(gain_phase, floor_phase)
        gain_period = max(gain_period, floor_period)
        limit = max(OUTLIER_SIGMAS * math.sqrt(s), OUTLIER_FRACTION * self.period)
        if abs(error) > limit:
            self.clipped += 1
            error = math.copysign(limit, error)
        self._follow_bias(error, s)
        # Consecutive errors beyond a standard deviation, one way (signed count).
        if abs(error) <= math.sqrt(s):
            self._lean = 0
        elif (error > 0) == (self._lean > 0) or self._lean == 0:
            self._lean += 1 if error > 0 else -1
        else:
            self._lean = 1 if error > 0 else -1
        self.phase = predicted + gain_phase * error
        self.period = max(self.period + gain_period * error, 1e-4)
        # Joseph form: right for any gain, not only the optimal one.
        a, b = 1.0 - gain_phase, -gain_period
        pp2 = a * a * pp + gain_phase * gain_phase * r
        pc2 = a * (b * pp + pc) + gain_phase * gain_period * r
        cc2 = b * b * pp + 2 * b * pc + cc + gain_period * gain_period * r
        self._p = [pp2, pc2, cc2]
        self.count += steps
        # Only an interval between two ordinary ticks says anything about noise.
        # (A clipped one still is: the noise estimate is what sets the clip.)
        if steps == 1 and self._clean:
            self._noise.add(raw - self.period)
        else:
            self._noise.break_run()
        self._clean = steps == 1

    def _follow_bias(self, error: float, s: float) -> None:
        # The mean of the last BIAS_MEMORY innovations, in units of its own
        # spread: near 0 for a filter in step, growing while it lags.
        self._bias += (error / math.sqrt(s) - self._bias) / BIAS_MEMORY
        if abs(self._bias) > BIAS_SIGMAS / math.sqrt(BIAS_MEMORY):
            self._wander_scale = min(1.0, self._wander_scale * WANDER_RISE)
        else:
            self._wander_scale = max(WANDER_FLOOR, self._wander_scale * WANDER_FALL)

    def _remember(self, now: float, raw: float) -> None:
        if self._recent and raw >= BUNCH_FRACTION * self.period:
            self._recent.append((now, self.count))

    def _maybe_reseed(self) -> None:
        """A tempo step: regular intervals that the filter keeps disagreeing with."""
        if len(self._recent) <= RESEED_RUN:
            return
        times = [t for t, _ in self._recent]
        intervals = sorted(b - a for a, b in zip(times, times[1:], strict=False))
        median = intervals[len(intervals) // 2]
        disagree = abs(median - self.period) / self.period
        # A modest disagreement must also have pulled every recent error the
        # same way (a jittery master's intervals disagree now and then); one
        # beyond any jitter (a tempo doubled or halved) needs no more.
        if disagree <= RESEED_DISAGREE or (disagree <= RESEED_OBVIOUS and abs(self._lean) < RESEED_RUN):
            return
        if intervals[0] < (1 - RESEED_SPREAD) * median or intervals[-1] > (1 + RESEED_SPREAD) * median:
            return
        # Regular arrivals: one tick each, whatever the old interval made of
        # them; the latest few give the new tempo (the older may be the old one).
        first = self._recent[0][1]
        points = [(t, first + i) for i, t in enumerate(times)]
        self.reseeds += 1
        self._fit(points[-RESEED_FIT:])
        self._wander_scale = 1.0
        self._noise.break_run()
        self._recent.clear()
        self._recent.append(points[-1])


class _IntervalNoise:
    """Running variance and lag-1 covariance of tick intervals about the filter's.

    var = q + 2r and cov = -r for a master whose phase wanders by q per tick,
    seen with independent arrival noise r: both come out of the two moments.
    """

    def __init__(self) -> None:
        self._alpha = 1.0 / NOISE_MEMORY
        self._var = 0.0
        self._cov = 0.0
        self._weight = 0.0  # how much of the running sums is data (bias correction)
        self._cov_weight = 0.0
        self._last: float | None = None

    def add(self, deviation: float) -> None:
        a = self._alpha
        self._var += a * (deviation * deviation - self._var)
        self._weight += a * (1.0 - self._weight)
        if self._last is not None:
            self._cov += a * (deviation * self._last - self._cov)
            self._cov_weight += a * (1.0 - self._cov_weight)
        self._last = deviation

    def break_run(self) -> None:
        """The next interval does not follow this one (a gap, a bunch)."""
        self._last = None

    def _moments(self) -> tuple[float, float] | None:
        if self._weight < 0.05 or self._cov_weight < 0.05:
            return None
        return self._var / self._weight, self._cov / self._cov_weight

    def measurement(self) -> float:
        """Variance of one arrival's own noise (seconds squared)."""
        moments = self._moments()
        r = -moments[1] if moments is not None else FIRST_NOISE * FIRST_NOISE
        return max(r, MIN_NOISE * MIN_NOISE)

    def wander(self) -> float:
        """Variance per tick of the master's own phase wander (seconds squared)."""
        moments = self._moments()
        if moments is None:
            return 0.0
        var, cov = moments
        # var + 2 cov is the wander; a running estimate over NOISE_MEMORY
        # intervals is itself uncertain by about WANDER_DOUBT of var, and a
        # wander that is only estimation noise would make a steady master's
        # grid jittery: take only what stands out.
        return max(var + 2.0 * min(cov, 0.0) - WANDER_DOUBT * var, 0.0)
