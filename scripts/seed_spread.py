"""How far the seed preset's result moves with the random seed. Not a test.

The seed reproduction on seed-mozart ends at a lower train accuracy than
the original published (0.59 at epoch 120 against 0.83).  This trains the
same model on the same windows with several seeds, to see whether the gap
is within seed-to-seed spread.  Two steps, so the training can run where
there is no music21 or TensorFlow (say a GPU machine with Keras on JAX):

    python scripts/seed_spread.py prepare --report docs/results/mozart-seed-windows/report.json \\
        --out windows.npz
    KERAS_BACKEND=jax python scripts/seed_spread.py train --windows windows.npz \\
        --seeds 0 1 2 3 4 --epochs 120 --json spread.json

``prepare`` rebuilds a run's data from the settings its report recorded
(sources, vocabulary, windows, split) and saves the model's inputs and
targets.  ``train`` needs only numpy, keras and this repository's model
builder; the split stays the report's, only the weights' seed changes.  It
prints, per seed, the training accuracy and loss Keras reports for the last
epoch (with dropout, as the original's figure was) and the held-out ones.
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))


def prepare(args: argparse.Namespace) -> int:
    from cadenza.config import load_config
    from cadenza.train.training import model_inputs, prepare_data

    recorded = json.loads(Path(args.report).read_text())["config"]
    config = load_config(None, {"data": recorded["data"], "train": recorded["train"]})
    preset = config.train.preset
    data = prepare_data(config, Path(args.cache) if args.cache else None)
    size, windows, split = len(data.vocab), data.windows, data.split
    np.savez_compressed(
        args.out,
        x_train=model_inputs(preset, windows, split.train, size),
        y_train=windows.targets(split.train),
        x_test=model_inputs(preset, windows, split.test, size),
        y_test=windows.targets(split.test),
        meta=json.dumps({"preset": preset, "vocab_size": size, "window": windows.window,
                         "train": recorded["train"], "report": str(args.report)}),
    )
    logging.info("saved %d training and %d held-out windows to %s",
                 split.train.size, split.test.size, args.out)
    return 0


def train(args: argparse.Namespace) -> int:
    import keras

    from train.model import build_model  # the package's source, without installing it

    arrays = np.load(args.windows)
    meta = json.loads(str(arrays["meta"]))
    settings = meta["train"]
    epochs = args.epochs or settings["epochs"]
    if args.batch_size:
        settings = settings | {"batch_size": args.batch_size}
    runs = []
    for seed in args.seeds:
        keras.utils.set_random_seed(seed)
        model = build_model(
            meta["preset"], meta["vocab_size"], meta["window"],
            lstm_units=settings["lstm_units"], dropout=settings["dropout"],
            embedding_dim=settings["embedding_dim"], learning_rate=settings["learning_rate"],
        )
        began = time.perf_counter()
        history = model.fit(
            arrays["x_train"], arrays["y_train"], batch_size=settings["batch_size"],
            epochs=epochs, shuffle=True, verbose=0,
            validation_data=(arrays["x_test"], arrays["y_test"]),
        ).history
        run = {
            "seed": seed,
            "seconds": round(time.perf_counter() - began, 1),
            "last_epoch": {key: round(values[-1], 4) for key, values in history.items()},
            "best_val_loss_epoch": int(np.argmin(history["val_loss"])) + 1,
            "best_val_accuracy": round(max(history["val_accuracy"]), 4),
            "max_train_accuracy": round(max(history["accuracy"]), 4),
        }
        runs.append(run)
        logging.info("seed %d: %s", seed, json.dumps(run))
        # Written after every seed: a run cut short still leaves its figures.
        text = json.dumps(summary(runs, meta, settings, epochs, keras), indent=2)
        if args.json:
            Path(args.json).write_text(text + "\n")
    sys.stdout.write(text + "\n")
    return 0


def summary(runs: list[dict], meta: dict, settings: dict, epochs: int, keras) -> dict:
    accuracies = [r["last_epoch"]["accuracy"] for r in runs]
    return {
        "backend": keras.backend.backend(), "keras": keras.__version__,
        "epochs": epochs, "windows": meta, "runs": runs,
        "batch_size": settings["batch_size"],
        "last_epoch_train_accuracy": {
            "min": min(accuracies), "max": max(accuracies),
            "mean": round(float(np.mean(accuracies)), 4),
        },
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    steps = parser.add_subparsers(dest="step", required=True)
    first = steps.add_parser("prepare", help="rebuild a run's windows and save them")
    first.add_argument("--report", required=True, help="report.json of the run to repeat")
    first.add_argument("--out", required=True, help="the .npz to write")
    first.add_argument("--cache", help="the parse cache (default: the report's)")
    second = steps.add_parser("train", help="train the model once per seed")
    second.add_argument("--windows", required=True, help="the .npz from prepare")
    second.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2, 3, 4])
    second.add_argument("--epochs", type=int, default=0, help="default: the report's")
    second.add_argument("--batch-size", type=int, default=0, help="default: the report's")
    second.add_argument("--json", help="also write the result here")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    return prepare(args) if args.step == "prepare" else train(args)


if __name__ == "__main__":
    sys.exit(main())
