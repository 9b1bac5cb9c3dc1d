"""Grid arithmetic, the internal clock and the MIDI clock follower, on explicit time."""

from __future__ import annotations

import random

import pytest

from cadenza.errors import ConfigError
from cadenza.live.engine.clock import (
    TICKS_PER_BEAT,
    InternalClock,
    MidiClockFollower,
    grid_beats,
    snap,
    step_after,
    step_at_or_after,
)


def test_grid_lengths_in_beats():
    assert grid_beats("1/4") == 1.0
    assert grid_beats("1/8") == 0.5
    assert grid_beats("1/16") == 0.25
    assert grid_beats("1/8t") == pytest.approx(1 / 3)
    assert grid_beats("1/4t") * 3 == pytest.approx(2.0)  # three quarter triplets span a half note
    with pytest.raises(ConfigError, match="1/5"):
        grid_beats("1/5")


def test_step_arithmetic_lands_on_triplets_exactly():
    step = grid_beats("1/8t")
    assert step_at_or_after(1.0, step) == pytest.approx(1.0)  # beat 1 is step 3, not step 4
    assert step_after(1.0, step) == pytest.approx(1.0 + step)
    assert step_at_or_after(1.01, step) == pytest.approx(1.0 + step)
    assert step_at_or_after(0.0, 0.5) == 0.0
    assert step_after(0.0, 0.5) == 0.5
    assert snap(0.74, 0.5) == 1 and snap(0.24, 0.5) == 0 and snap(0.25, 0.5) == 1


def test_internal_clock_keeps_position_across_tempo_changes():
    clock = InternalClock(120.0, start_time=10.0)
    assert clock.beat_at(10.0) == 0.0
    assert clock.beat_at(11.0) == pytest.approx(2.0)
    clock.set_bpm(60.0, now=11.0)
    assert clock.beat_at(11.0) == pytest.approx(2.0)
    assert clock.beat_at(12.0) == pytest.approx(3.0)
    assert clock.time_at(4.0) == pytest.approx(13.0)
    assert clock.bpm == 60.0


def _ticks(bpm: float, count: int, start: float, jitter: float = 0.0, seed: int = 0):
    rng = random.Random(seed)
    period = 60.0 / (bpm * TICKS_PER_BEAT)
    return [start + k * period + rng.uniform(-jitter, jitter) for k in range(count)]


@pytest.mark.parametrize("bpm", [40.0, 120.0, 240.0])
def test_follower_steady_master(bpm):
    clock = MidiClockFollower(bpm=100.0)  # a wrong guess: the ticks must correct it
    clock.start(0.0)
    times = _ticks(bpm, 24 * 8, start=0.5)
    for t in times:
        clock.tick(t)
    assert clock.bpm == pytest.approx(bpm, rel=1e-6)
    assert clock.beat_at(times[0]) == pytest.approx(0.0, abs=1e-6)
    # The next beat, predicted from the fit, is exactly where the master will put it.
    assert clock.time_at(8.0) == pytest.approx(0.5 + 8 * 60.0 / bpm, abs=1e-6)


@pytest.mark.parametrize("bpm", [40.0, 120.0, 240.0])
def test_follower_jittered_master_gives_a_steady_grid(bpm):
    """Ticks jittered by +-2 ms: each grid line, predicted when it is at most one
    tick away (as the engine asks, a lookahead before the note), lies within
    1.5 ms of the master's true grid, and within 0.5 ms on average."""
    clock = MidiClockFollower(bpm=bpm)
    clock.start(0.0)
    period = 60.0 / (bpm * TICKS_PER_BEAT)
    times = _ticks(bpm, 24 * 32, start=1.0, jitter=0.002, seed=7)
    beat_seconds = 60.0 / bpm
    errors = []
    for k, t in enumerate(times):
        clock.tick(t)
        if k < 24 * 2:
            continue  # two beats of ticks for the fit to settle
        line = (k // 12 + 1) * 0.5  # the next eighth-note line
        true_time = 1.0 + line * beat_seconds
        if true_time - t <= period + 0.02:
            errors.append(abs(clock.time_at(line) - true_time))
    assert len(errors) > 50
    assert max(errors) < 0.0015
    assert sum(errors) / len(errors) < 0.0005
    assert clock.bpm == pytest.approx(bpm, rel=0.01)


def test_follower_tracks_a_tempo_change():
    clock = MidiClockFollower(bpm=120.0)
    clock.start(0.0)
    times = _ticks(120.0, 48, start=0.0)
    for t in times:
        clock.tick(t)
    period = 60.0 / (90.0 * TICKS_PER_BEAT)
    last = times[-1]
    for k in range(1, 24 * 4 + 1):
        clock.tick(last + k * period)
    assert clock.bpm == pytest.approx(90.0, rel=1e-6)


def test_follower_start_stop_continue_and_song_position():
    clock = MidiClockFollower(bpm=120.0)
    assert clock.beat_at(0.0) is None and not clock.running
    for t in _ticks(120.0, 24, start=0.0):
        clock.tick(t)  # a stopped master that keeps ticking: tempo, no position
    assert clock.beat_at(0.5) is None
    clock.start(1.0)
    assert clock.beat_at(1.0) is None  # no tick since Start yet
    for t in _ticks(120.0, 25, start=1.0):
        clock.tick(t)
    assert clock.beat_at(1.5) == pytest.approx(1.0)
    clock.stop(1.6)
    assert clock.beat_at(1.6) is None
    clock.song_position(16)  # sixteenth 16 = beat 4
    clock.continue_(3.0)
    clock.tick(3.0)
    assert clock.beat_at(3.0) == pytest.approx(4.0)
    clock.song_position(0)  # ignored while running
    clock.tick(3.0 + 60.0 / (120.0 * 24))
    assert clock.beat_at(3.0) == pytest.approx(4.0, abs=1e-6)


def test_follower_restarts_its_fit_after_a_gap():
    clock = MidiClockFollower(bpm=120.0)
    clock.start(0.0)
    times = _ticks(120.0, 48, start=0.0)
    for t in times:
        clock.tick(t)
    clock.tick(times[-1] + 5.0)  # the master went quiet for five seconds
    assert clock.beat_at(times[-1] + 5.0) == pytest.approx(48 / 24)


def test_follower_window_must_hold_two_ticks():
    with pytest.raises(ConfigError):
        MidiClockFollower(window=1)
