"""The native weights file (``native.bin``): the model step's weights for a
native engine with no onnxruntime, no protobuf and no JSON parser.

One little-endian binary file holds everything the native model step and
engine need: the vocabulary strings in index order, the window, the
left-fill, the first primer, the gate activation, and each tensor with its
shape.  docs/native.md has the byte layout; this module writes and reads it
(numpy only, so the light install can check a bundle's file) and
``native/src/model/weights.cpp`` reads it again in C++.  Both refuse a file
that is short, corrupt (CRC-32), of another format version or of the wrong
shape, naming the file and the problem.
"""

from __future__ import annotations

import struct
import zlib
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from cadenza.errors import BundleError

NATIVE_FILE = "native.bin"
MAGIC = b"CDZNATIV"
FORMAT_VERSION = 2  # 2 adds the optional int8 section; version 1 files still read
OLDEST_VERSION = 1
HEADER_BYTES = 64
# The header after the magic: version, header size, file size, vocab size,
# window, input kind, input dim, input multiplier, gate kind, gate slope,
# gate offset, layer count, dense units.
_HEADER = struct.Struct("<IIQIIIIfIffII")

INPUT_KINDS = ("scalar", "embedding")
GATES = ("sigmoid", "hard_sigmoid")
DTYPE_F32, DTYPE_I8, DTYPE_U8 = 1, 2, 3
# Limits shared with the C++ loader (native/include/cadenza/weights.hpp).
MAX_VOCAB = 65536
MAX_WINDOW = 65536
MAX_LAYERS = 8
MAX_UNITS = 4096
MAX_INPUT_DIM = 4096
MAX_DENSE = 8192

# Tensor tags: what each tensor is, so a misplaced one is named in the error.
TAG_EMBEDDING, TAG_KERNEL, TAG_RECURRENT, TAG_BIAS = 1, 2, 3, 4
TAG_DENSE_KERNEL, TAG_DENSE_BIAS, TAG_OUT_KERNEL, TAG_OUT_BIAS = 5, 6, 7, 8
_TENSOR = struct.Struct("<IIII")  # tag, dtype, rows, cols
# The int8 section's tensors: tag, dtype, rows, cols, scale, zero point.
TAG_Q_EMBEDDING, TAG_Q_KERNEL, TAG_Q_RECURRENT, TAG_Q_DENSE_KERNEL, TAG_Q_OUT_KERNEL = (
    9, 10, 11, 12, 13)
_QTENSOR = struct.Struct("<IIIIfi")


@dataclass(frozen=True)
class Quantized:
    """A tensor of the int8 graph: ``(values - zero_point) * scale`` is its real value."""

    values: np.ndarray  # 2-D, int8 (zero point 0) or, for the embedding, uint8
    scale: float
    zero_point: int = 0


@dataclass(frozen=True)
class Int8Weights:
    """The bundle's int8 stream graph's quantized weights (its biases are the fp32 ones)."""

    embedding: Quantized | None  # uint8 [vocab, dim]; None for the scalar input
    kernels: tuple[Quantized, ...]  # int8 [input, 4 * units] per layer
    recurrents: tuple[Quantized, ...]  # int8 [units, 4 * units] per layer
    dense_kernel: Quantized  # int8 [units of the last layer, dense]
    out_kernel: Quantized  # int8 [dense, vocab]

    def tensors(self) -> list[tuple[int, str, int, Quantized]]:
        """(tag, description, dtype, tensor) in file order."""
        out = []
        if self.embedding is not None:
            out.append((TAG_Q_EMBEDDING, "embedding", DTYPE_U8, self.embedding))
        for n, (kernel, recurrent) in enumerate(zip(self.kernels, self.recurrents, strict=True), 1):
            out += [(TAG_Q_KERNEL, f"layer {n} kernel", DTYPE_I8, kernel),
                    (TAG_Q_RECURRENT, f"layer {n} recurrent kernel", DTYPE_I8, recurrent)]
        out += [(TAG_Q_DENSE_KERNEL, "dense kernel", DTYPE_I8, self.dense_kernel),
                (TAG_Q_OUT_KERNEL, "output kernel", DTYPE_I8, self.out_kernel)]
        return out


