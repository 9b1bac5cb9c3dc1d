"""The ONNX runners: semantics against Keras, the streaming context rule,
refusals of broken bundles, and a run where TensorFlow cannot be imported."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import textwrap
import tracemalloc

import keras
import numpy as np
import onnxruntime as ort
import pytest

from cadenza import runtime
from cadenza.batch import predict_windows
from cadenza.bundle import MANIFEST, read_bundle
from cadenza.errors import BundleError, ConfigError, ModelError
from cadenza.export.source import keras_inputs, load_keras_model
from cadenza.runtime import StreamRunner, WindowRunner, load_predictor
from cadenza.sampling import Sampler, SamplingSettings

pytestmark = pytest.mark.slow
TOL = 1e-5


@pytest.fixture(scope="module")
def keras_models(tiny_models):
    return {preset: load_keras_model(path) for preset, path in tiny_models.items()}


def keras_next(model, bundle, tokens):
    """What the Keras model answers after ``tokens`` (from zero state)."""
    x = keras_inputs(np.asarray([tokens]), bundle.input_encoding, bundle.input_scale)
    probs = keras.ops.convert_to_numpy(model(x, training=False))
    return probs[0, -1] if probs.ndim == 3 else probs[0]


def stream_from_zero(bundle, tokens):
    """An independent one-step-at-a-time run of the stream graph, batch of one."""
    spec = bundle.graph("stream")
    session = ort.InferenceSession(str(spec.path), providers=["CPUExecutionProvider"])
    feeds = {spec.inputs[s].name: np.zeros((1, bundle.state_size), np.float32)
             for s in bundle.state_names}
    names = [spec.outputs["probs"].name] + [spec.outputs[s].name for s in bundle.state_names]
    for token in tokens:
        feeds[spec.inputs["token"].name] = np.array([[token]], np.int64)
        probs, *states = session.run(names, feeds)
        for s, value in zip(bundle.state_names, states, strict=True):
            feeds[spec.inputs[s].name] = value
    return probs[0]


def copy_bundle(source, target):
    shutil.copytree(source, target)
    return target, json.loads((target / MANIFEST).read_text())


def save_manifest(folder, doc):
    (folder / MANIFEST).write_text(json.dumps(doc))


# -- sessions and the Predictor interface ---------------------------------------


@pytest.mark.parametrize("runner", ["stream", "window"])
def test_sessions_run_on_one_thread_without_spinning(tiny_bundles, runner):
    predictor = load_predictor(tiny_bundles["default"], runner=runner)
    options = predictor.session.get_session_options()
    assert options.intra_op_num_threads == 1
    assert options.inter_op_num_threads == 1
    assert options.get_session_config_entry("session.intra_op.allow_spinning") == "0"
    assert options.get_session_config_entry("session.inter_op.allow_spinning") == "0"
    assert options.graph_optimization_level == ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    assert options.execution_mode == ort.ExecutionMode.ORT_SEQUENTIAL


@pytest.mark.parametrize("runner", ["stream", "window"])
def test_distribution_is_a_float64_probability_vector(tiny_bundles, runner):
    predictor = load_predictor(tiny_bundles["seed"], runner=runner)
    predictor.reset([1, 2, 3])
    probs = predictor.distribution()
    assert probs.dtype == np.float64
    assert probs.shape == (len(predictor.vocabulary),)
    assert abs(probs.sum() - 1.0) < 1e-12
    assert (probs >= 0).all()
    first = probs.copy()
    predictor.feed(4)
    assert not np.array_equal(predictor.distribution(), first)
    assert np.array_equal(probs, first), "a returned distribution must not change later"


@pytest.mark.parametrize("runner", ["stream", "window"])
@pytest.mark.parametrize("bad", [-1, 24, 1000])
def test_feeding_an_index_outside_the_vocabulary_is_refused(tiny_bundles, runner, bad):
    predictor = load_predictor(tiny_bundles["default"], runner=runner)
    with pytest.raises(ModelError, match=rf"token index {bad} is outside the vocabulary"):
        predictor.feed(bad)
    with pytest.raises(ModelError, match="outside the vocabulary"):
        predictor.reset([0, bad])


def test_unknown_runner_is_a_config_error(tiny_bundles):
    with pytest.raises(ConfigError, match="unknown runner 'batch'"):
        load_predictor(tiny_bundles["default"], runner="batch")


@pytest.mark.parametrize("path", ["", None])
def test_empty_path_loads_the_bundled_model(tiny_bundles, monkeypatch, path):
    monkeypatch.setattr(runtime, "bundled_model_path", lambda: tiny_bundles["seed"])
    assert load_predictor(path).bundle.path == tiny_bundles["seed"]


# -- semantics -----------------------------------------------------------------


def test_only_the_seed_preset_is_left_filled(tiny_bundles):
    seed, default = read_bundle(tiny_bundles["seed"]), read_bundle(tiny_bundles["default"])
    assert (seed.preset, seed.left_filled) == ("seed", True)
    assert (default.preset, default.left_filled) == ("default", False)
    for runner in ("stream", "window"):
        assert len(load_predictor(tiny_bundles["seed"], runner=runner).fill) == seed.window
        assert load_predictor(tiny_bundles["default"], runner=runner).fill == ()


@pytest.mark.parametrize("preset", ["seed", "default"])
def test_window_runner_is_the_keras_models_window_semantics(tiny_bundles, keras_models, preset):
    """Fed token by token, the answer is Keras's on the last ``window`` tokens;
    before ``window`` tokens exist the seed preset's window is left-filled with
    the first primer, the default preset's is the history alone."""
    runner = load_predictor(tiny_bundles[preset], runner="window")
    bundle, model = runner.bundle, keras_models[preset]
    rng = np.random.default_rng(7)
    history = rng.integers(0, bundle.vocab_size, size=bundle.window + 15).tolist()
    runner.reset(history[:3])
    fed = 3
    for upto in range(3, len(history) + 1, 6):
        for index in history[fed:upto]:
            runner.feed(index)
        fed = upto
        context = (list(runner.fill) + history[:fed])[-bundle.window :]
        expected = keras_next(model, bundle, context)
        np.testing.assert_allclose(runner.distribution(), expected, atol=TOL)


