"""The native model step against onnxruntime's StreamRunner, and its promises:
the same distributions (max |dp| <= 1e-5, the same top choice) over more
than 300 steps across the 2 * window re-priming, for the bundled model and
a tiny bundle of each preset (the seed preset's scalar input and left-fill
included); the same context length after every reset; nothing allocated
after load; `--runner native` in the engine."""

from __future__ import annotations

import shutil
import subprocess

import numpy as np
import pytest

from cadenza import native
from cadenza.batch import predict_windows
from cadenza.bundle import bundled_model_path, read_bundle
from cadenza.cli import main
from cadenza.errors import BundleError, ModelError
from cadenza.runtime import StreamRunner, load_predictor
from tests.support.native_support import (
    BUILD,
    TOLERANCE,
    compare_stream,
    require_native,
    require_program,
)

STEPS = 330


@pytest.fixture(autouse=True)
def _library():
    require_native()


def _primers(window: int, size: int, rng: np.random.Generator) -> list[list[int]]:
    lengths = (0, 1, window - 1, window, window + 1, 2 * window, 3 * window + 7)
    return [rng.integers(0, size, n).tolist() for n in lengths]


def _parity(path) -> tuple[float, int]:
    bundle = read_bundle(path)
    rng = np.random.default_rng(7)
    onnx, ours = StreamRunner(bundle), native.NativeStreamRunner(bundle)
    primers = _primers(bundle.window, bundle.vocab_size, rng)
    return compare_stream(onnx, ours, primers, STEPS, rng)


def test_the_bundled_model_steps_as_onnxruntime_does():
    worst, compared = _parity(bundled_model_path())
    assert compared == 7 * STEPS and STEPS > 2 * 50 * 3
    assert worst <= TOLERANCE


@pytest.mark.slow
@pytest.mark.parametrize("preset", ["seed", "default"])
def test_each_preset_steps_as_onnxruntime_does(tiny_bundles, preset):
    worst, _ = _parity(tiny_bundles[preset])
    assert worst <= TOLERANCE


@pytest.mark.slow
def test_keras2_hard_sigmoid_gates_step_as_onnxruntime_does(tmp_path):
    from cadenza.config import ExportConfig
    from cadenza.export.writer import export_bundle
    from tests.support.bundle_factory import make_model_folder

    folder = make_model_folder(tmp_path / "m", "seed", recurrent_activation="hard_sigmoid")
    export_bundle(folder, tmp_path / "b", ExportConfig(int8=False))
    assert native.NativeWeightsHandle(tmp_path / "b" / "native.bin").window == 50
    worst, _ = _parity(tmp_path / "b")
    assert worst <= TOLERANCE


@pytest.mark.slow
def test_export_records_the_native_check(tiny_bundles):
    for preset in ("seed", "default"):
        record = read_bundle(tiny_bundles[preset]).manifest["native"]
        assert record["file"] == "native.bin" and record["format_version"] == 2
        parity = record["parity"]
        assert parity["step"] == "native" and parity["passed"]
        assert parity["stream_steps"] >= 300 and parity["max_abs_diff"] <= TOLERANCE
        assert parity["stream_max_abs_diff"] <= TOLERANCE


def test_the_bundled_model_records_its_check():
    record = read_bundle(bundled_model_path()).manifest["native"]
    assert record["parity"]["passed"] and record["parity"]["step"] == "native"
    assert (bundled_model_path() / record["file"]).stat().st_size == record["bytes"]


def test_the_runner_shows_the_bundle_as_stream_runner_does():
    bundle = read_bundle(bundled_model_path())
    ours, onnx = native.NativeStreamRunner(bundle), StreamRunner(bundle)
    assert ours.vocabulary == onnx.vocabulary and ours.window == onnx.window
    assert ours.fill == onnx.fill and ours.primers == bundle.primers
    weights = ours.weights
    assert weights.vocabulary == bundle.vocabulary
    index = {t: i for i, t in enumerate(bundle.vocabulary)}
    assert weights.primer == tuple(index[t] for t in bundle.primers[0])


@pytest.mark.slow
def test_the_seed_presets_fill_comes_with_the_weights(tiny_bundles):
    bundle = read_bundle(tiny_bundles["seed"])
    ours = native.NativeStreamRunner(bundle)
    assert ours.fill == StreamRunner(bundle).fill and len(ours.fill) == bundle.window


