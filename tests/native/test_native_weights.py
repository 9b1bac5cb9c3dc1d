"""native.bin, bad and broken: both loaders (numpy's and the C++ one, through
ctypes) refuse a missing, short, corrupt, misshapen, foreign-vocabulary or
other-version file with a message naming the file and the problem, and a
fuzzed file never crashes the native loader."""

from __future__ import annotations

import ctypes
import dataclasses
import shutil
import struct
import subprocess
import zlib
from pathlib import Path

import numpy as np
import pytest

from cadenza import native, native_format
from cadenza.bundle import bundled_model_path, read_bundle
from cadenza.errors import BundleError
from tests.support.native_support import require_native

BUNDLED = bundled_model_path() / native_format.NATIVE_FILE


def _small() -> native_format.NativeWeights:
    """A tiny valid model, so that fuzzing every offset stays quick."""
    rng = np.random.default_rng(3)
    vocab, units, dense = 6, 3, 5

    def f(*shape):
        return rng.standard_normal(shape).astype(np.float32)

    layers = (native_format.Layer(f(2, 4 * units), f(units, 4 * units), f(4 * units)),
              native_format.Layer(f(units, 4 * units), f(units, 4 * units), f(4 * units)))
    return native_format.NativeWeights(
        vocabulary=("C4", "D4", "E4", "0.4.7", "G4", "A4"), window=4, input_kind="embedding",
        input_multiplier=1.0, gate="sigmoid", gate_slope=0.0, gate_offset=0.0,
        fill=(), primer=(1, 2, 3), embedding=f(vocab, 2), layers=layers,
        dense_kernel=f(units, dense), dense_bias=f(dense), out_kernel=f(dense, vocab),
        out_bias=f(vocab))


def _with_crc(data: bytes) -> bytes:
    """``data`` with its checksum made right again: the loaders must then find
    the problem itself, not just a bad checksum."""
    return data[:-4] + struct.pack("<I", zlib.crc32(data[:-4]))


def _both_refuse(data: bytes, path: Path, problem: str) -> None:
    path.write_bytes(data)
    with pytest.raises(BundleError, match=problem) as caught:
        native_format.read(path)
    assert str(path) in str(caught.value)
    if native.available():
        with pytest.raises(BundleError, match=problem) as caught:
            native.NativeWeightsHandle(path)
        assert str(path) in str(caught.value)


def test_a_file_reads_back_as_written(tmp_path):
    weights = _small()
    path = tmp_path / "native.bin"
    native_format.write(path, weights)
    back = native_format.read(path, weights.vocabulary)
    assert back.vocabulary == weights.vocabulary and back.primer == (1, 2, 3)
    for (_, what, a), (_, _, b) in zip(back.tensors(), weights.tensors(), strict=True):
        assert np.array_equal(a, b), what
    if native.available():
        handle = native.NativeWeightsHandle(path, weights.vocabulary)
        assert handle.vocabulary == weights.vocabulary and handle.window == 4
        assert handle.primer == (1, 2, 3) and handle.fill == ()


def test_missing_weights_say_how_to_add_them(tmp_path):
    bundle = tmp_path / "bundle"
    shutil.copytree(bundled_model_path(), bundle)
    (bundle / "native.bin").unlink()
    with pytest.raises(BundleError, match=r"native weights missing.*cadenza native-weights"):
        native_format.read(bundle / "native.bin")
    if native.available():
        with pytest.raises(BundleError, match=r"native.bin: native weights missing"):
            native.NativeStreamRunner(read_bundle(bundle))


