"""Files: writing them so that a crash, a full disk or Ctrl-C never leaves a
torn one, and finding and reading MIDI files."""

from __future__ import annotations

import os
import tempfile
from collections.abc import Callable
from pathlib import Path

import mido

from cadenza.errors import MidiFileError

#: MIDI file name endings, compared lower-cased (piano-midi has ".MID" files).
MIDI_SUFFIXES = (".mid", ".midi")


def is_midi_name(path: Path) -> bool:
    return path.suffix.lower() in MIDI_SUFFIXES


def midi_files_under(root: Path) -> list[Path]:
    """Every MIDI file in ``root``'s tree, sorted by its path relative to
    ``root``, so that every machine lists them in the same order."""
    return sorted((p for p in root.rglob("*") if is_midi_name(p) and p.is_file()),
                  key=lambda p: p.relative_to(root).as_posix())


def write_atomic(path: str | Path, write: Callable[[str], None], mode: int = 0o644) -> Path:
    """Call ``write(temporary_path)``, then rename the result onto ``path``.

    The temporary file sits in the same folder, so the rename is atomic and
    whatever was at ``path`` stays intact until the new file is complete.
    ``mode`` is set explicitly because ``mkstemp`` makes files private (0600),
    and models, reports and recordings are meant to be shared.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    os.close(fd)
    try:
        write(tmp)
        os.chmod(tmp, mode)
        os.replace(tmp, path)
    finally:
        Path(tmp).unlink(missing_ok=True)
    return path


def read_midi(path: str | Path) -> mido.MidiFile:
    """Open a standard MIDI file, or raise ``MidiFileError`` naming it and why."""
    path = Path(path)
    try:
        return mido.MidiFile(path)
    except FileNotFoundError as err:
        raise MidiFileError(f"{path}: no such MIDI file") from err
    except (OSError, EOFError, ValueError, KeyError, IndexError) as err:
        raise MidiFileError(f"{path}: not a readable MIDI file: {err}") from err
