"""What the model is conditioned on: the rolling token window, fed to the
predictor as it grows, and the choice of each next token (leaning towards
the key, holding the line together, then sampling), timed.

The engine decides *when* a token is heard or played; this decides *which*
token comes next and keeps the model's history in step with the window.

Continuity (``[live] continuity``, 0: off): a soft penalty on leaps wider
than a fifth, in the spirit of voice-leading rules.  After the key's
weights, every note token more than ``LEAP_SEMITONES`` (7) semitones from
the answer's previous note has its probability multiplied by
``1 - continuity`` and the distribution is renormalised (``key_mask.weigh``:
unchanged when that leaves nothing).  Pitches are the tokens' own (the
model's octave, before the register moves the phrase by octaves, which
keeps its intervals).  The previous note is the last note token Cadenza
chose (or that was primed without a reset) since the performer's last
token: the first note of an answer, and any chord token, is never
penalised, and a chord leaves the previous note as it was.  Temperature, top-k and top-p come after, so at temperature T a
leap's odds fall by ``(1 - continuity) ** (1 / T)``.
"""

from __future__ import annotations

import statistics
import time
from collections import deque
from collections.abc import Sequence

import numpy as np

from cadenza.errors import TokenError
from cadenza.key_mask import weigh
from cadenza.live.engine.key_awareness import KeyAwareness
from cadenza.live.engine.texture import Texture
from cadenza.live.engine.vocab_map import VocabMap
from cadenza.predictor import Predictor
from cadenza.sampling import Sampler
from cadenza.tokens import is_chord, name_to_midi

DEFAULT_WINDOW = 50  # the model's context when the predictor does not say
LATENCY_SAMPLES = 4096
#: A step wider than this many semitones (a fifth) is a leap (as ``live.measures``).
LEAP_SEMITONES = 7


def note_pitches(vocabulary: Sequence[str]) -> np.ndarray:
    """Each token's MIDI number if it is a single note, else -1 (a chord, or no note)."""
    out = np.full(len(vocabulary), -1, dtype=np.int64)
    for index, token in enumerate(vocabulary):
        if is_chord(token):
            continue
        try:
            out[index] = name_to_midi(token)
        except TokenError:
            continue
    return out


class Continuity:
    """The soft penalty on leaps beyond a fifth from the answer's previous note."""

    def __init__(self, vocabulary: Sequence[str]) -> None:
        self._pitches = note_pitches(vocabulary)
        self.strength = 0.0
        self._previous = -1  # the answer's last note (MIDI), -1: none yet
        self._weights: np.ndarray | None = None  # cached for (previous, strength)
        self._weights_for: tuple[int, float] | None = None

    def heard(self) -> None:
        """The performer played: the next answer note starts free."""
        self._previous = -1

    def chose(self, index: int) -> None:
        """Cadenza played token ``index``: a note becomes the previous note."""
        pitch = int(self._pitches[index])
        if pitch >= 0:
            self._previous = pitch

    def apply(self, probs: np.ndarray) -> np.ndarray:
        if self.strength <= 0.0 or self._previous < 0:
            return probs
        if self._weights_for != (self._previous, self.strength):
            leaps = (self._pitches >= 0) & (np.abs(self._pitches - self._previous) > LEAP_SEMITONES)
            self._weights = np.where(leaps, 1.0 - self.strength, 1.0)
            self._weights_for = (self._previous, self.strength)
        return weigh(probs, self._weights)


class ModelContext:
    def __init__(self, predictor: Predictor, sampler: Sampler) -> None:
        self.predictor = predictor
        self.vocab = VocabMap(predictor.vocabulary)
        window = getattr(predictor, "window", None)
        self._window: deque[int] = deque(maxlen=int(window) if window else DEFAULT_WINDOW)
        self.sampler = sampler  # the engine replaces it when the seed changes
        self.key = KeyAwareness(self.vocab.vocabulary)  # the engine configures it
        self.continuity = Continuity(self.vocab.vocabulary)  # the engine sets its strength
        self.texture = Texture(self.vocab.vocabulary)  # the engine sets its strength
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
            self.continuity.heard()
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
            self.continuity.heard()
        else:
            self.continuity.chose(index)
        self.predictor.feed(index)

    def prepare(self) -> None:
        """Ask the model now for the distribution ``choose`` will start from.

        A predictor's distribution depends on the tokens fed alone and is
        kept until the next feed (computed once, or pure), so asking early
        moves the model's work, never its answer: the native step's lazy
        feeds are stepped here, a window runner runs here.
        """
        self.predictor.distribution()

    def choose(self) -> int:
        """The next token's index: the model's distribution, leaning to the key,
        leaps held back, its chords' share put back (texture), sampled."""
        # perf_counter measures prediction latency only; musical time is passed in.
        began = time.perf_counter()
        model = self.predictor.distribution()
        probs = self.texture.apply(model, self.continuity.apply(self.key.apply(model)))
        index = self.sampler.choose(probs, list(self._window))
        self._latencies.append(time.perf_counter() - began)
        self.predictions += 1
        return index

    def latency_stats(self) -> dict:
        return latency_stats(self.predictions, list(self._latencies))


def latency_stats(predictions: int, latencies: list[float]) -> dict:
    """The stats' prediction figures: the count, the latencies (seconds) and,
    when there are any, their median, 99th percentile and maximum."""
    out: dict = {"predictions": predictions, "latencies": latencies}
    if latencies:
        ordered = sorted(latencies)
        out["latency_p50"] = statistics.median(ordered)
        out["latency_p99"] = ordered[min(len(ordered) - 1, int(0.99 * len(ordered)))]
        out["latency_max"] = ordered[-1]
    return out
