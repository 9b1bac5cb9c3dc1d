"""``prepare()`` moves the model's work, never an event.

Each script runs through an engine twice, once plain and once with
``prepare()`` before the first call and after every call (``run_script(...,
prepare=True)``); the traces (every event's time and bytes, every deadline,
the stops, the window and the prediction count) must be equal, on both
engines, and the two engines equal to each other.  With the fake model over
every identity scenario, and on the bundled model's native step (lazy: its
feeds are stepped by ``prepare``), fp32 and int8.
"""

from __future__ import annotations

import mido
import numpy as np
import pytest

from cadenza.bundle import bundled_model_path, read_bundle
from cadenza.config import LiveConfig
from cadenza.errors import ModelError
from testing.fake_predictor import FakePredictor
from tests.native.test_native_identity import SCENARIOS
from tests.support.native_engine_support import VOCAB, first_difference, require_native, run_script


def _engines():
    from cadenza.live.engine.engine import Engine
    from cadenza.live.native_engine import NativeEngine

    require_native()
    return {"python": Engine, "native": NativeEngine}


@pytest.mark.parametrize("name", sorted(SCENARIOS))
def test_prepare_changes_no_event_with_the_fake_model(name):
    settings, steps, end = SCENARIOS[name]
    traces = {}
    for kind, make in _engines().items():
        plain = run_script(make(FakePredictor(VOCAB), settings), steps, end=end)
        prepared = run_script(make(FakePredictor(VOCAB), settings), steps, end=end, prepare=True)
        assert prepared == plain, f"{kind}: {first_difference(plain, prepared)}"
        traces[kind] = prepared
    assert traces["python"] == traces["native"], first_difference(traces["python"], traces["native"])


def _runner(int8: bool):
    from cadenza import native
    from tests.support.native_support import require_native as require_model_step

    require_model_step()
    bundle = read_bundle(bundled_model_path())
    runner = native.NativeStreamRunner(bundle, int8=int8)
    if int8 and not runner.weights.has_int8:
        pytest.skip("the bundled model's native weights hold no int8 section")
    return runner


@pytest.mark.parametrize("int8", [False, True], ids=["fp32", "int8"])
@pytest.mark.parametrize("name", ["defaults", "continue", "chords-and-held-bass", "ccs"])
def test_prepare_changes_no_event_on_the_native_step(name, int8):
    settings, steps, end = SCENARIOS[name]
    traces = {}
    for kind, make in _engines().items():
        plain = run_script(make(_runner(int8), settings), steps, end=end)
        prepared = run_script(make(_runner(int8), settings), steps, end=end, prepare=True)
        assert prepared == plain, f"{kind}: {first_difference(plain, prepared)}"
        traces[kind] = prepared
    assert traces["python"] == traces["native"], first_difference(traces["python"], traces["native"])
    assert any(kind == "advance" and events for kind, events, *_ in traces["python"][:-1])  # it played


def test_prepare_steps_what_the_feeds_left_owed():
    from cadenza.live.engine.engine import Engine

    runner = _runner(False)
    engine = Engine(runner, LiveConfig(mode="continue"))
    engine.prepare()
    assert runner.pending == 0  # the bundle's primer, stepped
    for k, pitch in enumerate((60, 64, 67, 72)):
        engine.on_message(mido.Message("note_on", note=pitch, velocity=90), 0.1 * k)
        engine.on_message(mido.Message("note_off", note=pitch), 0.1 * k + 0.05)
    owed = runner.pending
    assert owed >= 3  # the performer's tokens: fed, not stepped
    predictions = engine.stats()["predictions"]
    window = engine.window
    engine.prepare()
    assert runner.pending == 0
    assert engine.stats()["predictions"] == predictions and engine.window == window
    assert np.isclose(runner.distribution().sum(), 1.0)


@pytest.mark.parametrize("kind", ["python", "native"])
def test_a_model_that_fails_in_prepare_raises(kind):
    failing = [False]

    def rule(history):
        if failing[0]:
            raise ModelError("the model fell over")
        return np.ones(len(VOCAB))

    engine = _engines()[kind](FakePredictor(VOCAB, rule), LiveConfig())  # a callback model on native
    engine.prepare()
    failing[0] = True
    with pytest.raises(ModelError, match="fell over"):
        engine.prepare()
