"""Where training runs: TensorFlow's distribution strategy for ``[train] strategy``.

``default`` is one device (or Keras on another backend, with nothing to
distribute); ``mirrored`` every GPU of this machine; ``multi-worker`` a
cluster described by ``TF_CONFIG``, whose chief alone writes the real
output folder.
"""

from __future__ import annotations

import contextlib
import json
import os
from typing import Any

from cadenza.config import STRATEGIES
from cadenza.errors import ConfigError


class _NoStrategy:
    """The ``default`` strategy where Keras runs on another backend (JAX on a GPU
    machine): one device, nothing to distribute, no TensorFlow needed."""

    def scope(self) -> contextlib.AbstractContextManager:
        return contextlib.nullcontext()


def make_strategy(name: str) -> Any:
    """TensorFlow's distribution strategy for the ``strategy`` setting."""
    check_strategy(name)
    import keras

    if keras.backend.backend() != "tensorflow":
        if name != "default":
            raise ConfigError(
                f"[train] strategy = {name!r} needs Keras on TensorFlow; this Keras runs on "
                f"{keras.backend.backend()} (KERAS_BACKEND): use strategy = 'default'")
        return _NoStrategy()
    import tensorflow as tf

    if name == "default":
        return tf.distribute.get_strategy()
    if name == "mirrored":
        return tf.distribute.MirroredStrategy()
    return tf.distribute.MultiWorkerMirroredStrategy()


def check_strategy(name: str) -> None:
    if name not in STRATEGIES:
        raise ConfigError(f"[train] strategy = {name!r}: must be one of {', '.join(STRATEGIES)}")
    if name == "multi-worker" and not os.environ.get("TF_CONFIG"):
        raise ConfigError(
            "[train] strategy = 'multi-worker' needs the TF_CONFIG environment variable "
            "(the cluster and this worker's task)"
        )


def is_chief() -> bool:
    # In a multi-worker cluster only the chief (or worker 0 when there is no
    # chief) writes the real output folder; the others write scratch copies.
    spec = json.loads(os.environ.get("TF_CONFIG") or "{}")
    task = spec.get("task") or {}
    if not task:
        return True
    if "chief" in (spec.get("cluster") or {}):
        return task.get("type") == "chief"
    return task.get("type") == "worker" and int(task.get("index", 0)) == 0
