"""Seed files for the native weights fuzzer (scripts/fuzz_weights.sh): small
valid files of each kind the exporter writes (embedding, scalar input with a
fill, hard-sigmoid gates, three layers; each also with an int8 section), the
bundled model's head cut short, and truncations of the small ones.
Deterministic: the same seeds every run."""

from __future__ import annotations

import dataclasses
import sys
from pathlib import Path

import numpy as np

from cadenza import native_format
from cadenza.bundle import bundled_model_path


def _model(seed: int, *, scalar: bool, hard: bool, layers: int) -> native_format.NativeWeights:
    rng = np.random.default_rng(seed)
    vocab, units, dense, dim = 6, 3, 5, 2

    def f(*shape):
        return rng.standard_normal(shape).astype(np.float32)

    width = 1 if scalar else dim
    stack = []
    for _ in range(layers):
        stack.append(native_format.Layer(f(width, 4 * units), f(units, 4 * units), f(4 * units)))
        width = units
    return native_format.NativeWeights(
        vocabulary=("C4", "D4", "E4", "0.4.7", "G4", "A4"), window=4,
        input_kind="scalar" if scalar else "embedding",
        input_multiplier=0.25 if scalar else 1.0,
        gate="hard_sigmoid" if hard else "sigmoid",
        gate_slope=0.2 if hard else 0.0, gate_offset=0.5 if hard else 0.0,
        fill=(0, 1, 2, 3) if scalar else (), primer=(1, 2, 3),
        embedding=None if scalar else f(vocab, dim), layers=tuple(stack),
        dense_kernel=f(units, dense), dense_bias=f(dense), out_kernel=f(dense, vocab),
        out_bias=f(vocab))


def _with_int8(weights: native_format.NativeWeights, seed: int) -> native_format.NativeWeights:
    rng = np.random.default_rng(seed)

    def q(array: np.ndarray) -> native_format.Quantized:
        return native_format.Quantized(rng.integers(-127, 128, array.shape).astype(np.int8), 0.02, 0)

    embedding = None
    if weights.embedding is not None:
        table = rng.integers(0, 256, weights.embedding.shape).astype(np.uint8)
        embedding = native_format.Quantized(table, 0.01, 113)
    section = native_format.Int8Weights(
        embedding=embedding, kernels=tuple(q(layer.kernel) for layer in weights.layers),
        recurrents=tuple(q(layer.recurrent) for layer in weights.layers),
        dense_kernel=q(weights.dense_kernel), out_kernel=q(weights.out_kernel))
    return dataclasses.replace(weights, int8=section)


def main(argv: list[str] | None = None) -> int:
    out = Path((argv or sys.argv[1:])[0])
    out.mkdir(parents=True, exist_ok=True)
    kinds = {"embedding": dict(scalar=False, hard=False, layers=2),
             "scalar": dict(scalar=True, hard=False, layers=1),
             "hard": dict(scalar=True, hard=True, layers=2),
             "three": dict(scalar=False, hard=False, layers=3)}
    for n, (name, kind) in enumerate(kinds.items()):
        model = _model(n, **kind)
        for suffix, weights in (("", model), ("-int8", _with_int8(model, n))):
            data = native_format.encode(weights)
            (out / f"{name}{suffix}.bin").write_bytes(data)
            for cut in (len(data) // 3, len(data) // 2, len(data) - 5):
                (out / f"{name}{suffix}-cut{cut}.bin").write_bytes(data[:cut])
    bundled = (bundled_model_path() / native_format.NATIVE_FILE).read_bytes()
    (out / "bundled-head.bin").write_bytes(bundled[:4096])
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
