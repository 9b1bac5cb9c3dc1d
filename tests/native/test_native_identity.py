"""The native engine plays what the Python engine plays, event for event.

Each scenario's script runs through ``Engine`` (Python) and ``NativeEngine``
(C++) with the fake predictor (Python's ``FakePredictor`` and its C++ twin);
the traces (every event's time and bytes, every deadline, the window and the
prediction count) must be equal: times as floats, exactly.
"""

from __future__ import annotations

import dataclasses

import mido
import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from cadenza.config import GRIDS, LiveConfig
from tests.support.native_engine_support import (
    VOCAB,
    Step,
    both,
    first_difference,
    note,
    ordered,
    phrase,
    require_native,
    run_script,
)

CALL = [60, 62, 64, 65, 67, 72, 71, 69]


def clock_steps(start: float, end: float, bpm: float, *, seed: int = 0, jitter: float = 0.0,
                drop: float = 0.0, bunch: float = 0.0) -> list[Step]:
    """A master's ticks: Start, then 24 a beat with jitter, lost ticks and bunches."""
    rng = np.random.default_rng(seed)
    period = 60.0 / (bpm * 24)
    steps = [Step(start, mido.Message("start"))]
    t = start + period
    held = []
    while t < end:
        arrival = t + float(rng.normal(0.0, jitter)) if jitter else t
        if rng.random() < drop:
            pass
        elif rng.random() < bunch:
            held.append(arrival)
        else:
            for late in held:
                steps.append(Step(max(arrival, late), mido.Message("clock")))
            held = []
            steps.append(Step(arrival, mido.Message("clock")))
        t += period
    return steps


def as_ticks(steps: list[Step], master_time) -> list[Step]:
    """Clock messages as the daemon hands them over: ``clock_tick`` calls, each
    at ``master_time(k, arrival)`` on the master's time line (None: arrival)."""
    return [Step(s.time, call="tick", master_time=master_time(k, s.time))
            if s.message is not None and s.message.type == "clock" else s
            for k, s in enumerate(steps)]


def cc(time: float, control: int, value: int, channel: int = 0) -> Step:
    return Step(time, mido.Message("control_change", control=control, value=value, channel=channel))


def chord(time: float, pitches, length: float, spread: float = 0.008) -> list[Step]:
    steps: list[Step] = []
    for k, pitch in enumerate(pitches):
        steps += note(time + k * spread, pitch, length - k * spread)
    return steps


def two_calls(start: float = 0.0) -> list[Step]:
    return phrase(start, CALL) + phrase(start + 6.0, [67, 65, 64, 62, 60, 59])


