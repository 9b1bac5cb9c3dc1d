"""``cadenza simulate --engine native`` writes the file ``--engine python`` writes."""

from __future__ import annotations

import logging

import pytest

from cadenza.cli import main
from cadenza.config import RUNNERS, LiveConfig
from cadenza.live import native_library
from cadenza.live.offline.simulate import example_phrase, read_performance, simulate
from testing.fake_predictor import FakePredictor
from tests.support.native_engine_support import VOCAB, require_native


def _duet(tmp_path, name: str, settings: LiveConfig, kind: str, bars: float | None = None) -> bytes:
    recorder, _ = simulate(FakePredictor(VOCAB), settings, read_performance(example_phrase()),
                           bars=bars, engine_kind=kind)
    return recorder.save(tmp_path / name).read_bytes()


@pytest.mark.parametrize("settings", [
    LiveConfig(),
    LiveConfig(mode="continue", temperature=0.0),
    LiveConfig(mode="accompany", rhythm="mirror", key="auto", seed=3),
    LiveConfig(rhythm="mirror", answer_bars=2, grid="1/16", top_p=0.8),
], ids=["defaults", "continue-argmax", "accompany-mirror", "mirror-bars"])
def test_simulated_duets_are_byte_identical_with_the_fake(tmp_path, settings):
    require_native()
    python = _duet(tmp_path, "python.mid", settings, "python", bars=4)
    native = _duet(tmp_path, "native.mid", settings, "native", bars=4)
    assert python == native
    assert len(python) > 200  # a duet, not an empty file


def _simulate_cli(tmp_path, name: str, *extra: str, config=None) -> bytes:
    out = tmp_path / name
    front = ["--config", str(config)] if config is not None else []
    assert main([*front, "simulate", "--out", str(out), *extra]) == 0
    return out.read_bytes()


@pytest.mark.parametrize("extra", [(), ("--mode", "continue", "--bars", "2", "--seed", "4")])
def test_cli_native_engine_on_the_bundled_model(tmp_path, extra):
    """The native engine calls the onnxruntime runner back: same model, same notes."""
    require_native()
    python = _simulate_cli(tmp_path, "python.mid", "--engine", "python", *extra)
    native = _simulate_cli(tmp_path, "native.mid", "--engine", "native", *extra)
    assert python == native


@pytest.mark.parametrize(("extra", "live"), [
    ((), ""),
    (("--mode", "continue", "--bars", "4", "--temperature", "0.8", "--seed", "7"), ""),
    (("--mode", "accompany", "--seed", "3"), "continuity = 1.0\n"),
    (("--seed", "11", "--key", "auto", "--register", "model"), "continuity = 0.0\n"),
    (("--mode", "continue", "--bars", "3", "--seed", "2", "--top-k", "8", "--rhythm", "mirror"),
     "continuity = 0.5\nkey_balance = 0.0\n"),
], ids=["defaults", "continue-seed7", "accompany-continuity1", "continuity0-auto-model", "continue-mirror"])
def test_native_engine_matches_the_python_engine_on_the_native_runner(tmp_path, extra, live):
    """The identity contract with the real model: the native engine running the
    native model step itself writes what the Python engine writes on that step."""
    require_native()
    assert "native" in RUNNERS
    config = tmp_path / "config.toml"
    config.write_text("[live]\n" + live)
    python = _simulate_cli(tmp_path, "python.mid", "--engine", "python", "--runner", "native", *extra,
                           config=config)
    native = _simulate_cli(tmp_path, "native.mid", "--engine", "native", "--runner", "native", *extra,
                           config=config)
    assert python == native
    assert len(python) > 200


@pytest.mark.parametrize("extra", [(), ("--mode", "continue", "--bars", "4", "--seed", "7")],
                         ids=["defaults", "continue-seed7"])
def test_native_engine_matches_the_python_engine_on_the_native_int8_step(tmp_path, extra):
    """The same with --int8: the engine makes an int8 step of its own, and it
    writes what the Python engine writes on the int8 runner."""
    require_native()
    config = tmp_path / "config.toml"
    config.write_text("[live]\n")
    args = ("--runner", "native", "--int8", *extra)
    python = _simulate_cli(tmp_path, "python.mid", "--engine", "python", *args, config=config)
    native = _simulate_cli(tmp_path, "native.mid", "--engine", "native", *args, config=config)
    fp32 = _simulate_cli(tmp_path, "fp32.mid", "--engine", "native", "--runner", "native", *extra,
                         config=config)
    assert python == native and len(python) > 200
    assert native != fp32  # the int8 step is the one that ran


