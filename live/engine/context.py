"""What the model is conditioned on: the rolling token window, fed to the
predictor as it grows, and the choice of each next token (leaning towards
the key, then sampling), timed.

The engine decides *when* a token is heard or played; this decides *which*
token comes next and keeps the model's history in step with the window.
"""

from __future__ import annotations

import statistics
import time
from collections import deque
from collections.abc import Sequence

from cadenza.live.engine.key_awareness import KeyAwareness
from cadenza.live.engine.vocab_map import VocabMap
from cadenza.predictor import Predictor
from cadenza.sampling import Sampler

DEFAULT_WINDOW = 50  # the model's context when the predictor does not say
LATENCY_SAMPLES = 4096


class ModelContext:
    def __init__(self, predictor: Predictor, sampler: Sampler) -> None:
        self.predictor = predictor
        self.vocab = VocabMap(predictor.vocabulary)
        window = getattr(predictor, "window", None)
        self._window: deque[int] = deque(maxlen=int(window) if window else DEFAULT_WINDOW)
        self.sampler = sampler  # the engine replaces it when the seed changes
        self.key = KeyAwareness(self.vocab.vocabulary)  # the engine configures it
        self.predictions = 0
        self._latencies: deque[float] = deque(maxlen=LATENCY_SAMPLES)

    @property
    def capacity(self) -> int:
        return self._window.maxlen or 0

    @property
    def tokens(self) -> tuple[str, ...]:
        """The tokens the model is conditioned on, oldest first."""
        vocabulary = self.vocab.vocabulary
        return tuple(vocabulary[i] for i in self._window)

    def bundle_primer(self) -> list[int]:
        """The start the bundle gives the window (indices; empty if none).

        The seed preset's runners left-fill a short history with the bundle's
        first primer (``fill``); starting the window from the same tokens
        makes both runners see exactly what ``tokens`` shows.  The default
        preset's runners have no fill: the window starts empty and holds
        only what was played and answered.
        """
        fill = getattr(self.predictor, "fill", None)
        if fill is None:
            primers = getattr(self.predictor, "primers", None) or ()
            fill = primers[0] if primers else ()
        return list(fill)[-self._window.maxlen :] if self._window.maxlen else []

    def prime(self, tokens: Sequence[str | int], *, reset: bool = False) -> None:
        """Put tokens (strings of the scheme, or vocabulary indices) into the window;
        with ``reset`` the model's history is cleared first."""
        indices = [
            int(t) if isinstance(t, int) else self.vocab.index_of_token(t) for t in tokens
        ]
        if reset:
            self._window.clear()
            self._window.extend(indices)
            self.key.refill(self._window)
            self.predictor.reset(list(self._window))
        else:
            for index in indices:
                self.push(index)

    def push(self, index: int, *, performer: bool = False) -> None:
        """A token enters the window (``performer``: one the performer played)."""
        if len(self._window) == self._window.maxlen:
            self.key.leave(self._window[0])  # about to scroll out
        self._window.append(index)
        self.key.enter(index)
        if performer:
            self.key.hear(index)
        self.predictor.feed(index)

    def choose(self) -> int:
        """The next token's index: the model's distribution, leaning to the key, sampled."""
        # perf_counter measures prediction latency only; musical time is passed in.
        began = time.perf_counter()
        probs = self.key.apply(self.predictor.distribution())
        index = self.sampler.choose(probs, list(self._window))
        self._latencies.append(time.perf_counter() - began)
        self.predictions += 1
        return index

    def latency_stats(self) -> dict:
        latencies = list(self._latencies)
        out: dict = {"predictions": self.predictions, "latencies": latencies}
        if latencies:
            ordered = sorted(latencies)
            out["latency_p50"] = statistics.median(ordered)
            out["latency_p99"] = ordered[min(len(ordered) - 1, int(0.99 * len(ordered)))]
            out["latency_max"] = ordered[-1]
        return out
