"""Native weights from a bundle's ONNX stream graph, with no Keras.

The stream graph holds every weight as an initializer; which one is which is
read from the graph's structure, not from tf2onnx's names: the recurrent
kernel is the MatMul fed by a state input ``h``, the input kernel the MatMul
whose product is added to it, the bias the next Add, the gate activation
what reads the first Split output (Sigmoid, or Keras 2's hard sigmoid as
Mul, Add, Min, Max), the head the MatMul, Add, Relu, MatMul, Add, Softmax
after the last layer's ``h`` output.  The first layer's input is either a
Gather from the embedding table or the index, cast and multiplied by a
constant (the seed preset's scalar input).  Anything else is refused.

The int8 section comes from the bundle's int8 stream graph (onnxruntime's
``quantize_dynamic``), found the same way: each MatMul there is
DynamicQuantizeLinear of its input, MatMulInteger with an int8 initializer
(zero point 0), Cast, and Mul by the input's scale times the weight's; the
embedding is a uint8 table read through DequantizeLinear.  The step then
uses exactly the bundle's quantized weights.
"""

from __future__ import annotations

import logging
from collections import defaultdict
from pathlib import Path
from typing import Any

import numpy as np

from cadenza.bundle import MANIFEST, Bundle
from cadenza.errors import ExportError
from cadenza.native_format import Int8Weights, Layer, NativeWeights, Quantized
from cadenza.runtime import _fill_tokens

log = logging.getLogger(__name__)

_PASS_THROUGH = {"Squeeze", "Unsqueeze", "Slice", "Reshape", "Identity", "Flatten"}


class _Graph:
    def __init__(self, path: Path) -> None:
        import onnx
        from onnx import numpy_helper

        try:
            model = onnx.load(str(path))
        except Exception as err:  # onnx raises protobuf's own errors
            raise ExportError(f"{path}: cannot read the ONNX graph: {err}") from err
        self.path = path
        self.init = {t.name: numpy_helper.to_array(t) for t in model.graph.initializer}
        self.producer: dict[str, Any] = {}
        self.consumers: dict[str, list[Any]] = defaultdict(list)
        for node in model.graph.node:
            for name in node.output:
                self.producer[name] = node
            for name in node.input:
                self.consumers[name].append(node)

    def fail(self, problem: str) -> ExportError:
        return ExportError(f"{self.path}: cannot read native weights from the graph: {problem}")

    def consumer(self, name: str, op: str) -> Any:
        found = [n for n in self.consumers.get(name, []) if n.op_type == op]
        if len(found) != 1:
            raise self.fail(f"expected one {op} reading {name!r}, found {len(found)}")
        return found[0]

    def constant(self, node: Any, skip: str) -> np.ndarray:
        """The initializer input of ``node`` other than ``skip``."""
        for name in node.input:
            if name != skip and name in self.init:
                return self.init[name]
        raise self.fail(f"{node.op_type} {node.name!r} has no constant input")

    def other_input(self, node: Any, known: str) -> str:
        others = [n for n in node.input if n != known]
        if len(others) != 1:
            raise self.fail(f"{node.op_type} {node.name!r} has {len(node.input)} inputs")
        return others[0]


def _gate(graph: _Graph, split: Any) -> tuple[str, float, float]:
    users = graph.consumers.get(split.output[0], [])
    if len(users) == 1 and users[0].op_type == "Sigmoid":
        return "sigmoid", 0.0, 0.0
    if len(users) == 1 and users[0].op_type == "Mul":
        slope = graph.constant(users[0], split.output[0])
        add = graph.consumer(users[0].output[0], "Add")
        offset = graph.constant(add, users[0].output[0])
        low = graph.consumer(add.output[0], "Min")
        high = graph.consumer(low.output[0], "Max")
        if float(graph.constant(low, add.output[0])) != 1.0 or float(
            graph.constant(high, low.output[0])
        ) != 0.0:
            raise graph.fail("a hard sigmoid gate that does not clip to 0..1")
        return "hard_sigmoid", float(slope), float(offset)
    raise graph.fail(f"unknown gate activation ({[u.op_type for u in users]})")


