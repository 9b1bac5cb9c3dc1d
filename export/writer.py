"""Export a trained model folder to a bundle: convert, check parity, quantize, place.

The bundle is built in a temporary folder beside the target and renamed into
place only after parity passed and the finished manifest reads back through
``cadenza.bundle.read_bundle``, the daemon's own reader.  A failed export
leaves no half bundle, and an existing good bundle stays untouched.
"""

from __future__ import annotations

import logging
import os
import shutil
import tempfile
import time
from datetime import datetime, timezone
from importlib import metadata
from pathlib import Path
from typing import Any

from cadenza import __version__
from cadenza.batch import predict_windows
from cadenza.bundle import FORMAT, FORMAT_VERSION, MANIFEST, read_bundle, write_json_atomic
from cadenza.config import GRAPH_RUNNERS, ExportConfig
from cadenza.errors import ExportError
from cadenza.export import convert, native_bundle, parity, quantize
from cadenza.export.source import TrainedModel, keras_predict, load_trained
from cadenza.runtime import StreamRunner, WindowRunner
from cadenza.tokens import SCHEME_VERSION
from cadenza.trained import PRIMER_COUNT

log = logging.getLogger(__name__)



def _versions() -> dict[str, str | None]:
    versions: dict[str, str | None] = {"cadenza": __version__}
    for package in ("tensorflow", "keras", "tf2onnx", "onnx", "onnxruntime"):
        try:
            versions[package] = metadata.version(package)
        except metadata.PackageNotFoundError:
            versions[package] = None
    return versions


def _metrics(report: dict[str, Any]) -> dict[str, Any]:
    """The training report's figures of merit (``train_accuracy``, ``test_loss``, ...)."""
    if isinstance(report.get("metrics"), dict):
        return dict(report["metrics"])
    return {
        key: value
        for key, value in report.items()
        if key.endswith(("_accuracy", "_loss")) or key == "best_epoch"
    }


def _portable_path(path: str) -> str:
    """A training file's path as the bundle keeps it: no machine's own folders.

    A relative path (as the source named it) stays; an absolute one keeps
    its last two parts (a corpus's folder and the file), enough to find it.
    """
    candidate = Path(path)
    return path if not candidate.is_absolute() else Path(*candidate.parts[-2:]).as_posix()


def portable_report(report: dict[str, Any]) -> dict[str, Any]:
    """The training report without absolute paths of the machine that trained it."""
    copy = dict(report)
    if isinstance(copy.get("test_pieces"), list):
        copy["test_pieces"] = [_portable_path(str(p)) for p in copy["test_pieces"]]
    for key in ("files", "files_skipped"):
        if isinstance(copy.get(key), list):
            copy[key] = [{**entry, "file": _portable_path(str(entry["file"]))}
                         if isinstance(entry, dict) and "file" in entry else entry
                         for entry in copy[key]]
    if isinstance(copy.get("sources"), list):
        copy["sources"] = [_portable_path(str(s)) for s in copy["sources"]]
    return copy


def build_manifest(
    trained: TrainedModel, graphs: dict[str, Any], notice: str = ""
) -> dict[str, Any]:
    vocabulary = list(trained.vocabulary)
    encoding: dict[str, Any] = {"kind": trained.input_encoding}
    if trained.input_encoding == "scalar":
        # The graphs take indices and divide by the scale themselves.
        encoding |= {"scale": trained.input_scale, "in_graph": True}
    report = portable_report(trained.report)
    return {
        "format": FORMAT,
        "format_version": FORMAT_VERSION,
        "token_scheme": SCHEME_VERSION,
        "preset": trained.preset,
        "vocabulary": vocabulary,
        "window": trained.window,
        "input_encoding": encoding,
        "state": {"names": list(convert.STATE_NAMES), "size": trained.lstm_units},
        "graphs": graphs,
        "primers": [
            [vocabulary[i] for i in window] for window in trained.heldout_windows[:PRIMER_COUNT].tolist()
        ],
        "notice": notice,
        "training": {"report": report, "config": report.get("config")},
        "data_digest": report.get("data_digest"),
        "metrics": _metrics(report),
        "parity": None,
        "int8": {"requested": False},
        "versions": _versions(),
        "created": datetime.now(timezone.utc).isoformat(timespec="seconds"),
    }


