"""Every mode lands on the grid, at tempos from 40 to 240 BPM, internal or MIDI clock."""

from __future__ import annotations

import math
import random

import mido
import pytest

from cadenza.config import LiveConfig
from cadenza.live.engine.clock import grid_beats
from cadenza.live.engine.engine import Engine
from cadenza.live.offline.simulate import drive
from cadenza.tokens import midi_to_name
from testing.fake_predictor import FakePredictor

VOCAB = [midi_to_name(m) for m in range(48, 84)]
TEMPOS = [40.0, 97.0, 120.0, 240.0]
GRIDS = ["1/4", "1/8t", "1/16"]
START = 3.25  # the caller's clock does not start at zero


def performance(bpm: float, start: float = START):
    """Four notes on and off the beat (beats 0.1, 0.6, 1.1, 1.6, each 0.4 beats long)."""
    beat = 60.0 / bpm
    timed = []
    for i, note in enumerate([60, 62, 64, 65]):
        onset = start + (0.1 + 0.5 * i) * beat
        timed.append((onset, mido.Message("note_on", note=note, velocity=80)))
        timed.append((onset + 0.4 * beat, mido.Message("note_off", note=note)))
    return timed


def run(engine, timed, end=None):
    ons, offs = [], []
    for _, _, events in drive(engine, timed, end=end):
        for e in events:
            (ons if e.message.type == "note_on" else offs).append(e.time)
    return ons, offs


def assert_on_grid(times, start, bpm, step):
    step_seconds = step * 60.0 / bpm
    for t in times:
        k = (t - start) / step_seconds
        assert abs(k - round(k)) < 1e-6, f"{t} is not on the grid ({k} steps)"


@pytest.mark.parametrize("bpm", TEMPOS)
@pytest.mark.parametrize("grid", GRIDS)
def test_call_response_on_the_grid(bpm, grid):
    engine = Engine(FakePredictor(VOCAB), LiveConfig(bpm=bpm, grid=grid, pause_beats=1.5, gate=0.5),
                    start_time=START)
    ons, offs = run(engine, performance(bpm))
    step = grid_beats(grid)
    beat = 60.0 / bpm
    assert len(ons) == 4
    assert_on_grid(ons, START, bpm, step)
    # the last release is at beat 2.0; the answer starts on the first step at or after 3.5
    first = math.ceil(3.5 / step - 1e-9) * step
    assert ons[0] == pytest.approx(START + first * beat)
    assert [b - a for a, b in zip(ons, ons[1:], strict=False)] == pytest.approx([step * beat] * 3)
    assert sorted(offs) == pytest.approx([t + 0.5 * step * beat for t in ons])


@pytest.mark.parametrize("bpm", TEMPOS)
@pytest.mark.parametrize("grid", GRIDS)
def test_accompany_on_the_grid(bpm, grid):
    engine = Engine(FakePredictor(VOCAB), LiveConfig(mode="accompany", bpm=bpm, grid=grid,
                                                    pause_beats=1.0), start_time=START)
    ons, _ = run(engine, performance(bpm))
    step = grid_beats(grid)
    assert_on_grid(ons, START, bpm, step)
    # from the first step after the first onset (beat 0.1) while beat < 2.0 + 1.0
    expected = [k * step for k in range(1, 100) if k * step < 3.0 - 1e-9]
    assert ons == pytest.approx([START + b * 60.0 / bpm for b in expected])


@pytest.mark.parametrize("bpm", TEMPOS)
@pytest.mark.parametrize("grid", GRIDS)
def test_continue_on_the_grid(bpm, grid):
    engine = Engine(FakePredictor(VOCAB), LiveConfig(mode="continue", bpm=bpm, grid=grid),
                    start_time=START)
    end = START + 4 * 60.0 / bpm
    ons, _ = run(engine, [], end=end)
    step = grid_beats(grid)
    assert_on_grid(ons, START, bpm, step)
    assert len(ons) == round(4 / step) + 1  # beats 0..4 inclusive


def clock_messages(bpm, beats, *, start, jitter=0.0, seed=0):
    """Start, then 24 ticks per beat from ``start`` (jittered), as a master sends them."""
    rng = random.Random(seed)
    period = 60.0 / (bpm * 24)
    timed = [(start - 0.005, mido.Message("start"))]  # before the first (jittered) tick
    for k in range(int(beats * 24)):
        timed.append((start + k * period + rng.uniform(-jitter, jitter), mido.Message("clock")))
    timed.sort(key=lambda m: m[0])
    return timed


@pytest.mark.parametrize("bpm", [40.0, 120.0, 240.0])
@pytest.mark.parametrize("jitter", [0.0, 0.002])
def test_continue_follows_a_midi_clock(bpm, jitter):
    """The notes land on the master's grid: exactly when steady, within 1.5 ms at +-2 ms jitter."""
    settings = LiveConfig(mode="continue", clock="midi", grid="1/8", bpm=100.0)
    engine = Engine(FakePredictor(VOCAB), settings, start_time=0.0)
    timed = clock_messages(bpm, 16, start=1.0, jitter=jitter, seed=3)
    ons, offs = run(engine, timed, end=1.0 + 15 * 60.0 / bpm)
    beat = 60.0 / bpm
    assert len(ons) >= 28
    settled = [t for t in ons if t >= 1.0 + 2 * beat]  # two beats for the fit to settle
    errors = [abs((t - 1.0) / (0.5 * beat) - round((t - 1.0) / (0.5 * beat))) * 0.5 * beat
              for t in settled]
    assert max(errors) < (1e-6 if jitter == 0 else 0.0015)
    assert engine.bpm == pytest.approx(bpm, rel=0.01)


