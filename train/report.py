"""What a training run reports: the kept model's figures and how the run went.

``report.json`` holds the model's accuracy and loss on the training and
held-out windows (in inference mode), the best epoch's, the run's settings,
data, timings and versions.
"""

from __future__ import annotations

import statistics
from datetime import datetime, timezone
from typing import Any

import numpy as np

from cadenza import __version__
from cadenza.config import Config, as_dict, transpose_shifts
from cadenza.train.prepared import PreparedData, model_inputs, predictions_per_epoch
from cadenza.train.presets import KEPT_EPOCH, SEED_INPUT_SCALE

# Train-set metrics of the final model need one pass over the training
# windows; beyond this many, a fixed sample says the same for less.
TRAIN_EVAL_LIMIT = 20000
FILES_LISTED = 500  # report.json names at most this many files with their token counts


def build_report(
    model: Any, config: Config, data: PreparedData, checkpoint: Any, history: dict[str, list[float]],
) -> dict[str, Any]:
    """The report of a finished (or interrupted) fit, less its timing fields."""
    preset = config.train.preset
    report = evaluate_model(model, preset, data)
    if KEPT_EPOCH[preset] != "best":
        report.update(as_the_notebook_reported(history))
    report.update(describe_run(config, data, checkpoint, history))
    return report


def as_the_notebook_reported(history: dict[str, list[float]]) -> dict[str, Any]:
    """The last epoch's figures as Keras printed them, which is what the original reported.

    Keras's train accuracy and loss are the running means over the epoch,
    with dropout on; the same model's train figures in inference mode stay
    in the report as ``train_*_inference``.
    """
    if not history.get("loss"):
        return {}
    return {
        "train_accuracy_keras": round(history["accuracy"][-1], 6),
        "train_loss_keras": round(history["loss"][-1], 6),
    }


def evaluate_model(model: Any, preset: str, data: PreparedData) -> dict[str, Any]:
    from cadenza.train.callbacks import evaluate_windows

    windows, split, size = data.windows, data.split, len(data.vocab)
    train = split.train
    if train.size > TRAIN_EVAL_LIMIT:
        train = np.sort(np.random.default_rng(0).choice(train, TRAIN_EVAL_LIMIT, replace=False))
    seq = preset == "default"
    on_train = evaluate_windows(
        model, model_inputs(preset, windows, train, size), windows.targets(train),
        windows.chunks(train)[:, 1:] if seq else None,
    )
    on_test = evaluate_windows(
        model, model_inputs(preset, windows, split.test, size), windows.targets(split.test),
        windows.chunks(split.test)[:, 1:] if seq else None,
    )
    report = {
        "train_accuracy": on_train["accuracy"],
        "train_loss": on_train["loss"],
        "test_accuracy": on_test["accuracy"],
        "test_loss": on_test["loss"],
        "train_metrics_windows": int(train.size),
    }
    if seq:
        report.update(
            train_accuracy_all_positions=on_train["seq_accuracy"],
            train_loss_all_positions=on_train["seq_loss"],
            test_accuracy_all_positions=on_test["seq_accuracy"],
            test_loss_all_positions=on_test["seq_loss"],
        )
    return {k: round(v, 6) if isinstance(v, float) else v for k, v in report.items()}


def best_epoch_figures(history: dict[str, list[float]]) -> dict[str, Any]:
    losses = history.get("val_loss") or []
    if not losses:
        return {}
    best = min(range(len(losses)), key=losses.__getitem__)
    return {"best_test_accuracy": round(history["val_accuracy"][best], 6),
            "best_test_loss": round(losses[best], 6)}


def describe_run(
    config: Config,
    data: PreparedData,
    checkpoint: Any,
    history: dict[str, list[float]],
) -> dict[str, Any]:
    from cadenza.train.outputs import versions

    settings = config.train
    kept = KEPT_EPOCH[settings.preset]
    epoch_seconds = history.get("seconds") or []
    predictions = predictions_per_epoch(settings.preset, data)
    median_epoch = statistics.median(epoch_seconds) if epoch_seconds else None
    eval_seconds = history.get("eval_seconds") or []
    last = {key: round(float(values[-1]), 6) for key, values in history.items() if values}
    corpus = data.corpus
    return {
        "preset": settings.preset,
        "split": data.split.kind,
        "vocab_size": len(data.vocab),
        "window": data.windows.window,
        "input_encoding": "scalar" if settings.preset == "seed" else "embedding",
        "input_scale": SEED_INPUT_SCALE if settings.preset == "seed" else 1.0,
        "lstm_units": settings.lstm_units,
        "recurrent_activation": settings.recurrent_activation,
        "vocab_order": settings.vocab_order,
        "windows": len(data.windows),
        "train_windows": int(data.split.train.size),
        "test_windows": int(data.split.test.size),
        "pieces": data.windows.piece_count,
        "test_pieces": [corpus.pieces[i].path for i in data.split.test_pieces],
        "epochs": len(history.get("loss", [])),  # completed, logged and checkpointed
        "epochs_requested": settings.epochs,
        "best_epoch": checkpoint.best_epoch,
        **best_epoch_figures(history),
        "kept_epoch": kept,
        "metrics_from": (
            "the best epoch's model (lowest held-out loss)" if kept == "best"
            else "the last epoch's model, as the original notebook reported it"
        ) + ", in inference mode; accuracy and loss of the next token after each window",
        "history_last_epoch": last,
        "seconds_per_epoch": round(median_epoch, 3) if median_epoch else None,
        "predictions_per_epoch": predictions,
        "tokens_per_second": round(predictions / median_epoch, 1) if median_epoch else None,
        "stride": settings.window_stride(data.windows.window),
        "transpose": list(transpose_shifts(settings.transpose)),
        "first_epoch_seconds": round(epoch_seconds[0], 3) if epoch_seconds else None,
        "eval_seconds_per_epoch": round(statistics.median(eval_seconds), 3)
        if eval_seconds else None,
        "data_digest": corpus.digest,
        "sources": list(corpus.sources),
        "files_used": len(corpus.pieces),
        "files_skipped": corpus.skipped,
        "tokens": sum(p.token_count for p in corpus.pieces),
        "files": [{"file": p.path, "tokens": p.token_count} for p in corpus.pieces[:FILES_LISTED]],
        "parse_seconds": round(corpus.seconds, 3),
        "files_parsed": corpus.parsed,
        "files_from_cache": corpus.cached,
        "versions": versions() | {"cadenza": __version__},
        "config": as_dict(config),
        "created": datetime.now(timezone.utc).isoformat(timespec="seconds"),
    }