def test_the_native_engine_runs_the_native_step_itself():
    """No callback: the engine library makes the step from the runner's weights file."""
    from cadenza.live.native_engine import NativeEngine
    from cadenza.native import load_native_runner

    require_native()
    runner = load_native_runner()
    engine = NativeEngine(runner, LiveConfig(mode="continue"))
    assert engine._model is None  # not the ctypes callback path
    events = []
    for _ in range(40):
        events += engine.advance(engine.next_deadline())
    assert any(e.message.type == "note_on" for e in events)


def test_an_unbuilt_library_says_how_to_build_it(tmp_path, monkeypatch, caplog):
    monkeypatch.setattr(native_library, "_LIBRARY", None)
    monkeypatch.setenv(native_library.LIBRARY_ENV, str(tmp_path / "missing.so"))
    with caplog.at_level(logging.ERROR):
        code = main(["simulate", "--engine", "native", "--out", str(tmp_path / "x.mid")])
    assert code != 0
    assert "make native" in caplog.text
    assert "missing.so" in caplog.text


def test_evaluate_prints_the_same_table_with_the_native_engine(tmp_path, capsys):
    """``cadenza evaluate --engine native``: the same answers, so the same table."""
    from tests.offline.test_evaluate import SCALES, write_piece

    require_native()
    for name, scale in SCALES.items():
        write_piece(tmp_path / f"{name}.mid", scale)
    tables = []
    for engine in ("python", "native"):
        argv = ["evaluate", "--data", str(tmp_path), "--call-onsets", "8", "--calls-per-piece", "2",
                "--max-tokens", "10", "--seed", "2", "--engine", engine]
        assert main(argv) == 0
        tables.append(capsys.readouterr().out)
    assert tables[0] == tables[1]
    assert "cadenza" in tables[0].lower() and "pc match" in tables[0]


def test_bad_input_reaches_python_as_exceptions():
    from cadenza.errors import CadenzaError
    from cadenza.live.native_engine import NativeEngine, NativeError

    require_native()
    with pytest.raises(CadenzaError, match="not a note token: 'H4'"):
        NativeEngine(FakePredictor(["C4", "H4"]), LiveConfig())
    with pytest.raises(NativeError, match="max_answer_notes"):
        NativeEngine(FakePredictor(VOCAB), LiveConfig(max_answer_notes=5000))
    with pytest.raises(NativeError, match="seed"):
        NativeEngine(FakePredictor(VOCAB), LiveConfig(seed=2**64))
    engine = NativeEngine(FakePredictor(VOCAB), LiveConfig())
    with pytest.raises(NativeError, match="max_answer_notes"):
        engine.reload(LiveConfig(max_answer_notes=10**6))
    with pytest.raises(NativeError, match="out of the vocabulary"):
        engine.prime([len(VOCAB) + 3])


def test_a_failing_model_is_an_exception_not_a_crash():
    import mido

    from cadenza.live.native_engine import NativeEngine

    require_native()

    def broken(history):
        if len(history) > 2:
            raise RuntimeError("model exploded")
        return [1.0] * len(VOCAB)

    engine = NativeEngine(FakePredictor(VOCAB, rule=broken), LiveConfig(mode="continue"))
    with pytest.raises(RuntimeError, match="model exploded"):
        for _ in range(50):
            engine.advance(engine.next_deadline())
    engine.on_message(mido.Message("note_on", note=60, velocity=10), 30.0)  # still usable


def test_the_c_api_names_a_bad_vocabulary_entry():
    import ctypes

    from cadenza.live.native_library import _Settings

    lib = require_native()
    settings = _Settings()
    lib.cadenza_settings_default(ctypes.byref(settings))
    model = lib.cadenza_fake_predictor_new(2, 50)
    words = (ctypes.c_char_p * 2)(b"C4", b"H4")
    error = ctypes.create_string_buffer(256)
    engine = lib.cadenza_engine_new(model, words, 2, None, 0, ctypes.byref(settings), 0.0, 0.02, error, 256)
    lib.cadenza_predictor_free(model)
    assert not engine
    assert error.value.decode() == "vocabulary entry 1: not a note token: 'H4'"
