"""Reading the trainer's model folder: the Keras model and the files beside it.

A model folder holds ``model.keras``, ``vocab.json`` (token scheme and the
vocabulary in index order), ``report.json`` (preset, window, input encoding,
metrics, config, data digest) and ``heldout.json`` (held-out windows and
their targets, as vocabulary indices).  Everything is checked against
everything else here, before any conversion starts.
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from cadenza.bundle import INPUT_ENCODINGS
from cadenza.errors import DataError, ExportError
from cadenza.train.vocab import load_vocabulary
from cadenza.trained import (
    HELDOUT_FILE,
    LSTM_1,
    MODEL_FILE,
    REPORT_FILE,
    REQUIRED_LAYERS,
    VOCAB_FILE,
)

log = logging.getLogger(__name__)



@dataclass(frozen=True)
class TrainedModel:
    path: Path
    model: Any  # keras.Model; typed loosely so this module imports without Keras
    preset: str
    vocabulary: tuple[str, ...]
    window: int
    input_encoding: str  # "scalar" (index / input_scale) or "embedding"
    input_scale: float
    lstm_units: int
    report: dict[str, Any]
    heldout_windows: np.ndarray  # [n, window] int64
    heldout_targets: np.ndarray  # [n] int64

    @property
    def vocab_size(self) -> int:
        return len(self.vocabulary)


def read_json(path: Path) -> Any:
    if not path.is_file():
        raise ExportError(f"{path}: missing from the model folder")
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as err:
        raise ExportError(f"{path}: corrupt JSON: {err}") from err


def load_keras_model(path: Path) -> Any:
    """The Keras model of a model folder, for inference only."""
    import keras

    import cadenza.train.activations  # noqa: F401  (registers the gate activations a model may name)

    model_path = path / MODEL_FILE
    if not model_path.is_file():
        raise ExportError(f"{model_path}: missing; {path} is not a trained model folder")
    try:
        return keras.models.load_model(model_path, compile=False)
    except Exception as err:  # Keras wraps zip, HDF5 and config errors in many types
        raise ExportError(f"{model_path}: cannot load the Keras model: {err}") from err


def _vocabulary(path: Path) -> tuple[str, ...]:
    # The trainer's own reader checks vocab.json; here its refusal is an export error.
    try:
        return load_vocabulary(path / VOCAB_FILE).tokens
    except DataError as err:
        raise ExportError(str(err)) from err


def _heldout(path: Path, window: int, vocab_size: int) -> tuple[np.ndarray, np.ndarray]:
    where = path / HELDOUT_FILE
    doc = read_json(where)
    try:
        windows = np.asarray(doc["windows"], dtype=np.int64)
        targets = np.asarray(doc["targets"], dtype=np.int64)
    except (KeyError, TypeError, ValueError) as err:
        raise ExportError(f"{where}: expected 'windows' (lists of indices) and 'targets'") from err
    if windows.ndim != 2 or len(windows) == 0 or windows.shape[1] != window:
        raise ExportError(
            f"{where}: expected a non-empty list of {window}-token windows, got shape "
            f"{windows.shape}"
        )
    if targets.shape != (len(windows),):
        raise ExportError(f"{where}: {len(windows)} windows but {targets.size} targets")
    for name, array in (("windows", windows), ("targets", targets)):
        if array.min() < 0 or array.max() >= vocab_size:
            raise ExportError(f"{where}: {name} hold indices outside the vocabulary (0..{vocab_size - 1})")
    return windows, targets


def load_trained(path: str | Path) -> TrainedModel:
    """Read and cross-check a trained model folder."""
    path = Path(path)
    if not path.is_dir():
        raise ExportError(f"{path}: no such trained model folder")
    vocabulary = _vocabulary(path)
    report = read_json(path / REPORT_FILE)
    if not isinstance(report, dict):
        raise ExportError(f"{path / REPORT_FILE}: expected a JSON object")
    model = load_keras_model(path)
    names = {layer.name for layer in model.layers}
    missing = REQUIRED_LAYERS - names
    if missing:
        raise ExportError(f"{path / MODEL_FILE}: no layer named {', '.join(sorted(missing))}")
    vocab_size = int(model.get_layer("probs").units)
    if vocab_size != len(vocabulary):
        raise ExportError(
            f"{path / MODEL_FILE}: the model predicts {vocab_size} tokens but "
            f"{path / VOCAB_FILE} lists {len(vocabulary)}"
        )
    encoding = report.get("input_encoding") or ("embedding" if "embedding" in names else "scalar")
    if encoding not in INPUT_ENCODINGS or (encoding == "embedding") != ("embedding" in names):
        raise ExportError(f"{path / REPORT_FILE}: input_encoding {encoding!r} does not fit the model")
    preset = report.get("preset") or ("default" if encoding == "embedding" else "seed")
    window = report.get("window", model.input_shape[1])
    if not isinstance(window, int) or isinstance(window, bool) or window < 1:
        raise ExportError(f"{path / REPORT_FILE}: 'window' must be a positive integer")
    if encoding == "scalar" and model.input_shape[1] != window:
        raise ExportError(
            f"{path / MODEL_FILE}: the model takes {model.input_shape[1]} steps but "
            f"{path / REPORT_FILE} says the window is {window}"
        )
    scale = float(report.get("input_scale") or len(vocabulary)) if encoding == "scalar" else 1.0
    windows, targets = _heldout(path, window, len(vocabulary))
    lstm_units = int(model.get_layer(LSTM_1).units)
    if int(model.get_layer("lstm_2").units) != lstm_units:
        raise ExportError(f"{path / MODEL_FILE}: lstm_1 and lstm_2 differ in size")
    log.info(
        "model %s: preset %s, %d tokens, window %d, LSTM %d, %d held-out windows",
        path, preset, len(vocabulary), window, lstm_units, len(windows),
    )
    return TrainedModel(
        path=path,
        model=model,
        preset=preset,
        vocabulary=vocabulary,
        window=window,
        input_encoding=encoding,
        input_scale=scale,
        lstm_units=lstm_units,
        report=report,
        heldout_windows=windows,
        heldout_targets=targets,
    )


def keras_inputs(windows: np.ndarray, encoding: str, scale: float) -> np.ndarray:
    """What the original fed ``model.predict`` for these index windows."""
    windows = np.asarray(windows)
    if encoding == "scalar":
        return (windows[..., None] / scale).astype(np.float32)
    return windows.astype(np.int32)


def keras_predict(model: Any, windows: np.ndarray, encoding: str, scale: float) -> np.ndarray:
    """The Keras model's next-token probabilities after each window, [n, V]."""
    probs = model.predict(keras_inputs(windows, encoding, scale), verbose=0, batch_size=256)
    # The default preset predicts at every position; the last is "the next token".
    return probs[:, -1, :] if probs.ndim == 3 else probs
