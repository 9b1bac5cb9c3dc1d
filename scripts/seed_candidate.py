"""One candidate explanation of the original's held-out figures, tried outside the trainer.

The seed preset reproduces the original's train figures but not its
held-out ones (docs/results.md).  This script tests a candidate the
trainer cannot express: the original's tokens numbered over *every*
token it parsed (``sorted(set(notes))``, 147 on seed-mozart), the common
notebook idiom, with the rare ones dropped from the pieces afterwards, so
its network read raw indices spread over 0-146 (in string order: chords
first, then notes by letter) and answered with a 147-way softmax.
Everything else is the seed preset's: windows of 50 inside each piece,
80/20 shuffled split of windows (``--split-seed``), LSTM(256) -> Dropout
-> LSTM(256) -> Dropout -> Dense(256, relu) -> Dense(V, softmax), Adam,
batch 512, judged after the last epoch.

Every epoch is saved; ``--resume`` goes on from the last one.

    python scripts/seed_candidate.py --out runs/seed-all-tokens [--resume]
"""

from __future__ import annotations

import argparse
import csv
import json
import math
import sys
from collections import Counter
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
SEED_MOZART = REPO.parent / "shared" / "data" / "seed-mozart"
WINDOW = 50
MIN_COUNT = 50


def windows(pieces: list[list[str]]) -> tuple[np.ndarray, np.ndarray, int, int]:
    """x (n, 50) and y (n,) as indices over every token parsed; V over all, V kept."""
    everything = sorted({t for piece in pieces for t in piece})
    counts = Counter(t for piece in pieces for t in piece)
    kept = {t for t, n in counts.items() if n >= MIN_COUNT}
    index = {t: i for i, t in enumerate(everything)}
    xs, ys = [], []
    for piece in pieces:
        encoded = [index[t] for t in piece if t in kept]
        for i in range(len(encoded) - WINDOW):
            xs.append(encoded[i:i + WINDOW])
            ys.append(encoded[i + WINDOW])
    return np.asarray(xs, dtype=np.float32), np.asarray(ys), len(everything), len(kept)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--epochs", type=int, default=120)
    parser.add_argument("--split-seed", type=int, default=42)
    parser.add_argument("--seed", type=int, default=42)
    parser.add_argument("--resume", action="store_true")
    args = parser.parse_args(argv)

    import keras
    from keras import layers

    from cadenza.config import DataConfig
    from cadenza.train.corpus import load_corpus

    corpus = load_corpus(DataConfig(sources=(str(SEED_MOZART),)))
    pieces = [t for piece in corpus.pieces for t in piece.sequences]
    x, y, vocab, kept = windows(pieces)
    order = np.random.default_rng(args.split_seed).permutation(len(y))
    test_count = math.ceil(0.2 * len(y))
    test, train = order[:test_count], order[test_count:]
    facts = {"tokens_per_piece": [len(p) for p in pieces], "vocab_all": vocab, "vocab_kept": kept,
             "windows": len(y), "train_windows": len(train), "test_windows": len(test)}
    print(json.dumps(facts), flush=True)

    args.out.mkdir(parents=True, exist_ok=True)
    last, history_path = args.out / "last.keras", args.out / "history.csv"
    done = 0
    if args.resume and last.exists() and history_path.exists():
        model = keras.models.load_model(last)
        done = sum(1 for _ in history_path.open()) - 1
    else:
        keras.utils.set_random_seed(args.seed)
        inputs = keras.Input(shape=(WINDOW, 1))
        h = layers.LSTM(256, return_sequences=True)(inputs)
        h = layers.Dropout(0.5)(h)
        h = layers.LSTM(256)(h)
        h = layers.Dropout(0.5)(h)
        h = layers.Dense(256, activation="relu")(h)
        outputs = layers.Dense(vocab, activation="softmax")(h)
        model = keras.Model(inputs, outputs)
        model.compile(optimizer=keras.optimizers.Adam(), loss="sparse_categorical_crossentropy",
                      metrics=["accuracy"])
        history_path.write_text("epoch,accuracy,loss,val_accuracy,val_loss\n")

    class Save(keras.callbacks.Callback):
        def on_epoch_end(self, epoch, logs=None):
            self.model.save(last)
            with history_path.open("a") as out:
                csv.writer(out).writerow([epoch + 1, logs["accuracy"], logs["loss"],
                                          logs["val_accuracy"], logs["val_loss"]])

    if done < args.epochs:
        model.fit(x[train][..., None], y[train], batch_size=512, epochs=args.epochs,
                  initial_epoch=done, validation_data=(x[test][..., None], y[test]),
                  callbacks=[Save()], verbose=2)
    rows = list(csv.DictReader(history_path.open()))
    final = rows[-1]
    report = {**facts, "epochs": int(final["epoch"]),
              "train_accuracy": float(final["accuracy"]), "train_loss": float(final["loss"]),
              "test_accuracy": float(final["val_accuracy"]), "test_loss": float(final["val_loss"]),
              "published": {"train_accuracy": 0.8257, "train_loss": 0.5014,
                            "test_accuracy": 0.5220, "test_loss": 2.5357}}
    (args.out / "report.json").write_text(json.dumps(report, indent=1) + "\n")
    print(json.dumps(report, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
