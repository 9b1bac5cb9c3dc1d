"""MIDI clock followers against each other, on the same synthetic tick streams.

Each stream is a master's true tick times and the times a follower sees
them, through a JACK-like transport: a tick is read at the start of the JACK
period it was sent in (64 frames at 48 kHz), and an answer sent at time t
goes out at the start of the next period.  The streams: a
steady master; one losing 1-3 ticks now and then; one whose ticks stall and
arrive bunched (or are lost) in bursts; a master whose every interval
jitters by up to 5 % and accumulates (jack_midi_clock -J 5: the tempo
wanders); a ritardando and accelerando (120 -> 80 -> 120 BPM over four bars
each); a sudden tempo step.  Every stream is seeded: the figures repeat.

For each follower and stream: p50/p99/max of |answer onset - master's tick|
for the 1/8 lines, as the engine plays them (each note's time taken a
lookahead before it is due, from what the follower knew then), and for the
tempo step, the ticks until the onsets stay within 1 ms.

    python scripts/bench_clock.py                 # every follower, every stream
    python scripts/bench_clock.py --follower kalman --stream bursts --seeds 5
"""

from __future__ import annotations

import argparse
import math
import random
import sys
from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from cadenza.live.engine.clock import TICKS_PER_BEAT, MidiClockFollower

JACK_PERIOD = 64 / 48000
LOOKAHEAD = 0.02  # the engine's: a note's time is taken this long before it is due
STEP_TICKS = 12  # 1/8 notes
DURATION_BEATS = 96


@dataclass
class Stream:
    """A master's tick times (true) and what reaches the follower (arrivals, in order)."""

    name: str
    true: list[float]
    arrivals: list[float]
    settle_from: int = 48  # ticks before onsets are judged (lock-in)
    step_at: int | None = None  # tick of a tempo step (for ticks-to-settle)


# -- streams ---------------------------------------------------------------


def _ticks(periods: Sequence[float], start: float = 0.5) -> list[float]:
    times = [start]
    for p in periods[:-1]:
        times.append(times[-1] + p)
    return times


def _jack(times: Sequence[float], rng: random.Random) -> list[float]:
    # A tick sent at frame offset o of a period is read in the same process
    # cycle, which starts at the period's first frame: it arrives up to a
    # period early, plus a little scheduling noise (tens of microseconds on
    # a real-time server).
    return [math.floor(t / JACK_PERIOD) * JACK_PERIOD + rng.uniform(0, 5e-5) for t in times]


def steady(seed: int, bpm: float = 97.0) -> Stream:
    rng = random.Random(seed)
    period = 60.0 / (bpm * TICKS_PER_BEAT)
    true = _ticks([period] * (DURATION_BEATS * TICKS_PER_BEAT), start=0.5 + rng.random() * 0.01)
    return Stream("steady", true, _jack(true, rng))


def drops(seed: int) -> Stream:
    """Steady, with 1, 2 or 3 consecutive ticks lost about once a beat."""
    stream = steady(seed)
    rng = random.Random(seed + 1000)
    kept, k = [], 0
    while k < len(stream.arrivals):
        if k > 48 and rng.random() < 1 / 24:
            k += rng.randint(1, 3)
            continue
        kept.append(stream.arrivals[k])
        k += 1
    return Stream("drops", stream.true, kept)


def bursts(seed: int) -> Stream:
    """Stalls of 5-60 ms about twice a beat: the ticks in a stall are lost or
    arrive bunched at its end, and a few arrive late by up to one period."""
    stream = steady(seed)
    rng = random.Random(seed + 2000)
    arrivals = list(stream.arrivals)
    out: list[float] = []
    k = 0
    stall_until = -1.0
    lose = False
    for k, at in enumerate(arrivals):
        if at > stall_until and k > 48 and rng.random() < 1 / 12:
            stall_until = at + rng.uniform(0.005, 0.06)
            lose = rng.random() < 0.5
        if at <= stall_until:
            if lose and rng.random() < 0.7:
                continue
            out.append(math.ceil(stall_until / JACK_PERIOD) * JACK_PERIOD)
        elif rng.random() < 0.05:
            out.append(at + JACK_PERIOD)  # one period late
        else:
            out.append(at)
    out.sort()
    return Stream("bursts", stream.true, out)