def _encoder(graph: _Graph, x: str, token: str) -> tuple[str, float, np.ndarray | None]:
    """Trace the first layer's input back to the token: (kind, multiplier, embedding)."""
    node = graph.producer.get(x)
    while node is not None and node.op_type in _PASS_THROUGH:
        node = graph.producer.get(node.input[0])
    if node is None:
        raise graph.fail(f"the first layer's input {x!r} comes from nowhere")
    if node.op_type == "Gather" and node.input[0] in graph.init:
        return "embedding", 1.0, graph.init[node.input[0]].astype(np.float32)
    if node.op_type == "Mul":
        cast = next((graph.producer.get(n) for n in node.input if n not in graph.init), None)
        if cast is not None and cast.op_type == "Cast" and cast.input[0] == token:
            multiplier = graph.constant(node, cast.output[0])
            if multiplier.size == 1:
                return "scalar", float(multiplier.reshape(())), None
    raise graph.fail(f"unknown input encoding ({node.op_type} {node.name!r})")


def _layer(graph: _Graph, h_in: str) -> tuple[Layer, str, Any]:
    """One LSTM cell, found from its state input; (weights, its input tensor, its Split)."""
    recurrent_mul = graph.consumer(h_in, "MatMul")
    recurrent = graph.constant(recurrent_mul, h_in)
    add = graph.consumer(recurrent_mul.output[0], "Add")
    input_mul = graph.producer.get(graph.other_input(add, recurrent_mul.output[0]))
    if input_mul is None or input_mul.op_type != "MatMul":
        raise graph.fail(f"the recurrent product of {h_in!r} is not added to an input product")
    x = next(n for n in input_mul.input if n not in graph.init)
    kernel = graph.constant(input_mul, x)
    bias_add = graph.consumer(add.output[0], "Add")
    bias = graph.constant(bias_add, add.output[0])
    split = graph.consumer(bias_add.output[0], "Split")
    users = graph.consumers.get(split.output[2], [])
    if [u.op_type for u in users] != ["Tanh"]:
        raise graph.fail(f"the cell of {h_in!r} does not read its third gate through Tanh")
    units = recurrent.shape[0]
    if recurrent.shape != (units, 4 * units) or kernel.shape[1:] != (4 * units,) or bias.shape != (
        4 * units,
    ):
        raise graph.fail(
            f"the cell of {h_in!r} has shapes {kernel.shape}, {recurrent.shape}, {bias.shape}"
        )
    return Layer(kernel.astype(np.float32), recurrent.astype(np.float32),
                 bias.astype(np.float32)), x, split


def _head(graph: _Graph, h_out: str, probs: str) -> tuple[np.ndarray, ...]:
    dense = graph.consumer(h_out, "MatMul")
    dense_add = graph.consumer(dense.output[0], "Add")
    relu = graph.consumer(dense_add.output[0], "Relu")
    out = graph.consumer(relu.output[0], "MatMul")
    out_add = graph.consumer(out.output[0], "Add")
    softmax = graph.consumer(out_add.output[0], "Softmax")
    if softmax.output[0] != probs:
        raise graph.fail(f"the Softmax writes {softmax.output[0]!r}, not the output {probs!r}")
    return tuple(a.astype(np.float32) for a in (
        graph.constant(dense, h_out), graph.constant(dense_add, dense.output[0]),
        graph.constant(out, relu.output[0]), graph.constant(out_add, out.output[0]),
    ))


