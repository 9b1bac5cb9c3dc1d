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

Where the bundle keeps an int8 stream graph, the file also carries its int8
weights (the int8 section), checked the same way against ``stream_int8`` on
onnxruntime with the native int8 step, and recorded under ``native.int8``.
The section is kept only if that check passes; it needs the built library
(there is no numpy int8 step), and without it the file is written without
the section and the record says why.
"""

from __future__ import annotations

import dataclasses
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
from cadenza.export.native_weights import from_bundle, int8_from_bundle
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
    tolerance: float = NATIVE_TOLERANCE, int8: bool = False,
) -> dict[str, Any]:
    """Compare the native step on ``path`` with the bundle's stream graph (with
    ``int8``, its int8 step with ``stream_int8``); the record."""
    from cadenza import native

    windows = _windows(bundle, windows)
    kind = "stream_int8" if int8 else "stream"
    onnx = StreamRunner(bundle, kind)
    if int8:
        # Each window on its own through the runner's batch of two, as the
        # daemon runs it: predict_windows batches many windows into one run,
        # and the int8 graph quantizes each activation over its whole batch,
        # so a batched run is not what the live runner computes.
        reference = []
        for row in windows.tolist():
            onnx.reset(row)
            reference.append(onnx.distribution())
        reference = np.asarray(reference)
    else:
        reference = _normalised(predict_windows(onnx, windows))
    steps = 0
    if int8 and not native.available():
        raise ExportError(f"{bundle.path}: the int8 section is checked by the native step, "
                          "and the native library is not built (make native)")
    if native.available():
        step = "native int8" if int8 else "native"
        runner = native.NativeStreamRunner(bundle, native_path=path, int8=int8)
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
            f"{bundle.path / native_format.NATIVE_FILE}: the {step} step does not match "
            f"{bundle.graph(kind).path.name}: "
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
    weights = from_bundle(bundle)
    data = native_format.encode(weights)
    target = folder / native_format.NATIVE_FILE
    partial = folder / f".{native_format.NATIVE_FILE}.partial"
    partial.write_bytes(data)
    int8_record = None
    try:
        record = check_native(bundle, partial, windows)
        if "stream_int8" in bundle.graphs:
            data, int8_record = _with_int8(bundle, weights, partial, windows, data)
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
    if int8_record is not None:
        manifest["native"]["int8"] = int8_record
    write_json_atomic(folder / MANIFEST, manifest)
    try:
        read_bundle(folder)
    except BundleError as err:  # cannot happen unless the manifest was changed meanwhile
        raise ExportError(f"{folder / MANIFEST}: does not read back after adding native weights: {err}") from err
    log.info("%s: native weights %s (%d bytes), max |dp| %.2e against the stream graph (%s)",
             folder, native_format.NATIVE_FILE, len(data), record["max_abs_diff"], record["step"])
    return manifest["native"]


def _with_int8(bundle: Bundle, weights: native_format.NativeWeights, partial: Path,
               windows: np.ndarray | None, data: bytes) -> tuple[bytes, dict[str, Any]]:
    """Add the int8 section to the file at ``partial`` if the native int8 step
    matches ``stream_int8``: (the file's bytes, the record)."""
    graph = bundle.graph("stream_int8").path.name
    try:
        with_int8 = native_format.encode(
            dataclasses.replace(weights, int8=int8_from_bundle(bundle, weights)))
        partial.write_bytes(with_int8)
        record = check_native(bundle, partial, windows, int8=True)
    except NativeCheckError as err:
        log.warning("%s; the native weights get no int8 section", err)
        partial.write_bytes(data)
        return data, {"kept": False, "graph": graph, "reason": str(err), "parity": err.record}
    except ExportError as err:
        log.warning("%s; the native weights get no int8 section", err)
        partial.write_bytes(data)
        return data, {"kept": False, "graph": graph, "reason": str(err), "parity": None}
    return with_int8, {"kept": True, "graph": graph, "parity": record}


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
