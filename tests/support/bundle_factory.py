"""Tiny trained model folders, written the way the trainer writes them.

The models are small (a few LSTM units, one epoch on a random walk over the
vocabulary) so that export tests run in seconds; the files beside the model
follow the trainer's contract: vocab.json, report.json, heldout.json.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from cadenza.tokens import SCHEME_VERSION, midi_to_name
from cadenza.trained import HELDOUT_FILE, MODEL_FILE, REPORT_FILE, VOCAB_FILE

WINDOW = 50
CHORDS = ["0.4.7", "2.7", "4.7.11", "5.9"]


def vocabulary(size: int = 24) -> list[str]:
    notes = [midi_to_name(m) for m in range(55, 55 + size - len(CHORDS))]
    return notes + CHORDS


def random_walk(length: int, size: int, rng: np.random.Generator) -> np.ndarray:
    """A melody-like index sequence: small steps, so there is something to learn."""
    steps = rng.choice([-2, -1, 1, 1, 2, 3], size=length)
    return np.cumsum(steps) % size


def make_model_folder(
    path: Path,
    preset: str,
    *,
    lstm_units: int = 16,
    vocab_size: int = 24,
    windows: int = 192,
    heldout: int = 96,
    seed: int = 0,
    weight_scale: float = 1.0,
    recurrent_activation: str = "sigmoid",
) -> Path:
    """Train a tiny model of ``preset`` for one epoch and write a model folder at ``path``.

    ``weight_scale`` > 1 multiplies the trained weights: the LSTM then
    remembers far back and answers with sharp distributions, so a test can
    tell apart contexts that differ only in their oldest token.
    """
    import keras

    from cadenza.train.model import build_model

    keras.utils.set_random_seed(seed)
    rng = np.random.default_rng(seed)
    vocab = vocabulary(vocab_size)
    size = len(vocab)
    sequence = random_walk(windows + heldout + WINDOW + 1, size, rng)
    starts = np.arange(windows + heldout)
    x = np.stack([sequence[s : s + WINDOW] for s in starts])
    y_next = sequence[starts + WINDOW]
    model = build_model(preset, size, WINDOW, lstm_units=lstm_units, embedding_dim=8,
                        recurrent_activation=recurrent_activation)
    train_x, train_y = x[:windows], y_next[:windows]
    if preset == "seed":
        model.fit(train_x[..., None].astype("float32"), train_y, epochs=1, batch_size=64, verbose=0)
    else:
        targets = np.stack([sequence[s + 1 : s + WINDOW + 1] for s in starts[:windows]])
        model.fit(train_x, targets, epochs=1, batch_size=64, verbose=0)
    if weight_scale != 1.0:
        for layer in model.layers:
            weights = layer.get_weights()
            if weights:
                layer.set_weights([w * weight_scale for w in weights])
    path.mkdir(parents=True, exist_ok=True)
    model.save(path / MODEL_FILE)
    counts = np.bincount(sequence, minlength=size).tolist()
    (path / VOCAB_FILE).write_text(
        json.dumps({"token_scheme": SCHEME_VERSION, "vocabulary": vocab, "counts": counts})
    )
    report = {
        "preset": preset,
        "window": WINDOW,
        "input_encoding": "scalar" if preset == "seed" else "embedding",
        "input_scale": 1,
        "train_accuracy": 0.1,
        "test_accuracy": 0.1,
        "test_loss": 3.0,
        "config": {"train": {"preset": preset, "lstm_units": lstm_units, "epochs": 1}},
        "data_digest": "sha256:test-random-walk",
        "versions": {"keras": keras.__version__},
    }
    (path / REPORT_FILE).write_text(json.dumps(report))
    heldout_doc = {"windows": x[windows:].tolist(), "targets": y_next[windows:].tolist()}
    (path / HELDOUT_FILE).write_text(json.dumps(heldout_doc))
    return path
