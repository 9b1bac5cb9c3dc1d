"""Texture (``[live] texture``, 0: off): the key's steering chooses pitches,
not how many notes an onset holds.

The key's weights (``key = "call"`` above all) multiply a chord token by the
mean of its classes' weights, which is never more than the best single
class's: every chord loses to the single note on the call's commonest
class, so steering thins the answer.  Measured on the tune half of the
held-out piano pieces: the model alone plays 28 to 30 notes in 16 onsets
(the pieces 31), steered by the call's key 22 to 23 (docs/results.md,
"Where the notes go").

So after the key's weights and continuity, the chord tokens' total
probability is moved back towards what the model gave them:
``target = steered + texture * (model - steered)``; chord tokens are scaled
by ``target / steered``, every other token by ``(1 - target) / (1 -
steered)``, and the distribution renormalised (``key_mask.weigh``).  Which
chord, and which note, is still the steering's choice; whether to play a
chord at all is the model's again.  With ``steered`` 0 or 1 (nothing to
scale) the distribution is left as it is.  Measured, it adds notes (about
1.7 an answer at 1) without moving pitch-class match, so it is off by
default: a control for fuller answers.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from cadenza.key_mask import weigh
from cadenza.tokens import is_chord


class Texture:
    """Puts back the chord tokens' share of the model's own distribution."""

    def __init__(self, vocabulary: Sequence[str]) -> None:
        # 1.0 for a chord token, 0.0 otherwise: a product, not a boolean index,
        # so the sum runs over the whole vocabulary in the order the native
        # engine sums it (numpy's pairwise sum).
        self._chords = np.array([1.0 if is_chord(t) else 0.0 for t in vocabulary])
        self._weights = np.ones(len(vocabulary))
        self.strength = 0.0

    def apply(self, model: np.ndarray, steered: np.ndarray) -> np.ndarray:
        """``steered`` (the model's ``model`` after the key and continuity) with
        its chord share moved ``strength`` of the way back to ``model``'s."""
        if self.strength <= 0.0 or steered is model:
            return steered
        given = (model * self._chords).sum()
        kept = (steered * self._chords).sum()
        if kept <= 0.0 or kept >= 1.0:
            return steered
        target = kept + self.strength * (given - kept)
        chord_scale = target / kept
        other_scale = (1.0 - target) / (1.0 - kept)
        np.copyto(self._weights, np.where(self._chords > 0.0, chord_scale, other_scale))
        return weigh(steered, self._weights)