@pytest.mark.parametrize("start", [0, 1, 7])
def test_default_preset_runners_agree_on_short_histories(tiny_bundles, start):
    """From a reset with ``start`` tokens, then fed one by one past the window:
    both runners answer the model from zero state on exactly the history."""
    bundle = read_bundle(tiny_bundles["sensitive"])
    stream, window = StreamRunner(bundle), WindowRunner(bundle)
    w = bundle.window
    tokens = np.random.default_rng(13).integers(0, bundle.vocab_size, size=w + 4).tolist()
    stream.reset(tokens[:start])
    window.reset(tokens[:start])
    for fed in range(start, len(tokens) + 1):
        if fed > start:
            stream.feed(tokens[fed - 1])
            window.feed(tokens[fed - 1])
        if fed == 0:
            continue
        expected = stream_from_zero(bundle, tokens[max(0, fed - w) : fed])
        np.testing.assert_allclose(window.distribution(), expected, atol=TOL)
        if fed <= w:  # past that the stream runner remembers more than the window
            np.testing.assert_allclose(stream.distribution(), expected, atol=TOL)
    # The history matters: one token and two tokens are different contexts.
    stream.reset(tokens[:1])
    one = stream.distribution()
    stream.feed(tokens[1])
    assert np.abs(stream.distribution() - one).max() > 1e-3


@pytest.mark.parametrize("runner", ["stream", "window"])
def test_default_preset_with_nothing_heard_is_uniform(tiny_bundles, runner):
    predictor = load_predictor(tiny_bundles["default"], runner=runner)
    predictor.reset()
    size = len(predictor.vocabulary)
    np.testing.assert_allclose(predictor.distribution(), np.full(size, 1.0 / size))
    predictor.feed(3)
    assert np.abs(predictor.distribution() - 1.0 / size).max() > 1e-4


def test_default_preset_window_runner_needs_the_stream_graph(tiny_bundles, tmp_path):
    folder, doc = copy_bundle(tiny_bundles["default"], tmp_path / "b")
    doc["graphs"] = {"window": doc["graphs"]["window"]}
    save_manifest(folder, doc)
    with pytest.raises(BundleError, match="shorter than the window .* with the 'stream' graph"):
        load_predictor(folder, runner="window")
    # The seed preset left-fills instead: its window graph alone is enough.
    folder, doc = copy_bundle(tiny_bundles["seed"], tmp_path / "s")
    doc["graphs"] = {"window": doc["graphs"]["window"]}
    save_manifest(folder, doc)
    assert load_predictor(folder, runner="window").fill


