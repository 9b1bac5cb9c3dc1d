"""What the native tests share: the library (skipped, or failed where it must be
built), the built programs, and the ONNX runner to compare against."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest

from cadenza import native

REPO = Path(__file__).resolve().parents[2]
BUILD = REPO / "build" / "native"
TOLERANCE = 1e-5
TIE = 1e-6  # two best tokens this close may swap on float rounding (as export/parity.py)
# `make test` (and so CI) sets this: there a missing library is a failure, not a skip.
REQUIRE = "CADENZA_REQUIRE_NATIVE"


def require_native() -> None:
    if native.available():
        return
    try:
        native.load_library()
    except native.NativeError as err:
        if os.environ.get(REQUIRE):
            pytest.fail(f"{REQUIRE} is set but {err}")
        pytest.skip(str(err))


def require_program(name: str) -> Path:
    require_native()
    program = BUILD / name
    if not program.is_file():
        if os.environ.get(REQUIRE):
            pytest.fail(f"{program} is not built (make native)")
        pytest.skip(f"{program} is not built (make native)")
    return program


def compare_stream(onnx, ours, primers, steps: int, rng: np.random.Generator) -> tuple[float, int]:
    """Feed both runners the same tokens after each primer: (max |dp|, steps compared).

    Fails on a top choice that differs where the reference's best two are not
    within ``TIE`` of each other, and on a context length that differs."""
    worst, compared = 0.0, 0
    size = len(onnx.vocabulary)
    for primer in primers:
        onnx.reset(primer)
        ours.reset(primer)
        for step in range(steps):
            expected, got = onnx.distribution(), ours.distribution()
            assert got.dtype == np.float64 and got.shape == expected.shape
            worst = max(worst, float(np.abs(expected - got).max()))
            best, mine = int(expected.argmax()), int(got.argmax())
            assert best == mine or expected[best] - expected[mine] < TIE, (primer, step)
            assert onnx._length == ours.length, (len(primer), step)
            compared += 1
            # Mostly the model's own choice (as when it plays), now and then anything.
            token = best if step % 4 else int(rng.integers(0, size))
            onnx.feed(token)
            ours.feed(token)
    return worst, compared