def _check_target(out: Path) -> None:
    """Refuse to replace anything but a bundle (or an empty folder)."""
    if not out.exists():
        return
    if not out.is_dir():
        raise ExportError(f"{out}: exists and is not a folder; refusing to replace it")
    if any(out.iterdir()) and not (out / MANIFEST).is_file():
        raise ExportError(f"{out}: exists and is not a model bundle; refusing to replace it")


def _place(built: Path, out: Path) -> None:
    """Rename ``built`` to ``out``; an old bundle is moved aside first and deleted after."""
    built.chmod(0o755)  # mkdtemp made it private; a bundle is read by other users' daemons
    if not out.exists():
        os.replace(built, out)
        return
    aside = Path(tempfile.mkdtemp(prefix=f".{out.name}.old-", dir=out.parent))
    os.replace(out, aside / out.name)
    try:
        os.replace(built, out)
    except OSError:
        os.replace(aside / out.name, out)  # put the good bundle back
        shutil.rmtree(aside, ignore_errors=True)
        raise
    shutil.rmtree(aside, ignore_errors=True)


def _int8(
    trained: TrainedModel,
    folder: Path,
    manifest: dict[str, Any],
    fp32_probs: dict[str, Any],
    max_drop: float,
) -> dict[str, Any]:
    """Quantize both graphs; evaluate and keep or drop each; the manifest's "int8" record."""
    record: dict[str, Any] = {"requested": True, "max_accuracy_drop": max_drop, "graphs": {}}
    for kind in GRAPH_RUNNERS:
        int8_kind, file = f"{kind}_int8", f"{kind}_int8.onnx"
        quantize.quantize(folder / manifest["graphs"][kind]["file"], folder / file)
        manifest["graphs"][int8_kind] = dict(manifest["graphs"][kind], file=file)
    write_json_atomic(folder / MANIFEST, manifest)
    bundle = read_bundle(folder)
    decisions = []
    # Every twin is judged before any is dropped: a default-preset window
    # runner opens the stream twin too (for histories shorter than the window).
    for kind in GRAPH_RUNNERS:
        int8_kind = f"{kind}_int8"
        runner = StreamRunner(bundle, int8_kind) if kind == "stream" else WindowRunner(bundle, int8_kind)
        decisions.append((int8_kind, quantize.decide(
            int8_kind,
            manifest["graphs"][int8_kind]["file"],
            fp32_probs[kind],
            predict_windows(runner, trained.heldout_windows),
            trained.heldout_targets,
            max_drop,
        )))
    for int8_kind, decision in decisions:
        record["graphs"][int8_kind] = decision.as_dict()
        if not decision.kept:
            del manifest["graphs"][int8_kind]
            (folder / decision.file).unlink()
    return record


def export_bundle(model_dir: str | Path, out: str | Path, config: ExportConfig) -> dict[str, Any]:
    """Export ``model_dir`` to the bundle folder ``out``; the manifest written."""
    started = time.perf_counter()
    out = Path(out).absolute()
    _check_target(out)
    trained = load_trained(model_dir)
    out.parent.mkdir(parents=True, exist_ok=True)
    folder = Path(tempfile.mkdtemp(prefix=f".{out.name}.partial-", dir=out.parent))
    try:
        graphs = convert.export_graphs(trained, folder, config.opset)
        manifest = build_manifest(trained, graphs, config.notice)
        write_json_atomic(folder / MANIFEST, manifest)
        bundle = read_bundle(folder)
        windows, targets = trained.heldout_windows, trained.heldout_targets
        probs = {
            "window": predict_windows(WindowRunner(bundle), windows),
            "stream": predict_windows(StreamRunner(bundle), windows),
        }
        keras_probs = keras_predict(trained.model, windows, trained.input_encoding, trained.input_scale)
        manifest["parity"] = parity.check_parity(
            keras_probs, probs["window"], probs["stream"], config.tolerance
        )
        manifest["parity"]["heldout_accuracy"] = {
            kind: float((p.argmax(axis=1) == targets).mean()) for kind, p in probs.items()
        }
        if config.int8:
            manifest["int8"] = _int8(trained, folder, manifest, probs, config.max_int8_accuracy_drop)
        write_json_atomic(folder / MANIFEST, manifest)
        manifest["native"] = native_bundle.export_native(folder, windows)
        read_bundle(folder)  # the finished bundle must read back before it replaces anything
        _place(folder, out)
    except BaseException:
        shutil.rmtree(folder, ignore_errors=True)
        raise
    log.info(
        "wrote %s (%s) in %.1f s", out, ", ".join(manifest["graphs"]), time.perf_counter() - started
    )
    return manifest
