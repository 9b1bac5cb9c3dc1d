"""native.bin, bad and broken: both loaders (numpy's and the C++ one, through
ctypes) refuse a missing, short, corrupt, misshapen, foreign-vocabulary or
other-version file with a message naming the file and the problem, and a
fuzzed file never crashes the native loader."""

from __future__ import annotations

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


def test_another_format_version_is_refused(tmp_path):
    data = bytearray(native_format.encode(_small()))
    data[8:12] = struct.pack("<I", 2)
    _both_refuse(_with_crc(bytes(data)), tmp_path / "native.bin", "format version 2")


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
    assert (bundle / "native.bin").read_bytes() == BUNDLED.read_bytes()
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
