"""The house rules that a reader relies on: arrows run downwards, rooms stay small."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
# Folder -> the cadenza packages its modules must never import (at any depth,
# lazily or not).  cadenza/ is the contract layer: only its CLI dispatches
# upwards, lazily, by name.
FORBIDDEN = {
    "cadenza": ("cadenza.train", "cadenza.export", "cadenza.live"),
    "train": ("cadenza.live", "cadenza.export"),
    "export": ("cadenza.live",),
    "live": ("cadenza.train", "cadenza.export", "cadenza.cli"),
}
EXEMPT = {"cadenza/cli.py"}
MAX_LINES = 520  # "small enough to read in one sitting"


def _imports(path: Path) -> set[str]:
    names = set()
    for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module:
            names.add(node.module)
    return names


def _modules(folder: str) -> list[Path]:
    return sorted((REPO / folder).glob("*.py"))


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


def test_no_module_is_a_warehouse():
    big = {
        path.relative_to(REPO).as_posix(): n
        for folder in ("cadenza", "train", "export", "live")
        for path in _modules(folder)
        if (n := len(path.read_text().splitlines())) > MAX_LINES
    }
    assert not big, big