SCENARIOS: dict[str, tuple[LiveConfig, list[Step], float]] = {
    "defaults": (LiveConfig(), two_calls(), 14.0),
    "argmax-loop-guard": (LiveConfig(temperature=0.0, loop_guard=4), two_calls(), 14.0),
    "argmax-no-guard": (LiveConfig(temperature=0.0, loop_guard=0), two_calls(), 14.0),
    "top-k": (LiveConfig(top_k=3), two_calls(), 14.0),
    "top-p": (LiveConfig(top_p=0.6, temperature=0.8), two_calls(), 14.0),
    "temperature-1": (LiveConfig(temperature=1.0), two_calls(), 14.0),
    "key-off": (LiveConfig(key="off"), two_calls(), 14.0),
    "key-auto": (LiveConfig(key="auto"), two_calls(), 14.0),
    "key-named-major": (LiveConfig(key="D major", key_strength=1.0), two_calls(), 14.0),
    "key-named-minor": (LiveConfig(key="F# minor", key_strength=0.5), two_calls(), 14.0),
    "key-call-no-balance": (LiveConfig(key="call", key_balance=0.0), two_calls(), 14.0),
    "key-call-strong-balance": (LiveConfig(key="call", key_balance=10.0, key_strength=1.0), two_calls(), 14.0),
    "register-model": (LiveConfig(register="model"), two_calls(), 14.0),
    "octave-fixed": (LiveConfig(octave=2), two_calls(), 14.0),
    "octave-top": (LiveConfig(octave=8), two_calls(), 14.0),
    "velocity-fixed": (LiveConfig(velocity=100), two_calls(), 14.0),
    "mirror": (LiveConfig(rhythm="mirror"), two_calls(), 14.0),
    "mirror-bars": (LiveConfig(rhythm="mirror", answer_bars=2), two_calls(), 16.0),
    "grid-bars": (LiveConfig(answer_bars=1, max_answer_notes=5), two_calls(), 16.0),
    "accompany": (LiveConfig(mode="accompany"), two_calls(), 14.0),
    "continue": (LiveConfig(mode="continue"), phrase(0.0, CALL), 12.0),
    "continue-late-start": (LiveConfig(mode="continue", grid="1/16t"), phrase(0.0, CALL), 6.0),
    "chords-and-held-bass": (LiveConfig(), ordered(
        note(0.0, 36, 3.0) + chord(0.0, [60, 64, 67], 0.4) + chord(0.5, [62, 65, 69, 72], 0.4)
        + chord(1.0, [61, 66], 0.3) + phrase(1.5, [95, 30, 100])), 10.0),
    "out-of-vocabulary": (LiveConfig(), ordered(
        chord(0.0, [61, 63, 66, 70], 0.3) + chord(0.5, [60, 72, 84], 0.3) + phrase(1.0, [20, 127, 0, 61])
        + chord(2.2, [60, 61, 62, 63, 64, 65], 0.3)), 9.0),
    "interrupted-answer": (LiveConfig(), ordered(
        phrase(0.0, CALL) + phrase(3.3, [70, 72]) + phrase(5.1, [50, 52, 53])), 12.0),
    "chord-window-wide": (LiveConfig(chord_window_ms=120.0), two_calls(), 14.0),
    "chord-window-zero": (LiveConfig(chord_window_ms=0.0), ordered(
        chord(0.0, [60, 64, 67], 0.4, spread=0.0) + phrase(0.5, CALL)), 10.0),
    "slow-short-pause": (LiveConfig(bpm=45.0, pause_beats=0.5, grid="1/4"), two_calls(), 24.0),
    "fast-triplets": (LiveConfig(bpm=300.0, grid="1/8t"), two_calls(), 14.0),
    "stop-and-panic": (LiveConfig(), ordered(
        phrase(0.0, CALL) + [Step(3.2, call="stop")] + phrase(4.0, CALL[:4])
        + [Step(6.2, call="panic")] + phrase(7.0, [60, 64])), 12.0),
    "ccs": (LiveConfig(), ordered(
        phrase(0.0, CALL) + [cc(0.1, 21, 30), cc(0.2, 26, 64), cc(0.3, 25, 100)]
        + [cc(4.0, 22, 64)] + phrase(4.2, [60, 62, 64]) + [cc(6.0, 22, 127)]
        + [cc(8.0, 23, 0), cc(8.5, 23, 127), cc(9.0, 24, 127), cc(9.1, 25, 0)]
        + phrase(9.5, [64, 66]) + [cc(12.0, 22, 0)] + phrase(12.2, [70])), 16.0),
    "all-notes-off-from-keyboard": (LiveConfig(), ordered(
        [Step(0.0, mido.Message("note_on", note=60, velocity=80)),
         Step(0.3, mido.Message("note_on", note=64, velocity=80, channel=2)),
         cc(0.6, 123, 0, channel=2), cc(0.9, 120, 0)] + phrase(3.0, [62, 65])), 9.0),
    "release-performer": (LiveConfig(), ordered(
        [Step(0.0, mido.Message("note_on", note=60, velocity=80)),
         Step(0.2, mido.Message("note_on", note=67, velocity=70, channel=5)),
         Step(0.8, call="release", args={"channel": None})] + phrase(3.0, [62, 65])), 9.0),
    "reload": (LiveConfig(), ordered(
        phrase(0.0, CALL)
        + [Step(2.0, call="reload", args={"settings": LiveConfig(seed=5, temperature=0.9)})]
        + phrase(5.0, CALL[:5])
        + [Step(7.0, call="reload", args={"settings": LiveConfig(mode="continue", bpm=90.0)})]
        + [Step(9.0, call="reload", args={"settings": LiveConfig(mode="continue", bpm=150.0, channel=3)})]
        + [Step(11.0, call="reload", args={"settings": LiveConfig(key="auto", grid="1/16")})]
        + phrase(11.5, [60, 61])), 16.0),
    "prime": (LiveConfig(mode="continue"), [
        Step(0.0, call="prime", args={"tokens": ["C4", "E4", "0.4.7", "G4", 5], "reset": True}),
        Step(0.5, call="prime", args={"tokens": ["A4", "1.5.8"]})], 4.0),
    "midi-clock-steady": (LiveConfig(clock="midi"), ordered(
        clock_steps(0.5, 14.0, 120.0) + phrase(1.0, CALL) + phrase(7.0, [67, 65, 64])), 14.0),
    "midi-clock-jitter-lost-bunched": (LiveConfig(clock="midi"), ordered(
        clock_steps(0.5, 14.0, 100.0, seed=3, jitter=0.0015, drop=0.05, bunch=0.05)
        + phrase(1.0, CALL) + phrase(7.0, [67, 65, 64])), 14.0),
    "midi-clock-tempo-step": (LiveConfig(clock="midi", mode="continue"), ordered(
        clock_steps(0.2, 5.0, 120.0) + [Step(s.time + 5.0, s.message) for s in
                                        clock_steps(0.0, 5.0, 80.0)[1:]]), 10.0),
    "midi-clock-transport": (LiveConfig(clock="midi", clock_window=24), ordered(
        clock_steps(0.0, 3.0, 120.0, seed=1, jitter=0.001) + phrase(0.4, CALL[:4])
        + [Step(3.05, mido.Message("stop")), Step(3.1, mido.Message("songpos", pos=16)),
           Step(3.2, mido.Message("continue"))]
        + [Step(s.time + 3.2, s.message) for s in clock_steps(0.0, 4.0, 120.0)[1:]]
        + phrase(3.6, [60, 62, 64]) + [Step(7.5, mido.Message("stop"))]), 9.0),
    "midi-clock-master-vanishes": (LiveConfig(clock="midi", mode="continue"), ordered(
        clock_steps(0.0, 2.0, 120.0) + [Step(s.time + 3.0, s.message) for s in
                                        clock_steps(0.0, 2.0, 120.0)[1:]]), 6.0),
    # The daemon's path: every tick through clock_tick, with the master's
    # time apart from arrival (a stalled MIDI system), or without it.
    "midi-clock-master-time": (LiveConfig(clock="midi"), ordered(
        as_ticks(clock_steps(0.0, 6.0, 120.0), lambda k, t: t - 0.002 * (k % 3))
        + phrase(0.5, CALL[:5])), 7.0),
    "midi-clock-ticks-without-master-time": (LiveConfig(clock="midi", mode="continue"), ordered(
        as_ticks(clock_steps(0.0, 4.0, 110.0), lambda k, t: None)
        + [Step(4.1, mido.Message("stop")), Step(4.2, mido.Message("continue"))]
        + as_ticks(clock_steps(4.2, 7.2, 110.0)[1:], lambda k, t: t - 0.003)), 8.0),
    "tick-on-internal": (LiveConfig(), ordered(
        as_ticks(clock_steps(0.0, 3.0, 120.0), lambda k, t: t - 0.001) + phrase(0.5, CALL[:5])), 7.0),
    # Continuity (off, the default 0.8, full) over notes, chords and both registers.
    "continuity-off": (LiveConfig(continuity=0.0), two_calls(), 14.0),
    "continuity-full": (LiveConfig(continuity=1.0, temperature=1.0), two_calls(), 14.0),
    "continuity-full-register-model": (LiveConfig(continuity=1.0, register="model"), two_calls(), 14.0),
    "continuity-half-register-follow-chords": (LiveConfig(continuity=0.5, register="follow"), ordered(
        chord(0.0, [60, 64, 67], 0.4) + phrase(0.5, [48, 84, 50, 82]) + chord(2.0, [62, 65, 69], 0.3)
        + phrase(6.0, [90, 40, 88])), 12.0),
    "continuity-continue-primed": (LiveConfig(mode="continue", continuity=1.0), ordered(
        [Step(0.0, call="prime", args={"tokens": ["C4", "0.4.7", "A5"]}),
         Step(2.0, call="prime", args={"tokens": ["E2", "G2"], "reset": True})]
        + phrase(4.0, [84, 40]) + [Step(6.0, call="prime", args={"tokens": ["B5"]})]), 9.0),
    "continuity-reloaded": (LiveConfig(continuity=0.0), ordered(
        phrase(0.0, CALL)
        + [Step(2.0, call="reload", args={"settings": LiveConfig(continuity=1.0)})]
        + phrase(5.0, [40, 88, 45])
        + [Step(7.5, call="reload", args={"settings": LiveConfig(continuity=0.3, top_k=5)})]
        + phrase(8.0, [60, 72])), 12.0),
    # Texture (off by default, half, full) over chords and notes, key call and auto, and a reload.
    "texture-full": (LiveConfig(texture=1.0), two_calls(), 14.0),
    "texture-half-key-auto-chords": (LiveConfig(texture=0.5, key="auto", key_strength=0.9), ordered(
        chord(0.0, [60, 64, 67], 0.4) + phrase(0.5, [62, 65, 69]) + chord(2.0, [57, 60, 64], 0.3)
        + phrase(6.0, [67, 71, 74])), 12.0),
    "texture-full-key-off-continuity-off": (LiveConfig(texture=1.0, key="off", continuity=0.0),
                                            two_calls(), 14.0),
    "texture-reloaded": (LiveConfig(texture=0.0), ordered(
        phrase(0.0, CALL)
        + [Step(2.0, call="reload", args={"settings": LiveConfig(texture=1.0)})]
        + phrase(5.0, [40, 88, 45])), 10.0),
    # The key's spread (off by default, a little, full) with and without the balance.
    "key-spread-small": (LiveConfig(key_spread=0.05), two_calls(), 14.0),
    "key-spread-full-no-balance": (LiveConfig(key_spread=1.0, key_balance=0.0), two_calls(), 14.0),
    "key-spread-with-texture-reloaded": (LiveConfig(key_spread=0.0), ordered(
        phrase(0.0, CALL)
        + [Step(2.0, call="reload", args={"settings": LiveConfig(key_spread=0.2, texture=0.5)})]
        + chord(5.0, [57, 60, 64], 0.3) + phrase(5.5, [62, 65])), 10.0),
    "clock-messages-on-internal": (LiveConfig(), ordered(
        clock_steps(0.0, 3.0, 120.0) + phrase(0.5, CALL[:5])), 7.0),
}