def test_short_weights_are_refused(tmp_path):
    data = BUNDLED.read_bytes()
    for keep in (0, 10, 63, 64, len(data) // 2, len(data) - 1):
        _both_refuse(data[:keep], tmp_path / "native.bin", "short")


def test_a_flipped_byte_fails_the_checksum(tmp_path):
    data = bytearray(BUNDLED.read_bytes())
    data[len(data) // 3] ^= 0x10
    _both_refuse(bytes(data), tmp_path / "native.bin", "CRC-32")


@pytest.mark.parametrize("version", [0, 3])
def test_another_format_version_is_refused(tmp_path, version):
    data = bytearray(native_format.encode(_small()))
    data[8:12] = struct.pack("<I", version)
    _both_refuse(_with_crc(bytes(data)), tmp_path / "native.bin", f"format version {version}")


def _version_1(data: bytes) -> bytes:
    """A version 2 file without an int8 section as version 1 wrote it: no flag."""
    body = bytearray(data[:-8])
    body[8:12] = struct.pack("<I", 1)
    body[16:24] = struct.pack("<Q", len(body) + 4)
    return bytes(body) + struct.pack("<I", zlib.crc32(bytes(body)))


def test_a_version_1_file_still_loads(tmp_path):
    data = native_format.encode(_small())
    assert data[-8:-4] == struct.pack("<I", 0)  # the int8 flag: no section
    path = tmp_path / "native.bin"
    path.write_bytes(_version_1(data))
    old = native_format.read(path)
    assert old.int8 is None and old.vocabulary == _small().vocabulary
    np.testing.assert_array_equal(old.out_kernel, _small().out_kernel)
    if native.available():
        assert not native.NativeWeightsHandle(path).has_int8


def test_a_tensor_of_the_wrong_shape_is_refused(tmp_path):
    weights = _small()
    layer = weights.layers[1]
    wrong = dataclasses.replace(weights, layers=(weights.layers[0], native_format.Layer(
        layer.kernel, layer.recurrent[:, :8], layer.bias)))
    _both_refuse(native_format.encode(wrong), tmp_path / "native.bin",
                 "wrong shape: layer 2 recurrent kernel is 3x8, expected 3x12")


def test_weights_of_another_vocabulary_are_refused(tmp_path):
    weights = _small()
    path = tmp_path / "native.bin"
    native_format.write(path, weights)
    other = ("C4", "D4", "E4", "0.4.7", "G4", "B4")
    with pytest.raises(BundleError, match=r"another vocabulary: token 5 is 'A4'") as caught:
        native_format.read(path, other)
    assert str(path) in str(caught.value)
    with pytest.raises(BundleError, match="another vocabulary: 6 tokens, the manifest 5"):
        native_format.read(path, other[:5])
    if native.available():
        with pytest.raises(BundleError, match=r"native.bin: native weights of another vocabulary"):
            native.NativeWeightsHandle(path, other)


def test_a_bundle_with_foreign_weights_is_refused(tmp_path):
    bundle = tmp_path / "bundle"
    shutil.copytree(bundled_model_path(), bundle)
    native_format.write(bundle / "native.bin", _small())
    with pytest.raises(BundleError, match="another vocabulary"):
        native_format.read(bundle / "native.bin", read_bundle(bundle).vocabulary)
    if native.available():
        with pytest.raises(BundleError, match="another vocabulary"):
            native.NativeStreamRunner(read_bundle(bundle))


def _native_verdict(data: bytes) -> str | None:
    try:
        native.NativeWeightsHandle.parse(data, "fuzz.bin")
    except BundleError as err:
        assert str(err).startswith("fuzz.bin: native weights ")
        return str(err)
    return None


def _python_verdict(data: bytes) -> str | None:
    try:
        native_format.decode(data, "fuzz.bin")
    except BundleError as err:
        return str(err)
    return None


def test_fuzzed_files_are_refused_never_crash():
    """Truncated at every offset, and a byte changed at every offset with the
    checksum made right again (so the parser itself is tried): the C++ loader
    refuses or loads, never crashes, and agrees with the Python one."""
    require_native()
    data = native_format.encode(_small())
    for keep in range(len(data)):
        assert _native_verdict(data[:keep]) is not None, keep
    rng = np.random.default_rng(11)
    accepted = 0
    for at in range(len(data) - 4):
        for value in (0x00, 0xFF, int(rng.integers(0, 256))):
            corrupt = bytearray(data)
            corrupt[at] = value if corrupt[at] != value else value ^ 0x01
            corrupt = _with_crc(bytes(corrupt))
            verdict = _native_verdict(corrupt)
            assert (verdict is None) == (_python_verdict(corrupt) is None), (at, verdict)
            accepted += verdict is None
    # Changes inside the weights make another valid model; changes to the
    # structure (header, counts, shapes, tags, strings) must all be refused.
    assert 0 < accepted < 3 * (len(data) - 4)


def test_without_the_library_the_file_is_checked_with_the_numpy_step(tmp_path, monkeypatch):
    from cadenza.export.native_bundle import write_native

    bundle = tmp_path / "bundle"
    shutil.copytree(bundled_model_path(), bundle)
    (bundle / "native.bin").unlink()
    monkeypatch.setattr(native, "available", lambda: False)
    record = write_native(bundle)
    parity = record["parity"]
    assert parity["step"].startswith("numpy reference") and parity["passed"]
    assert parity["stream_steps"] == 0 and parity["max_abs_diff"] <= 1e-5
    # The int8 section is checked by the native int8 step only: without the
    # library the file is the bundled one without it, and the record says why.
    bundled = native_format.read(BUNDLED)
    assert bundled.int8 is not None
    written = (bundle / "native.bin").read_bytes()
    assert written == native_format.encode(dataclasses.replace(bundled, int8=None))
    assert native_format.read(bundle / "native.bin").int8 is None
    assert not record["int8"]["kept"] and "not built" in record["int8"]["reason"]
    assert read_bundle(bundle).manifest["native"] == record


def test_the_loader_reads_no_byte_it_should_not(tmp_path):
    """The C++ loader on corrupted files under valgrind's memcheck (where it is
    installed): no read out of bounds, no use of uninitialised memory."""
    from tests.support.native_support import require_program

    program = require_program("cadenza_fuzz_weights")
    data = native_format.encode(_small())
    rng = np.random.default_rng(5)
    files = []
    for n in range(40):
        corrupt = bytearray(data)
        for _ in range(3):
            corrupt[int(rng.integers(0, len(data) - 4))] = int(rng.integers(0, 256))
        path = tmp_path / f"c{n}.bin"
        path.write_bytes(_with_crc(bytes(corrupt)) if n % 2 else bytes(corrupt)[: n * 30])
        files.append(str(path))
    valgrind = shutil.which("valgrind")
    command = [valgrind, "-q", "--error-exitcode=9"] if valgrind else []
    done = subprocess.run([*command, str(program), *files], capture_output=True, text=True,
                          timeout=300)
    assert done.returncode == 0, done.stderr
    assert "40 files, no crash" in done.stdout


def test_weights_of_another_window_or_fill_are_refused(tmp_path):
    require_native()
    bundle = tmp_path / "bundle"
    shutil.copytree(bundled_model_path(), bundle)
    weights = native_format.read(bundle / "native.bin")
    native_format.write(bundle / "native.bin", dataclasses.replace(weights, window=49))
    with pytest.raises(BundleError, match="native weights of window 49"):
        native.NativeStreamRunner(read_bundle(bundle))
    native_format.write(bundle / "native.bin", dataclasses.replace(weights, fill=(3,) * 50))
    with pytest.raises(BundleError, match="another left-fill"):
        native.NativeStreamRunner(read_bundle(bundle))


def _small_int8(**change) -> native_format.NativeWeights:
    """_small() with an int8 section of the right shapes (random values)."""
    rng = np.random.default_rng(4)
    small = _small()

    def q(shape, scale=0.02):
        return native_format.Quantized(rng.integers(-127, 128, shape).astype(np.int8), scale, 0)

    section = native_format.Int8Weights(
        embedding=native_format.Quantized(rng.integers(0, 256, (6, 2)).astype(np.uint8), 0.01, 113),
        kernels=(q((2, 12)), q((3, 12))), recurrents=(q((3, 12)), q((3, 12))),
        dense_kernel=q((3, 5)), out_kernel=q((5, 6)))
    return dataclasses.replace(small, int8=dataclasses.replace(section, **change))


def test_the_int8_section_reads_back(tmp_path):
    path = tmp_path / "native.bin"
    native_format.write(path, _small_int8())
    back = native_format.read(path).int8
    written = _small_int8().int8
    for (_, what, _, a), (_, _, _, b) in zip(back.tensors(), written.tensors(), strict=True):
        assert a.values.dtype == b.values.dtype and a.scale == np.float32(b.scale), what
        np.testing.assert_array_equal(a.values, b.values)
        assert a.zero_point == b.zero_point
    assert back.embedding.zero_point == 113
    if native.available():
        assert native.NativeWeightsHandle(path).has_int8
        native_format.write(path, _small())
        assert not native.NativeWeightsHandle(path).has_int8


def _q(values, scale=0.02, zero=0):
    return native_format.Quantized(np.asarray(values), scale, zero)


@pytest.mark.parametrize(("change", "problem"), [
    (lambda s: {"dense_kernel": _q(s.dense_kernel.values, zero=3)},
     "int8 dense kernel with zero point 3 \\(expected 0\\)"),
    (lambda s: {"out_kernel": _q(s.out_kernel.values, scale=0.0)},
     "int8 output kernel with scale 0.000000 \\(expected a positive finite number\\)"),
    (lambda s: {"out_kernel": _q(s.out_kernel.values, scale=float("nan"))},
     "int8 output kernel with scale nan"),
    (lambda s: {"recurrents": (s.recurrents[0], _q(np.zeros((4, 12), np.int8)))},
     "wrong shape: int8 layer 2 recurrent kernel is 4x12, expected 3x12"),
    (lambda s: {"embedding": None}, "tensor tag 10 where the int8 embedding \\(tag 9\\) belongs"),
])
def test_a_bad_int8_section_is_refused(tmp_path, change, problem):
    weights = _small_int8()
    weights = dataclasses.replace(weights, int8=dataclasses.replace(weights.int8, **change(weights.int8)))
    _both_refuse(native_format.encode(weights), tmp_path / "native.bin", problem)


def test_an_int8_tensor_of_the_wrong_dtype_or_flag_is_refused(tmp_path):
    data = bytearray(native_format.encode(_small_int8()))
    flag_at = len(native_format.encode(_small())) - 8
    assert data[flag_at:flag_at + 4] == struct.pack("<I", 1)
    wrong = bytearray(data)
    wrong[flag_at:flag_at + 4] = struct.pack("<I", 2)
    _both_refuse(_with_crc(bytes(wrong)), tmp_path / "a.bin", "int8 section flag 2 \\(expected 0..1\\)")
    wrong = bytearray(data)
    wrong[flag_at + 8:flag_at + 12] = struct.pack("<I", 2)  # the embedding's dtype: uint8 -> int8
    _both_refuse(_with_crc(bytes(wrong)), tmp_path / "b.bin",
                 "int8 embedding of dtype 2 \\(expected 3, uint8\\)")


def test_the_int8_step_needs_the_section(tmp_path):
    require_native()
    bundle = tmp_path / "bundle"
    shutil.copytree(bundled_model_path(), bundle)
    weights = native_format.read(bundle / "native.bin")
    native_format.write(bundle / "native.bin", dataclasses.replace(weights, int8=None))
    with pytest.raises(BundleError, match="native weights hold no int8 section") as caught:
        native.NativeStreamRunner(read_bundle(bundle), int8=True)
    assert str(bundle / "native.bin") in str(caught.value)
    native.NativeStreamRunner(read_bundle(bundle))  # the fp32 step still runs


def test_fuzzed_int8_sections_are_refused_never_crash():
    """A byte changed at every offset of the int8 section (checksum made right):
    both loaders agree, the C++ one never crashes, and what loads runs."""
    require_native()
    data = native_format.encode(_small_int8())
    start = len(native_format.encode(_small())) - 8
    accepted = 0
    for at in range(start, len(data) - 4):
        corrupt = bytearray(data)
        corrupt[at] ^= 0xA5
        corrupt = _with_crc(bytes(corrupt))
        verdict = _native_verdict(corrupt)
        assert (verdict is None) == (_python_verdict(corrupt) is None), (at, verdict)
        accepted += verdict is None
    assert 0 < accepted < len(data) - 4 - start


REGRESSIONS = Path(__file__).resolve().parents[2] / "native" / "tests" / "fuzz_regressions"


def _as_the_fuzzer_parses_it(data: bytes) -> bytes:
    """The libFuzzer target's view of an input: its size field and CRC made right."""
    fixed = bytearray(data)
    fixed[16:24] = struct.pack("<Q", len(fixed))
    return _with_crc(bytes(fixed))


def test_the_fuzzers_findings_stay_fixed():
    """Each input the fuzzer once failed on loads or is refused by both loaders
    alike, and what loads runs (nan-exp-shift.bin: NaN weights, where exp's
    2^n was a left shift of a negative int)."""
    require_native()
    files = sorted(REGRESSIONS.glob("*.bin"))
    assert files
    for path in files:
        data = _as_the_fuzzer_parses_it(path.read_bytes())
        verdict = _native_verdict(data)
        assert (verdict is None) == (_python_verdict(data) is None), path.name
        if verdict is None:
            handle = native.NativeWeightsHandle.parse(data, path.name)
            lib, err = handle._lib, ctypes.create_string_buffer(256)
            model = ctypes.c_void_p()
            assert lib.cadenza_model_new(handle._handle, ctypes.byref(model), err, 256) == 0
            primer = (ctypes.c_int32 * 1)(0)
            assert lib.cadenza_model_reset(model, primer, 1, err, 256) == 0
            assert lib.cadenza_model_distribution(model)
            lib.cadenza_model_free(model)


def test_the_fuzzers_findings_stay_fixed_under_the_sanitizers():
    """The same inputs through the libFuzzer build (AddressSanitizer and
    UndefinedBehaviorSanitizer; scripts/fuzz_weights.sh builds it), where it is built."""
    program = Path(__file__).resolve().parents[2] / "build" / "fuzz" / "cadenza_fuzz_weights"
    if not program.exists():
        pytest.skip("the libFuzzer build is not there: scripts/fuzz_weights.sh builds it")
    files = [str(p) for p in sorted(REGRESSIONS.glob("*.bin"))]
    done = subprocess.run([str(program), *files], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr[-2000:]
    assert "runtime error" not in done.stderr and "ERROR: AddressSanitizer" not in done.stderr
