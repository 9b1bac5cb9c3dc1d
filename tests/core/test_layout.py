"""The house rules that a reader relies on: arrows run downwards, rooms stay small.

``live/`` shows its architecture: the pure engine (``live/engine/``) imports
nothing from the ports (``live/midi/``), the daemon's threads
(``live/daemon/``) or the offline tools (``live/offline/``); the ports know
nothing of the daemon.  The test infrastructure (``testing/``) is never
installed.
"""

from __future__ import annotations

import ast
import sys
from pathlib import Path

import pytest

if sys.version_info >= (3, 11):
    import tomllib
else:
    import tomli as tomllib

REPO = Path(__file__).resolve().parents[2]
# Folder -> the cadenza packages its modules must never import (at any depth,
# lazily or not).  cadenza/ is the contract layer: only its CLI dispatches
# upwards, lazily, by name.
FORBIDDEN = {
    "cadenza": ("cadenza.train", "cadenza.export", "cadenza.live"),
    "train": ("cadenza.live", "cadenza.export"),
    "export": ("cadenza.live",),
    "live": ("cadenza.train", "cadenza.export", "cadenza.cli", "testing"),
    "live/engine": ("cadenza.live.midi", "cadenza.live.daemon", "cadenza.live.offline",
                    "cadenza.live.realtime", "cadenza.live.model"),
    "live/midi": ("cadenza.live.daemon", "cadenza.live.offline"),
    "live/daemon": ("cadenza.live.offline",),
    "live/offline": ("cadenza.live.midi",),
}
EXEMPT = {"cadenza/cli.py"}
SOURCE = ("cadenza", "train", "export", "live", "testing")
MAX_LINES = 450  # "small enough to read in one sitting"
MAX_LIVE_TOP = 8  # modules directly in live/: the subpackages hold the rest
TEST_INFRASTRUCTURE = ("jack_harness.py", "xrun_storm.py", "fake_predictor.py")


def _imports(path: Path) -> set[str]:
    names = set()
    for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module:
            names.add(node.module)
    return names


def _modules(folder: str) -> list[Path]:
    return sorted((REPO / folder).rglob("*.py"))


@pytest.mark.parametrize("folder", sorted(FORBIDDEN))
def test_imports_run_downwards(folder):
    wrong = []
    for path in _modules(folder):
        if path.relative_to(REPO).as_posix() in EXEMPT:
            continue
        for name in _imports(path):
            if any(name == bad or name.startswith(bad + ".") for bad in FORBIDDEN[folder]):
                wrong.append(f"{path.relative_to(REPO)} imports {name}")
    assert not wrong, wrong


def test_the_engine_imports_nothing_of_the_ports_threads_or_files():
    # Beyond the package rule: no threads, no JACK, no wall clock reading.
    wrong = []
    for path in _modules("live/engine"):
        for name in _imports(path):
            if name.split(".")[0] in ("threading", "rtmidi", "ctypes", "subprocess", "socket"):
                wrong.append(f"{path.relative_to(REPO)} imports {name}")
    assert not wrong, wrong


def test_no_module_is_a_warehouse():
    big = {
        path.relative_to(REPO).as_posix(): n
        for folder in SOURCE
        for path in _modules(folder)
        if (n := len(path.read_text().splitlines())) > MAX_LINES
    }
    assert not big, big


def test_live_shows_its_architecture():
    top = sorted(path.name for path in (REPO / "live").glob("*.py"))
    assert len(top) <= MAX_LIVE_TOP, top
    for sub in ("engine", "midi", "daemon", "offline"):
        assert (REPO / "live" / sub / "__init__.py").is_file(), sub


def test_the_test_infrastructure_is_never_installed():
    setuptools = tomllib.loads((REPO / "pyproject.toml").read_text())["tool"]["setuptools"]
    installed = [REPO / folder for folder in setuptools["package-dir"].values()]
    found = [
        path.relative_to(REPO).as_posix()
        for folder in installed
        for name in TEST_INFRASTRUCTURE
        for path in folder.rglob(name)
    ]
    assert not found, found
    assert not any(name.split(".")[0] in ("testing", "tests") for name in setuptools["packages"])
    # Every installed package is a folder under a mapped root (nothing left behind).
    package_dir = setuptools["package-dir"]
    for name in setuptools["packages"]:
        parts = name.split(".")
        cut = next(cut for cut in range(len(parts), 0, -1) if ".".join(parts[:cut]) in package_dir)
        base = REPO / package_dir[".".join(parts[:cut])] / Path(*parts[cut:])
        assert (base / "__init__.py").is_file(), name