def _notes_played(trace) -> int:
    return sum(1 for entry in trace[:-1] for _, data in entry[1] if data[0] & 0xF0 == 0x90)


@pytest.mark.parametrize("name", sorted(SCENARIOS))
def test_scenario_is_identical(name):
    settings_, steps, end = SCENARIOS[name]
    python, native = both(settings_, steps, end=end)
    assert _notes_played(python) > 0, "the scenario should make Cadenza play"
    assert python == native, first_difference(python, native)


def test_texture_changes_what_is_played():
    """The texture scenarios exercise the rule: off and full play differently."""
    _, steps, end = SCENARIOS["texture-full"]
    off, _ = both(LiveConfig(texture=0.0), steps, end=end)
    full, _ = both(LiveConfig(texture=1.0), steps, end=end)
    assert off != full


def test_key_spread_changes_what_is_played():
    """The spread scenarios exercise the rule: off and on play differently."""
    _, steps, end = SCENARIOS["key-spread-small"]
    off, _ = both(LiveConfig(key_spread=0.0), steps, end=end)
    spread, _ = both(LiveConfig(key_spread=0.2), steps, end=end)
    assert off != spread


def test_continuity_changes_what_is_played():
    """The continuity scenarios exercise the penalty: off and full play differently."""
    _, steps, end = SCENARIOS["continuity-full"]
    off, _ = both(LiveConfig(continuity=0.0, temperature=1.0), steps, end=end)
    full, _ = both(LiveConfig(continuity=1.0, temperature=1.0), steps, end=end)
    assert off != full


