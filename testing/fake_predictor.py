"""A deterministic model for tests and benchmarks: it answers what its rule says."""

from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np


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
        # The native engine runs its own copy of the default rule (bit for bit
        # the same), rather than calling back into Python for each prediction.
        self.native_twin = "next-in-cycle" if rule is None else None

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
