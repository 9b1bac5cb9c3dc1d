"""The trained-model folder: what ``cadenza train`` writes and the exporter and
``generate`` read.  One home for its file names, the Keras layer names the
exporter rebuilds the graphs from, and how many held-out windows serve as
primers (the bundle stores the same list, so a bundle and its training
folder start a generation alike)."""

from __future__ import annotations

MODEL_FILE = "model.keras"
VOCAB_FILE = "vocab.json"
HELDOUT_FILE = "heldout.json"
HISTORY_FILE = "history.csv"
REPORT_FILE = "report.json"

# Layer names of both presets' Keras models.
LSTM_1, LSTM_2, DENSE, PROBS, EMBEDDING = "lstm_1", "lstm_2", "dense", "probs", "embedding"
REQUIRED_LAYERS = frozenset({LSTM_1, LSTM_2, DENSE, PROBS})

PRIMER_COUNT = 64  # held-out windows a generation's start is drawn from
