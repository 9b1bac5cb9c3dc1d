"""Keras callbacks of a training run: held-out evaluation, timing, the best checkpoint.

Both presets are judged by the same held-out measure, computed here rather
than by Keras's validation loop: the prediction after the last position of
each held-out window against its target.  The callback writes it into the
epoch's logs as ``val_loss`` and ``val_accuracy`` before the checkpoint and
the CSV logger read them (callbacks run in list order and share one logs
dict).  For the many-to-many preset the per-position figures over the whole
window are logged too, as ``val_seq_loss`` and ``val_seq_accuracy``.
"""

from __future__ import annotations

import logging
import math
import os
import time
from pathlib import Path

import keras
import numpy as np

log = logging.getLogger(__name__)

EPSILON = 1e-7  # Keras clips probabilities the same way in its cross-entropy
EVAL_BATCH = 1024


def evaluate_windows(
    model: keras.Model,
    inputs: np.ndarray,
    targets: np.ndarray,
    sequence_targets: np.ndarray | None = None,
) -> dict[str, float]:
    """Loss and accuracy of the next token after each window (and per position).

    ``sequence_targets`` (n, window), for models that predict at every
    position, adds ``seq_loss`` and ``seq_accuracy`` over all positions.
    """
    total = {"loss": 0.0, "accuracy": 0.0, "seq_loss": 0.0, "seq_accuracy": 0.0}
    count = len(targets)
    for begin in range(0, count, EVAL_BATCH):
        batch = slice(begin, begin + EVAL_BATCH)
        probs = np.asarray(model.predict_on_batch(inputs[batch]), dtype=np.float64)
        last = probs[:, -1, :] if probs.ndim == 3 else probs
        wanted = targets[batch]
        picked = last[np.arange(len(wanted)), wanted]
        total["loss"] += float(-np.log(np.clip(picked, EPSILON, 1.0)).sum())
        total["accuracy"] += float((last.argmax(axis=-1) == wanted).sum())
        if sequence_targets is not None and probs.ndim == 3:
            seq = sequence_targets[batch]
            picked = np.take_along_axis(probs, seq[..., None], axis=-1)[..., 0]
            total["seq_loss"] += float(-np.log(np.clip(picked, EPSILON, 1.0)).mean(axis=1).sum())
            total["seq_accuracy"] += float((probs.argmax(axis=-1) == seq).mean(axis=1).sum())
    result = {k: v / count for k, v in total.items()}
    if sequence_targets is None:
        result.pop("seq_loss")
        result.pop("seq_accuracy")
    return result


class HeldOutEvaluation(keras.callbacks.Callback):
    """Adds the held-out metrics to each epoch's logs, and times the epoch."""

    def __init__(
        self,
        inputs: np.ndarray,
        targets: np.ndarray,
        sequence_targets: np.ndarray | None = None,
    ) -> None:
        super().__init__()
        self.inputs = inputs
        self.targets = targets
        self.sequence_targets = sequence_targets
        self.epoch_seconds: list[float] = []
        self.eval_seconds: list[float] = []
        self._started = 0.0

    def on_epoch_begin(self, epoch: int, logs: dict | None = None) -> None:
        self._started = time.perf_counter()

    def on_epoch_end(self, epoch: int, logs: dict | None = None) -> None:
        trained = time.perf_counter()
        self.epoch_seconds.append(trained - self._started)
        metrics = evaluate_windows(self.model, self.inputs, self.targets, self.sequence_targets)
        self.eval_seconds.append(time.perf_counter() - trained)
        if logs is not None:
            logs.update({f"val_{name}": value for name, value in metrics.items()})
            logs["seconds"] = self.epoch_seconds[-1]
            logs["eval_seconds"] = self.eval_seconds[-1]
        log.info(
            "epoch %d: loss %.4f accuracy %.4f | held-out loss %.4f accuracy %.4f | %.1f s",
            epoch + 1,
            (logs or {}).get("loss", math.nan),
            (logs or {}).get("accuracy", math.nan),
            metrics["loss"],
            metrics["accuracy"],
            self.epoch_seconds[-1],
        )


class BestCheckpoint(keras.callbacks.Callback):
    """Tracks the epoch of lowest ``val_loss``, and saves its model atomically.

    The model is written under a temporary name and renamed over the old
    file, so an interrupted or failed save never leaves a corrupt model
    where a good one was.  ``save=False`` only tracks (a preset that keeps
    its last epoch still reports which epoch was best).
    """

    def __init__(self, path: Path, save: bool = True) -> None:
        super().__init__()
        self.path = Path(path)
        self.save = save
        self.best = math.inf
        self.best_epoch = 0

    def on_epoch_end(self, epoch: int, logs: dict | None = None) -> None:
        current = (logs or {}).get("val_loss", math.nan)
        if not current < self.best:  # also false for NaN
            return
        self.best = float(current)
        self.best_epoch = epoch + 1
        if not self.save:
            return
        save_atomic(self.model, self.path)
        log.debug("epoch %d: held-out loss improved to %.4f; saved %s", epoch + 1, current, self.path)


class ResumeCheckpoint(keras.callbacks.Callback):
    """After every epoch, the whole model and the run's state, so a killed run can resume.

    It runs after the best checkpoint and the CSV logger, so the state it
    writes last names an epoch whose history row and best model are on disk.
    """

    def __init__(self, folder: Path, best: BestCheckpoint, fingerprint: dict) -> None:
        super().__init__()
        self.folder = Path(folder)
        self.best = best
        self.fingerprint = fingerprint

    def on_epoch_end(self, epoch: int, logs: dict | None = None) -> None:
        from cadenza.train.resume import LAST_MODEL_FILE, ResumeState

        save_atomic(self.model, self.folder / LAST_MODEL_FILE)
        ResumeState.write(self.folder, epoch + 1, self.best.best, self.best.best_epoch,
                          self.fingerprint)


def save_atomic(model: keras.Model, path: Path) -> None:
    """``model.save(path)`` through a temporary file in the same folder."""
    path = Path(path)
    tmp = path.with_name(f".{path.stem}.{os.getpid()}.tmp.keras")
    try:
        model.save(tmp)
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)
