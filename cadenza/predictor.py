"""The narrow interface between the engine and a model.

A predictor is fed vocabulary indices one at a time and answers the
distribution of the next one.  Implementations: the ONNX runners in
``cadenza.runtime`` (window and streaming), the Keras model in
``cadenza.train.generate``; the tests' deterministic stand-in is
``testing.fake_predictor.FakePredictor`` (outside the installed package).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol

import numpy as np


class Predictor(Protocol):
    vocabulary: tuple[str, ...]

    def reset(self, primer: Sequence[int] = ()) -> None:
        """Forget the history, then feed ``primer`` (indices, oldest first)."""

    def feed(self, index: int) -> None:
        """Append one token to the history."""

    def distribution(self) -> np.ndarray:
        """Probabilities (float64, sums to 1) of the next token given the history."""
