"""Sources -> parsed pieces: parallel parsing, the cache, and skipping bad files.

Files not in the cache are parsed in parallel processes (``workers``, 0 =
one per core) with a progress bar.  A file that cannot give tokens is
skipped with a warning naming it and the reason; the run logs how many files
were used and skipped, and a source left with no usable file is an error.
"""

from __future__ import annotations

import concurrent.futures as futures
import hashlib
import json
import logging
import multiprocessing
import os
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from cadenza.config import DataConfig
from cadenza.errors import DataError
from cadenza.train.cache import TokenCache, cache_key, file_digest, resolve_cache_dir
from cadenza.train.midifile import size_problem
from cadenza.train.parse import ParseSettings, parse_job
from cadenza.train.sources import SourceFile, resolve_sources

log = logging.getLogger(__name__)


@dataclass
class Piece:
    """One usable file: its token sequences (windows never cross between them)."""

    path: str
    source: str
    digest: str
    sequences: list[list[str]]

    @property
    def token_count(self) -> int:
        return sum(len(s) for s in self.sequences)


@dataclass
class Corpus:
    pieces: list[Piece]
    skipped: list[dict[str, str]]  # {"file", "source", "reason"}
    sources: tuple[str, ...]
    settings: ParseSettings
    digest: str = ""
    parsed: int = 0
    cached: int = 0
    seconds: float = 0.0


@dataclass
class _Job:
    file: SourceFile
    digest: str
    key: str
    sequences: list[list[str]] | None = None
    error: str | None = None
    cacheable: bool = True  # False: the failure says nothing about the file


def _read(file: SourceFile) -> bytes | str:
    """The file's bytes, or why they cannot be had."""
    try:
        # A huge file is refused before it is read: its digest alone would
        # hold all of it in memory.
        return size_problem(file.path.stat().st_size) or file.path.read_bytes()
    except OSError as err:
        return f"cannot read it: {err.strerror or err}"


def _bar(total: int) -> Any:
    from tqdm import tqdm

    return tqdm(total=total, desc="parsing", unit="file", file=sys.stderr,
                disable=not sys.stderr.isatty())


def _parse_here(jobs: list[_Job], settings: ParseSettings, time_limit: float) -> None:
    with _bar(len(jobs)) as bar:
        for job in jobs:
            job.sequences, job.error, job.cacheable = parse_job(
                str(job.file.path), settings, time_limit)
            bar.update(1)


def _parse_in_pool(
    jobs: list[_Job], settings: ParseSettings, workers: int, time_limit: float
) -> None:
    """Parse ``jobs`` in ``workers`` processes; a crashed worker costs only its own file."""
    # fork starts fastest, but a forked copy of TensorFlow's threads can
    # deadlock: once TensorFlow is loaded, start clean processes instead.
    method = "spawn" if "tensorflow" in sys.modules else "fork"
    context = multiprocessing.get_context(method)
    retry: list[_Job] = []
    with (
        _bar(len(jobs)) as bar,
        futures.ProcessPoolExecutor(max_workers=workers, mp_context=context) as pool,
    ):
        pending = {pool.submit(parse_job, str(j.file.path), settings, time_limit): j
                   for j in jobs}
        for done in futures.as_completed(pending):
            job = pending[done]
            try:
                job.sequences, job.error, job.cacheable = done.result()
            except futures.process.BrokenProcessPool:
                retry.append(job)
            bar.update(1)
    # A worker that died (a crash inside a C extension, out of memory) takes
    # the pool down with it; try those files again one at a time.
    for job in retry:
        with futures.ProcessPoolExecutor(max_workers=1, mp_context=context) as pool:
            try:
                job.sequences, job.error, job.cacheable = pool.submit(
                    parse_job, str(job.file.path), settings, time_limit
                ).result()
            except futures.process.BrokenProcessPool:
                job.error = "the parser process died on this file"
                job.cacheable = False


def _worker_count(configured: int, jobs: int) -> int:
    cores = os.cpu_count() or 1
    return max(1, min(configured or cores, jobs))


