"""What a training run leaves behind besides the model: plots and version facts."""

from __future__ import annotations

import importlib.metadata
import logging
import os
import tempfile
from collections.abc import Mapping, Sequence
from pathlib import Path

log = logging.getLogger(__name__)

# (history key, label, line style) per plot; keys missing from a run are left out.
_CURVES = {
    "accuracy": (
        ("accuracy", "train", "-"),
        ("val_accuracy", "test (next token after the window)", "-"),
        ("val_seq_accuracy", "test (every position)", "--"),
    ),
    "loss": (
        ("loss", "train", "-"),
        ("val_loss", "test (next token after the window)", "-"),
        ("val_seq_loss", "test (every position)", "--"),
    ),
}


def plot_history(history: Mapping[str, Sequence[float]], out_dir: Path, title: str) -> list[Path]:
    """Write ``accuracy.png`` and ``loss.png``: train and test per epoch, like the original."""
    import matplotlib

    matplotlib.use("Agg")  # no display on a training server
    from matplotlib import pyplot as plt

    written = []
    for metric, curves in _CURVES.items():
        figure, axes = plt.subplots(figsize=(7, 4.5))
        for key, label, style in curves:
            values = history.get(key)
            if values:
                axes.plot(range(1, len(values) + 1), values, style, label=label)
        axes.set_title(f"{title}: {metric}")
        axes.set_xlabel("epoch")
        axes.set_ylabel(metric)
        axes.grid(alpha=0.3)
        axes.legend()
        path = Path(out_dir) / f"{metric}.png"
        _save_figure_atomic(figure, path)
        plt.close(figure)
        written.append(path)
    return written


def _save_figure_atomic(figure: object, path: Path) -> None:
    fd, tmp = tempfile.mkstemp(prefix=f".{path.stem}.", suffix=".png", dir=path.parent)
    os.close(fd)
    try:
        figure.savefig(tmp, dpi=100)  # type: ignore[attr-defined]
        os.replace(tmp, path)
    finally:
        Path(tmp).unlink(missing_ok=True)


def versions() -> dict[str, str]:
    """Versions of what built the model (read from package metadata: no imports)."""
    found = {}
    for name in ("tensorflow", "keras", "music21", "numpy", "cadenza"):
        try:
            found[name] = importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            found[name] = "not installed"
    return found