def drifting(seed: int, bpm: float = 97.0, jitter: float = 0.05) -> Stream:
    """Each interval jittered by up to ``jitter`` (uniform), accumulating."""
    rng = random.Random(seed)
    period = 60.0 / (bpm * TICKS_PER_BEAT)
    periods = [period * (1 + rng.uniform(-jitter, jitter)) for _ in range(DURATION_BEATS * 24)]
    true = _ticks(periods)
    return Stream("drifting", true, _jack(true, rng))


def ramp(seed: int) -> Stream:
    """120 BPM for 8 beats, down to 80 over 16 (a linear ritardando), 8 at 80,
    back up to 120 over 16, then 120 again."""
    rng = random.Random(seed)
    bpms: list[float] = []
    for beat in range(DURATION_BEATS):
        for t in range(TICKS_PER_BEAT):
            b = beat + t / TICKS_PER_BEAT
            if b < 8:
                bpm = 120.0
            elif b < 24:
                bpm = 120.0 - 40.0 * (b - 8) / 16
            elif b < 32:
                bpm = 80.0
            elif b < 48:
                bpm = 80.0 + 40.0 * (b - 32) / 16
            else:
                bpm = 120.0
            bpms.append(bpm)
    true = _ticks([60.0 / (b * TICKS_PER_BEAT) for b in bpms])
    return Stream("ramp", true, _jack(true, rng))


def step(seed: int) -> Stream:
    """120 BPM, then at once 90 BPM (a DAW's tempo change at a bar line)."""
    rng = random.Random(seed)
    at = 16 * TICKS_PER_BEAT
    periods = [60.0 / (120.0 * 24)] * at + [60.0 / (90.0 * 24)] * (DURATION_BEATS * 24 - at)
    true = _ticks(periods)
    return Stream("step", true, _jack(true, rng), step_at=at)


STREAMS: dict[str, Callable[[int], Stream]] = {
    "steady": steady, "drops": drops, "bursts": bursts, "drifting": drifting,
    "ramp": ramp, "step": step,
}


# -- followers (the candidates) --------------------------------------------


class LeastSquares:
    """Cadenza's follower before the tracker: counts ticks, a line through the last 96."""

    def __init__(self, bpm: float, window: int = 96) -> None:
        self.period = 60.0 / (bpm * TICKS_PER_BEAT)
        self.ticks: deque[tuple[int, float]] = deque(maxlen=window)
        self.count = 0
        self.last: float | None = None
        self.line: tuple[float, float, float] | None = None

    def start(self, now: float) -> None:
        self.count = 0
        self.ticks.clear()

    def tick(self, now: float) -> None:
        if self.last is not None and now - self.last > 4 * self.period:
            self.ticks.clear()
        self.last = now
        self.ticks.append((self.count, now))
        self.count += 1
        n = len(self.ticks)
        mean_t = sum(t for _, t in self.ticks) / n
        mean_k = sum(k for k, _ in self.ticks) / n
        if n >= 12:
            var = sum((t - mean_t) ** 2 for _, t in self.ticks)
            cov = sum((t - mean_t) * (k - mean_k) for k, t in self.ticks)
            if var > 0 and cov > 0:
                self.period = var / cov
        self.line = (mean_t, mean_k, 1.0 / self.period)

    def time_at(self, beat: float) -> float | None:
        if self.line is None:
            return None
        t, k, rate = self.line
        return t + (beat * TICKS_PER_BEAT - k) / rate


class CountingDll:
    """The second-order DLL of Ardour and JACK (Adriaensen 2005), counting ticks."""

    def __init__(self, bpm: float, bandwidth: float = 1.0) -> None:
        self.period = 60.0 / (bpm * TICKS_PER_BEAT)
        self.bandwidth = bandwidth
        self.count = -1
        self.next: float | None = None
        self.first: float | None = None

    def start(self, now: float) -> None:
        self.count = -1
        self.next = self.first = None

    def tick(self, now: float) -> None:
        self.count += 1
        if self.first is None:
            self.first = now
            return
        if self.next is None:  # from the first two ticks
            self.period = now - self.first
            self.next = now + self.period
            return
        w = 2 * math.pi * self.bandwidth * self.period
        error = now - self.next
        self.next += math.sqrt(2) * w * error + self.period
        self.period += w * w * error

    def time_at(self, beat: float) -> float | None:
        if self.next is None:
            return None
        return self.next + (beat * TICKS_PER_BEAT - self.count - 1) * self.period


