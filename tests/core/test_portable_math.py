"""cadenza.portable_math: exp and log specified to the bit, within 1 ulp of the C library's."""

from __future__ import annotations

import math

import numpy as np
import pytest

from cadenza import portable_math


def _values(seed: int) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    exponents = np.concatenate([rng.uniform(-708.0, 709.0, 20_000), rng.normal(0.0, 3.0, 20_000),
                                rng.uniform(-70.0, 0.0, 20_000)])
    positives = np.concatenate([rng.uniform(1e-30, 1.0, 20_000), np.exp2(rng.uniform(-1070, 1020, 20_000)),
                                rng.uniform(0.5, 2.0, 20_000)])
    return exponents, positives


def _ulps(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Distance in units in the last place between same-signed finite doubles."""
    return np.abs(a.view(np.int64) - b.view(np.int64))


@pytest.mark.parametrize("seed", [1, 2])
def test_exp_and_log_are_within_one_ulp_of_the_c_library(seed):
    exponents, positives = _values(seed)
    by_libm = np.array([math.exp(v) for v in exponents.tolist()])
    assert _ulps(portable_math.exp(exponents), by_libm).max() <= 1
    by_libm = np.array([math.log(v) for v in positives.tolist()])
    assert _ulps(portable_math.log(positives), by_libm).max() <= 1


def test_known_values_are_exact():
    assert portable_math.exp(np.array([0.0]))[0] == 1.0
    assert portable_math.log(np.array([1.0]))[0] == 0.0
    # log(2**e) = e ln 2 on the two parts of ln 2: exact for these e
    powers = np.array([2.0, 0.5, 2.0**-100, 2.0**1000])
    assert np.array_equal(portable_math.log(powers),
                          [math.log(v) for v in powers.tolist()])


def test_the_edges():
    exponents = np.array([-math.inf, -1000.0, -708.0000001, -708.0, 708.99, 709.0, 1000.0, math.inf, math.nan])
    got = portable_math.exp(exponents)
    assert list(got[:3]) == [0.0, 0.0, 0.0]
    assert 0 < got[3] < 1e-307 and np.isfinite(got[4])
    assert list(got[5:8]) == [math.inf] * 3 and math.isnan(got[8])
    logs = portable_math.log(np.array([0.0, -0.0, -1.0, math.inf, math.nan, 5e-324, 2.0**-1074 * 3]))
    assert logs[0] == logs[1] == -math.inf and math.isnan(logs[2]) and logs[3] == math.inf
    assert math.isnan(logs[4])
    # subnormals, scaled into the normal range first
    assert _ulps(logs[5:], np.array([math.log(5e-324), math.log(2.0**-1074 * 3)])).max() <= 1


def test_no_result_of_exp_is_subnormal():
    """A host that flushes subnormals to zero would otherwise change a draw."""
    got = portable_math.exp(np.linspace(-800.0, -700.0, 100_001))
    assert not np.any((got > 0.0) & (got < 2.0**-1022))


def test_shapes_are_kept():
    grid = np.array([[0.0, -1.0], [2.0, 1e-30]])
    assert portable_math.exp(grid).shape == grid.shape and portable_math.log(grid).shape == grid.shape
    assert portable_math.exp(np.float64(0.5)).shape == ()
    assert portable_math.log(grid[:, 0]).shape == (2,)
    strided = np.arange(10.0)[::3]
    assert np.array_equal(portable_math.exp(strided), portable_math.exp(strided.copy()))
