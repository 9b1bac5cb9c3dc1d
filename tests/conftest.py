"""Fixtures shared by the whole suite."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
# shared/ lies beside the checkout (CI copies it there too); an env var may point elsewhere.
SHARED = Path(os.environ.get("CADENZA_SHARED", REPO.parent / "shared"))
SEED_MOZART = SHARED / "data" / "seed-mozart"


@pytest.fixture(scope="session")
def seed_mozart_dir() -> Path:
    if not SEED_MOZART.is_dir():
        pytest.skip(f"seed-mozart data not found at {SEED_MOZART}")
    return SEED_MOZART


@pytest.fixture(scope="session")
def cache_dir(tmp_path_factory) -> Path:
    """One parse cache for the session, so music21 parses each file once."""
    configured = os.environ.get("CADENZA_CACHE_DIR")
    if configured:
        return Path(configured)
    return tmp_path_factory.mktemp("parse-cache")
