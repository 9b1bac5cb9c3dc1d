"""What a run leaves after every epoch so that a killed run can go on where it stopped.

Beside the files of the run itself, the staging folder holds the whole model
after the last finished epoch (weights and optimizer state) and a small
state file: how many epochs are done, the best held-out loss so far, and a
fingerprint of the settings and the data.  A resume with other settings or
other data is refused by name rather than silently mixing two runs.
"""

from __future__ import annotations

import csv
import json
import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from cadenza.config import Config, as_dict
from cadenza.errors import ConfigError

log = logging.getLogger(__name__)

LAST_MODEL_FILE = "last.keras"
STATE_FILE = "resume.json"
# Settings a resumed run may change: how long it trains and where it publishes.
FREE_TO_CHANGE = {("train", "epochs"), ("train", "out")}
TRAINING_SECTIONS = ("data", "train")


def resume_fingerprint(config: Config, data_digest: str) -> dict[str, Any]:
    """The settings and data a run's epochs depend on."""
    # Only what training reads: the export and live settings may change
    # between a run and its resume.
    settings = {
        section: {k: v for k, v in values.items() if (section, k) not in FREE_TO_CHANGE}
        for section, values in as_dict(config).items() if section in TRAINING_SECTIONS
    }
    # Through JSON, so it compares equal to the copy read back (tuples become lists).
    return json.loads(json.dumps({"config": settings, "data_digest": data_digest}))


def read_history(path: Path) -> dict[str, list[float]]:
    """``history.csv`` as columns of floats (the ``epoch`` column left out)."""
    with Path(path).open(newline="") as handle:
        rows = list(csv.DictReader(handle))
    if not rows:
        return {}
    return {key: [float(row[key]) for row in rows] for key in rows[0] if key != "epoch"}


@dataclass(frozen=True)
class ResumeState:
    folder: Path
    epochs: int
    best_loss: float
    best_epoch: int

    @property
    def model_path(self) -> Path:
        return self.folder / LAST_MODEL_FILE

    @staticmethod
    def exists(folder: Path) -> bool:
        return (Path(folder) / STATE_FILE).is_file() and (Path(folder) / LAST_MODEL_FILE).is_file()

    @classmethod
    def read(cls, folder: Path, fingerprint: dict[str, Any]) -> ResumeState | None:
        """The state in ``folder``, ``None`` if there is none; ``ConfigError`` if it is another run's."""
        folder = Path(folder)
        if not cls.exists(folder):
            return None
        path = folder / STATE_FILE
        try:
            doc = json.loads(path.read_text())
            epochs, best_loss, best_epoch = int(doc["epochs"]), float(doc["best_loss"]), int(doc["best_epoch"])
            saved = _training_part(doc["fingerprint"])
        except (OSError, ValueError, KeyError, TypeError) as err:
            raise ConfigError(f"{path}: cannot resume from it: {err}") from err
        if saved != fingerprint:
            raise ConfigError(
                f"{path}: cannot resume: the run was started with other "
                f"{', '.join(_differences(saved, fingerprint))}; resume with the same settings, "
                "or train without --resume to start again"
            )
        return cls(folder, epochs, best_loss, best_epoch)

    @staticmethod
    def write(folder: Path, epochs: int, best_loss: float, best_epoch: int,
              fingerprint: dict[str, Any]) -> None:
        from cadenza.bundle import write_json_atomic

        write_json_atomic(Path(folder) / STATE_FILE, {
            "epochs": epochs, "best_loss": best_loss, "best_epoch": best_epoch,
            "fingerprint": fingerprint,
        })

    def truncate_history(self, path: Path) -> None:
        """Drop rows of epochs after the saved model (logged just before a kill)."""
        lines = Path(path).read_text().splitlines(keepends=True)
        if len(lines) > self.epochs + 1:
            log.info("%s: dropping %d rows logged after the last saved epoch",
                     path, len(lines) - self.epochs - 1)
            Path(path).write_text("".join(lines[: self.epochs + 1]))

    @staticmethod
    def remove(folder: Path) -> None:
        """A finished run publishes no resume files."""
        for name in (STATE_FILE, LAST_MODEL_FILE):
            (Path(folder) / name).unlink(missing_ok=True)


def _training_part(fingerprint: dict[str, Any]) -> dict[str, Any]:
    # Runs saved before the fingerprint left out [export] and [live] still
    # resume: those sections are not compared.  A setting added since the run
    # was saved takes its default there: the run was made as the default makes it.
    defaults = resume_fingerprint(Config(), "")["config"]
    config = {
        section: {**defaults.get(section, {}), **values}
        for section, values in fingerprint["config"].items() if section in TRAINING_SECTIONS
    }
    return {**fingerprint, "config": config}


def _differences(saved: dict[str, Any], now: dict[str, Any]) -> list[str]:
    found = []
    if saved.get("data_digest") != now.get("data_digest"):
        found.append("data")
    before, after = saved.get("config", {}), now.get("config", {})
    for section in sorted(set(before) | set(after)):
        a, b = before.get(section, {}), after.get(section, {})
        found += [f"[{section}] {key}" for key in sorted(set(a) | set(b)) if a.get(key) != b.get(key)]
    return found or ["settings"]