@dataclass(frozen=True)
class Layer:
    kernel: np.ndarray  # [input, 4 * units], gates i, f, g, o (Keras's order)
    recurrent: np.ndarray  # [units, 4 * units]
    bias: np.ndarray  # [4 * units]

    @property
    def units(self) -> int:
        return int(self.recurrent.shape[0])


@dataclass(frozen=True)
class NativeWeights:
    vocabulary: tuple[str, ...]
    window: int
    input_kind: str
    input_multiplier: float  # scalar input: the LSTM sees float32(index) * multiplier
    gate: str
    gate_slope: float  # hard_sigmoid: clip(slope * x + offset, 0, 1)
    gate_offset: float
    fill: tuple[int, ...]  # the left-fill (cadenza.runtime._fill_tokens), empty or window long
    primer: tuple[int, ...]  # the first primer: what a player starts from
    embedding: np.ndarray | None  # [vocab, dim]
    layers: tuple[Layer, ...]
    dense_kernel: np.ndarray  # [units of the last layer, dense]
    dense_bias: np.ndarray
    out_kernel: np.ndarray  # [dense, vocab]
    out_bias: np.ndarray
    int8: Int8Weights | None = None  # the int8 section, where the bundle keeps an int8 graph

    @property
    def vocab_size(self) -> int:
        return len(self.vocabulary)

    @property
    def input_dim(self) -> int:
        return 1 if self.embedding is None else int(self.embedding.shape[1])

    def tensors(self) -> list[tuple[int, str, np.ndarray]]:
        """(tag, description, 2-D array) in file order."""
        out = []
        if self.embedding is not None:
            out.append((TAG_EMBEDDING, "embedding", self.embedding))
        for n, layer in enumerate(self.layers, 1):
            out += [
                (TAG_KERNEL, f"layer {n} kernel", layer.kernel),
                (TAG_RECURRENT, f"layer {n} recurrent kernel", layer.recurrent),
                (TAG_BIAS, f"layer {n} bias", layer.bias.reshape(1, -1)),
            ]
        out += [
            (TAG_DENSE_KERNEL, "dense kernel", self.dense_kernel),
            (TAG_DENSE_BIAS, "dense bias", self.dense_bias.reshape(1, -1)),
            (TAG_OUT_KERNEL, "output kernel", self.out_kernel),
            (TAG_OUT_BIAS, "output bias", self.out_bias.reshape(1, -1)),
        ]
        return out


def _pad4(data: bytes) -> bytes:
    return data + b"\0" * (-len(data) % 4)


def encode(weights: NativeWeights) -> bytes:
    """The file's bytes."""
    units = [layer.units for layer in weights.layers]
    body = struct.pack(f"<{len(units)}I", *units)
    for indices in (weights.fill, weights.primer):
        body += struct.pack(f"<I{len(indices)}i", len(indices), *indices)
    text = b"".join(token.encode("utf-8") + b"\0" for token in weights.vocabulary)
    body += struct.pack("<I", len(text)) + _pad4(text)
    for tag, _, array in weights.tensors():
        array = np.ascontiguousarray(array, dtype="<f4")
        body += _TENSOR.pack(tag, DTYPE_F32, *array.shape) + array.tobytes()
    body += struct.pack("<I", 0 if weights.int8 is None else 1)
    if weights.int8 is not None:
        for tag, _, dtype, q in weights.int8.tensors():
            values = np.ascontiguousarray(q.values, dtype=np.int8 if dtype == DTYPE_I8 else np.uint8)
            body += _QTENSOR.pack(tag, dtype, *values.shape, q.scale, q.zero_point)
            body += _pad4(values.tobytes())
    total = HEADER_BYTES + len(body) + 4
    header = MAGIC + _HEADER.pack(
        FORMAT_VERSION, HEADER_BYTES, total, weights.vocab_size, weights.window,
        INPUT_KINDS.index(weights.input_kind), weights.input_dim, weights.input_multiplier,
        GATES.index(weights.gate), weights.gate_slope, weights.gate_offset,
        len(weights.layers), int(weights.dense_bias.shape[0]),
    )
    data = header + body
    return data + struct.pack("<I", zlib.crc32(data))