def test_stream_runner_bounds_its_context(tiny_bundles):
    """From reset the context grows to 2*window tokens, then restarts from the
    last window tokens, as if re-primed from zero state there."""
    bundle = read_bundle(tiny_bundles["sensitive"])
    stream, window = StreamRunner(bundle), WindowRunner(bundle)
    w = bundle.window
    rng = np.random.default_rng(11)
    primer = rng.integers(0, bundle.vocab_size, size=w).tolist()
    extra = rng.integers(0, bundle.vocab_size, size=2 * w + 5).tolist()
    stream.reset(primer)
    window.reset(primer)
    tokens = list(primer)
    np.testing.assert_allclose(stream.distribution(), window.distribution(), atol=TOL)
    checked = 0
    for fed, index in enumerate(extra, start=1):
        stream.feed(index)
        window.feed(index)
        tokens.append(index)
        context_length = w + fed % w
        if fed % w == 0:  # re-primed: exactly the window's answer
            np.testing.assert_allclose(stream.distribution(), window.distribution(), atol=TOL)
            checked += 1
        if fed in (1, w - 1, w + 1, 2 * w + 3):
            expected = stream_from_zero(bundle, tokens[-context_length:])
            np.testing.assert_allclose(stream.distribution(), expected, atol=TOL)
            # The model remembers: the longer context answers differently.
            assert np.abs(stream.distribution() - window.distribution()).max() > 1e-3
            checked += 1
    assert checked == 6


def test_stream_reset_with_a_long_primer_equals_feeding_it(tiny_bundles):
    bundle = read_bundle(tiny_bundles["default"])
    w = bundle.window
    tokens = np.random.default_rng(3).integers(0, bundle.vocab_size, size=3 * w + 7).tolist()
    at_once, one_by_one = StreamRunner(bundle), StreamRunner(bundle)
    at_once.reset(tokens)
    one_by_one.reset(tokens[:w])
    for index in tokens[w:]:
        one_by_one.feed(index)
    np.testing.assert_allclose(at_once.distribution(), one_by_one.distribution(), atol=1e-6)


@pytest.mark.parametrize("preset", ["seed", "default"])
def test_predict_windows_matches_one_at_a_time(tiny_bundles, preset):
    bundle = read_bundle(tiny_bundles[preset])
    windows = np.random.default_rng(5).integers(0, bundle.vocab_size, size=(5, bundle.window))
    for runner in (StreamRunner(bundle), WindowRunner(bundle)):
        batched = predict_windows(runner, windows)
        assert batched.shape == (5, bundle.vocab_size)
        for row, window in zip(batched, windows, strict=True):
            runner.reset(window.tolist())
            np.testing.assert_allclose(runner.distribution(), row, atol=TOL)
        with pytest.raises(ModelError, match=r"shape \(n, 50\)"):
            predict_windows(runner, windows[:, :10])
        with pytest.raises(ModelError, match="outside the vocabulary"):
            predict_windows(runner, windows + bundle.vocab_size)


@pytest.mark.parametrize("runner", ["stream", "window"])
def test_the_hot_path_does_not_allocate(tiny_bundles, runner):
    predictor = load_predictor(tiny_bundles["default"], runner=runner)
    predictor.reset()
    size = len(predictor.vocabulary)
    tracemalloc.start()
    try:
        start, _ = tracemalloc.get_traced_memory()
        for step in range(300):
            predictor.feed(step % size)
            predictor.distribution()
        current, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    # One float64 distribution (a few hundred bytes here) lives at a time; new
    # input arrays per call would show up as thousands of bytes of growth.
    assert peak - start < 4096
    assert current - start < 1024


# -- int8 ----------------------------------------------------------------------


def test_int8_runner_loads_a_quantized_graph(tiny_bundles, tmp_path):
    from cadenza.export.quantize import quantize

    folder, doc = copy_bundle(tiny_bundles["default"], tmp_path / "b")
    quantize(folder / "stream.onnx", folder / "stream_int8.onnx")
    doc["graphs"]["stream_int8"] = dict(doc["graphs"]["stream"], file="stream_int8.onnx")
    save_manifest(folder, doc)
    int8 = load_predictor(folder, int8=True)
    fp32 = load_predictor(folder)
    assert int8.spec.path.name == "stream_int8.onnx"
    int8.reset([1, 2, 3])
    fp32.reset([1, 2, 3])
    np.testing.assert_allclose(int8.distribution(), fp32.distribution(), atol=0.05)