@pytest.mark.parametrize("grid", GRIDS)
@pytest.mark.parametrize("mode", ["call-response", "accompany", "continue"])
@pytest.mark.parametrize("rhythm", ["grid", "mirror"])
def test_every_mode_grid_and_rhythm(mode, grid, rhythm):
    python, native = both(LiveConfig(mode=mode, grid=grid, rhythm=rhythm), two_calls(), end=13.0)
    assert python == native, first_difference(python, native)


@pytest.mark.parametrize("seed", [0, 1, 2, 3, 99, 2**33 + 1])
def test_seeds(seed):
    python, native = both(LiveConfig(seed=seed), two_calls(), end=14.0)
    assert python == native, first_difference(python, native)


def test_start_time_away_from_zero():
    steps = [Step(s.time + 100.0, s.message) for s in phrase(0.0, CALL)]
    python, native = both(LiveConfig(mode="continue"), steps, end=110.0, start_time=101.0)
    assert python == native, first_difference(python, native)


# --------------------------------------------------------------- hypothesis

_settings = st.builds(
    LiveConfig,
    mode=st.sampled_from(["call-response", "accompany", "continue"]),
    rhythm=st.sampled_from(["grid", "mirror"]),
    grid=st.sampled_from(GRIDS),
    bpm=st.sampled_from([40.0, 96.0, 120.0, 133.3, 240.0]),
    temperature=st.sampled_from([0.0, 0.5, 1.0, 1.4, 2.0]),
    top_k=st.sampled_from([0, 1, 4]),
    top_p=st.sampled_from([1.0, 0.9, 0.3]),
    loop_guard=st.sampled_from([0, 2, 4]),
    key=st.sampled_from(["call", "auto", "off", "C major", "A minor", "E- major"]),
    key_strength=st.sampled_from([0.0, 0.3, 0.9, 1.0]),
    key_balance=st.sampled_from([0.0, 2.0, 6.0]),
    continuity=st.sampled_from([0.0, 0.5, 0.8, 1.0]),
    texture=st.sampled_from([0.0, 0.5, 1.0]),
    key_spread=st.sampled_from([0.0, 0.05, 0.3]),
    register=st.sampled_from(["follow", "model"]),
    octave=st.sampled_from([-1, -1, 0, 4]),
    answer_bars=st.sampled_from([0, 0, 1, 3]),
    max_answer_notes=st.sampled_from([1, 8, 64]),
    chord_window_ms=st.sampled_from([0.0, 30.0, 80.0]),
    pause_beats=st.sampled_from([0.5, 2.0, 3.0]),
    velocity=st.sampled_from([0, 0, 64]),
    gate=st.sampled_from([0.1, 0.9, 1.0]),
    seed=st.integers(0, 2**40),
)

