"""What onnxruntime computes for the int8 graph's operators, on small graphs
made here, against the rules the native int8 step reproduces
(docs/native.md, "The int8 step").  Should an onnxruntime upgrade change one
of them, this says which, before a parity test shows only a distance."""

from __future__ import annotations

import ctypes
from pathlib import Path

import numpy as np
import onnxruntime as ort
import pytest
from onnx import TensorProto, helper, numpy_helper

from cadenza import native
from tests.support.native_support import require_native


def _session(nodes, inputs, outputs, initializers=()) -> ort.InferenceSession:
    graph = helper.make_graph(nodes, "g", inputs, outputs, initializer=list(initializers))
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    options = ort.SessionOptions()
    options.intra_op_num_threads = 1
    return ort.InferenceSession(model.SerializeToString(), options,
                                providers=["CPUExecutionProvider"])


def _dynamic_quantize(x: np.ndarray) -> tuple[np.ndarray, np.float32, np.uint8]:
    """The rule: range [min(x, 0), max(x, 0)], scale (max - min) / 255, zero
    point and values rounded half to even, x divided by the scale."""
    low = min(np.float32(x.min()), np.float32(0))
    high = max(np.float32(x.max()), np.float32(0))
    scale = np.float32(1) if high == low else np.float32((high - low) / np.float32(255))
    zero = np.float32(np.rint(np.clip(np.float32(0) - np.float32(low / scale), 0, 255)))
    q = np.clip(np.rint((x / scale).astype(np.float32)) + zero, 0, 255).astype(np.uint8)
    return q, scale, np.uint8(zero)


def test_dynamic_quantize_linear_follows_the_rule():
    session = _session(
        [helper.make_node("DynamicQuantizeLinear", ["x"], ["q", "s", "z"])],
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [2, 128])],
        [helper.make_tensor_value_info("q", TensorProto.UINT8, [2, 128]),
         helper.make_tensor_value_info("s", TensorProto.FLOAT, []),
         helper.make_tensor_value_info("z", TensorProto.UINT8, [])])
    rng = np.random.default_rng(1)
    for n in range(600):
        x = (rng.standard_normal((2, 128)) * rng.uniform(0.01, 3)).astype(np.float32)
        if n % 3 == 0:
            x = np.abs(x)  # a range from 0: zero point 0
        if n % 5 == 0:
            x = np.tanh(x).astype(np.float32)
        q, scale, zero = session.run(None, {"x": x})
        want_q, want_scale, want_zero = _dynamic_quantize(x)
        assert scale == want_scale and zero == want_zero, n
        np.testing.assert_array_equal(q, want_q)


def _integer_product(weights: np.ndarray) -> ort.InferenceSession:
    k, n = weights.shape
    return _session(
        [helper.make_node("MatMulInteger", ["a", "b", "za", "zb"], ["y"])],
        [helper.make_tensor_value_info("a", TensorProto.UINT8, [2, k]),
         helper.make_tensor_value_info("za", TensorProto.UINT8, [])],
        [helper.make_tensor_value_info("y", TensorProto.INT32, [2, n])],
        [numpy_helper.from_array(weights, "b"), numpy_helper.from_array(np.int8(0), "zb")])


def _pairs(a: np.ndarray, w: np.ndarray, zero: int) -> np.ndarray:
    """The rule: products of rows 0-1, 2-3, ... added in pairs saturated to
    int16, the pairs added exactly, minus the zero point times the column sums."""
    products = a.astype(np.int64)[:, :, None] * w.astype(np.int64)[None]
    if products.shape[1] % 2:
        products = np.concatenate([products, np.zeros_like(products[:, :1])], axis=1)
    pairs = np.clip(products[:, 0::2] + products[:, 1::2], -32768, 32767)
    return pairs.sum(axis=1) - zero * w.astype(np.int64).sum(axis=0)


def _exact(a: np.ndarray, w: np.ndarray, zero: int) -> np.ndarray:
    """The other rule: every product added exactly."""
    return (a.astype(np.int64) - zero) @ w.astype(np.int64)


@pytest.mark.parametrize("rows", [4, 63, 128, 256])
def test_matmul_integer_follows_the_rule_the_native_step_picks_for_this_cpu(rows):
    """MLAS adds MatMulInteger's products in saturating int16 pairs with its
    AVX2 and AVX512-core kernels and exactly with its VNNI ones: the native
    step reads the CPU as MLAS does and must land on the same rule."""
    require_native()
    rng = np.random.default_rng(rows)
    weights = rng.integers(-127, 128, (rows, 96)).astype(np.int8)
    session = _integer_product(weights)
    a = rng.integers(0, 256, (2, rows)).astype(np.uint8)
    a[:, : rows // 2] = 250  # large inputs: some pairs saturate
    got = session.run(None, {"a": a, "za": np.array(7, np.uint8)})[0]
    pairs, exact = _pairs(a, weights, 7), _exact(a, weights, 7)
    assert np.any(pairs != exact)  # the data tells the two rules apart
    expected = exact if native.int8_exact_products() else pairs
    np.testing.assert_array_equal(got, expected)


def test_matmul_integer_pairs_are_adjacent_rows():
    """Under the saturating rule the pairs are rows 0-1, 2-3 (not 0-2)."""
    require_native()
    if native.int8_exact_products():
        pytest.skip("onnxruntime adds the products exactly on this CPU (VNNI): no pairs to see")
    session = _integer_product(np.full((4, 8), 127, np.int8))
    zero = {"za": np.array(0, np.uint8)}
    for pattern, want in (([255, 255, 0, 0], 32767), ([255, 0, 255, 0], 64770),
                          ([255, 0, 0, 255], 64770), ([255, 255, 255, 255], 65534)):
        a = np.array([pattern, pattern], np.uint8)
        assert session.run(None, {"a": a} | zero)[0][0, 0] == want, pattern


def _cpu_has_avx2_and_fma() -> bool:
    try:
        flags = Path("/proc/cpuinfo").read_text()
    except OSError:
        return False
    return " avx2" in flags and " fma" in flags


@pytest.mark.parametrize(("op", "which"), [("Sigmoid", 0), ("Tanh", 1)])
def test_the_int8_steps_activations_are_onnxruntimes_bit_for_bit(op, which):
    """The step's sigmoid and tanh are MLAS's FMA3 kernels, which onnxruntime
    runs on a CPU with AVX2 and FMA (elsewhere it runs others)."""
    require_native()
    if not _cpu_has_avx2_and_fma():
        pytest.skip("onnxruntime uses its FMA3 kernels only on a CPU with AVX2 and FMA")
    rng = np.random.default_rng(which)
    x = np.concatenate([rng.standard_normal(200_000) * 4, np.linspace(-20, 20, 200_001),
                        rng.standard_normal(20_000) * 1e-3]).astype(np.float32)
    session = _session([helper.make_node(op, ["x"], ["y"])],
                       [helper.make_tensor_value_info("x", TensorProto.FLOAT, [len(x)])],
                       [helper.make_tensor_value_info("y", TensorProto.FLOAT, [len(x)])])
    expected = session.run(None, {"x": x})[0]
    got = np.empty_like(x)
    pointer = ctypes.POINTER(ctypes.c_float)
    code = native.load_library().cadenza_debug_int8_activation(
        which, x.ctypes.data_as(pointer), got.ctypes.data_as(pointer), len(x))
    assert code == 0
    differ = np.flatnonzero(got.view(np.uint32) != expected.view(np.uint32))
    assert differ.size == 0, f"{differ.size} of {len(x)} differ, first at x = {x[differ[0]]!r}"
