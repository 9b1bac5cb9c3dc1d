"""The parse cache: each file's tokens, keyed by its bytes and the parser settings.

music21 needs seconds per piano piece, so each result (tokens, or the reason
a file is unusable) is kept as one small JSON file.  The key is the sha256 of
the file's content together with the parser settings and the token scheme
version, so an edited file, a changed rule or a new scheme parses again and
nothing else does.  A damaged entry is treated as missing.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
from pathlib import Path
from typing import Any

from cadenza.bundle import write_json_atomic

log = logging.getLogger(__name__)

CACHE_ENV = "CADENZA_CACHE_DIR"


def resolve_cache_dir(configured: str) -> Path:
    """The cache folder: ``$CADENZA_CACHE_DIR`` if set, else the config's ``cache_dir``."""
    return Path(os.environ.get(CACHE_ENV) or configured).expanduser()


def file_digest(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def cache_key(digest: str, fingerprint: dict[str, Any]) -> str:
    """The key of one file's entry: its content digest plus the parser fingerprint."""
    settings = json.dumps(fingerprint, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(f"{digest}\n{settings}".encode()).hexdigest()


class TokenCache:
    """Parsed files on disk: ``ROOT/tokens/ab/abcdef....json``."""

    def __init__(self, root: Path) -> None:
        self.root = Path(root)

    def _path(self, key: str) -> Path:
        return self.root / "tokens" / key[:2] / f"{key}.json"

    def get(self, key: str) -> dict[str, Any] | None:
        """The stored entry (``sequences`` or ``error``), or None when absent or damaged."""
        path = self._path(key)
        try:
            entry = json.loads(path.read_text(encoding="utf-8"))
        except FileNotFoundError:
            return None
        except (OSError, UnicodeDecodeError, json.JSONDecodeError) as err:
            log.warning("parse cache entry %s is damaged (%s); parsing again", path, err)
            return None
        if not isinstance(entry, dict) or not (
            isinstance(entry.get("sequences"), list) or isinstance(entry.get("error"), str)
        ):
            log.warning("parse cache entry %s has an unexpected shape; parsing again", path)
            return None
        return entry

    def put(self, key: str, entry: dict[str, Any]) -> None:
        try:
            write_json_atomic(self._path(key), entry)
        except OSError as err:
            # A read-only or full cache costs time on the next run, not this one.
            log.warning("cannot write the parse cache under %s: %s", self.root, err)
