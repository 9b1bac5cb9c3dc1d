"""What a training run leaves behind, and how it gets there without harming an older run.

A run writes nothing into its output folder until it has finished: every
file goes into a staging folder inside it (``.partial-*``), and only then
moves into place, one rename per file, ``report.json`` last.  A run that
fails half way (a full disk, an unwritable folder, an error, a kill) leaves
the folder's files exactly as they were; a killed run leaves its staging
folder behind with every finished epoch in it: ``cadenza train --resume``
goes on from there, and a run without ``--resume`` starts it afresh.
"""

from __future__ import annotations

import contextlib
import importlib.metadata
import logging
import os
import shutil
import sys
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from cadenza.errors import OutputError
from cadenza.files import write_atomic

log = logging.getLogger(__name__)

STAGING_PREFIX = ".partial-"
# One staging folder per output folder, by a fixed name, so that a later
# process (``--resume``) finds the epochs a killed one left.
STAGING_NAME = f"{STAGING_PREFIX}run"


def _reason(err: OSError) -> str:
    return err.strerror or str(err)


@dataclass(frozen=True)
class Staging:
    """The output folder of a run, and the staging folder inside it that the run writes."""

    out: Path
    path: Path
    created_out: bool  # the run made ``out``: a failed run removes it again

    @classmethod
    def open(cls, out: Path, keep: bool = False) -> Staging:
        """Make ``out`` (if needed) and a staging folder in it; ``OutputError`` if it cannot be written.

        Called before any work, so an unusable folder fails in a second, not
        after an hour of training.  ``keep``: an unfinished run's staging
        folder stays as it is (to resume it); otherwise it is emptied.
        """
        out = Path(out)
        if out.exists() and not out.is_dir():
            raise OutputError(f"{out}: the output folder exists and is not a folder")
        created = not out.exists()
        try:
            out.mkdir(parents=True, exist_ok=True)
            path = out / STAGING_NAME
            if path.exists() and not keep:
                log.info("%s: discarding an unfinished run's files (--resume keeps them)", path)
                shutil.rmtree(path)
            path.mkdir(exist_ok=True)
        except OSError as err:
            raise OutputError(f"{out}: cannot write the output folder: {_reason(err)}") from err
        return cls(out, path, created)

    def publish(self, last: str) -> list[str]:
        """Move every staged file into the output folder, ``last`` after all the others."""
        names = sorted(p.name for p in self.path.iterdir() if p.is_file() and p.name != last)
        try:
            # Without its report the folder reads as unfinished while the
            # files are swapped, never as an old report over a new model.
            (self.out / last).unlink(missing_ok=True)
            for name in [*names, last]:
                os.replace(self.path / name, self.out / name)
        except OSError as err:
            raise OutputError(
                f"{self.out}: cannot move the finished run into place: {_reason(err)} "
                f"(the run's files are in {self.path})"
            ) from err
        shutil.rmtree(self.path, ignore_errors=True)
        return [*names, last]

    def discard(self) -> None:
        """Forget a failed run: remove the staging folder, and ``out`` if the run made it."""
        shutil.rmtree(self.path, ignore_errors=True)
        if self.created_out:
            with contextlib.suppress(OSError):
                self.out.rmdir()  # only while empty: never anything someone else put there


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
    # savefig picks the format from the name; the temporary name has none.
    write_atomic(path, lambda tmp: figure.savefig(tmp, dpi=100, format="png"))  # type: ignore[attr-defined]


def versions() -> dict[str, str]:
    """Versions of what built the model (read from package metadata: no imports)."""
    found = {}
    for name in ("tensorflow", "keras", "jax", "music21", "numpy", "cadenza"):
        try:
            found[name] = importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            found[name] = "not installed"
    # Which engine ran the fit: KERAS_BACKEND, as Keras resolved it.
    keras = sys.modules.get("keras")
    found["keras_backend"] = keras.backend.backend() if keras else "not loaded"
    return found