def test_windows_are_predicted_as_the_stream_graph_predicts_them():
    bundle = read_bundle(bundled_model_path())
    windows = np.random.default_rng(2).integers(0, bundle.vocab_size, (5, bundle.window))
    ours = predict_windows(native.NativeStreamRunner(bundle), windows)
    assert ours.dtype == np.float32 and ours.shape == (5, bundle.vocab_size)
    assert np.abs(ours - predict_windows(StreamRunner(bundle), windows)).max() <= TOLERANCE
    with pytest.raises(ModelError, match="shape"):
        native.NativeStreamRunner(bundle).predict_windows(windows[:, :3])


def test_nothing_heard_is_uniform_to_the_bit():
    bundle = read_bundle(bundled_model_path())
    ours, onnx = native.NativeStreamRunner(bundle), StreamRunner(bundle)
    ours.reset()
    onnx.reset()
    assert ours.length == 0
    assert np.array_equal(ours.distribution(), onnx.distribution())


def _stream(path, wanted: bool) -> list[np.ndarray]:
    """The fp32 step's distributions over primers of every length and the
    steps after them (one row, then two once the shadow row starts)."""
    lib = native.load_library()
    has = lib.cadenza_debug_fp32_avx512(int(wanted))
    if wanted and not has:
        pytest.skip("this CPU has no AVX-512: the fp32 step runs its AVX2 or generic kernels only")
    bundle = read_bundle(path)
    rng = np.random.default_rng(11)
    runner, out = native.NativeStreamRunner(bundle), []
    try:
        for primer in _primers(bundle.window, bundle.vocab_size, rng):
            runner.reset(primer)
            out.append(runner.distribution())
            for token in rng.integers(0, bundle.vocab_size, 2 * bundle.window + 5).tolist():
                runner.feed(token)
                out.append(runner.distribution())
    finally:
        lib.cadenza_debug_fp32_avx512(1)
    return out


@pytest.mark.parametrize("which", ["bundled", "seed", "default"])
def test_the_avx512_kernels_give_the_bits_of_the_others(tiny_bundles, which):
    """Odd and even panel counts, one row and two: every element's products
    are rounded and added in order of k, whatever the vector width."""
    path = bundled_model_path() if which == "bundled" else tiny_bundles[which]
    wide, narrow = _stream(path, True), _stream(path, False)
    assert len(wide) == len(narrow) > 7
    for a, b in zip(wide, narrow, strict=True):
        assert np.array_equal(a, b)


def test_each_voice_has_its_own_state():
    bundle = read_bundle(bundled_model_path())
    one, two = native.NativeStreamRunner(bundle), native.NativeStreamRunner(bundle)
    one.reset([1, 2, 3])
    two.reset([1, 2, 3])
    before = two.distribution()
    one.feed(9)
    assert np.array_equal(two.distribution(), before)
    two.feed(9)
    assert np.array_equal(one.distribution(), two.distribution())


def test_a_bad_index_is_an_error_and_changes_nothing():
    ours = load_predictor(None, runner="native")
    ours.reset([4, 5])
    before = ours.distribution()
    for bad in (-1, len(ours.vocabulary), 2**40):
        with pytest.raises(ModelError, match="outside the vocabulary"):
            ours.feed(bad)
    with pytest.raises(ModelError, match="outside the vocabulary"):
        ours.reset([1, len(ours.vocabulary)])
    ours.reset([4, 5])
    assert np.array_equal(ours.distribution(), before)


def _allocations(path, *mode: str) -> str:
    program = require_program("cadenza_alloc_test")
    counter = BUILD / "libcadenza_alloc_counter.so"
    done = subprocess.run([str(program), str(path / "native.bin"), *mode], capture_output=True,
                          text=True, env={"LD_PRELOAD": str(counter)}, timeout=120)
    assert done.returncode == 0, done.stdout + done.stderr
    return done.stdout


def test_nothing_is_allocated_or_locked_after_load():
    assert "malloc 0 calloc 0 realloc 0 free 0 mutex_lock 0" in _allocations(bundled_model_path())


@pytest.mark.slow
@pytest.mark.parametrize("preset", ["seed", "default"])
def test_nothing_is_allocated_for_either_preset(tiny_bundles, preset):
    assert "malloc 0 calloc 0 realloc 0 free 0 mutex_lock 0" in _allocations(tiny_bundles[preset])


