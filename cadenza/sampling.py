"""Choosing the next token from a distribution: argmax or seeded sampling.

Argmax (temperature 0) is the original's rule.  Left alone it tends to lock
into a short cycle (``A B A B ...``); the loop guard notices a cycle of up to
``loop_guard`` tokens about to repeat a third time and plays the best token that breaks it.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from cadenza import portable_math


@dataclass(frozen=True)
class SamplingSettings:
    temperature: float = 0.0
    top_k: int = 0
    top_p: float = 1.0
    loop_guard: int = 0


def filter_distribution(probs: np.ndarray, settings: SamplingSettings) -> np.ndarray:
    """Apply temperature, top-k and top-p; return renormalised probabilities."""
    probs = np.asarray(probs, dtype=np.float64)
    if settings.temperature != 1.0 and settings.temperature > 0:
        logits = portable_math.log(np.maximum(probs, 1e-30)) / settings.temperature
        logits -= logits.max()
        probs = portable_math.exp(logits)
    probs = probs / probs.sum()
    if 0 < settings.top_k < probs.size:
        cutoff = np.partition(probs, -settings.top_k)[-settings.top_k]
        probs = np.where(probs >= cutoff, probs, 0.0)
        probs /= probs.sum()
    if settings.top_p < 1.0:
        order = np.argsort(-probs, kind="stable")
        cumulative = np.cumsum(probs[order])
        keep = order[: int(np.searchsorted(cumulative, settings.top_p)) + 1]
        kept = np.zeros_like(probs)
        kept[keep] = probs[keep]
        probs = kept / kept.sum()
    return probs


LOOP_REPEATS = 3


def repeating_cycle(history: Sequence[int], longest: int, repeats: int = LOOP_REPEATS) -> int:
    """Length of the shortest cycle (<= ``longest``) that ends ``history``
    ``repeats`` times in a row, else 0."""
    for period in range(1, longest + 1):
        if len(history) < repeats * period:
            break
        tail = list(history[-period:])
        if all(
            list(history[len(history) - (k + 1) * period : len(history) - k * period]) == tail
            for k in range(1, repeats)
        ):
            return period
    return 0


class Sampler:
    """Seeded token choice; one instance per voice so runs are reproducible."""

    def __init__(self, settings: SamplingSettings, seed: int = 0) -> None:
        self.settings = settings
        self.rng = np.random.default_rng(seed)

    def choose(self, probs: np.ndarray, history: Sequence[int] = ()) -> int:
        settings = self.settings
        if settings.temperature <= 0:
            order = np.argsort(-np.asarray(probs), kind="stable")
            choice = int(order[0])
            period = repeating_cycle(list(history) + [choice], settings.loop_guard)
            # Argmax repeating a cycle would repeat it forever: step aside to
            # the best token that does not continue it.
            if period and settings.loop_guard and len(order) > 1:
                for candidate in order[1:]:
                    if not repeating_cycle(list(history) + [int(candidate)], settings.loop_guard):
                        return int(candidate)
            return choice
        filtered = filter_distribution(probs, settings)
        return int(self.rng.choice(filtered.size, p=filtered))
