"""The numerics the native engine's identity rests on, against numpy itself:
default_rng's PCG64 stream, Generator.choice, np.sum's pairwise summation,
the key profiles, exp and log (cadenza.portable_math), the sampling
filter, and the chord tokens' normal order."""

from __future__ import annotations

import ctypes
import math

import numpy as np
import pytest

from cadenza import portable_math
from cadenza.key_mask import _PROFILES, KEYS, estimate_key_fast
from cadenza.sampling import SamplingSettings, filter_distribution
from cadenza.tokens import chord_token
from tests.support.native_engine_support import require_native


@pytest.fixture(scope="module")
def lib():
    return require_native()


def _doubles(values) -> ctypes.Array:
    array = np.ascontiguousarray(values, dtype=np.float64)
    return (ctypes.c_double * len(array))(*array)


@pytest.mark.parametrize("seed", [0, 1, 2, 7, 42, 1234, 2**31 - 1, 2**32 - 1, 2**32, 2**40 + 3, 2**64 - 1])
def test_random_stream_is_numpys(lib, seed):
    out = (ctypes.c_double * 1000)()
    lib.cadenza_debug_random(seed, out, 1000)
    expected = np.random.default_rng(seed).random(1000)
    assert np.array_equal(np.frombuffer(out, dtype=np.float64), expected)


def test_random_stream_for_many_seeds(lib):
    out = (ctypes.c_double * 8)()
    for seed in range(0, 3000, 7):
        lib.cadenza_debug_random(seed, out, 8)
        assert list(out) == list(np.random.default_rng(seed).random(8)), seed


@pytest.mark.parametrize("size", [1, 2, 7, 8, 9, 100, 533, 2000])
def test_choice_is_numpys(lib, size):
    rng = np.random.default_rng(size)
    for seed in range(20):
        p = rng.uniform(0, 1, size) ** 4
        p /= p.sum()
        draws = 50
        out = (ctypes.c_int64 * draws)()
        lib.cadenza_debug_choice(seed, _doubles(p), size, draws, out)
        generator = np.random.default_rng(seed)
        expected = [int(generator.choice(size, p=p)) for _ in range(draws)]
        assert list(out) == expected


def test_pairwise_sum_is_numpys(lib):
    rng = np.random.default_rng(3)
    for size in list(range(0, 300)) + [533, 1000, 4097, 9000]:
        a = rng.uniform(0, 1, size) * 10.0 ** rng.integers(-12, 3, size)
        assert lib.cadenza_debug_pairwise_sum(_doubles(a), size) == float(np.sum(a)), size


def _through(lib, function: str, values: np.ndarray) -> np.ndarray:
    out = (ctypes.c_double * len(values))()
    getattr(lib, function)(_doubles(values), out, len(values))
    return np.frombuffer(out, dtype=np.float64)


@pytest.mark.parametrize("seed", [0, 1])
def test_exp_and_log_are_portable_maths_to_the_bit(lib, seed):
    rng = np.random.default_rng(seed)
    edges = [0.0, -0.0, 1.0, -708.0, -708.0000001, 709.0, 708.99, math.inf, -math.inf, math.nan, 5e-324,
             2.0**-1022, 2.0**-1022 * 0.75, 1e-30, 2.0**0.5, np.nextafter(2.0**0.5, 0.0), -1.0]
    # odd lengths, so the vector loops' tails are covered too
    exponents = np.concatenate([edges, rng.uniform(-720.0, 720.0, 5001), rng.normal(0.0, 3.0, 5001),
                                rng.uniform(-70.0, 0.0, 5001)])
    positives = np.concatenate([edges, rng.uniform(1e-30, 1.0, 5001), np.exp2(rng.uniform(-1074, 1023, 5001)),
                                rng.uniform(0.5, 2.0, 5001)])
    for size in (len(exponents), 1, 3, 5):
        assert np.array_equal(_through(lib, "cadenza_debug_exp", exponents[:size]),
                              portable_math.exp(exponents[:size]), equal_nan=True), size
        assert np.array_equal(_through(lib, "cadenza_debug_log", positives[:size]),
                              portable_math.log(positives[:size]), equal_nan=True), size


