"""``exp`` and ``log`` of float64 arrays, specified here to the last bit.

A draw depends on the last bit of the distribution it is drawn from, and
the C library's ``exp`` and ``log`` are not the same everywhere: glibc
picks an FMA variant on CPUs that have it, numpy has its own AVX-512
versions, and macOS's and Windows' libraries are others again.  With them
the same seed would answer differently on different machines, and a plugin
built for another system would part from the Python engine it is tested
against.  So both engines compute these two functions the same way, from
the four operations IEEE 754 rounds exactly (``+ - * /``), in the same
order: the native engine's ``portable_math.cpp`` is this module, line for
line.  Neither is correctly rounded (both are within 1 ulp of the true
value on the values tested), but both are the same on every machine.

exp(x) = 2**k * e**r with k = rint(x / ln 2) and r = x - k ln 2 (ln 2 in two
parts, the first short enough that k times it is exact), e**r by its Taylor
series to r**13 (|r| <= 0.347, so the next term is below 1e-17).  Below
``EXP_MIN`` the answer is 0 and from ``EXP_MAX`` on it is infinity, so no
result is subnormal: an audio host that flushes subnormals to zero cannot
change a draw.

log(x) = e ln 2 + log(m) with x = m 2**e, sqrt(1/2) <= m < sqrt(2), and
log(m) = 2 atanh(s) = f - s (f - R) with f = m - 1, s = f / (2 + f) and
R = 2 s**2 / 3 + 2 s**4 / 5 + ... to s**18 (|s| <= 0.172).
"""

from __future__ import annotations

import math

import numpy as np

INV_LN2 = 1.4426950408889634  # 1 / ln 2, rounded
LN2_HI = 0.6931467056274414  # ln 2 with the low 32 bits of its significand cleared
LN2_LO = 4.7493250390316726e-07  # ln 2 - LN2_HI, rounded
EXP_MIN = -708.0  # from here down exp is 0: the smallest result stays normal
EXP_MAX = 709.0  # from here up exp is infinity: the largest stays finite
EXP_TERMS = tuple(1.0 / math.factorial(n) for n in range(14))  # 1/n!, n = 0..13
LOG_TERMS = tuple(2.0 / (2 * j + 1) for j in range(1, 10))  # 2/3, 2/5, ..., 2/19

SIGNIFICAND = 0x000F_FFFF_FFFF_FFFF
SQRT2_SIGNIFICAND = 0x6_A09E_667F_3BCD  # sqrt(2)'s significand bits: from here m is halved
ONE_EXPONENT = 0x3FF << 52  # the exponent bits of [1, 2)
HALF_EXPONENT = 0x3FE << 52  # the exponent bits of [1/2, 1)
SMALLEST_NORMAL = 2.0**-1022
SUBNORMAL_SCALE = 2.0**54  # a subnormal times this is normal


def _flat(values: np.ndarray) -> tuple[tuple[int, ...], np.ndarray]:
    array = np.asarray(values, dtype=np.float64)
    return array.shape, np.ascontiguousarray(array).reshape(-1)


def _horner(x: np.ndarray, terms: tuple[float, ...]) -> np.ndarray:
    """terms[0] + x (terms[1] + x (...)), highest term first: a multiply, then an add."""
    out = np.full_like(x, terms[-1])
    for term in terms[-2::-1]:
        np.multiply(out, x, out=out)
        np.add(out, term, out=out)
    return out


def exp(values: np.ndarray) -> np.ndarray:
    """e**x of a float64 array, elementwise (see the module docstring)."""
    shape, x = _flat(values)
    with np.errstate(all="ignore"):  # out-of-range lanes are replaced below
        k = np.rint(x * INV_LN2)
        r = (x - k * LN2_HI) - k * LN2_LO
        p = _horner(r, EXP_TERMS)
        exponent = np.clip(k, -1022.0, 1023.0).astype(np.int64) + 1023
        scale = (exponent.astype(np.uint64) << np.uint64(52)).view(np.float64)
        y = p * scale
    y = np.where(x < EXP_MIN, 0.0, y)
    return np.where(x >= EXP_MAX, np.inf, y).reshape(shape)


def log(values: np.ndarray) -> np.ndarray:
    """The natural logarithm of a float64 array, elementwise (see the module docstring)."""
    shape, x = _flat(values)
    with np.errstate(all="ignore"):  # zero, negative, infinite and NaN lanes are replaced below
        subnormal = x < SMALLEST_NORMAL
        scaled = np.where(subnormal, x * SUBNORMAL_SCALE, x)
        bits = scaled.view(np.uint64)
        significand = bits & np.uint64(SIGNIFICAND)
        halve = significand >= np.uint64(SQRT2_SIGNIFICAND)
        m_bits = significand | np.where(halve, np.uint64(HALF_EXPONENT), np.uint64(ONE_EXPONENT))
        m = m_bits.view(np.float64)
        biased = ((bits >> np.uint64(52)) & np.uint64(0x7FF)) + halve.astype(np.uint64)
        e = (biased.astype(np.float64) - 1023.0) - np.where(subnormal, 54.0, 0.0)
        f = m - 1.0
        s = f / (2.0 + f)
        z = s * s
        big_r = _horner(z, LOG_TERMS) * z
        log_m = f - s * (f - big_r)
        y = e * LN2_HI + (log_m + e * LN2_LO)
    y = np.where(x == np.inf, np.inf, y)
    y = np.where(x == 0.0, -np.inf, y)
    return np.where((x < 0.0) | np.isnan(x), np.nan, y).reshape(shape)
