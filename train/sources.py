"""Where training files come from: folders of MIDI files and music21's corpus.

A source is either a path (a folder searched recursively for ``.mid`` and
``.midi`` files, or one such file) or ``music21:NAME``: the scores of
composer NAME in the corpus that ships inside music21 (``music21:bach``),
or, when NAME is no composer, what ``music21.corpus.search(NAME)`` finds.
The corpus needs no network and no MIDI files, which makes it the default.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path

from cadenza.errors import DataError
from cadenza.files import is_midi_name, midi_files_under

log = logging.getLogger(__name__)

CORPUS_PREFIX = "music21:"
# Score formats of the corpus worth learning from; roman-numeral analyses
# (.rntxt) are harmonic reductions written by analysts, not music as played.
SCORE_SUFFIXES = (".mxl", ".xml", ".musicxml", ".krn", ".abc", ".mid", ".midi")


@dataclass(frozen=True)
class SourceFile:
    """One file to parse, and the source (as the user wrote it) it came from."""

    path: Path
    source: str

    @property
    def is_midi(self) -> bool:
        return is_midi_name(self.path)


def _folder_files(source: str) -> list[Path]:
    root = Path(source).expanduser()
    if root.is_file():
        if not is_midi_name(root):
            raise DataError(f"data source {source}: not a .mid or .midi file")
        return [root]
    if not root.is_dir():
        raise DataError(f"data source {source}: no such folder (nor music21:NAME corpus)")
    files = midi_files_under(root)
    if not files:
        raise DataError(f"data source {source}: no .mid or .midi files in this folder")
    return files


def _work_path(found: object) -> Path:
    # getWork() answers one path, or a list when a name matches several files.
    return Path(found[0] if isinstance(found, list) else found)


def _corpus_files(source: str) -> list[Path]:
    name = source[len(CORPUS_PREFIX):].strip()
    if not name:
        raise DataError(f"data source {source!r}: write music21:NAME, e.g. music21:bach")
    from music21 import corpus  # heavy; only when a corpus is asked for

    paths = [Path(p) for p in corpus.getComposer(name)]
    if not paths:
        # search() answers corpus-relative paths; getWork() makes them absolute.
        paths = [_work_path(corpus.getWork(str(m.sourcePath))) for m in corpus.search(name)]
    files = sorted({p for p in paths if p.suffix.lower() in SCORE_SUFFIXES}, key=str)
    if not files:
        raise DataError(
            f"data source {source}: music21's corpus has no composer or work matching {name!r}"
        )
    return files


def resolve_sources(sources: tuple[str, ...] | list[str], max_files: int = 0) -> list[SourceFile]:
    """Every file of every source, in a deterministic order.

    ``max_files`` (0: all) limits each source to its first N files, so that
    a quick experiment on a big corpus still draws from every source.
    """
    found: list[SourceFile] = []
    for source in sources:
        is_corpus = source.startswith(CORPUS_PREFIX)
        paths = _corpus_files(source) if is_corpus else _folder_files(source)
        if max_files:
            paths = paths[:max_files]
        log.debug("source %s: %d files", source, len(paths))
        found.extend(SourceFile(path, source) for path in paths)
    return found