def test_the_counter_is_needed_for_the_proof():
    program = require_program("cadenza_alloc_test")
    done = subprocess.run([str(program), str(bundled_model_path() / "native.bin")],
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 2 and "not preloaded" in done.stderr


def test_simulate_runs_on_the_native_step(tmp_path):
    native_out, stream_out = tmp_path / "native.mid", tmp_path / "stream.mid"
    assert main(["simulate", "--runner", "native", "--out", str(native_out)]) == 0
    assert main(["simulate", "--runner", "stream", "--out", str(stream_out)]) == 0
    # Same model, same argmax choices: float rounding this small moves no note here.
    assert native_out.read_bytes() == stream_out.read_bytes()


def test_int8_with_the_native_runner_runs_the_int8_step():
    runner = load_predictor(None, runner="native", int8=True)
    assert isinstance(runner, native.NativeStreamRunner) and runner.int8
    fp32 = load_predictor(None, runner="native")
    primer = list(range(60))
    runner.reset(primer)
    fp32.reset(primer)
    # The two steps are different models (int8 weights and activations): they
    # differ by far more than rounding, which shows the int8 path is the one run.
    assert np.abs(runner.distribution() - fp32.distribution()).max() > 1e-4


def _int8_parity(path) -> tuple[float, int]:
    bundle = read_bundle(path)
    rng = np.random.default_rng(7)
    onnx, ours = StreamRunner(bundle, "stream_int8"), native.NativeStreamRunner(bundle, int8=True)
    primers = _primers(bundle.window, bundle.vocab_size, rng)
    return compare_stream(onnx, ours, primers, STEPS, rng)


def test_the_bundled_model_steps_as_onnxruntime_int8_does():
    """The int8 step against stream_int8 on onnxruntime, across the re-priming
    (where the graph quantizes both rows of its batch together)."""
    worst, compared = _int8_parity(bundled_model_path())
    assert compared == 7 * STEPS
    assert worst <= 1e-7  # the same quantized products: only the softmax's rounding differs


def test_the_bundled_model_records_its_int8_check():
    record = read_bundle(bundled_model_path()).manifest["native"]["int8"]
    assert record["kept"] and record["graph"] == "stream_int8.onnx"
    parity = record["parity"]
    assert parity["step"] == "native int8" and parity["passed"]
    assert parity["max_abs_diff"] <= TOLERANCE and parity["stream_max_abs_diff"] <= TOLERANCE
    assert parity["argmax_equal"] == parity["comparisons"]


@pytest.mark.slow
@pytest.mark.parametrize("preset", ["seed", "default"])
def test_each_preset_steps_as_onnxruntime_int8_does(tiny_bundles, preset):
    bundle = read_bundle(tiny_bundles[preset])
    if "stream_int8" not in bundle.graphs:
        pytest.skip(f"the {preset} tiny bundle's int8 graphs were dropped at export")
    assert bundle.manifest["native"]["int8"]["kept"]
    worst, _ = _int8_parity(tiny_bundles[preset])
    assert worst <= TOLERANCE


def test_the_int8_kernels_follow_both_rules():
    """The int8 products (AVX2, VNNI where the CPU has it, portable) against
    each rule (pairs of rows saturated to int16; exact), on shapes and values
    where the pairs saturate."""
    program = require_program("cadenza_int8_kernel_test")
    done = subprocess.run([str(program)], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stdout + done.stderr
    words = done.stdout.split()  # "N columns equal under each rule, M of them saturated; ..."
    checked, saturated = int(words[0]), int(words[6])
    assert checked > 8000 and 0 < saturated < checked


@pytest.mark.slow
@pytest.mark.parametrize("gates", ["sigmoid", "hard_sigmoid"])
def test_the_seed_presets_scalar_input_int8_steps_as_onnxruntime_does(tmp_path, gates):
    """The seed preset's scalar input and left-fill through the int8 graph
    (kept whatever its accuracy: it is the graph's arithmetic under test), with
    sigmoid and Keras 2's hard-sigmoid gates."""
    from cadenza.config import ExportConfig
    from cadenza.export.writer import export_bundle
    from tests.support.bundle_factory import make_model_folder

    folder = make_model_folder(tmp_path / "m", "seed", recurrent_activation=gates)
    export_bundle(folder, tmp_path / "b", ExportConfig(int8=True, max_int8_accuracy_drop=0.99))
    record = read_bundle(tmp_path / "b").manifest["native"]["int8"]
    assert record["kept"], record
    assert record["parity"]["max_abs_diff"] <= TOLERANCE
    worst, _ = _int8_parity(tmp_path / "b")
    assert worst <= TOLERANCE


def test_nothing_is_allocated_or_locked_by_the_int8_step():
    out = _allocations(bundled_model_path(), "int8")
    assert out.startswith("int8 steps") and "malloc 0 calloc 0 realloc 0 free 0 mutex_lock 0" in out


def test_an_unbuilt_library_is_one_line_saying_how_to_build_it(monkeypatch, tmp_path):
    monkeypatch.setattr(native, "_LIB", None)
    monkeypatch.setattr(native, "library_candidates", lambda: [tmp_path / "none.so"])
    with pytest.raises(native.NativeError, match="make native") as caught:
        native.load_library()
    assert "\n" not in str(caught.value)
    assert main(["simulate", "--runner", "native", "--out", str(tmp_path / "x.mid")]) != 0


def test_native_weights_command_adds_the_file(tmp_path):
    bundle = tmp_path / "bundle"
    shutil.copytree(bundled_model_path(), bundle)
    (bundle / "native.bin").unlink()
    with pytest.raises(Exception, match="native weights missing"):
        native.NativeStreamRunner(read_bundle(bundle))
    assert main(["native-weights", str(bundle)]) == 0
    assert (bundle / "native.bin").read_bytes() == (bundled_model_path() / "native.bin").read_bytes()
    assert read_bundle(bundle).manifest["native"]["parity"]["passed"]


@pytest.mark.slow
def test_a_failed_native_check_leaves_no_weights_and_says_so(tiny_bundles):
    """The long-memory model (weights x3) carries float rounding far: where
    its native check fails (it does on this machine, by 1.3e-5 against 1e-5),
    the export still succeeds, without native.bin, and says why."""
    bundle = read_bundle(tiny_bundles["sensitive"])
    record = bundle.manifest["native"]
    if record["parity"]["passed"]:
        assert (bundle.path / record["file"]).is_file()
        native.NativeStreamRunner(bundle)
    else:
        assert record["file"] is None and not (bundle.path / "native.bin").exists()
        assert record["parity"]["max_abs_diff"] > TOLERANCE
        with pytest.raises(BundleError, match="did not match the stream graph"):
            native.NativeStreamRunner(bundle)


def test_evaluate_scores_the_native_step_as_the_stream_runner(tmp_path):
    from tests.offline.test_evaluate import SCALES, evaluate, write_piece

    write_piece(tmp_path / "pieces" / "g_major.mid", SCALES["g"])
    write_piece(tmp_path / "pieces" / "d_major.mid", SCALES["d"])
    code, ours = evaluate(tmp_path / "n", [tmp_path / "pieces"], "--runner", "native")
    assert code == 0
    _, theirs = evaluate(tmp_path / "s", [tmp_path / "pieces"], "--runner", "stream")
    assert ours["rows"] == theirs["rows"]
    assert ours["next_token"]["accuracy"] == theirs["next_token"]["accuracy"]
    assert ours["next_token"]["loss"] == pytest.approx(theirs["next_token"]["loss"], abs=1e-5)


def test_bench_times_the_native_step_in_turn_with_onnxruntimes():
    from cadenza.export.bench import format_table, run_benchmark

    results = run_benchmark(bundled_model_path(), calls=30, notes=8)
    for name in ("native_stream", "onnx_stream_paired", "native_stream_alone"):
        r = results[name]
        assert r["calls"] == 30 and 0 < r["p50_ms"] <= r["p99_ms"] <= r["max_ms"]
    ratio = results["native_vs_onnx_stream"]
    assert ratio["p99_ms"] == pytest.approx(
        results["onnx_stream_paired"]["p99_ms"] / results["native_stream"]["p99_ms"])
    alone = results["native_vs_onnx_stream_alone"]
    assert alone["p50_ms"] == pytest.approx(
        results["onnx_stream"]["p50_ms"] / results["native_stream_alone"]["p50_ms"])
    assert "native step against onnxruntime's stream step" in format_table(results)
