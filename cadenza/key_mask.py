"""Key awareness over a vocabulary: which tokens lie in each key, the key of
a window of tokens, and the down-weighting of tokens outside a key.

Everything about single tokens is worked out once per vocabulary: a table of
the pitch classes each token sounds and a mask of the tokens inside each of
the 24 keys.  What is left per note is a few small vector operations, so key
awareness costs the streaming step next to nothing.

A chord token is inside a key only when all its pitch classes are: one note
outside is heard as outside, and ``cadenza evaluate``'s key fit counts that
note against the answer too.  A note token is inside when its pitch class is.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

import numpy as np

from cadenza.key import MAJOR_PROFILE, MINOR_PROFILE, Key
from cadenza.tokens import chord_pitch_classes, is_chord, name_to_midi

#: The 24 keys, in the order ``estimate_key`` tries them (its ties go to the first).
KEYS = tuple(Key(tonic, mode) for mode in ("major", "minor") for tonic in range(12))
_KEY_INDEX = {key: i for i, key in enumerate(KEYS)}


def token_pitch_classes(token: str) -> tuple[int, ...]:
    """The pitch classes a token sounds: a chord's, or a note's one."""
    if is_chord(token):
        return chord_pitch_classes(token)
    return (name_to_midi(token) % 12,)


def _scoring_profiles() -> np.ndarray:
    """The 24 profiles, centred and scaled to unit length: one row per key.

    Pearson's r of counts ``x`` with a profile ``y`` is ``(y - mean y) .
    (x - mean x) / (|y - mean y| |x - mean x|)``.  A centred row sums to zero,
    so it ignores ``mean x``; ``|x - mean x|`` is the same for every key, so
    it cannot change which key scores best.  What is left is one product.
    """
    rows = [np.roll(MAJOR_PROFILE if key.mode == "major" else MINOR_PROFILE, key.tonic)
            for key in KEYS]
    profiles = np.asarray(rows, dtype=float)
    profiles -= profiles.mean(axis=1, keepdims=True)
    return profiles / np.linalg.norm(profiles, axis=1, keepdims=True)


_PROFILES = _scoring_profiles()


def estimate_key_fast(counts: np.ndarray) -> Key | None:
    """``cadenza.key.estimate_key`` as one matrix product (the tests prove
    them the same): None with no notes or flat counts, else the best key."""
    counts = np.asarray(counts, dtype=float)
    if counts.max() == counts.min() or counts.sum() <= 0:
        return None
    # Products and numpy's pairwise row sums, not a matrix product: BLAS picks
    # its kernel by CPU, so its rounding (and a near-tie's winner) would vary
    # by machine, and the native engine could not reproduce it.
    return KEYS[int(np.argmax((_PROFILES * counts).sum(axis=1)))]


class VocabularyKeys:
    """The pitch classes of every token of a vocabulary and its 24 key masks."""

    def __init__(self, vocabulary: Sequence[str]) -> None:
        self.pitch_classes = np.zeros((len(vocabulary), 12))
        for i, token in enumerate(vocabulary):
            self.pitch_classes[i, list(token_pitch_classes(token))] = 1.0
        outside = np.ones((len(KEYS), 12))
        for k, key in enumerate(KEYS):
            outside[k, list(key.pitch_classes)] = 0.0
        # A token is inside a key when none of its pitch classes is outside it.
        self.masks = (self.pitch_classes @ outside.T == 0).T  # [24, V]
        self._weights = np.ones(len(vocabulary))
        self._weights_for: tuple[Key, float] | None = None

    def mask(self, key: Key) -> np.ndarray:
        """True for the tokens inside ``key``."""
        return self.masks[_KEY_INDEX[key]]

    def weights(self, key: Key, strength: float) -> np.ndarray:
        """What each token's probability is multiplied by: 1 inside ``key``,
        ``1 - strength`` outside (cached: key and strength change rarely)."""
        cache_key = (key, strength)
        if self._weights_for != cache_key:
            self._weights = np.where(self.mask(key), 1.0, 1.0 - strength)
            self._weights_for = cache_key
        return self._weights

    def counts(self, indices: Iterable[int]) -> np.ndarray:
        """12 bins: how often each pitch class sounds in these tokens (a chord
        counts each of its classes once)."""
        indices = list(indices)
        if not indices:
            return np.zeros(12)
        return self.pitch_classes[indices].sum(axis=0)


def weigh_by_key(probs: np.ndarray, inside: np.ndarray, strength: float) -> np.ndarray:
    """``probs`` with every token outside the key multiplied by ``1 - strength``,
    renormalised.  Strength 0 leaves the model alone; strength 1 removes the
    outside tokens, unless nothing inside has any probability at all (then
    the model's own distribution stands: some answer beats none)."""
    if strength <= 0.0:
        return probs
    return weigh(probs, np.where(inside, 1.0, 1.0 - strength))


def weigh(probs: np.ndarray, weights: np.ndarray) -> np.ndarray:
    """``probs * weights``, renormalised; ``probs`` itself when that leaves nothing."""
    weighted = probs * weights
    total = weighted.sum()
    if total <= 0.0:
        return probs
    weighted /= total
    return weighted
