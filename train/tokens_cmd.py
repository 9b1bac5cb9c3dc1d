"""``cadenza tokens``: the tokens the model will see, one JSON entry per file.

It parses the sources as training does (the same cache, the same skips) and
writes ``{"<file path>": [tokens...]}`` in the sources' order: a file of
several sequences (the patterns of a format-2 file, the parts of a score
with no piano part) is ``{"sequences": [[...], ...]}``, and a refused file
``{"error": "<reason>"}``.  Run once, it has also warmed the cache.
"""

from __future__ import annotations

import argparse
import logging
from pathlib import Path
from typing import Any

from cadenza.bundle import write_json_atomic
from cadenza.config import Config
from cadenza.errors import OutputError

log = logging.getLogger(__name__)


def tokens_document(config: Config, *, use_cache: bool = True,
                    cache_dir: Path | None = None) -> tuple[dict[str, Any], Any]:
    """The command's JSON document, and the corpus it came from."""
    from cadenza.train.corpus import load_corpus
    from cadenza.train.sources import resolve_sources

    corpus = load_corpus(config.data, cache_dir=cache_dir, use_cache=use_cache,
                         require_usable=False)
    entries: dict[str, Any] = {}
    for piece in corpus.pieces:
        sequences = piece.sequences
        entries[piece.path] = sequences[0] if len(sequences) == 1 else {"sequences": sequences}
    for skipped in corpus.skipped:
        entries[skipped["file"]] = {"error": skipped["reason"]}
    order = [str(f.path) for f in resolve_sources(config.data.sources, config.data.max_files)]
    return {path: entries[path] for path in order if path in entries}, corpus


def run_tokens(args: argparse.Namespace, config: Config) -> int:
    document, corpus = tokens_document(config, use_cache=not args.no_cache)
    try:
        write_json_atomic(args.json, document)
    except OSError as err:
        raise OutputError(f"{args.json}: cannot write the tokens: {err}") from err
    log.info("tokens of %d files written to %s (%s tokenizer): parsing took %.2f s, "
             "%d files from the cache, %d refused", len(document), args.json,
             config.data.tokenizer, corpus.seconds, corpus.cached, len(corpus.skipped))
    return 0
