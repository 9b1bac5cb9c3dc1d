"""The narrow interface between the engine and a model.

A predictor is fed vocabulary indices one at a time and answers the
distribution of the next one.  Implementations: the ONNX runners in
``cadenza.runtime`` (window and streaming), the Keras model in
``cadenza.train.generate`` and ``FakePredictor`` here, for tests.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
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


class FakePredictor:
    """A deterministic stand-in: ``rule(history) -> probabilities``.

    The default rule favours "the token after the last one, cyclically",
    which makes expected answers easy to write down in tests.
    """

    def __init__(
        self,
        vocabulary: Sequence[str],
        rule: Callable[[Sequence[int]], np.ndarray] | None = None,
    ) -> None:
        self.vocabulary = tuple(vocabulary)
        self.history: list[int] = []
        self.calls = 0
        self._rule = rule or self._next_in_cycle

    def _next_in_cycle(self, history: Sequence[int]) -> np.ndarray:
        size = len(self.vocabulary)
        probs = np.full(size, 0.5 / size)
        following = (history[-1] + 1) % size if history else 0
        probs[following] += 0.5
        return probs

    def reset(self, primer: Sequence[int] = ()) -> None:
        self.history = list(primer)

    def feed(self, index: int) -> None:
        self.history.append(int(index))

    def distribution(self) -> np.ndarray:
        self.calls += 1
        probs = np.asarray(self._rule(self.history), dtype=np.float64)
        return probs / probs.sum()