def test_int8_requested_from_a_bundle_without_it(tiny_bundles, tmp_path):
    folder, doc = copy_bundle(tiny_bundles["default"], tmp_path / "b")
    doc["graphs"].pop("window_int8", None)
    save_manifest(folder, doc)
    with pytest.raises(BundleError, match=r"model.json: no 'window_int8' graph"):
        load_predictor(folder, runner="window", int8=True)


# -- refusals ------------------------------------------------------------------


@pytest.mark.parametrize("runner", ["stream", "window"])
def test_refuses_a_corrupt_graph(tiny_bundles, tmp_path, runner):
    folder, _ = copy_bundle(tiny_bundles["default"], tmp_path / "b")
    graph = folder / f"{runner}.onnx"
    graph.write_bytes(b"\x08\x07garbage, not a protobuf" * 10)
    with pytest.raises(BundleError) as caught:
        load_predictor(folder, runner=runner)
    assert str(graph) in str(caught.value) and "corrupt or unreadable ONNX graph" in str(caught.value)


def test_refuses_a_truncated_graph(tiny_bundles, tmp_path):
    folder, _ = copy_bundle(tiny_bundles["default"], tmp_path / "b")
    graph = folder / "stream.onnx"
    graph.write_bytes(graph.read_bytes()[: graph.stat().st_size // 2])
    with pytest.raises(BundleError, match=r"stream\.onnx: corrupt or unreadable ONNX graph"):
        load_predictor(folder)


@pytest.mark.parametrize("runner", ["stream", "window"])
def test_refuses_a_vocabulary_that_does_not_match_the_graph(tiny_bundles, tmp_path, runner):
    """The manifest agrees with itself, but the graph predicts another number of tokens."""
    folder, doc = copy_bundle(tiny_bundles["default"], tmp_path / "b")
    doc["vocabulary"] = doc["vocabulary"][:-1]
    size = len(doc["vocabulary"])
    doc["primers"] = [[t for t in p if t in doc["vocabulary"]] for p in doc["primers"]]
    doc["primers"] = [p + [doc["vocabulary"][0]] * (50 - len(p)) for p in doc["primers"]]
    for spec in doc["graphs"].values():
        spec["outputs"]["probs"]["shape"][-1] = size
    save_manifest(folder, doc)
    with pytest.raises(BundleError) as caught:
        load_predictor(folder, runner=runner)
    message = str(caught.value)
    assert str(folder / f"{runner}.onnx") in message
    assert f"predicts 24 tokens but the vocabulary in {folder / MANIFEST} has 23" in message


def test_refuses_a_manifest_naming_tensors_the_graph_lacks(tiny_bundles, tmp_path):
    folder, doc = copy_bundle(tiny_bundles["default"], tmp_path / "b")
    doc["graphs"]["window"]["inputs"]["tokens"]["name"] = "notes"
    save_manifest(folder, doc)
    with pytest.raises(BundleError, match=r"window\.onnx: graph inputs \['tokens'\] differ"):
        load_predictor(folder, runner="window")


def test_refuses_a_manifest_with_the_wrong_input_type(tiny_bundles, tmp_path):
    folder, doc = copy_bundle(tiny_bundles["default"], tmp_path / "b")
    doc["graphs"]["stream"]["inputs"]["token"]["dtype"] = "float32"
    save_manifest(folder, doc)
    with pytest.raises(BundleError, match=r"stream\.onnx: input 'token' is int64, but .* float32"):
        load_predictor(folder)


@pytest.mark.parametrize(
    ("corrupt", "expected"),
    [
        (lambda folder: (folder / MANIFEST).unlink(), "model.json: missing"),
        (lambda folder: (folder / "stream.onnx").unlink(), "stream.onnx: graph file missing"),
        (
            lambda folder: (folder / MANIFEST).write_text((folder / MANIFEST).read_text()[:200]),
            "model.json: corrupt JSON",
        ),
        (lambda folder: edit(folder, token_scheme=7), "token scheme version 7 is not supported"),
        (lambda folder: edit(folder, format_version=9), "bundle format 9 is newer"),
        (lambda folder: edit(folder, primers=[]), "no primer of 50 tokens"),
    ],
)
def test_load_predictor_refuses_a_broken_bundle(tiny_bundles, tmp_path, corrupt, expected):
    folder, _ = copy_bundle(tiny_bundles["seed"], tmp_path / "b")
    corrupt(folder)
    with pytest.raises(BundleError) as caught:
        load_predictor(folder)
    assert str(folder) in str(caught.value) and expected in str(caught.value)


def test_a_default_preset_bundle_needs_no_primer(tiny_bundles, tmp_path):
    folder, _ = copy_bundle(tiny_bundles["default"], tmp_path / "b")
    edit(folder, primers=[])
    for runner in ("stream", "window"):
        assert load_predictor(folder, runner=runner).fill == ()


def edit(folder, **changes):
    doc = json.loads((folder / MANIFEST).read_text())
    doc.update(changes)
    save_manifest(folder, doc)


# -- no TensorFlow ---------------------------------------------------------------

BLOCKER = textwrap.dedent(
    """
    import importlib.abc, json, sys

    BLOCKED = {"tensorflow", "keras", "music21", "tf2onnx", "onnx", "tf_keras"}

    class Blocker(importlib.abc.MetaPathFinder):
        def find_spec(self, name, path=None, target=None):
            if name.split(".")[0] in BLOCKED:
                raise ImportError(f"{name} is not installed (blocked by the test)")
            return None

    sys.meta_path.insert(0, Blocker())
    """
)

GENERATE = BLOCKER + textwrap.dedent(
    """
    from cadenza.runtime import load_predictor
    from cadenza.sampling import Sampler, SamplingSettings

    bundle, runner, seed = sys.argv[1], sys.argv[2], int(sys.argv[3])
    predictor = load_predictor(bundle, runner=runner)
    sampler = Sampler(SamplingSettings(temperature=1.0, top_k=5), seed=seed)
    predictor.reset()
    notes = []
    for _ in range(40):
        index = sampler.choose(predictor.distribution(), notes)
        predictor.feed(index)
        notes.append(predictor.vocabulary[index])
    loaded = sorted(m for m in sys.modules if m.split(".")[0] in BLOCKED)
    print(json.dumps({"notes": notes, "loaded": loaded}))
    """
)


def run_without_tensorflow(script, *args, cwd):
    return subprocess.run(
        [sys.executable, "-c", script, *map(str, args)],
        capture_output=True, text=True, timeout=120, cwd=cwd, check=False,
    )


@pytest.mark.parametrize("runner", ["stream", "window"])
def test_generates_from_a_bundle_where_tensorflow_cannot_be_imported(tiny_bundles, tmp_path, runner):
    done = run_without_tensorflow(GENERATE, tiny_bundles["default"], runner, 5, cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    result = json.loads(done.stdout)
    assert result["loaded"] == []
    # The same seed in this process (where TensorFlow is loaded) plays the same notes.
    predictor = load_predictor(tiny_bundles["default"], runner=runner)
    sampler = Sampler(SamplingSettings(temperature=1.0, top_k=5), seed=5)
    predictor.reset()
    notes: list[str] = []
    for _ in range(40):
        index = sampler.choose(predictor.distribution(), notes)
        predictor.feed(index)
        notes.append(predictor.vocabulary[index])
    assert result["notes"] == notes


def test_the_blocker_really_blocks(tmp_path):
    done = run_without_tensorflow(BLOCKER + "import tensorflow\n", cwd=tmp_path)
    assert done.returncode != 0 and "blocked by the test" in done.stderr


CLI_GENERATE = BLOCKER + textwrap.dedent(
    """
    from cadenza.cli import main

    code = main(["generate", "--model", sys.argv[1], "--out", sys.argv[2],
                 "--length", "30", "--seed", "2"])
    loaded = sorted(m for m in sys.modules if m.split(".")[0] in BLOCKED)
    print(json.dumps({"code": code, "loaded": loaded}))
    """
)


def test_cadenza_generate_runs_a_bundle_without_tensorflow(tiny_bundles, tmp_path):
    import mido

    out = tmp_path / "generated.mid"
    done = run_without_tensorflow(CLI_GENERATE, tiny_bundles["seed"], out, cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    result = json.loads(done.stdout)
    assert result == {"code": 0, "loaded": []}
    messages = [m for track in mido.MidiFile(out).tracks for m in track]
    notes_on = [m for m in messages if m.type == "note_on" and m.velocity]
    assert len(notes_on) >= 30