def write(path: str | Path, weights: NativeWeights) -> None:
    Path(path).write_bytes(encode(weights))


class _Reader:
    """A bounds-checked cursor: every read past the end is a clear error."""

    def __init__(self, data: bytes, path: Path) -> None:
        self.data, self.path, self.at = data, path, 0

    def fail(self, problem: str) -> BundleError:
        return BundleError(f"{self.path}: native weights {problem}")

    def take(self, count: int, what: str) -> bytes:
        if count < 0 or self.at + count > len(self.data):
            raise self.fail(f"are short: {what} runs past the end (byte {self.at})")
        chunk = self.data[self.at : self.at + count]
        self.at += count
        return chunk

    def u32(self, what: str) -> int:
        return struct.unpack("<I", self.take(4, what))[0]

    def indices(self, what: str, limit: int, size: int) -> tuple[int, ...]:
        count = self.u32(f"{what} count")
        if count > limit:
            raise self.fail(f"have a {what} of {count} tokens (at most {limit})")
        values = struct.unpack(f"<{count}i", self.take(4 * count, what))
        bad = [v for v in values if not 0 <= v < size]
        if bad:
            raise self.fail(f"have {what} index {bad[0]} outside the vocabulary (0..{size - 1})")
        return values


def _check_range(reader: _Reader, name: str, value: int, low: int, high: int) -> None:
    if not low <= value <= high:
        raise reader.fail(f"have {name} {value} (expected {low}..{high})")


