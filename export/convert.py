"""Keras -> ONNX: the window graph and the one-step streaming graph.

tf2onnx cannot read a Keras 3 model directly, so each graph is written as a
``tf.function`` with an explicit input signature over the trained layers and
converted with ``tf2onnx.convert.from_function``.  Dropout layers are left
out: they do nothing at inference.

Both graphs take vocabulary indices (int64).  For the scalar ("seed")
encoding the graph itself divides by the scale, so the runtime never needs
to know how a preset encodes its input.

Window graph: ``tokens`` [batch, window] -> ``probs`` [batch, V].  tf2onnx
fuses the Keras LSTM loops into ONNX ``LSTM`` operators.  For the default
preset the Dense layers run on the last position only: that position is the
prediction, the others would be thrown away.

Stream graph: ``token`` [batch, 1] and ``h1, c1, h2, c2`` [batch, units] ->
``probs`` and the new states (``h1_out`` ...), one step of each layer's
``LSTMCell`` with the trained weights.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

from cadenza.errors import ExportError
from cadenza.export.source import TrainedModel
from cadenza.trained import LSTM_1, LSTM_2

log = logging.getLogger(__name__)

STATE_NAMES = ("h1", "c1", "h2", "c2")
TOKEN_DTYPE = "int64"
BATCH_DIM = "batch"


def _encoder(trained: TrainedModel) -> Any:
    """tokens (int64, [batch, steps]) -> the first LSTM's input [batch, steps, features]."""
    import tensorflow as tf

    model = trained.model
    if trained.input_encoding == "embedding":
        return model.get_layer("embedding")
    scale = trained.input_scale
    return lambda tokens: tf.expand_dims(tf.cast(tokens, tf.float32) / scale, -1)


def window_function(trained: TrainedModel) -> Any:
    import tensorflow as tf

    model = trained.model
    encode = _encoder(trained)
    lstm_1, lstm_2 = model.get_layer(LSTM_1), model.get_layer(LSTM_2)
    dense, probs = model.get_layer("dense"), model.get_layer("probs")
    signature = [tf.TensorSpec([None, trained.window], tf.int64, name="tokens")]

    @tf.function(input_signature=signature)
    def window(tokens):
        x = lstm_2(lstm_1(encode(tokens), training=False), training=False)
        if len(x.shape) == 3:  # return_sequences (default preset): keep the last step
            x = x[:, -1, :]
        return {"probs": probs(dense(x))}

    return window


def stream_function(trained: TrainedModel) -> Any:
    import tensorflow as tf

    model = trained.model
    encode = _encoder(trained)
    cell_1, cell_2 = model.get_layer(LSTM_1).cell, model.get_layer(LSTM_2).cell
    dense, probs = model.get_layer("dense"), model.get_layer("probs")
    units = trained.lstm_units
    signature = [tf.TensorSpec([None, 1], tf.int64, name="token")] + [
        tf.TensorSpec([None, units], tf.float32, name=name) for name in STATE_NAMES
    ]

    @tf.function(input_signature=signature)
    def stream(token, h1, c1, h2, c2):
        x = encode(token)[:, 0, :]
        x, (h1_out, c1_out) = cell_1(x, [h1, c1], training=False)
        x, (h2_out, c2_out) = cell_2(x, [h2, c2], training=False)
        return {
            "probs": probs(dense(x)),
            "h1_out": h1_out,
            "c1_out": c1_out,
            "h2_out": h2_out,
            "c2_out": c2_out,
        }

    return stream


def _name_batch_dims(model_proto: Any) -> None:
    """tf2onnx names each unknown dimension differently; call them all ``batch``."""
    for value in list(model_proto.graph.input) + list(model_proto.graph.output):
        dims = value.type.tensor_type.shape.dim
        if dims and not dims[0].HasField("dim_value"):
            dims[0].dim_param = BATCH_DIM


def convert(function: Any, opset: int, path: Path) -> Any:
    """Convert one ``tf.function`` to an ONNX file at ``path``; the ModelProto."""
    import onnx
    import tf2onnx

    try:
        model_proto, _ = tf2onnx.convert.from_function(
            function, input_signature=function.input_signature, opset=opset
        )
    except Exception as err:  # tf2onnx raises whatever its op handlers raise
        raise ExportError(f"{path.name}: tf2onnx conversion failed: {err}") from err
    _name_batch_dims(model_proto)
    try:
        onnx.checker.check_model(model_proto)
    except onnx.checker.ValidationError as err:
        raise ExportError(f"{path.name}: converted graph is not valid ONNX: {err}") from err
    onnx.save(model_proto, str(path))
    log.info(
        "%s: %d nodes (%s), opset %d, %.1f MB",
        path.name,
        len(model_proto.graph.node),
        ", ".join(sorted({n.op_type for n in model_proto.graph.node} & {"LSTM", "Loop", "MatMul"})),
        opset,
        path.stat().st_size / 1e6,
    )
    return model_proto


def _tensor_doc(value: Any) -> dict[str, Any]:
    import onnx

    dims = value.type.tensor_type.shape.dim
    dtype = onnx.helper.tensor_dtype_to_np_dtype(value.type.tensor_type.elem_type)
    return {
        "name": value.name,
        "shape": [d.dim_value if d.HasField("dim_value") else None for d in dims],
        "dtype": str(dtype),
    }


def graph_doc(model_proto: Any, file: str, roles: dict[str, str]) -> dict[str, Any]:
    """The manifest entry of one graph: ``roles`` maps a tensor name to its role."""
    doc: dict[str, Any] = {"file": file, "inputs": {}, "outputs": {}}
    for side, values in (("inputs", model_proto.graph.input), ("outputs", model_proto.graph.output)):
        for value in values:
            if value.name not in roles:
                raise ExportError(f"{file}: unexpected tensor {value.name!r} in the converted graph")
            doc[side][roles[value.name]] = _tensor_doc(value)
    return doc


WINDOW_ROLES = {"tokens": "tokens", "probs": "probs"}
STREAM_ROLES = {"token": "token", "probs": "probs"} | {
    **{name: name for name in STATE_NAMES},
    **{f"{name}_out": name for name in STATE_NAMES},
}


def export_graphs(trained: TrainedModel, folder: Path, opset: int) -> dict[str, dict[str, Any]]:
    """Write ``window.onnx`` and ``stream.onnx`` into ``folder``; their manifest entries."""
    window = convert(window_function(trained), opset, folder / "window.onnx")
    stream = convert(stream_function(trained), opset, folder / "stream.onnx")
    return {
        "window": graph_doc(window, "window.onnx", WINDOW_ROLES),
        "stream": graph_doc(stream, "stream.onnx", STREAM_ROLES),
    }
