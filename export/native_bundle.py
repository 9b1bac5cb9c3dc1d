"""Add native weights to a bundle, checked against its ONNX stream graph.

The check, recorded in ``model.json`` under ``native``: on held-out windows
(the exporter's, else the bundle's primers, which are held-out windows too)
the native step streamed from zero state must give the stream graph's
distribution within ``NATIVE_TOLERANCE`` and the same top choice.  Then one
long stream is fed token by token through both runners past the 2 * window
re-priming: its top choices must agree at every step (ties aside), and its
max |dp| is recorded.  It is not held to the tolerance: over a long stream an
LSTM with a long memory carries each runner's float rounding forward, and on
such a model onnxruntime's own step drifts as far from the exact float32
computation as the native step does.  The native step is the built library
where there is one; without it the numpy reference step (the file's meaning
in numpy) checks the file, and the record says which.
"""

from __future__ import annotations

import logging
import os
import zlib
from pathlib import Path
from typing import Any

import numpy as np

from cadenza import native_format, native_reference
from cadenza.batch import predict_windows
from cadenza.bundle import MANIFEST, Bundle, read_bundle, write_json_atomic
from cadenza.errors import BundleError, ExportError
from cadenza.export import parity
from cadenza.export.native_weights import from_bundle
from cadenza.runtime import StreamRunner

log = logging.getLogger(__name__)

NATIVE_TOLERANCE = 1e-5


class NativeCheckError(ExportError):
    """The native step does not match the stream graph; ``record`` says how far."""

    def __init__(self, message: str, record: dict[str, Any]) -> None:
        super().__init__(message)
        self.record = record
STREAM_STEPS = 320  # past 2 * window for the bundled window of 50, and for the tiny ones


def _windows(bundle: Bundle, windows: np.ndarray | None) -> np.ndarray:
    if windows is not None and len(windows):
        return np.asarray(windows, dtype=np.int64)
    index = {token: i for i, token in enumerate(bundle.vocabulary)}
    rows = [[index[t] for t in p[-bundle.window :]] for p in bundle.primers if len(p) >= bundle.window]
    if not rows:
        raise ExportError(
            f"{bundle.path / MANIFEST}: no held-out windows to check native weights on "
            f"(no primer of {bundle.window} tokens)"
        )
    return np.asarray(rows, dtype=np.int64)


def _normalised(probs: np.ndarray) -> np.ndarray:
    out = np.asarray(probs, dtype=np.float64)
    return out / out.sum(axis=-1, keepdims=True)


def _stream_tokens(windows: np.ndarray, steps: int) -> list[int]:
    tokens = windows.reshape(-1).tolist()
    while len(tokens) < steps:
        tokens += tokens
    return tokens[:steps]


def check_native(
    bundle: Bundle, path: Path, windows: np.ndarray | None = None,
    tolerance: float = NATIVE_TOLERANCE,
) -> dict[str, Any]:
    """Compare the native step on ``path`` with the bundle's stream graph; the record."""
    from cadenza import native

    windows = _windows(bundle, windows)
    onnx = StreamRunner(bundle)
    reference = _normalised(predict_windows(onnx, windows))
    steps = 0
    if native.available():
        step = "native"
        runner = native.NativeStreamRunner(bundle, native_path=path)
        got = []
        for row in windows.tolist():
            runner.reset(row)
            got.append(runner.distribution())
        by_window = parity.compare("native vs stream", reference, np.asarray(got), tolerance)
        tokens = _stream_tokens(windows, STREAM_STEPS)
        onnx.reset()
        runner.reset()
        expected, found = [], []
        for token in tokens:
            onnx.feed(token)
            runner.feed(token)
            expected.append(onnx.distribution())
            found.append(runner.distribution())
        steps = len(tokens)
        along = parity.compare("native stream", np.asarray(expected), np.asarray(found), tolerance)
        comparisons = [by_window, along]
        ties_ok = along.argmax_equal + along.argmax_ties == along.windows
    else:
        step = "numpy reference (native library not built)"
        log.warning("%s: the native library is not built; checking %s with the numpy reference "
                    "step instead (build it: make native)", bundle.path, path.name)
        weights = native_format.read(path, bundle.vocabulary)
        got = [native_reference.probabilities(weights, row) for row in windows.tolist()]
        comparisons = [parity.compare("native vs stream", reference, _normalised(np.asarray(got)),
                                      tolerance)]
        ties_ok = True
    for c in comparisons:
        log.info("%s", parity.table_line(c))
    record = {
        "step": step,
        "windows": len(windows),
        "stream_steps": steps,
        "max_abs_diff": comparisons[0].max_abs_diff,
        "stream_max_abs_diff": comparisons[1].max_abs_diff if steps else None,
        "argmax_equal": sum(c.argmax_equal for c in comparisons),
        "argmax_ties": sum(c.argmax_ties for c in comparisons),
        "comparisons": sum(c.windows for c in comparisons),
        "tolerance": tolerance,
        "passed": comparisons[0].passed and ties_ok,
    }
    if not record["passed"]:
        raise NativeCheckError(
            f"{bundle.path / native_format.NATIVE_FILE}: the native step does not match "
            f"{bundle.graph('stream').path.name}: "
            f"max |dp| {record['max_abs_diff']:.2e} (limit {tolerance:.0e}), argmax differs on "
            f"{record['comparisons'] - record['argmax_equal'] - record['argmax_ties']} of "
            f"{record['comparisons']}",
            record,
        )
    return record


def write_native(folder: str | Path, windows: np.ndarray | None = None) -> dict[str, Any]:
    """Write ``native.bin`` into the bundle at ``folder``, check it, record it in the manifest.

    The file is written under a temporary name and renamed into place only
    after its check passed, so a bundle never holds an unchecked file.
    """
    folder = Path(folder)
    bundle = read_bundle(folder)
    data = native_format.encode(from_bundle(bundle))
    target = folder / native_format.NATIVE_FILE
    partial = folder / f".{native_format.NATIVE_FILE}.partial"
    partial.write_bytes(data)
    try:
        record = check_native(bundle, partial, windows)
        os.replace(partial, target)
    except BaseException:
        partial.unlink(missing_ok=True)
        raise
    manifest = dict(bundle.manifest)
    manifest["native"] = {
        "file": native_format.NATIVE_FILE,
        "format_version": native_format.FORMAT_VERSION,
        "bytes": len(data),
        "crc32": f"{zlib.crc32(data[:-4]):08x}",  # as stored in the file's last 4 bytes
        "parity": record,
    }
    write_json_atomic(folder / MANIFEST, manifest)
    try:
        read_bundle(folder)
    except BundleError as err:  # cannot happen unless the manifest was changed meanwhile
        raise ExportError(f"{folder / MANIFEST}: does not read back after adding native weights: {err}") from err
    log.info("%s: native weights %s (%d bytes), max |dp| %.2e against the stream graph (%s)",
             folder, native_format.NATIVE_FILE, len(data), record["max_abs_diff"], record["step"])
    return manifest["native"]


def export_native(folder: Path, windows: np.ndarray) -> dict[str, Any]:
    """``write_native`` for ``cadenza export``: a model whose native step fails
    its check still exports (the daemon runs it on onnxruntime), without the
    file, and the manifest records the failed check."""
    try:
        return write_native(folder, windows)
    except NativeCheckError as err:
        log.warning("%s; the bundle gets no native weights", err)
        record = {"file": None, "format_version": native_format.FORMAT_VERSION,
                  "parity": err.record}
        manifest = read_bundle(folder).manifest | {"native": record}
        write_json_atomic(Path(folder) / MANIFEST, manifest)
        return record
