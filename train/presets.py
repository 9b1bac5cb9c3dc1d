"""Facts about the two presets that more than the Keras model needs (no Keras import here)."""

from __future__ import annotations

#: Which epoch's model a run keeps and reports.  The original notebook
#: reported its model as it stood after the last epoch; the improved preset
#: keeps the epoch of lowest held-out loss.
KEPT_EPOCH = {"seed": "last", "default": "best"}

#: The seed preset feeds each token index as one float feature, undivided,
#: as the original notebook did (``np.reshape(x, (n, 50, 1))`` on raw indices).
SEED_INPUT_SCALE = 1.0
