"""A training run: data -> vocabulary -> windows -> model -> files in the output folder.

The output folder receives ``model.keras`` (the preset's kept model: the
``seed`` preset keeps its last epoch, as the original notebook reported it;
``default`` keeps the epoch of lowest held-out loss), ``vocab.json``,
``heldout.json``, ``history.csv``, ``accuracy.png``, ``loss.png`` and
``report.json``.  They are written into a staging folder and moved into
place only when the run has finished, ``report.json`` last (see
``outputs.Staging``): a failed run leaves an older run's files as they were.

Every epoch also leaves the whole model (weights and optimizer) and the
run's state in the staging folder, so a run that was killed goes on from its
last finished epoch with ``resume=True`` (``cadenza train --resume``).
Ctrl-C stops training after the current step and still writes everything.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import shutil
import statistics
import tempfile
import time
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import numpy as np

from cadenza import __version__
from cadenza.bundle import write_json_atomic
from cadenza.config import STRATEGIES, Config, as_dict, transpose_shifts
from cadenza.errors import CadenzaError, ConfigError, OutputError
from cadenza.train.corpus import Corpus, load_corpus
from cadenza.train.outputs import Staging
from cadenza.train.presets import KEPT_EPOCH, SEED_INPUT_SCALE
from cadenza.train.resume import ResumeState, read_history, resume_fingerprint
from cadenza.train.transpose import augment
from cadenza.train.vocab import Vocabulary, build_vocabulary
from cadenza.train.windows import (
    Split,
    WindowSet,
    build_windows,
    choose_test_pieces,
    heldout_document,
    make_split,
    scalar_inputs,
    split_held_out,
)
from cadenza.trained import HELDOUT_FILE, HISTORY_FILE, MODEL_FILE, REPORT_FILE, VOCAB_FILE

log = logging.getLogger(__name__)

# Train-set metrics of the final model need one pass over the training
# windows; beyond this many, a fixed sample says the same for less.
TRAIN_EVAL_LIMIT = 20000
FILES_LISTED = 500  # report.json names at most this many files with their token counts


@dataclass
class PreparedData:
    corpus: Corpus
    vocab: Vocabulary
    windows: WindowSet
    split: Split


def prepare_data(config: Config, cache_dir: Path | None = None) -> PreparedData:
    """Parse the sources, hold out pieces, add shifted copies, build the vocabulary,
    cut windows and split them.

    The held-out pieces are chosen first, on the pieces as they are; only
    the others get shifted copies (``[train] transpose``), and the
    vocabulary is counted after that, over what will be trained and judged.
    """
    settings = config.train
    window = config.data.window
    corpus = load_corpus(config.data, cache_dir=cache_dir)
    sequences = [piece.sequences for piece in corpus.pieces]
    held: tuple[int, ...] = ()
    if settings.split == "pieces":
        sizes = [sum(max(0, len(s) - window) for s in piece) for piece in sequences]
        held = choose_test_pieces(sizes, settings.test_fraction, settings.seed)
    shifts = transpose_shifts(settings.transpose)
    entries, owners = augment(sequences, shifts, held)
    if len(shifts) > 1:
        log.info("transposed the %d training pieces by %d..%d semitones: %d copies",
                 len(sequences) - len(held), shifts[0], shifts[-1], len(entries) - len(held))
    vocab = build_vocabulary((s for entry in entries for s in entry), config.data.min_count)
    if settings.vocab_order == "shuffled":
        vocab = vocab.shuffled(settings.seed)
    distinct = len({t for entry in entries for s in entry for t in s})
    log.info("vocabulary: %d of %d distinct tokens occur at least %d times",
             len(vocab), distinct, config.data.min_count)
    encoded = [[vocab.encode(s) for s in entry] for entry in entries]
    stride = settings.window_stride(window)
    windows = build_windows(encoded, window, stride=stride, piece_ids=owners)
    if settings.split == "pieces":
        split = split_held_out(windows, held, settings.seed)
    else:
        split = make_split(windows, settings.split, settings.test_fraction, settings.seed)
    log.info("%d windows of %d, every %d tokens: %d to train, %d held out (split by %s)",
             len(windows), windows.window, stride, split.train.size, split.test.size, split.kind)
    return PreparedData(corpus, vocab, windows, split)


def predictions_per_epoch(preset: str, data: PreparedData) -> int:
    """How many next-token targets one epoch trains on."""
    rows = int(data.split.train.size)
    return rows if preset == "seed" else rows * data.windows.window


def model_inputs(preset: str, windows: WindowSet, which: np.ndarray, vocab_size: int) -> np.ndarray:
    """What the preset's model reads for the chosen windows."""
    tokens = windows.inputs(which)
    # The original fed the raw index as one float feature (not index / V).
    return scalar_inputs(tokens, SEED_INPUT_SCALE) if preset == "seed" else tokens


