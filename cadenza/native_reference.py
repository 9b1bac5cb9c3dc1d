"""The native model step written in numpy: the weights file's meaning, spelled out.

It reads the same ``NativeWeights`` the C++ step reads and computes one LSTM
step per token from zero state, float32 throughout.  The exporter checks a
new weights file with it where the native library is not built (the check
then says so), and the tests use it to tell a wrong file from a wrong step.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from cadenza.native_format import NativeWeights


def _gate(weights: NativeWeights, x: np.ndarray) -> np.ndarray:
    if weights.gate == "sigmoid":
        return (1.0 / (1.0 + np.exp(-x))).astype(np.float32)
    slope, offset = np.float32(weights.gate_slope), np.float32(weights.gate_offset)
    return np.maximum(np.minimum(slope * x + offset, np.float32(1)), np.float32(0))


def probabilities(weights: NativeWeights, tokens: Sequence[int]) -> np.ndarray:
    """float32 [V]: the distribution after streaming ``tokens`` from zero state."""
    states = [(np.zeros(layer.units, np.float32), np.zeros(layer.units, np.float32))
              for layer in weights.layers]
    for token in tokens:
        if weights.embedding is not None:
            x = weights.embedding[token]
        else:
            x = np.array([np.float32(token) * np.float32(weights.input_multiplier)], np.float32)
        for n, layer in enumerate(weights.layers):
            h, c = states[n]
            z = x @ layer.kernel + h @ layer.recurrent + layer.bias
            i, f, g, o = np.split(z, 4)
            c = _gate(weights, f) * c + _gate(weights, i) * np.tanh(g)
            h = _gate(weights, o) * np.tanh(c)
            states[n] = (h, c)
            x = h
    hidden = np.maximum(x @ weights.dense_kernel + weights.dense_bias, 0)
    logits = hidden @ weights.out_kernel + weights.out_bias
    e = np.exp(logits - logits.max())
    return (e / e.sum()).astype(np.float32)