def decode(data: bytes, path: str | Path) -> NativeWeights:
    """Parse and check the file's bytes; a ``BundleError`` naming ``path`` if anything is off."""
    reader = _Reader(data, Path(path))
    if len(data) < HEADER_BYTES + 4:
        raise reader.fail(f"are short: {len(data)} bytes, less than a header")
    if data[:8] != MAGIC:
        raise reader.fail("have the wrong magic: not a Cadenza native weights file")
    (version, header_bytes, total, vocab, window, kind, dim, multiplier, gate, slope, offset,
     layer_count, dense) = _HEADER.unpack_from(data, 8)
    if not OLDEST_VERSION <= version <= FORMAT_VERSION:
        raise reader.fail(
            f"are format version {version}; this reader reads versions {OLDEST_VERSION} and "
            f"{FORMAT_VERSION} (rewrite them: cadenza native-weights BUNDLE)"
        )
    if header_bytes != HEADER_BYTES:
        raise reader.fail(f"have a header of {header_bytes} bytes (expected {HEADER_BYTES})")
    if total != len(data):
        raise reader.fail(f"are {len(data)} bytes but say {total}: short or padded")
    stored = struct.unpack_from("<I", data, len(data) - 4)[0]
    if zlib.crc32(data[:-4]) != stored:
        raise reader.fail("fail their CRC-32 check: the file is corrupt")
    _check_range(reader, "vocabulary size", vocab, 1, MAX_VOCAB)
    _check_range(reader, "window", window, 1, MAX_WINDOW)
    _check_range(reader, "input kind", kind, 0, len(INPUT_KINDS) - 1)
    _check_range(reader, "input dim", dim, 1, MAX_INPUT_DIM)
    _check_range(reader, "gate kind", gate, 0, len(GATES) - 1)
    _check_range(reader, "layer count", layer_count, 1, MAX_LAYERS)
    _check_range(reader, "dense units", dense, 1, MAX_DENSE)
    if INPUT_KINDS[kind] == "scalar" and dim != 1:
        raise reader.fail(f"have a scalar input of dim {dim} (expected 1)")
    reader.at = HEADER_BYTES
    units = [reader.u32("layer units") for _ in range(layer_count)]
    for n, u in enumerate(units, 1):
        _check_range(reader, f"layer {n} units", u, 1, MAX_UNITS)
    fill = reader.indices("fill", MAX_WINDOW, vocab)
    if fill and len(fill) != window:
        raise reader.fail(f"have a fill of {len(fill)} tokens (expected 0 or the window, {window})")
    primer = reader.indices("primer", MAX_WINDOW * 64, vocab)
    text_bytes = reader.u32("vocabulary size in bytes")
    text = reader.take(text_bytes, "vocabulary")
    reader.take(-text_bytes % 4, "vocabulary padding")
    tokens = text.split(b"\0")
    if tokens[-1] != b"" or len(tokens) - 1 != vocab:
        raise reader.fail(f"hold {len(tokens) - 1} vocabulary strings, the header says {vocab}")
    try:
        vocabulary = tuple(t.decode("utf-8") for t in tokens[:-1])
    except UnicodeDecodeError as err:
        raise reader.fail(f"have a vocabulary string that is not UTF-8: {err}") from None

    def tensor(tag: int, what: str, rows: int, cols: int) -> np.ndarray:
        got_tag, dtype, got_rows, got_cols = _TENSOR.unpack(reader.take(_TENSOR.size, what))
        if got_tag != tag:
            raise reader.fail(f"have tensor tag {got_tag} where the {what} (tag {tag}) belongs")
        if dtype != DTYPE_F32:
            raise reader.fail(f"have {what} of dtype {dtype} (this reader knows 1, float32)")
        if (got_rows, got_cols) != (rows, cols):
            raise reader.fail(
                f"have the wrong shape: {what} is {got_rows}x{got_cols}, expected {rows}x{cols}"
            )
        raw = reader.take(4 * rows * cols, what)
        return np.frombuffer(raw, dtype="<f4").reshape(rows, cols).astype(np.float32)

    embedding = tensor(TAG_EMBEDDING, "embedding", vocab, dim) if kind == 1 else None
    layers = []
    width = dim
    for n, u in enumerate(units, 1):
        layers.append(Layer(
            tensor(TAG_KERNEL, f"layer {n} kernel", width, 4 * u),
            tensor(TAG_RECURRENT, f"layer {n} recurrent kernel", u, 4 * u),
            tensor(TAG_BIAS, f"layer {n} bias", 1, 4 * u)[0],
        ))
        width = u
    dense_kernel = tensor(TAG_DENSE_KERNEL, "dense kernel", width, dense)
    dense_bias = tensor(TAG_DENSE_BIAS, "dense bias", 1, dense)[0]
    out_kernel = tensor(TAG_OUT_KERNEL, "output kernel", dense, vocab)
    out_bias = tensor(TAG_OUT_BIAS, "output bias", 1, vocab)[0]
    int8 = None
    if version >= 2:
        flag = reader.u32("int8 section flag")
        _check_range(reader, "int8 section flag", flag, 0, 1)
        if flag:
            int8 = _decode_int8(reader, kind == 1, vocab, dim, units, dense)
    if reader.at != len(data) - 4:
        raise reader.fail(f"have {len(data) - 4 - reader.at} unexpected bytes after the tensors")
    return NativeWeights(
        vocabulary=vocabulary, window=window, input_kind=INPUT_KINDS[kind],
        input_multiplier=float(multiplier), gate=GATES[gate], gate_slope=float(slope),
        gate_offset=float(offset), fill=fill, primer=primer, embedding=embedding,
        layers=tuple(layers), dense_kernel=dense_kernel, dense_bias=dense_bias,
        out_kernel=out_kernel, out_bias=out_bias, int8=int8,
    )