def _training_arrays(preset: str, data: PreparedData) -> tuple[np.ndarray, np.ndarray]:
    which = data.split.train
    if preset == "seed":
        return model_inputs(preset, data.windows, which, len(data.vocab)), data.windows.targets(which)
    # Many-to-many: every position of the window predicts its next token;
    # the chunk is exactly the window plus its target, so the training rows
    # are the same windows as the seed's, with 50 targets each.
    chunks = data.windows.chunks(which)
    return chunks[:, :-1], chunks[:, 1:]


class _NoStrategy:
    """The ``default`` strategy where Keras runs on another backend (JAX on a GPU
    machine): one device, nothing to distribute, no TensorFlow needed."""

    def scope(self) -> contextlib.AbstractContextManager:
        return contextlib.nullcontext()


def make_strategy(name: str) -> Any:
    """TensorFlow's distribution strategy for the ``strategy`` setting."""
    _check_strategy(name)
    import keras

    if keras.backend.backend() != "tensorflow":
        if name != "default":
            raise ConfigError(
                f"[train] strategy = {name!r} needs Keras on TensorFlow; this Keras runs on "
                f"{keras.backend.backend()} (KERAS_BACKEND): use strategy = 'default'")
        return _NoStrategy()
    import tensorflow as tf

    if name == "default":
        return tf.distribute.get_strategy()
    if name == "mirrored":
        return tf.distribute.MirroredStrategy()
    return tf.distribute.MultiWorkerMirroredStrategy()


def _check_strategy(name: str) -> None:
    if name not in STRATEGIES:
        raise ConfigError(f"[train] strategy = {name!r}: must be one of {', '.join(STRATEGIES)}")
    if name == "multi-worker" and not os.environ.get("TF_CONFIG"):
        raise ConfigError(
            "[train] strategy = 'multi-worker' needs the TF_CONFIG environment variable "
            "(the cluster and this worker's task)"
        )


def _is_chief() -> bool:
    # In a multi-worker cluster only the chief (or worker 0 when there is no
    # chief) writes the real output folder; the others write scratch copies.
    spec = json.loads(os.environ.get("TF_CONFIG") or "{}")
    task = spec.get("task") or {}
    if not task:
        return True
    if "chief" in (spec.get("cluster") or {}):
        return task.get("type") == "chief"
    return task.get("type") == "worker" and int(task.get("index", 0)) == 0


def train(config: Config, *, cache_dir: Path | None = None, resume: bool = False) -> dict[str, Any]:
    """Run a whole training as ``config`` says; returns the report (also in report.json).

    ``resume``: go on from the last finished epoch of a run into the same
    folder that did not finish (killed, or its machine's time ran out).
    """
    settings = config.train
    _check_strategy(settings.strategy)  # before minutes of parsing, not after
    chief = settings.strategy != "multi-worker" or _is_chief()
    out = Path(settings.out).expanduser() if chief else Path(tempfile.mkdtemp(prefix="cadenza-"))
    # Before any work: an unwritable folder fails now, not after the training.
    staging = Staging.open(out, keep=resume)
    log.info("the run is written into %s and moves into %s when finished", staging.path, out)
    try:
        try:
            report = _run(config, staging.path, cache_dir, resume)
        except BaseException as err:
            kept = ""
            if ResumeState.exists(staging.path):
                kept = (f"; {staging.path} keeps the finished epochs: `cadenza train --resume` "
                        "with the same settings goes on from there")
                log.warning("%s", kept[2:])
            else:
                staging.discard()
            if isinstance(err, OSError) and not isinstance(err, CadenzaError):
                # Reading has its own errors; an OSError here is a write
                # (a full disk, a folder gone read-only).
                raise OutputError(
                    f"{out}: cannot write the training run: {err.strerror or err} "
                    f"(the files already in {out} are unchanged{kept})"
                ) from err
            raise
        # A failed move keeps the staged files, and its error says where they are.
        staging.publish(last=REPORT_FILE)
    finally:
        if not chief:
            shutil.rmtree(out, ignore_errors=True)
    log.info("held-out accuracy %.4f, loss %.4f (train %.4f, %.4f); wrote %s",
             report["test_accuracy"], report["test_loss"], report["train_accuracy"],
             report["train_loss"], out)
    return report


def _run(config: Config, folder: Path, cache_dir: Path | None, resume: bool) -> dict[str, Any]:
    data = prepare_data(config, cache_dir)
    fingerprint = resume_fingerprint(config, data.corpus.digest)
    state = ResumeState.read(folder, fingerprint) if resume else None
    if resume and state is None:
        log.info("nothing to resume in %s: starting from the first epoch", folder)
    data.vocab.save(folder / VOCAB_FILE)
    write_json_atomic(folder / HELDOUT_FILE, heldout_document(data.windows, data.split))
    return _fit_and_report(config, data, folder, state, fingerprint)