def test_key_profiles_are_numpys_to_the_bit(lib):
    out = (ctypes.c_double * 288)()
    lib.cadenza_debug_profiles(out)
    assert np.array_equal(np.frombuffer(out, dtype=np.float64).reshape(24, 12), _PROFILES)


def test_key_estimate_is_numpys(lib):
    rng = np.random.default_rng(5)
    cases = [rng.integers(0, 8, 12).astype(float) for _ in range(3000)]
    # symmetric counts make real ties that only the rounding breaks
    for classes in ([0, 6], [0, 4, 8], [0, 3, 6, 9], [0, 2, 4, 6, 8, 10], list(range(12)), [5]):
        counts = np.zeros(12)
        counts[classes] = 2.0
        cases.append(counts)
    cases.append(np.zeros(12))
    for counts in cases:
        key = estimate_key_fast(counts)
        expected = -1 if key is None else KEYS.index(key)
        assert lib.cadenza_debug_estimate_key(_doubles(counts)) == expected, counts


@pytest.mark.parametrize("temperature,top_k,top_p", [
    (1.4, 0, 1.0), (0.7, 0, 1.0), (1.0, 0, 1.0), (1.4, 5, 1.0), (0.9, 0, 0.8), (2.0, 10, 0.5),
    (1.0, 1, 1.0), (0.3, 0, 0.05),
])
def test_filter_is_numpys(lib, temperature, top_k, top_p):
    rng = np.random.default_rng(11)
    settings = SamplingSettings(temperature=temperature, top_k=top_k, top_p=top_p)
    for size in (3, 50, 533):
        for _ in range(10):
            p = rng.uniform(0, 1, size) ** 6
            p[rng.integers(0, size)] = 0.0
            p /= p.sum()
            out = (ctypes.c_double * size)()
            lib.cadenza_debug_filter(_doubles(p), size, temperature, top_k, top_p, out)
            assert np.array_equal(np.frombuffer(out, dtype=np.float64), filter_distribution(p, settings))


def test_chord_tokens_are_the_schemes(lib):
    buffer = ctypes.create_string_buffer(64)
    for mask in range(1, 4096):
        classes = [pc for pc in range(12) if mask >> pc & 1]
        lib.cadenza_debug_chord_token(mask, buffer, 64)
        assert buffer.value.decode() == chord_token(classes), classes


def _bundled_vocabulary() -> list[str]:
    import json
    from pathlib import Path

    manifest = Path(__file__).resolve().parents[2] / "models" / "default" / "model.json"
    return json.loads(manifest.read_text())["vocabulary"] if manifest.is_file() else []


def test_tokens_parse_as_the_scheme_reads_them(lib):
    from cadenza.key_mask import token_pitch_classes
    from cadenza.tokens import is_chord, midi_to_name, name_to_midi

    spellings = [midi_to_name(m) for m in range(128)] + [
        "D-4", "B#3", "C##4", "E--1", "G-~5", "F#~2", "A`3", "B-`0", "C-1", "B-1", "E-1", "2.6.9", "0",
        "11.2.5.7",
    ]
    midi = ctypes.c_int32()
    for token in spellings + _bundled_vocabulary():
        mask = lib.cadenza_debug_token(token.encode(), ctypes.byref(midi))
        assert mask == sum(1 << pc for pc in set(token_pitch_classes(token))), token
        assert midi.value == (-1 if is_chord(token) else name_to_midi(token)), token
    for bad in ("H4", "C", "12.3", "C4x", ""):
        assert lib.cadenza_debug_token(bad.encode(), ctypes.byref(midi)) == -1, bad
