"""The Keras models of both presets, with stable layer names the exporter relies on.

``seed``: the original notebook's network.  The raw token index, as the
original fed it (not divided by the vocabulary size), is one scalar feature
per step:
input (window, 1) -> LSTM(256, sequences) -> Dropout -> LSTM(256) -> Dropout
-> Dense(256, relu) -> Dense(V, softmax).  One target per window.

``default``: the same two LSTM(256) layers and dropout behind an Embedding,
trained many-to-many: every position of a chunk predicts its next token, so
one pass gives ``window`` targets instead of one.  The prediction after the
last position is exactly "the next token after these tokens", the seed's
window semantics; the exporter also rebuilds it as a one-step cell.

Layer names (``cadenza.trained``) are part of the contract with ``cadenza.export``.
"""

from __future__ import annotations

from typing import Any

import keras
from keras import layers

from cadenza.config import PRESETS
from cadenza.train.activations import recurrent_activation as gate_activation
from cadenza.trained import DENSE, EMBEDDING, LSTM_1, LSTM_2, PROBS


def build_model(
    preset: str,
    vocab_size: int,
    window: int,
    *,
    lstm_units: int = 256,
    dropout: float = 0.5,
    embedding_dim: int = 64,
    learning_rate: float = 0.001,
    recurrent_activation: str = "sigmoid",
) -> keras.Model:
    """Build and compile the model of ``preset``."""
    gates = gate_activation(recurrent_activation)
    if preset == "seed":
        inputs = keras.Input(shape=(window, 1), name="tokens")
        x = layers.LSTM(lstm_units, return_sequences=True, recurrent_activation=gates,
                        name=LSTM_1)(inputs)
        x = layers.Dropout(dropout, name="dropout_1")(x)
        x = layers.LSTM(lstm_units, recurrent_activation=gates, name=LSTM_2)(x)
    elif preset == "default":
        # No fixed length: the same weights run over a 50-token chunk in
        # training and over any history at generation time.
        inputs = keras.Input(shape=(None,), dtype="int32", name="tokens")
        x = layers.Embedding(vocab_size, embedding_dim, name=EMBEDDING)(inputs)
        x = layers.LSTM(lstm_units, return_sequences=True, recurrent_activation=gates,
                        name=LSTM_1)(x)
        x = layers.Dropout(dropout, name="dropout_1")(x)
        x = layers.LSTM(lstm_units, return_sequences=True, recurrent_activation=gates,
                        name=LSTM_2)(x)
    else:
        raise ValueError(f"unknown preset {preset!r} (known: {', '.join(PRESETS)})")
    x = layers.Dropout(dropout, name="dropout_2")(x)
    x = layers.Dense(256, activation="relu", name=DENSE)(x)
    outputs = layers.Dense(vocab_size, activation="softmax", name=PROBS)(x)
    model = keras.Model(inputs, outputs, name=f"cadenza_{preset}")
    model.compile(
        optimizer=keras.optimizers.Adam(learning_rate=learning_rate),
        loss="sparse_categorical_crossentropy",
        metrics=["accuracy"],
    )
    return model


def model_hyperparameters(model: keras.Model) -> dict[str, Any]:
    """The shape facts the exporter needs, read back from a built model."""
    lstm = model.get_layer(LSTM_1)
    return {
        "lstm_units": int(lstm.units),
        "vocab_size": int(model.get_layer(PROBS).units),
        "embedding": any(layer.name == EMBEDDING for layer in model.layers),
    }