def _fit_and_report(
    config: Config,
    data: PreparedData,
    out: Path,
    state: ResumeState | None,
    fingerprint: dict[str, Any],
) -> dict[str, Any]:
    import keras  # TensorFlow loads only now, after the parser processes are done

    from cadenza.train.callbacks import (
        BestCheckpoint,
        HeldOutEvaluation,
        ResumeCheckpoint,
        save_atomic,
    )
    from cadenza.train.model import build_model

    settings, preset = config.train, config.train.preset
    vocab_size, window = len(data.vocab), data.windows.window
    done = state.epochs if state else 0
    # The strategy first: a multi-worker one must exist before any other TF op.
    strategy = make_strategy(settings.strategy)
    # A resumed run seeds differently, so its epochs do not replay the first
    # epochs' shuffles.
    keras.utils.set_random_seed(settings.seed + done)
    with strategy.scope():
        if state:
            model = keras.models.load_model(state.model_path)
            log.info("resuming after epoch %d of %d", done, settings.epochs)
        else:
            model = build_model(
                preset, vocab_size, window,
                lstm_units=settings.lstm_units, dropout=settings.dropout,
                embedding_dim=settings.embedding_dim, learning_rate=settings.learning_rate,
                recurrent_activation=settings.recurrent_activation,
            )
    x_train, y_train = _training_arrays(preset, data)
    test = data.split.test
    x_test = model_inputs(preset, data.windows, test, vocab_size)
    y_test = data.windows.targets(test)
    seq_test = data.windows.chunks(test)[:, 1:] if preset == "default" else None

    evaluation = HeldOutEvaluation(x_test, y_test, seq_test)
    keep_best = KEPT_EPOCH[preset] == "best"
    checkpoint = BestCheckpoint(out / MODEL_FILE, save=keep_best)
    if state:
        state.truncate_history(out / HISTORY_FILE)
        checkpoint.best, checkpoint.best_epoch = state.best_loss, state.best_epoch
    csv_logger = keras.callbacks.CSVLogger(str(out / HISTORY_FILE), append=bool(state))
    history = keras.callbacks.History()
    resumable = ResumeCheckpoint(out, checkpoint, fingerprint)
    log.info("training the %s preset for %d epochs (batch %d, LSTM %d, %s strategy): "
             "%d predictions an epoch", preset, settings.epochs, settings.batch_size,
             settings.lstm_units, settings.strategy, predictions_per_epoch(preset, data))
    started = time.perf_counter()
    interrupted = False
    try:
        if done < settings.epochs:
            model.fit(
                x_train, y_train,
                batch_size=settings.batch_size, epochs=settings.epochs, initial_epoch=done,
                shuffle=True, verbose=0,
                callbacks=[evaluation, checkpoint, csv_logger, history, resumable],
            )
    except KeyboardInterrupt:
        interrupted = True
        log.warning("interrupted after %d complete epochs", done + len(history.history.get("loss", [])))
        csv_logger.on_train_end()  # closes the CSV file that fit left open
    fit_seconds = time.perf_counter() - started
    # The whole run's epochs, the resumed ones included.
    full_history = read_history(out / HISTORY_FILE) if (out / HISTORY_FILE).exists() else {}

    model_path = out / MODEL_FILE
    if keep_best and checkpoint.best_epoch:
        model = keras.models.load_model(model_path)
    else:
        save_atomic(model, model_path)  # the last epoch, or stopped before the first ended
    report = _evaluate(model, preset, data)
    if not keep_best:
        report.update(_as_the_notebook_reported(full_history))
    report.update(_describe_run(config, data, checkpoint, full_history))
    report.update(interrupted=interrupted, fit_seconds=round(fit_seconds, 2),
                  resumed_after_epoch=done or None)
    ResumeState.remove(out)

    from cadenza.train.outputs import plot_history

    plot_history(full_history, out, f"{preset} preset, split by {data.split.kind}")
    write_json_atomic(out / REPORT_FILE, report)
    return report


def _as_the_notebook_reported(history: dict[str, list[float]]) -> dict[str, Any]:
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


def _evaluate(model: Any, preset: str, data: PreparedData) -> dict[str, Any]:
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


def _best_epoch_figures(history: dict[str, list[float]]) -> dict[str, Any]:
    losses = history.get("val_loss") or []
    if not losses:
        return {}
    best = min(range(len(losses)), key=losses.__getitem__)
    return {"best_test_accuracy": round(history["val_accuracy"][best], 6),
            "best_test_loss": round(losses[best], 6)}


def _describe_run(
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
        **_best_epoch_figures(history),
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
