"""cadenza.libm: the C library's exp and log, whatever numpy does on this CPU."""

from __future__ import annotations

import math

import numpy as np
import pytest

from cadenza import libm


def _values(seed: int) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    exponents = np.concatenate([rng.uniform(-700.0, 700.0, 20_000), rng.normal(0.0, 3.0, 20_000)])
    positives = np.concatenate([rng.uniform(1e-30, 1.0, 20_000), np.exp2(rng.uniform(-1000, 1000, 20_000))])
    return exponents, positives


@pytest.mark.parametrize("seed", [1, 2])
def test_exp_and_log_are_the_c_librarys_to_the_bit(seed):
    exponents, positives = _values(seed)
    assert np.array_equal(libm.exp(exponents), [math.exp(v) for v in exponents.tolist()])
    assert np.array_equal(libm.log(positives), [math.log(v) for v in positives.tolist()])


def test_shape_and_the_edges_are_numpys():
    grid = np.array([[0.0, -1.0], [2.0, 1e-30]])
    assert libm.exp(grid).shape == grid.shape and libm.log(grid).shape == grid.shape
    with np.errstate(over="ignore", divide="ignore", invalid="ignore"):
        edges = np.array([1000.0, -1000.0, 0.0, math.inf, -math.inf, math.nan])
        np.testing.assert_array_equal(libm.exp(edges), np.exp(edges))
        logs = np.array([0.0, -1.0, 1.0, math.inf, math.nan])
        np.testing.assert_array_equal(libm.log(logs), np.log(logs))


def test_the_math_path_gives_the_same_bits_as_the_numpy_path_where_numpy_agrees(monkeypatch):
    """Both paths, on any CPU: where numpy is libm (most CPUs) they must agree."""
    exponents, positives = _values(3)
    monkeypatch.setattr(libm, "NUMPY_IS_LIBM", False)
    by_math = libm.exp(exponents), libm.log(positives)
    assert np.array_equal(by_math[0], [math.exp(v) for v in exponents.tolist()])
    assert np.array_equal(by_math[1], [math.log(v) for v in positives.tolist()])
