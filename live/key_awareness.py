"""The key the engine leans towards, and how hard: ``[live] key`` and
``key_strength`` (and the ``key_strength`` CC), applied to each distribution.

``key = "auto"`` follows the window: its pitch-class counts (the
performer's notes and the answers', a chord giving each of its classes) are
kept up to date as tokens come and go, and the key is estimated from them
only when a distribution is asked for after they changed.  ``"off"`` leaves
the model alone; a key name holds that key whatever is played.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

import numpy as np

from cadenza.config import KEY_AUTO, KEY_OFF
from cadenza.key import Key, parse_key
from cadenza.key_mask import VocabularyKeys, estimate_key_fast, weigh


class KeyAwareness:
    def __init__(self, vocabulary: Sequence[str]) -> None:
        self._keys = VocabularyKeys(vocabulary)
        self._counts = np.zeros(12)
        self._fixed: Key | None = None
        self._auto = False
        self.strength = 0.0
        self._estimate: Key | None = None
        self._stale = True

    def configure(self, key: str, strength: float) -> None:
        """``key``: "auto", "off" or a key name (checked by the config already)."""
        self._auto = key == KEY_AUTO
        self._fixed = None if key in (KEY_AUTO, KEY_OFF) else parse_key(key)
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
        key = self.key
        if key is None:
            return probs
        return weigh(probs, self._keys.weights(key, self.strength))