_event = st.one_of(
    st.tuples(st.just("note"), st.floats(0.0, 8.0), st.integers(0, 127), st.floats(0.001, 2.0),
              st.integers(1, 127), st.integers(0, 2)),
    st.tuples(st.just("cc"), st.floats(0.0, 8.0), st.sampled_from([21, 22, 23, 24, 25, 26, 120, 123, 7]),
              st.integers(0, 127)),
    st.tuples(st.just("call"), st.floats(0.0, 8.0), st.sampled_from(["stop", "panic"])),
)


def _steps(events) -> list[Step]:
    steps: list[Step] = []
    for event in events:
        if event[0] == "note":
            _, t, pitch, length, velocity, channel = event
            steps += note(t, pitch, length, velocity, channel)
        elif event[0] == "cc":
            steps.append(cc(event[1], event[2], event[3]))
        else:
            steps.append(Step(event[1], call=event[2]))
    return ordered(steps)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(live=_settings, events=st.lists(_event, min_size=1, max_size=30))
def test_generated_inputs_are_identical(live, events):
    python, native = both(live, _steps(events), end=14.0)
    assert python == native, first_difference(python, native)


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(bpm=st.floats(60.0, 200.0), seed=st.integers(0, 1000), jitter=st.sampled_from([0.0, 0.0005, 0.003]),
       drop=st.sampled_from([0.0, 0.05, 0.2]), bunch=st.sampled_from([0.0, 0.05, 0.2]),
       mode=st.sampled_from(["call-response", "continue", "accompany"]))
def test_generated_midi_clock_is_identical(bpm, seed, jitter, drop, bunch, mode):
    steps = ordered(clock_steps(0.1, 8.0, bpm, seed=seed, jitter=jitter, drop=drop, bunch=bunch)
                    + phrase(0.6, CALL[:6]))
    python, native = both(LiveConfig(clock="midi", mode=mode, bpm=bpm), steps, end=8.0)
    assert python == native, first_difference(python, native)


def _bundled_vocabulary() -> list[str]:
    import json
    from pathlib import Path

    manifest = Path(__file__).resolve().parents[2] / "models" / "default" / "model.json"
    if not manifest.is_file():
        pytest.skip("no bundled model")
    return json.loads(manifest.read_text())["vocabulary"]


@pytest.mark.parametrize("name", ["defaults", "key-auto", "continue", "mirror-bars", "chords-and-held-bass",
                                  "out-of-vocabulary", "argmax-loop-guard", "ccs", "midi-clock-jitter-lost-bunched"])
def test_scenarios_on_the_bundled_vocabulary(name):
    """The bundled model's 533 tokens (flat spellings, low octaves, many chords)."""
    settings_, steps, end = SCENARIOS[name]
    python, native = both(settings_, steps, end=end, vocab=_bundled_vocabulary())
    assert python == native, first_difference(python, native)