def _decode_int8(reader: _Reader, embedding: bool, vocab: int, dim: int, units: list[int],
                 dense: int) -> Int8Weights:
    def quantized(tag: int, what: str, dtype: int, rows: int, cols: int) -> Quantized:
        name = f"int8 {what}"
        got_tag, got_dtype, got_rows, got_cols, scale, zero = _QTENSOR.unpack(
            reader.take(_QTENSOR.size, name))
        if got_tag != tag:
            raise reader.fail(f"have tensor tag {got_tag} where the {name} (tag {tag}) belongs")
        if got_dtype != dtype:
            kind = "int8" if dtype == DTYPE_I8 else "uint8"
            raise reader.fail(f"have {name} of dtype {got_dtype} (expected {dtype}, {kind})")
        if (got_rows, got_cols) != (rows, cols):
            raise reader.fail(
                f"have the wrong shape: {name} is {got_rows}x{got_cols}, expected {rows}x{cols}"
            )
        if not 0.0 < scale < 3.0e38:
            raise reader.fail(f"have {name} with scale {scale:f} (expected a positive finite number)")
        if dtype == DTYPE_I8 and zero != 0:
            raise reader.fail(f"have {name} with zero point {zero} (expected 0)")
        if dtype == DTYPE_U8 and not 0 <= zero <= 255:
            raise reader.fail(f"have {name} with zero point {zero} (expected 0..255)")
        raw = reader.take(rows * cols, name)
        reader.take(-(rows * cols) % 4, "int8 tensor padding")
        values = np.frombuffer(raw, dtype=np.int8 if dtype == DTYPE_I8 else np.uint8)
        return Quantized(values.reshape(rows, cols).copy(), float(scale), int(zero))

    q_embedding = quantized(TAG_Q_EMBEDDING, "embedding", DTYPE_U8, vocab, dim) if embedding else None
    kernels, recurrents = [], []
    width = dim
    for n, u in enumerate(units, 1):
        kernels.append(quantized(TAG_Q_KERNEL, f"layer {n} kernel", DTYPE_I8, width, 4 * u))
        recurrents.append(
            quantized(TAG_Q_RECURRENT, f"layer {n} recurrent kernel", DTYPE_I8, u, 4 * u))
        width = u
    return Int8Weights(
        embedding=q_embedding, kernels=tuple(kernels), recurrents=tuple(recurrents),
        dense_kernel=quantized(TAG_Q_DENSE_KERNEL, "dense kernel", DTYPE_I8, width, dense),
        out_kernel=quantized(TAG_Q_OUT_KERNEL, "output kernel", DTYPE_I8, dense, vocab),
    )


def read(path: str | Path, vocabulary: tuple[str, ...] | None = None) -> NativeWeights:
    """Read ``path``; with ``vocabulary`` (the manifest's), refuse a file made for another."""
    path = Path(path)
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        raise BundleError(
            f"{path}: native weights missing; add them with: cadenza native-weights {path.parent}"
        ) from None
    except OSError as err:
        raise BundleError(f"{path}: cannot read the native weights: {err}") from err
    weights = decode(data, path)
    if vocabulary is not None:
        check_vocabulary(weights.vocabulary, vocabulary, path)
    return weights


def check_vocabulary(found: tuple[str, ...], expected: tuple[str, ...], path: Path) -> None:
    if tuple(found) == tuple(expected):
        return
    if len(found) != len(expected):
        problem = f"{len(found)} tokens, the manifest {len(expected)}"
    else:
        at = next(i for i, (a, b) in enumerate(zip(found, expected, strict=True)) if a != b)
        problem = f"token {at} is {found[at]!r}, the manifest's is {expected[at]!r}"
    raise BundleError(f"{path}: native weights of another vocabulary: {problem}")
