"""Offline batch prediction: many whole windows at once, for evaluation.

The live runners (``cadenza.runtime``) answer one history at a time; the
exporter's parity and int8 checks and ``cadenza evaluate``'s next-token
figures score thousands of held-out windows.  ``predict_windows`` runs them
through a runner's own session in batches: the window graph on each row
(the original's semantics), the stream graph stepped along every row from
zero state.
"""

from __future__ import annotations

import numpy as np

from cadenza.errors import ModelError
from cadenza.runtime import StreamRunner, WindowRunner

EVAL_BATCH = 512  # windows per onnxruntime call


def _checked(runner: StreamRunner | WindowRunner, windows: np.ndarray) -> np.ndarray:
    windows = np.asarray(windows)
    if windows.ndim != 2 or windows.shape[1] != runner.window:
        raise ModelError(
            f"predict_windows wants an array of shape (n, {runner.window}), got {windows.shape}"
        )
    size = runner.bundle.vocab_size
    if windows.size and (windows.min() < 0 or windows.max() >= size):
        raise ModelError(f"token indices outside the vocabulary of {runner.bundle.path}")
    return windows


def predict_windows(runner: StreamRunner | WindowRunner, windows: np.ndarray) -> np.ndarray:
    """Probabilities (float32, [n, V]) after each row of ``windows`` [n, window].

    A ``WindowRunner`` runs its graph on each row; a ``StreamRunner`` streams
    each row from zero state and keeps the last step's probabilities; the
    native runner (``cadenza.native``) streams each row through its own step.
    """
    windows = _checked(runner, windows)
    if not isinstance(runner, (StreamRunner, WindowRunner)):
        return runner.predict_windows(windows)  # the native step has no onnxruntime session
    if isinstance(runner, WindowRunner):
        return _by_window(runner, windows)
    return _by_stream(runner, windows)


def _by_window(runner: WindowRunner, windows: np.ndarray) -> np.ndarray:
    spec = runner.spec
    tokens = spec.inputs["tokens"]
    windows = windows.astype(np.dtype(tokens.dtype), copy=False)
    out = np.empty((len(windows), runner.bundle.vocab_size), dtype=np.float32)
    for start in range(0, len(windows), EVAL_BATCH):
        chunk = windows[start : start + EVAL_BATCH]
        (out[start : start + len(chunk)],) = runner.session.run(
            [spec.outputs["probs"].name], {tokens.name: chunk}
        )
    return out


def _by_stream(runner: StreamRunner, windows: np.ndarray) -> np.ndarray:
    spec, bundle = runner.spec, runner.bundle
    windows = windows.astype(np.dtype(spec.inputs["token"].dtype), copy=False)
    out = np.empty((len(windows), bundle.vocab_size), dtype=np.float32)
    outputs = [spec.outputs["probs"].name] + [spec.outputs[n].name for n in bundle.state_names]
    for start in range(0, len(windows), EVAL_BATCH):
        chunk = windows[start : start + EVAL_BATCH]
        feeds = {
            spec.inputs[n].name: np.zeros((len(chunk), bundle.state_size), np.float32)
            for n in bundle.state_names
        }
        for step in range(runner.window):
            feeds[spec.inputs["token"].name] = chunk[:, step : step + 1]
            probs, *states = runner.session.run(outputs, feeds)
            for name, state in zip(bundle.state_names, states, strict=True):
                feeds[spec.inputs[name].name] = state
        out[start : start + len(chunk)] = probs
    return out