def test_midi_clock_stop_releases_everything_and_silences_the_engine():
    settings = LiveConfig(mode="continue", clock="midi", grid="1/8", gate=1.0)
    engine = Engine(FakePredictor(VOCAB), settings)
    timed = clock_messages(120.0, 2, start=0.0)
    run(engine, timed, end=0.9)
    assert engine.sounding
    out = engine.on_message(mido.Message("stop"), 1.0)
    assert [e.message.type for e in out] == ["note_off"] * len(out) and out
    assert engine.sounding == frozenset() and engine.next_deadline() is None
    engine.on_message(mido.Message("clock"), 1.02)
    assert engine.next_deadline() is None  # a stopped master's ticks play nothing


def test_midi_clock_continue_resumes_from_the_song_position():
    settings = LiveConfig(mode="continue", clock="midi", grid="1/4")
    engine = Engine(FakePredictor(VOCAB), settings)
    engine.on_message(mido.Message("songpos", pos=6), 0.0)  # sixteenth 6 = beat 1.5
    engine.on_message(mido.Message("continue"), 0.0)
    period = 60.0 / (120.0 * 24)
    ons = []
    for k in range(48):
        now = 0.01 + k * period
        engine.on_message(mido.Message("clock"), now)
        deadline = engine.next_deadline()
        if deadline is not None and deadline <= now:
            ons += [e.time for e in engine.advance(now) if e.message.type == "note_on"]
    # beat 2 (the first quarter line after 1.5) is 12 ticks after the first tick
    assert ons[0] == pytest.approx(0.01 + 12 * period, abs=1e-6)


def test_internal_clock_ignores_a_masters_clock():
    engine = Engine(FakePredictor(VOCAB), LiveConfig(mode="continue", bpm=120.0))
    for message in ("start", "clock", "stop"):
        assert engine.on_message(mido.Message(message), 0.0) == []
    assert engine.bpm == 120.0


def test_a_master_that_vanishes_without_stop_is_not_outplayed_for_long():
    settings = LiveConfig(mode="continue", clock="midi", grid="1/8")
    engine = Engine(FakePredictor(VOCAB), settings)
    ons, _ = run(engine, clock_messages(120.0, 4, start=0.0))  # ticks for beats 0..4, then nothing
    # nothing is planned more than a beat past the last tick (at 2 s - one tick)
    assert ons and max(ons) <= 2.0 + 0.5 and engine.next_deadline() is None


@pytest.mark.parametrize("bpm", TEMPOS)
@pytest.mark.parametrize("grid", GRIDS)
def test_answer_stops_within_one_grid_step_when_the_performer_returns(bpm, grid):
    engine = Engine(FakePredictor(VOCAB), LiveConfig(bpm=bpm, grid=grid, pause_beats=1.0,
                                                    answer_bars=8, gate=1.0), start_time=START)
    beat = 60.0 / bpm
    back = START + 6.37 * beat  # mid-answer (it starts at beat 3), off the grid
    timed = performance(bpm) + [(back, mido.Message("note_on", note=72, velocity=90))]
    events = []
    for _, _, out in drive(engine, sorted(timed, key=lambda m: m[0]), end=back + 8 * beat):
        events.extend(out)
    step_seconds = grid_beats(grid) * beat
    ons = [e.time for e in events if e.message.type == "note_on"]
    assert any(t < back for t in ons)
    assert not [t for t in ons if t > back + engine.lookahead]  # the key is still held
    assert max(e.time for e in events if e.message.type == "note_off") <= back + step_seconds + 1e-9
    assert engine.sounding == frozenset()


def test_every_stop_is_counted_and_nothing_else_is():
    settings = LiveConfig(mode="continue", clock="midi", grid="1/8")
    engine = Engine(FakePredictor(VOCAB), settings)
    run(engine, clock_messages(120.0, 2, start=0.0), end=0.9)
    stops = engine.stops
    engine.on_message(mido.Message("note_on", note=60, velocity=80), 0.95)
    engine.on_message(mido.Message("note_off", note=60), 0.97)
    assert engine.stops == stops
    engine.on_message(mido.Message("stop"), 1.0)
    assert engine.stops == stops + 1
    # A stop with nothing sounding returns no events, and is still a stop.
    assert engine.on_message(mido.Message("start"), 1.1) == [] and engine.stops == stops + 2


def test_a_ticks_time_on_the_masters_line_places_the_grid_on_the_callers():
    # The master's time line runs 30 ms behind the caller's (JACK's frame
    # clock after an xrun): the grid comes back on the caller's clock.
    lag = 0.03
    corrected = Engine(FakePredictor(VOCAB), LiveConfig(mode="continue", clock="midi"))
    plain = Engine(FakePredictor(VOCAB), LiveConfig(mode="continue", clock="midi"))
    for engine in (corrected, plain):
        engine.on_message(mido.Message("start"), 0.0)
    period = 60.0 / (120.0 * 24)
    for k in range(48):
        corrected.clock_tick(k * period + lag, k * period)
        plain.clock_tick(k * period)
    assert corrected.clock.time_at(2.5) == pytest.approx(plain.clock.time_at(2.5) + lag, abs=1e-9)