def from_bundle(bundle: Bundle) -> NativeWeights:
    """The native weights of ``bundle``'s fp32 stream graph."""
    spec = bundle.graph("stream")
    graph = _Graph(spec.path)
    names = bundle.state_names
    if len(names) % 2 or names[0::2] != tuple(f"h{n}" for n in range(1, len(names) // 2 + 1)):
        raise graph.fail(f"state names {list(names)} are not h1, c1, h2, c2, ...")
    layers, gates = [], set()
    previous_out = None
    for n in range(len(names) // 2):
        layer, x, split = _layer(graph, spec.inputs[names[2 * n]].name)
        if previous_out is not None and x != previous_out:
            raise graph.fail(f"layer {n + 1} reads {x!r}, not layer {n}'s output {previous_out!r}")
        if n == 0:
            kind, multiplier, embedding = _encoder(graph, x, spec.inputs["token"].name)
        gates.add(_gate(graph, split))
        layers.append(layer)
        previous_out = spec.outputs[names[2 * n]].name
    if len(gates) != 1:
        raise graph.fail(f"layers with different gate activations: {sorted(gates)}")
    gate, slope, offset = gates.pop()
    dense_kernel, dense_bias, out_kernel, out_bias = _head(
        graph, previous_out, spec.outputs["probs"].name
    )
    if out_kernel.shape[1] != bundle.vocab_size:
        raise graph.fail(
            f"the graph predicts {out_kernel.shape[1]} tokens, {bundle.path / MANIFEST} "
            f"has {bundle.vocab_size}"
        )
    index = {token: i for i, token in enumerate(bundle.vocabulary)}
    primer = tuple(index[t] for t in bundle.primers[0]) if bundle.primers else ()
    return NativeWeights(
        vocabulary=bundle.vocabulary, window=bundle.window, input_kind=kind,
        input_multiplier=multiplier, gate=gate, gate_slope=slope, gate_offset=offset,
        fill=_fill_tokens(bundle), primer=primer, embedding=embedding, layers=tuple(layers),
        dense_kernel=dense_kernel, dense_bias=dense_bias, out_kernel=out_kernel, out_bias=out_bias,
    )


def _integer_product(graph: _Graph, x: str) -> tuple[Quantized, Any, str]:
    """The quantized product of ``x`` (DynamicQuantizeLinear, MatMulInteger,
    Cast, Mul by the scales' product): (the weight, the MatMulInteger, the
    scaled product's name)."""
    dql = graph.consumer(x, "DynamicQuantizeLinear")
    mmi = graph.consumer(dql.output[0], "MatMulInteger")
    return _weight_of(graph, mmi, dql)


def _weight_of(graph: _Graph, mmi: Any, dql: Any) -> tuple[Quantized, Any, str]:
    if len(mmi.input) < 2 or mmi.input[1] not in graph.init or mmi.input[0] != dql.output[0]:
        raise graph.fail(f"MatMulInteger {mmi.name!r} does not multiply a quantized input by a constant")
    values = graph.init[mmi.input[1]]
    if values.dtype != np.int8 or values.ndim != 2:
        raise graph.fail(f"MatMulInteger {mmi.name!r} has a {values.dtype} weight of {values.ndim} dims "
                         "(the native step takes 2-D int8)")
    if len(mmi.input) > 3 and mmi.input[3]:
        zero = graph.init.get(mmi.input[3])
        if zero is None or np.any(zero != 0):
            raise graph.fail(f"MatMulInteger {mmi.name!r} has a weight zero point other than 0")
    cast = graph.consumer(mmi.output[0], "Cast")
    mul = graph.consumer(cast.output[0], "Mul")
    scales = graph.producer.get(graph.other_input(mul, cast.output[0]))
    if scales is None or scales.op_type != "Mul" or dql.output[1] not in scales.input:
        raise graph.fail(f"the product of MatMulInteger {mmi.name!r} is not scaled by its input's scale")
    scale = graph.constant(scales, dql.output[1])
    if scale.size != 1:
        raise graph.fail(f"MatMulInteger {mmi.name!r} has a per-channel scale (the native step takes one)")
    return Quantized(values.copy(), float(scale.reshape(())), 0), mmi, mul.output[0]


def _same(graph: _Graph, what: str, int8: np.ndarray, fp32: np.ndarray) -> None:
    if not np.array_equal(np.asarray(int8, dtype=np.float32), fp32):
        raise graph.fail(f"the int8 graph's {what} differs from the fp32 graph's")


def int8_from_bundle(bundle: Bundle, weights: NativeWeights) -> Int8Weights:
    """The int8 section from ``bundle``'s int8 stream graph; its biases must be
    ``weights``' (the fp32 graph's), which the file keeps once."""
    spec = bundle.graph("stream_int8")
    graph = _Graph(spec.path)
    names = bundle.state_names
    kernels, recurrents = [], []
    embedding = None
    for n in range(len(names) // 2):
        recurrent, _, rec_out = _integer_product(graph, spec.inputs[names[2 * n]].name)
        add = graph.consumer(rec_out, "Add")
        mul = graph.producer.get(graph.other_input(add, rec_out))
        cast = graph.producer.get(mul.input[0]) if mul is not None and mul.op_type == "Mul" else None
        if cast is not None and cast.op_type != "Cast":
            cast = graph.producer.get(mul.input[1])
        mmi = graph.producer.get(cast.input[0]) if cast is not None and cast.op_type == "Cast" else None
        if mmi is None or mmi.op_type != "MatMulInteger":
            raise graph.fail(f"the recurrent product of layer {n + 1} is not added to an integer product")
        dql = graph.producer.get(mmi.input[0])
        if dql is None or dql.op_type != "DynamicQuantizeLinear":
            raise graph.fail(f"layer {n + 1}'s input is not quantized by DynamicQuantizeLinear")
        kernel, _, _ = _weight_of(graph, mmi, dql)
        bias_add = graph.consumer(add.output[0], "Add")
        _same(graph, f"layer {n + 1} bias", graph.constant(bias_add, add.output[0]),
              weights.layers[n].bias)
        if n == 0 and weights.input_kind == "embedding":
            embedding = _int8_embedding(graph, dql.input[0])
        kernels.append(kernel)
        recurrents.append(recurrent)
    last = spec.outputs[names[-2]].name
    dense, _, dense_out = _integer_product(graph, last)
    dense_add = graph.consumer(dense_out, "Add")
    _same(graph, "dense bias", graph.constant(dense_add, dense_out), weights.dense_bias)
    relu = graph.consumer(dense_add.output[0], "Relu")
    out, _, out_out = _integer_product(graph, relu.output[0])
    out_add = graph.consumer(out_out, "Add")
    _same(graph, "output bias", graph.constant(out_add, out_out), weights.out_bias)
    if graph.consumer(out_add.output[0], "Softmax").output[0] != spec.outputs["probs"].name:
        raise graph.fail("the int8 graph's Softmax does not write its probabilities")
    shapes = [(k.values.shape, layer.kernel.shape) for k, layer in zip(kernels, weights.layers, strict=True)]
    shapes += [(r.values.shape, layer.recurrent.shape) for r, layer in zip(recurrents, weights.layers, strict=True)]
    shapes += [(dense.values.shape, weights.dense_kernel.shape), (out.values.shape, weights.out_kernel.shape)]
    if any(a != b for a, b in shapes):
        raise graph.fail(f"the int8 graph's weights have other shapes than the fp32 graph's: {shapes}")
    return Int8Weights(embedding=embedding, kernels=tuple(kernels), recurrents=tuple(recurrents),
                       dense_kernel=dense, out_kernel=out)


def _int8_embedding(graph: _Graph, x: str) -> Quantized:
    """The uint8 table behind the first layer's input: Gather, DequantizeLinear."""
    node = graph.producer.get(x)
    while node is not None and node.op_type in _PASS_THROUGH:
        node = graph.producer.get(node.input[0])
    if node is None or node.op_type != "DequantizeLinear":
        raise graph.fail("the int8 graph's embedding is not read through DequantizeLinear")
    gather = graph.producer.get(node.input[0])
    if gather is None or gather.op_type != "Gather" or gather.input[0] not in graph.init:
        raise graph.fail("the int8 graph's DequantizeLinear does not read a table")
    table = graph.init[gather.input[0]]
    scale = graph.init.get(node.input[1])
    zero = graph.init.get(node.input[2]) if len(node.input) > 2 else np.uint8(0)
    if table.dtype != np.uint8 or scale is None or scale.size != 1 or zero is None or zero.size != 1:
        raise graph.fail("the int8 graph's embedding is not a uint8 table with one scale and zero point")
    return Quantized(table.copy(), float(scale.reshape(())), int(zero.reshape(())))