class TimedDll(CountingDll):
    """The same DLL, counting ticks by time: a gap near n intervals is n ticks,
    a tick nearest to one already counted is a late one from a bunch, and an
    error beyond a fifth of an interval is clipped (one outlier does not pull)."""

    def tick(self, now: float) -> None:
        if self.next is None:
            super().tick(now)
            return
        steps = round((now - (self.next - self.period)) / self.period)
        if steps <= 0:
            return
        for _ in range(steps - 1):  # lost ticks: run the loop on without them
            self.next += self.period
        self.count += steps
        w = 2 * math.pi * self.bandwidth * self.period
        error = max(-0.2 * self.period, min(0.2 * self.period, now - self.next))
        self.next += math.sqrt(2) * w * error + self.period
        self.period += w * w * error


class Tracker:
    """Cadenza's follower (MidiClockFollower with its TickTracker)."""

    def __init__(self, bpm: float) -> None:
        self.follower = MidiClockFollower(bpm)

    def start(self, now: float) -> None:
        self.follower.start(now)

    def tick(self, now: float) -> None:
        self.follower.tick(now)

    def time_at(self, beat: float) -> float | None:
        return self.follower.time_at(beat)


FOLLOWERS: dict[str, Callable[[float], object]] = {
    "least-squares": LeastSquares,
    "dll-1/8Hz": lambda bpm: CountingDll(bpm, 0.125),
    "dll-2Hz": lambda bpm: CountingDll(bpm, 2.0),
    "timed-dll-2Hz": lambda bpm: TimedDll(bpm, 2.0),
    "kalman": Tracker,
}


# -- the judge -------------------------------------------------------------


def onsets(follower, stream: Stream) -> list[tuple[int, float]]:
    """(tick number, onset as heard) of each 1/8 line, as the engine would play it.

    A line's time is taken at the last arrival before it is due less the
    lookahead; the note goes out at the start of the JACK period after that.
    """
    follower.start(stream.arrivals[0] - 0.001)
    out = []
    line = 0
    arrivals = stream.arrivals
    for i, at in enumerate(arrivals):
        follower.tick(at)
        following = arrivals[i + 1] if i + 1 < len(arrivals) else math.inf
        while True:
            due = follower.time_at(line * STEP_TICKS / TICKS_PER_BEAT)
            if due is None or line * STEP_TICKS >= len(stream.true):
                break
            if due - LOOKAHEAD >= following:
                break  # the next arrival comes first: it may move this line
            if due >= at - LOOKAHEAD:  # a line already past is not played
                out.append((line * STEP_TICKS, math.ceil(due / JACK_PERIOD) * JACK_PERIOD))
            line += 1
    return out


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))] if ordered else math.nan


def judge(follower_factory, stream: Stream) -> dict[str, float]:
    played = onsets(follower_factory(100.0), stream)
    errors = [abs(at - stream.true[k]) for k, at in played if k >= stream.settle_from]
    result = {"p50": percentile(errors, 0.5), "p99": percentile(errors, 0.99),
              "max": max(errors, default=math.nan), "notes": len(errors)}
    if stream.step_at is not None:
        late = [k for k, at in played if k >= stream.step_at and abs(at - stream.true[k]) > 0.001]
        result["settle"] = (max(late) - stream.step_at) if late else 0
    return result


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--follower", action="append", choices=list(FOLLOWERS))
    parser.add_argument("--stream", action="append", choices=list(STREAMS))
    parser.add_argument("--seeds", type=int, default=3)
    args = parser.parse_args(argv)
    followers = args.follower or list(FOLLOWERS)
    streams = args.stream or list(STREAMS)
    print(f"{'stream':<9} {'follower':<14} {'p50 ms':>7} {'p99 ms':>7} {'max ms':>7} {'settle':>7}")
    for name in streams:
        for follower in followers:
            rows = [judge(FOLLOWERS[follower], STREAMS[name](seed)) for seed in range(args.seeds)]
            p50 = max(r["p50"] for r in rows) * 1e3
            p99 = max(r["p99"] for r in rows) * 1e3
            worst = max(r["max"] for r in rows) * 1e3
            settle = max(r.get("settle", 0) for r in rows)
            settle_text = f"{settle:>7}" if name == "step" else f"{'':>7}"
            print(f"{name:<9} {follower:<14} {p50:7.2f} {p99:7.2f} {worst:7.2f} {settle_text}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
