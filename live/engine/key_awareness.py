"""The key the engine leans towards, and how hard: ``[live] key`` and
``key_strength`` (and the ``key_strength`` CC), applied to each distribution.

``key = "auto"`` follows the window: its pitch-class counts (the
performer's notes and the answers', a chord giving each of its classes) are
kept up to date as tokens come and go, and the key is estimated from them
only when a distribution is asked for after they changed.  ``"off"`` leaves
the model alone; a key name holds that key whatever is played.

``key = "call"`` leans towards the window's key as ``auto`` does and, inside
it, towards the performer's own pitch classes: a pitch class's weight is
how often it sounds in the performer's last ``HEARD`` tokens relative to
the commonest (the answers' own notes are left out: counting them, an
answer would lean on itself and narrow with every note), a token's the mean
over its classes, and its probability is multiplied by ``1 - strength + strength * weight``.  A key
says which seven classes belong; the call says which of them (and which
others) this music is using now, which is what its continuation goes on
using.

The answer then spends the call's pitch classes in proportion: after each
answer token, a class the answer has sounded less often than the call's
share of it (``share * (notes so far + 1) - times sounded``, its "owed"
count) is favoured, one sounded more often held back, by
``exp(balance * owed)`` (a token: the mean over its classes; ``[live]
key_balance``, 0: off).  Sampling alone draws the answer's classes
independently, so a short answer often piles onto two or three of them;
balancing keeps its pitch content close to the call's without copying the
call's order (``cadenza evaluate``: higher
pitch-class match with the real continuation, and more distinct pitches,
docs/results.md).

The call's proportions are not quite what comes next: a continuation keeps
the call's key but moves on to its other notes, so its pitch classes are
spread more evenly than the call's (on the tune half of the held-out piano
pieces, the call's own histogram matches its continuation at 0.766 and the
same histogram with each of the key's classes raised by a twentieth of the
whole at 0.786: docs/results.md, "Where the notes go, and the key's other notes").  ``key_spread``
(0: off) says how far: the call's counts, as shares of the whole, get
``key_spread`` added to every class of the window's key before they are
weighed and balanced, so a class of the key that the call left out is
neither held back nor owed nothing.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Iterable, Sequence

import numpy as np

from cadenza import portable_math
from cadenza.config import KEY_AUTO, KEY_CALL, KEY_OFF
from cadenza.key import Key, parse_key
from cadenza.key_mask import VocabularyKeys, estimate_key_fast, weigh

#: How many of the performer's latest tokens ``key = "call"`` weighs: about
#: the length of one call.
HEARD = 16
#: Owed counts beyond this many notes either way weigh no more.
MAX_OWED = 3.0


class KeyAwareness:
    def __init__(self, vocabulary: Sequence[str]) -> None:
        self._keys = VocabularyKeys(vocabulary)
        self._counts = np.zeros(12)
        self._heard: deque[int] = deque()
        self._heard_counts = np.zeros(12)
        self._answered = np.zeros(12)  # classes the answer sounded since the performer's last token
        # token x class, each row summing to 1: a token's mean over its classes is one product
        self._class_means = self._keys.pitch_classes / self._keys.pitch_classes.sum(axis=1)[:, None]
        self._fixed: Key | None = None
        self._auto = False
        self._call = False
        self.strength = 0.0
        self.balance = 0.0
        self.spread = 0.0
        self._key_classes: dict[Key, np.ndarray] = {}  # 12 bins, 1.0 inside the key
        self._estimate: Key | None = None
        self._stale = True

    def configure(self, key: str, strength: float, balance: float = 0.0,
                  spread: float = 0.0) -> None:
        """``key``: "auto", "off", "call" or a key name (checked by the config
        already); ``balance``: how hard ``call`` holds an answer to the call's
        proportions; ``spread``: how much ``call`` adds of the key's other classes."""
        self._auto = key == KEY_AUTO
        self._call = key == KEY_CALL
        self._fixed = None if key in (KEY_AUTO, KEY_OFF, KEY_CALL) else parse_key(key)
        self.strength = float(strength)
        self.balance = float(balance)
        self.spread = float(spread)

    @property
    def key(self) -> Key | None:
        """The key leaned towards now (None: off, or nothing to estimate from yet)."""
        if self._fixed is not None:
            return self._fixed
        return self._estimate_now() if self._auto else None

    def enter(self, index: int) -> None:
        """A token entered the window (the performer's, or an answer's until
        ``hear`` says otherwise)."""
        self._counts += self._keys.pitch_classes[index]
        self._answered += self._keys.pitch_classes[index]
        self._stale = True

    def hear(self, index: int) -> None:
        """The performer played this token (it also entered the window)."""
        if len(self._heard) == HEARD:
            self._heard_counts -= self._keys.pitch_classes[self._heard.popleft()]
        self._heard.append(index)
        self._heard_counts += self._keys.pitch_classes[index]
        self._answered = np.zeros(12)  # the performer plays: any answer so far is over

    def leave(self, index: int) -> None:
        """A token left the window."""
        self._counts -= self._keys.pitch_classes[index]
        self._stale = True

    def refill(self, indices: Iterable[int]) -> None:
        """The window was replaced by ``indices`` (who played them is not known:
        ``key = "call"`` starts again from the next note the performer plays)."""
        self._counts = self._keys.counts(indices)
        self._heard.clear()
        self._heard_counts = np.zeros(12)
        self._answered = np.zeros(12)
        self._stale = True

    def apply(self, probs: np.ndarray) -> np.ndarray:
        """``probs`` with the tokens outside the current key down-weighted."""
        if self.strength <= 0.0:
            return probs
        if self._call:
            # The call's key first, then, inside it, the call's own classes.
            weights = self._call_weights()
            key = self._estimate_now()
            if key is not None:
                weights = weights * self._keys.weights(key, self.strength)
            return weigh(probs, weights)
        key = self.key
        if key is None:
            return probs
        return weigh(probs, self._keys.weights(key, self.strength))

    def _estimate_now(self) -> Key | None:
        if self._stale:
            self._estimate = estimate_key_fast(self._counts)
            self._stale = False
        return self._estimate

    def _classes_of(self, key: Key) -> np.ndarray:
        if key not in self._key_classes:
            classes = np.zeros(12)
            classes[sorted(key.pitch_classes)] = 1.0
            self._key_classes[key] = classes
        return self._key_classes[key]

    def _call_weights(self) -> np.ndarray:
        counts = self._heard_counts
        top = counts.max()
        if top <= 0.0:
            return np.ones(len(self._keys.pitch_classes))
        if self.spread > 0.0:
            key = self._estimate_now()
            if key is not None:
                counts = counts / counts.sum() + self.spread * self._classes_of(key)
                top = counts.max()
        # Row sums, not ``@``: BLAS rounds differently on different CPUs (see
        # key_mask.estimate_key_fast); numpy's own sums are the same everywhere.
        share = (self._class_means * (counts / top)).sum(axis=1)
        weights = 1.0 - self.strength + self.strength * share
        sounded = self._answered.sum()
        if sounded > 0.0 and self.balance > 0.0:
            owed = counts / counts.sum() * (sounded + 1.0) - self._answered
            owed = np.clip(owed, -MAX_OWED, MAX_OWED)
            weights *= portable_math.exp((self._class_means * (self.balance * owed)).sum(axis=1))
        return weights
