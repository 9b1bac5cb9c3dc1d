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


# -- JACK (the daemon's end-to-end tests) -----------------------------------


@pytest.fixture(scope="module")
def jack_server():
    """A private JACK server (dummy driver, 48 kHz, 64-frame period) for one test module.

    ``JACK_DEFAULT_SERVER`` points every client started meanwhile, in this
    process or a subprocess, at it.  Without jackd: skipped, or failed in CI
    (and skipped outside CI on a machine far too busy to judge real time).
    """
    from tests.support.jack_server import (
        JackServer,
        jack_environment,
        require_jackd,
        require_quiet_machine,
    )

    require_jackd()
    require_quiet_machine()
    with JackServer() as server, jack_environment(server):
        yield server


# -- Tiny trained models and their bundles (export and runtime tests) --------


@pytest.fixture(scope="session")
def tiny_models(tmp_path_factory) -> dict[str, Path]:
    """A tiny trained model folder per preset, as the trainer writes them, and
    "sensitive": a default-preset model with a long memory (see make_model_folder)."""
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    from tests.support.bundle_factory import make_model_folder

    root = tmp_path_factory.mktemp("models")
    models = {preset: make_model_folder(root / preset, preset) for preset in ("seed", "default")}
    models["sensitive"] = make_model_folder(root / "sensitive", "default", weight_scale=3.0)
    return models


@pytest.fixture(scope="session")
def tiny_bundles(tiny_models, tmp_path_factory) -> dict[str, Path]:
    """Each tiny model exported with int8 requested (the int8 graphs may be dropped)."""
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    from cadenza.config import ExportConfig
    from cadenza.export.writer import export_bundle

    root = tmp_path_factory.mktemp("bundles")
    for preset, model in tiny_models.items():
        export_bundle(model, root / preset, ExportConfig(int8=True))
    return {preset: root / preset for preset in tiny_models}


def pytest_collection_modifyitems(config, items):
    """End-to-end JACK tests get up to two more tries.

    A JACK server started without real-time scheduling (all a test machine
    allows) can lose MIDI between two clients when its process thread is
    starved, so a message the daemon sent correctly may never arrive. Each
    try is a complete, strict run: a rerun hides a lost message, never a
    wrong answer, since a real defect fails all three. Without the
    pytest-rerunfailures plugin (the [dev] extra) nothing changes.
    """
    if not config.pluginmanager.hasplugin("rerunfailures"):
        return
    for item in items:
        if item.get_closest_marker("jack") and not item.get_closest_marker("flaky"):
            item.add_marker(pytest.mark.flaky(reruns=2, reruns_delay=1))
