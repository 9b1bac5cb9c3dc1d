"""The LSTM gate activation of the original's era, so that the seed preset can
be trained as the notebook's Keras trained it.

Keras up to 2.2 gave its LSTMs ``recurrent_activation = "hard_sigmoid"``,
then defined as ``clip(0.2 x + 0.5, 0, 1)``.  Keras 3's ``hard_sigmoid`` is
another function (``relu6(x + 3) / 6``: slope 1/6, saturating at +-3, not
+-2.5), so naming it would not reproduce the original; this is the old one.
It is registered with Keras's serializer, so a saved model names it and
loads again wherever this module has been imported.
"""

from __future__ import annotations

import keras

from cadenza.config import RECURRENT_ACTIVATIONS

KERAS2_HARD_SIGMOID = "cadenza>keras2_hard_sigmoid"


@keras.saving.register_keras_serializable(package="cadenza", name="keras2_hard_sigmoid")
def keras2_hard_sigmoid(x):
    """Keras 2.2's ``hard_sigmoid``: ``clip(0.2 x + 0.5, 0, 1)``."""
    return keras.ops.clip(0.2 * x + 0.5, 0.0, 1.0)


def recurrent_activation(name: str):
    """The gate activation ``[train] recurrent_activation`` names."""
    if name == "sigmoid":
        return "sigmoid"
    if name == "hard_sigmoid":
        return keras2_hard_sigmoid
    raise ValueError(f"unknown recurrent_activation {name!r} "
                     f"(known: {', '.join(RECURRENT_ACTIVATIONS)})")
