"""The noisy-machine failure of issue 13, replayed: JACK stalls are not lost ticks.

On a loaded machine JACK's frame clock falls behind the wall clock at every
xrun, for good (the dummy driver re-anchors its timer; a sound card's driver
restarts).  jack_midi_clock places its ticks at frames, so in wall time the
master pauses at each stall: a tick arrives two intervals after the last
although none was lost.  The follower used to count such a gap as a lost
tick and moved its grid a whole tick off the master's; the daemon now
corrects each tick's time by the lag of JACK's frame clock (``JackLag``)
and the follower tracks the ticks on the master's own time line.

``clock_jack_stalls.json`` is a recorded failing run (every tick Cadenza got,
as it got it, and the frame at which the master sent it); the synthetic
streams add what that run lacked: ticks really lost, and bunches.
"""

from __future__ import annotations

import json
import random
from pathlib import Path

import pytest

from cadenza.live.engine.clock import TICKS_PER_BEAT, MidiClockFollower

RECORDING = Path(__file__).with_name("clock_jack_stalls.json")
SETTLE = 48  # ticks before the grid is judged (two beats, as the JACK test does)


def recorded() -> tuple[list[float], list[float], float, float]:
    """Arrival times (s), master times (s: the start of the period that carried
    each tick, as JackLag reads it), tick interval (s), period (s)."""
    run = json.loads(RECORDING.read_text())
    rate, period = run["rate"], run["period"]
    arrivals = [us * 1e-6 for us in run["arrival_us"]]
    master = [(frame // period) * period / rate for frame in run["frame"]]
    return arrivals, master, 60.0 / (run["bpm"] * TICKS_PER_BEAT), period / rate


def test_the_recording_shows_the_stalls():
    arrivals, master, interval, _ = recorded()
    behind = [(a - m) - (arrivals[0] - master[0]) for a, m in zip(arrivals, master, strict=True)]
    assert behind[-1] > 0.1  # the frame clock lost over 100 ms in the run
    gaps = [b - a for a, b in zip(arrivals, arrivals[1:], strict=False)]
    assert sum(g > 1.6 * interval for g in gaps) >= 2  # gaps that look like lost ticks


def follow(arrivals, lags, bpm=120.0) -> tuple[MidiClockFollower, list[int]]:
    """Feed the ticks after a Start; returns the follower and its count after each."""
    follower = MidiClockFollower(bpm=bpm)
    follower.start(arrivals[0])
    counts = []
    for now, lag in zip(arrivals, lags, strict=True):
        follower.tick(now, now - lag)
        counts.append(follower.tracker.count)
    return follower, counts


def test_by_wall_time_alone_the_stalls_move_the_grid():
    # The failure as it was: without JACK's lag the gaps count as lost ticks.
    arrivals, _, _, _ = recorded()
    follower, counts = follow(arrivals, [0.0] * len(arrivals))
    assert follower.tracker.lost >= 2
    assert counts[-1] >= len(arrivals) - 1 + 2  # ahead of the master by the "lost" ticks


def test_with_jacks_lag_every_tick_keeps_the_masters_number_and_time():
    arrivals, master, interval, period = recorded()
    lags = [a - m for a, m in zip(arrivals, master, strict=True)]
    follower, counts = follow(arrivals, lags)
    tracker = follower.tracker
    assert counts == list(range(len(arrivals)))
    assert tracker.lost == 0 and tracker.bunched == 0
    # On the master's time line, where the master sent its next tick (the
    # master's own ticks wander by a period or so, and JACK hands them over
    # at a period's start): within a period typically, never near a tick off.
    follower, _ = follow(arrivals[:SETTLE], lags[:SETTLE])
    errors = []
    for k in range(SETTLE, len(arrivals) - 1):
        follower.tick(arrivals[k], arrivals[k] - lags[k])
        errors.append(abs(follower.tracker.time_of(k + 1) - master[k + 1]))
    errors.sort()
    assert errors[len(errors) // 2] < period
    assert errors[int(0.99 * len(errors))] < 2 * period
    assert errors[-1] < 0.3 * interval


# -- synthetic: a steady master on a frame clock that stalls, loses and bunches --


PERIOD = 64 / 48000
INTERVAL = 60.0 / (97.0 * TICKS_PER_BEAT)


def jack_stream(seed: int, ticks: int = 1200):
    """(arrival, lag, master tick number, stalled so far) of each tick a client gets.

    The master sends tick k at frame time k * INTERVAL.  Each period is
    processed late by the stalls so far; about one period in 300 stalls
    for 2-30 ms (lag grows for good); the client's callback runs up to 3 ms
    late now and then (arrival late, lag with it: both are read then); now and
    then the client misses a few cycles, and their ticks never reach it
    (lost) or reach it together in the next cycle it runs (bunched).
    """
    rng = random.Random(seed)
    out = []
    stalled = 0.0
    k = 0
    while k < ticks:
        if rng.random() < 0.012:
            stalled += rng.uniform(0.002, 0.030)
        frame_time = k * INTERVAL
        cycle = (frame_time // PERIOD) * PERIOD  # JACK hands it over at its period's start
        roll = rng.random() if k >= TICKS_PER_BEAT else 1.0  # none while it acquires
        if roll < 0.004:  # the client misses two or three cycles' ticks
            k += rng.choice((2, 3))
            continue
        late = rng.uniform(0.0, 0.003) if rng.random() < 0.2 else rng.uniform(0.0, 0.0002)
        if roll < 0.008:  # ... or gets this tick and the next in one later cycle
            cycle2 = ((frame_time + INTERVAL) // PERIOD) * PERIOD
            arrival = cycle2 + stalled + late
            out.append((arrival, arrival - cycle2, k, stalled))
            out.append((arrival + 1e-5, arrival + 1e-5 - cycle2, k + 1, stalled))
            k += 2
            continue
        arrival = cycle + stalled + late
        out.append((arrival, arrival - cycle, k, stalled))
        k += 1
    return out


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_stalls_losses_and_bunches_leave_the_grid_where_the_master_has_it(seed):
    stream = jack_stream(seed)
    follower = MidiClockFollower(bpm=97.0)
    follower.start(stream[0][0])
    errors = []
    for arrival, lag, k, stalled in stream:
        follower.tick(arrival, arrival - lag)
        if k >= SETTLE:
            # The master's next tick on the caller's clock (as of now), and ours.
            nxt = k + 1
            errors.append(abs(follower.time_at(nxt / TICKS_PER_BEAT) - (nxt * INTERVAL + stalled)))
    tracker = follower.tracker
    assert tracker.lost > 0 and tracker.bunched > 0  # the stream did what it says
    assert tracker.count == stream[-1][2]  # every lost and bunched tick counted right
    errors.sort()
    assert errors[int(0.99 * len(errors))] < 3.5e-3, errors[-10:]
    assert errors[-1] < 0.3 * INTERVAL


def test_a_late_callback_does_not_disturb_the_masters_time_line():
    # Ticks delivered up to 9 ms after their period began (the callback
    # waited for the CPU) carry their lag with them: on the master's time
    # line they are on time, and the filter neither clips nor bunches them.
    follower = MidiClockFollower(bpm=97.0)
    follower.start(0.0)
    for k in range(200):
        late = 0.009 if k % 7 == 3 else 0.0
        follower.tick(k * INTERVAL + late, k * INTERVAL)
    tracker = follower.tracker
    assert tracker.count == 199 and tracker.clipped == 0 and tracker.bunched == 0
    assert tracker.time_of(200) == pytest.approx(200 * INTERVAL, abs=1e-5)