def corpus_digest(pieces: list[Piece], settings: ParseSettings) -> str:
    """sha256 over the used files' digests, in order, and the parser settings."""
    document = {"files": [p.digest for p in pieces], "settings": settings.fingerprint()}
    return hashlib.sha256(json.dumps(document, sort_keys=True).encode()).hexdigest()


def load_corpus(
    config: DataConfig,
    *,
    cache_dir: Path | None = None,
    settings: ParseSettings | None = None,
    use_cache: bool = True,
    require_usable: bool = True,
) -> Corpus:
    """Resolve, read, parse (or fetch from the cache) every file of ``config.sources``.

    ``use_cache=False`` parses every file and stores nothing; with
    ``require_usable=False`` a source with no usable file is no error.
    """
    settings = settings or ParseSettings(chordify=config.chordify, tokenizer=config.tokenizer)
    cache = TokenCache(cache_dir if cache_dir is not None else resolve_cache_dir(config.cache_dir))
    started = time.perf_counter()
    files = resolve_sources(config.sources, config.max_files)
    fingerprint = settings.fingerprint()
    jobs: list[_Job] = []
    skipped: list[dict[str, str]] = []
    seen: dict[str, str] = {}

    def skip(file: SourceFile, reason: str) -> None:
        log.warning("skipping %s: %s", file.path, reason)
        skipped.append({"file": str(file.path), "source": file.source, "reason": reason})

    for file in files:
        data = _read(file)
        if isinstance(data, str):
            skip(file, data)
            continue
        digest = file_digest(data)
        if digest in seen:
            skip(file, f"duplicate of {seen[digest]}")
            continue
        seen[digest] = str(file.path)
        jobs.append(_Job(file, digest, cache_key(digest, fingerprint)))

    todo = []
    for job in jobs:
        entry = cache.get(job.key) if use_cache else None
        if entry is None:
            todo.append(job)
        else:
            job.sequences, job.error = entry.get("sequences"), entry.get("error")
    cached = len(jobs) - len(todo)
    if todo:
        workers = _worker_count(config.workers, len(todo))
        log.info("parsing %d files (%s tokenizer), %d at a time (%d from the cache)",
                 len(todo), settings.tokenizer, workers, cached)
        if workers == 1:
            # Starting a process would cost more than it saves.
            _parse_here(todo, settings, config.parse_timeout)
        else:
            _parse_in_pool(todo, settings, workers, config.parse_timeout)
        for job in (j for j in todo if j.cacheable and use_cache):
            entry = {"file": job.file.path.name, "sequences": job.sequences} if job.error is None \
                else {"file": job.file.path.name, "error": job.error}
            cache.put(job.key, {**entry, "tokenizer": settings.tokenizer})
    else:
        log.info("all %d files came from the parse cache (%s)", cached, cache.root)

    pieces = []
    for job in jobs:
        if job.error is not None or not job.sequences:
            skip(job.file, job.error or "no notes or chords in it")
        else:
            pieces.append(Piece(str(job.file.path), job.file.source, job.digest, job.sequences))
    if require_usable:
        _check_sources(config.sources, pieces, skipped)
    corpus = Corpus(
        pieces=pieces,
        skipped=skipped,
        sources=tuple(config.sources),
        settings=settings,
        digest=corpus_digest(pieces, settings),
        parsed=len(todo),
        cached=cached,
        seconds=time.perf_counter() - started,
    )
    log.info("used %d files, skipped %d (%d parsed, %d from the cache, %.1f s)",
             len(pieces), len(skipped), len(todo), cached, corpus.seconds)
    return corpus


def _check_sources(sources: tuple[str, ...], pieces: list[Piece], skipped: list[dict]) -> None:
    for source in sources:
        if any(p.source == source for p in pieces):
            continue
        reasons = [f"{Path(s['file']).name} ({s['reason']})" for s in skipped
                   if s["source"] == source]
        shown = "; ".join(reasons[:5]) + (f"; and {len(reasons) - 5} more" if len(reasons) > 5 else "")
        raise DataError(f"data source {source}: no usable file ({shown})")
