"""``exp`` and ``log`` of float64 arrays as the C library computes them.

A draw depends on the last bit of the distribution, so the engines take
their exponentials and logarithms from one place.  numpy calls the C
library's ``exp`` and ``log`` on most CPUs, but where it has its own SIMD
versions (x86-64 with AVX512F) they differ from it in the last place on a
few values in a hundred: the same seed would then answer differently on
different machines, and the native engine (which calls the C library) would
part from this one.  So numpy is used where it agrees with the C library on a
probe of values checked at import, and Python's ``math`` (the C library's
functions, one value at a time) elsewhere.
"""

from __future__ import annotations

import logging
import math

import numpy as np

log_ = logging.getLogger(__name__)

# Enough values that a SIMD version differing on a few in a hundred cannot pass.
PROBE_SIZE = 4096


def _probe() -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(20261207)
    exponents = np.concatenate([rng.uniform(-60.0, 8.0, PROBE_SIZE), rng.normal(0.0, 1.0, PROBE_SIZE)])
    positives = np.concatenate([rng.uniform(1e-30, 1.0, PROBE_SIZE),
                                np.exp2(rng.uniform(-99.0, 2.0, PROBE_SIZE))])
    return exponents, positives


def _numpy_agrees() -> bool:
    exponents, positives = _probe()
    same_exp = np.array_equal(np.exp(exponents), [math.exp(v) for v in exponents.tolist()])
    same_log = np.array_equal(np.log(positives), [math.log(v) for v in positives.tolist()])
    return same_exp and same_log


NUMPY_IS_LIBM = _numpy_agrees()
if not NUMPY_IS_LIBM:
    log_.debug("numpy's float64 exp/log differ from the C library's here: using math's")


def _each(function, values: np.ndarray, *, overflow: float) -> np.ndarray:
    array = np.asarray(values, dtype=np.float64)
    flat = array.ravel().tolist()
    try:
        out = np.fromiter(map(function, flat), np.float64, len(flat))
    except (OverflowError, ValueError):
        # math raises where the C function returns inf (overflow), -inf (0) or nan.
        out = np.fromiter((_one(function, v, overflow) for v in flat), np.float64, len(flat))
    return out.reshape(array.shape)


def _one(function, value: float, overflow: float) -> float:
    try:
        return function(value)
    except OverflowError:
        return overflow
    except ValueError:
        return -math.inf if value == 0.0 else math.nan


def exp(values: np.ndarray) -> np.ndarray:
    """``np.exp`` of a float64 array, with the C library's bits."""
    if NUMPY_IS_LIBM:
        return np.exp(values)
    return _each(math.exp, values, overflow=math.inf)


def log(values: np.ndarray) -> np.ndarray:
    """``np.log`` of a float64 array, with the C library's bits."""
    if NUMPY_IS_LIBM:
        return np.log(values)
    return _each(math.log, values, overflow=math.inf)
