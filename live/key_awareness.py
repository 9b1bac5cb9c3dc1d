"""The key the engine leans towards, and how hard: ``[live] key`` and
``key_strength`` (and the ``key_strength`` CC), applied to each distribution.

``key = "auto"`` follows the window: its pitch-class counts (the
performer's notes and the answers', a chord giving each of its classes) are
kept up to date as tokens come and go, and the key is estimated from them
only when a distribution is asked for after they changed.  ``"off"`` leaves
the model alone; a key name holds that key whatever is played.

``key = "call"`` leans towards the window's own pitch classes rather than a
key's scale: a pitch class's weight is how often it sounds in the window
relative to the commonest, a token's the mean over its classes, and its
probability is multiplied by ``1 - strength + strength * weight``.  A key
says which seven classes belong; the call says which of them (and which
others) this music is using now, which is what its continuation goes on
using.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

import numpy as np

from cadenza.config import KEY_AUTO, KEY_CALL, KEY_OFF
from cadenza.key import Key, parse_key
from cadenza.key_mask import VocabularyKeys, estimate_key_fast, weigh


class KeyAwareness:
    def __init__(self, vocabulary: Sequence[str]) -> None:
        self._keys = VocabularyKeys(vocabulary)
        self._counts = np.zeros(12)
        self._fixed: Key | None = None
        self._auto = False
        self._call = False
        self.strength = 0.0
        self._estimate: Key | None = None
        self._stale = True

    def configure(self, key: str, strength: float) -> None:
        """``key``: "auto", "off" or a key name (checked by the config already)."""
        self._auto = key == KEY_AUTO
        self._call = key == KEY_CALL
        self._fixed = None if key in (KEY_AUTO, KEY_OFF, KEY_CALL) else parse_key(key)
        self.strength = float(strength)

    @property
    def key(self) -> Key | None:
        """The key leaned towards now (None: off, or nothing to estimate from yet)."""
        if self._fixed is not None:
            return self._fixed
        if not self._auto:
            return None
        if self._stale:
            self._estimate = estimate_key_fast(self._counts)
            self._stale = False
        return self._estimate

    def enter(self, index: int) -> None:
        """A token entered the window."""
        self._counts += self._keys.pitch_classes[index]
        self._stale = True

    def leave(self, index: int) -> None:
        """A token left the window."""
        self._counts -= self._keys.pitch_classes[index]
        self._stale = True

    def refill(self, indices: Iterable[int]) -> None:
        """The window was replaced by ``indices``."""
        self._counts = self._keys.counts(indices)
        self._stale = True

    def apply(self, probs: np.ndarray) -> np.ndarray:
        """``probs`` with the tokens outside the current key down-weighted."""
        if self.strength <= 0.0:
            return probs
        if self._call:
            return weigh(probs, self._call_weights())
        key = self.key
        if key is None:
            return probs
        return weigh(probs, self._keys.weights(key, self.strength))

    def _call_weights(self) -> np.ndarray:
        top = self._counts.max()
        if top <= 0.0:
            return np.ones(len(self._keys.pitch_classes))
        share = self._keys.pitch_classes @ (self._counts / top)
        share /= self._keys.pitch_classes.sum(axis=1)
        return 1.0 - self.strength + self.strength * share