_session_event = st.one_of(
    _event,
    st.tuples(st.just("reload"), st.floats(0.0, 8.0), _settings,
              st.sampled_from(["internal", "midi"])),
    st.tuples(st.just("release"), st.floats(0.0, 8.0), st.sampled_from([None, 0, 1])),
    st.tuples(st.just("prime"), st.floats(0.0, 8.0), st.lists(st.integers(0, len(VOCAB) - 1), max_size=8),
              st.booleans()),
    st.tuples(st.just("transport"), st.floats(0.0, 8.0), st.sampled_from(["start", "stop", "continue"])),
    st.tuples(st.just("songpos"), st.floats(0.0, 8.0), st.integers(0, 64)),
)


def _session(events) -> list[Step]:
    steps: list[Step] = []
    plain = []
    for event in events:
        if event[0] == "reload":
            steps.append(Step(event[1], call="reload",
                              args={"settings": dataclasses.replace(event[2], clock=event[3])}))
        elif event[0] == "release":
            steps.append(Step(event[1], call="release", args={"channel": event[2]}))
        elif event[0] == "prime":
            steps.append(Step(event[1], call="prime", args={"tokens": event[2], "reset": event[3]}))
        elif event[0] == "transport":
            steps.append(Step(event[1], mido.Message(event[2])))
        elif event[0] == "songpos":
            steps.append(Step(event[1], mido.Message("songpos", pos=event[2])))
        else:
            plain.append(event)
    return ordered(steps + _steps(plain) + clock_steps(0.05, 9.0, 110.0, seed=1, jitter=0.001)[1:])


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(live=_settings, clock=st.sampled_from(["internal", "midi"]),
       events=st.lists(_session_event, min_size=1, max_size=25),
       master_offset=st.sampled_from([None, 0.0, 0.004, -0.002]))
def test_generated_sessions_are_identical(live, clock, events, master_offset):
    """Reloads (clock source included), primes, releases and transport among the
    notes; the master's ticks as messages, or through clock_tick with its time."""
    steps = _session(events)
    if master_offset is not None:
        steps = as_ticks(steps, lambda k, t: t - master_offset)
    python, native = both(dataclasses.replace(live, clock=clock), steps, end=10.0)
    assert python == native, first_difference(python, native)


@pytest.mark.parametrize("attributes", [
    {"fill": tuple(i % 60 for i in range(10, 75)) + (3, 4)},                # the seed preset: a left-fill longer than the window
    {"primers": [tuple(range(5, 25))]},                        # a bundle primer, no fill
    {"window": 12, "fill": tuple(range(30))},                  # a short context: the window rolls at once
    {"window": 8},
], ids=["fill", "primer", "short-window-fill", "short-window"])
def test_the_bundles_start_and_window(attributes):
    """The window starts from the runner's fill or the bundle's first primer, and
    holds the model's own context length."""
    for live in (LiveConfig(), LiveConfig(mode="continue", key="auto", temperature=0.0)):
        python, native = both(live, two_calls(), end=13.0, model_attributes=attributes)
        assert python == native, first_difference(python, native)


@pytest.mark.parametrize("mode", ["call-response", "continue", "accompany"])
def test_host_tempo_and_locate(mode):
    """A plugin's host moves the tempo and the play position (a loop back, a jump ahead)."""
    steps = ordered(two_calls() + [
        Step(1.1, call="set_tempo", args={"value": 97.5}),
        Step(4.0, call="locate", args={"value": 0.0}),
        Step(7.3, call="set_tempo", args={"value": 180.0}),
        Step(9.0, call="locate", args={"value": 33.25}),
    ])
    python, native = both(LiveConfig(mode=mode), steps, end=14.0)
    assert python == native, first_difference(python, native)


def test_stats_time_each_prediction_as_the_python_engine_does():
    """The daemon's stats line reads the same fields from either engine: a
    latency per prediction, with its median, 99th percentile and maximum."""
    from cadenza.live.engine.engine import Engine
    from cadenza.live.native_engine import NativeEngine
    from testing.fake_predictor import FakePredictor

    require_native()
    steps = two_calls()
    stats = {}
    for name, kind in (("python", Engine), ("native", NativeEngine)):
        engine = kind(FakePredictor(VOCAB), LiveConfig())
        run_script(engine, steps, end=steps[-1].time + 8.0)
        stats[name] = engine.stats()
    python, native = stats["python"], stats["native"]
    assert native["predictions"] == python["predictions"] > 0
    assert len(native["latencies"]) == len(python["latencies"]) == native["predictions"]
    assert all(0.0 < seconds < 1.0 for seconds in native["latencies"])
    assert 0.0 < native["latency_p50"] <= native["latency_p99"] <= native["latency_max"]
    assert set(python) == set(native)
