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

import logging
import shutil
import tempfile
import time
from pathlib import Path
from typing import Any

from cadenza.bundle import write_json_atomic
from cadenza.config import Config
from cadenza.errors import CadenzaError, OutputError
from cadenza.train.outputs import Staging
from cadenza.train.prepared import (  # noqa: F401  (prepare_data: part of this module's API)
    PreparedData,
    model_inputs,
    predictions_per_epoch,
    prepare_data,
    training_arrays,
)
from cadenza.train.presets import KEPT_EPOCH
from cadenza.train.report import build_report
from cadenza.train.resume import ResumeState, read_history, resume_fingerprint
from cadenza.train.strategy import check_strategy, is_chief, make_strategy
from cadenza.train.windows import heldout_document
from cadenza.trained import HELDOUT_FILE, HISTORY_FILE, MODEL_FILE, REPORT_FILE, VOCAB_FILE

log = logging.getLogger(__name__)

def train(config: Config, *, cache_dir: Path | None = None, resume: bool = False) -> dict[str, Any]:
    """Run a whole training as ``config`` says; returns the report (also in report.json).

    ``resume``: go on from the last finished epoch of a run into the same
    folder that did not finish (killed, or its machine's time ran out).
    """
    settings = config.train
    check_strategy(settings.strategy)  # before minutes of parsing, not after
    chief = settings.strategy != "multi-worker" or is_chief()
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
    x_train, y_train = training_arrays(preset, data)
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
    report = build_report(model, config, data, checkpoint, full_history)
    report.update(interrupted=interrupted, fit_seconds=round(fit_seconds, 2),
                  resumed_after_epoch=done or None)
    ResumeState.remove(out)

    from cadenza.train.outputs import plot_history

    plot_history(full_history, out, f"{preset} preset, split by {data.split.kind}")
    write_json_atomic(out / REPORT_FILE, report)
    return report


