"""Running a model bundle on onnxruntime: the daemon's two model runners.

One history at a time, as the engine asks; many whole windows at once (for
evaluation) is ``cadenza.batch``, and the live settings' choice of model is
``cadenza.live.model``.

Only numpy and onnxruntime are imported here, so the light install (no
TensorFlow, no music21) can load and run any bundle.

``WindowRunner`` is the original's semantics, exactly: the next-token
distribution given the last ``window`` tokens, recomputed from zero LSTM state
on every call.  ``StreamRunner`` keeps the LSTM state and advances it by one
token per call, so a prediction costs one LSTM step instead of ``window``.

A shorter history depends on the preset (``Bundle.left_filled``): the seed
preset's is left-filled with a primer of real music, as the original only
ever predicted from full windows; the default preset starts from zero state
and sees only the history itself, as it was trained.  Before any token at
all, that model has nothing to go on: the distribution is uniform.

Sessions use one intra-op and one inter-op thread with spin-waiting off: the
daemon shares a small board with a synth and a scheduler, and a thread that
spins between notes would burn a core for nothing.  Every session is warmed
up before use, so the first note does not pay for lazy initialisation.

The hot path (``feed`` and ``distribution``) writes into input and output
arrays allocated once, bound to the session with an ``IOBinding``; the only
allocation per call is the float64 copy ``distribution`` hands back.  A
runner is not thread-safe: one worker owns it, as the engine's worker does.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import onnxruntime as ort

from cadenza.bundle import MANIFEST, Bundle, GraphSpec, bundled_model_path, read_bundle
from cadenza.config import RUNNERS
from cadenza.errors import BundleError, ConfigError, ModelError

log = logging.getLogger(__name__)

WARMUP_RUNS = 5
_ORT_TYPES = {
    "tensor(float)": "float32",
    "tensor(double)": "float64",
    "tensor(int64)": "int64",
    "tensor(int32)": "int32",
}


def session_options() -> ort.SessionOptions:
    """One thread, no spinning, full graph optimisation, sequential execution."""
    options = ort.SessionOptions()
    options.intra_op_num_threads = 1
    options.inter_op_num_threads = 1
    options.add_session_config_entry("session.intra_op.allow_spinning", "0")
    options.add_session_config_entry("session.inter_op.allow_spinning", "0")
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    options.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    options.log_severity_level = 3  # errors only: warnings would go to stderr, not logging
    return options


def open_session(bundle: Bundle, spec: GraphSpec) -> ort.InferenceSession:
    """Load one graph of ``bundle`` and check it against the manifest."""
    manifest = bundle.path / MANIFEST
    try:
        session = ort.InferenceSession(
            str(spec.path), sess_options=session_options(), providers=["CPUExecutionProvider"]
        )
    except Exception as err:  # onnxruntime raises its own, unrelated exception types
        raise BundleError(f"{spec.path}: corrupt or unreadable ONNX graph: {err}") from err
    actual_inputs = {i.name for i in session.get_inputs()}
    actual_outputs = {o.name: o for o in session.get_outputs()}
    declared_inputs = {t.name for t in spec.inputs.values()}
    if actual_inputs != declared_inputs:
        raise BundleError(
            f"{spec.path}: graph inputs {sorted(actual_inputs)} differ from those "
            f"{manifest} declares for {spec.kind!r}: {sorted(declared_inputs)}"
        )
    for role, tensor in spec.outputs.items():
        if tensor.name not in actual_outputs:
            raise BundleError(
                f"{spec.path}: graph has no output {tensor.name!r} ({role!r} in {manifest})"
            )
    for graph_input in session.get_inputs():
        declared = next(t for t in spec.inputs.values() if t.name == graph_input.name)
        actual = _ORT_TYPES.get(graph_input.type, graph_input.type)
        if actual != declared.dtype:
            raise BundleError(
                f"{spec.path}: input {graph_input.name!r} is {actual}, but {manifest} "
                f"declares {declared.dtype}"
            )
    probs_shape = actual_outputs[spec.outputs["probs"].name].shape
    if probs_shape and isinstance(probs_shape[-1], int):
        _check_vocab_size(bundle, spec, probs_shape[-1])
    return session


def _check_vocab_size(bundle: Bundle, spec: GraphSpec, size: int) -> None:
    if size != bundle.vocab_size:
        raise BundleError(
            f"{spec.path}: the graph predicts {size} tokens but the vocabulary in "
            f"{bundle.path / MANIFEST} has {bundle.vocab_size}"
        )


def _dtype(spec: GraphSpec, role: str) -> np.dtype:
    try:
        return np.dtype(spec.inputs[role].dtype)
    except KeyError:
        raise BundleError(f"{spec.path}: graph {spec.kind!r} declares no {role!r} input") from None
    except TypeError as err:
        raise BundleError(f"{spec.path}: input {role!r} has an unknown dtype") from err


def _bind_output(binding: ort.IOBinding, name: str, array: np.ndarray) -> None:
    """Have the session write output ``name`` straight into ``array``."""
    binding.bind_output(name, "cpu", 0, array.dtype, list(array.shape), array.ctypes.data)


def _fill_tokens(bundle: Bundle) -> tuple[int, ...]:
    """The left-fill for a history shorter than the window: the first primer
    for the seed preset, nothing for the default preset.

    The original only ever predicted from a full window of real music, so a
    short history is padded on the left with real music too (held-out data
    the exporter stored), never with a constant token the model never saw in
    that position.
    """
    if not bundle.left_filled:
        return ()
    index = {token: i for i, token in enumerate(bundle.vocabulary)}
    for primer in bundle.primers:
        if len(primer) >= bundle.window:
            return tuple(index[token] for token in primer[-bundle.window :])
    raise BundleError(
        f"{bundle.path / MANIFEST}: no primer of {bundle.window} tokens; the runners need one "
        "to fill a history shorter than the window"
    )


class _Runner:
    """What both runners share: the bundle, the left-fill, index checks."""

    def __init__(self, bundle: Bundle, kind: str) -> None:
        self.bundle = bundle
        self.spec = bundle.graph(kind)
        self.vocabulary = bundle.vocabulary
        self.window = bundle.window
        self.fill = _fill_tokens(bundle)
        self.session = open_session(bundle, self.spec)
        self._size = bundle.vocab_size
        # Nothing heard (default preset): every token is as likely as any other.
        self._uniform = np.full(self._size, 1.0 / self._size)

    def _check_index(self, index: int) -> int:
        index = int(index)
        if not 0 <= index < self._size:
            raise ModelError(
                f"token index {index} is outside the vocabulary of {self.bundle.path} "
                f"(0..{self._size - 1})"
            )
        return index

    def _context(self, primer: Sequence[int]) -> list[int]:
        primer = [self._check_index(i) for i in primer]
        if len(primer) >= self.window or not self.fill:
            return primer
        return list(self.fill[len(self.fill) - (self.window - len(primer)) :]) + primer

    def _warm_up(self) -> None:
        # A full window, so every graph a runner holds runs at least once.
        context = list(self.fill) or [0] * self.window
        try:
            for _ in range(WARMUP_RUNS):
                self.reset(context)
                self.feed(context[-1])
                self.distribution()
            self.reset()
        except ModelError as err:
            raise BundleError(f"{self.spec.path}: the graph fails its warm-up run: {err}") from err

    @staticmethod
    def _normalised(probs: np.ndarray) -> np.ndarray:
        out = probs.astype(np.float64)
        out /= out.sum()
        return out


def _short_history_kind(bundle: Bundle, kind: str) -> str:
    """The stream graph that answers a default-preset history shorter than the
    window: the window graph's twin (int8 for int8), else the fp32 one."""
    for candidate in (kind.replace("window", "stream", 1), "stream"):
        if candidate in bundle.graphs:
            return candidate
    raise BundleError(
        f"{bundle.path / MANIFEST}: the {bundle.preset} preset predicts from a history "
        f"shorter than the window ({bundle.window} tokens) with the 'stream' graph, "
        f"which this bundle lacks (it has {', '.join(bundle.graphs)})"
    )


class WindowRunner(_Runner):
    """The original's semantics: the distribution after the last ``window`` tokens.

    Before ``window`` tokens exist, the seed preset's window is left-filled
    with the bundle's first primer (see ``_fill_tokens``).  The default
    preset's is not: its window graph has a fixed length and nothing may pad
    it, so a shorter history is answered by the stream graph from zero state,
    the same model on exactly those tokens (the exporter proves the two
    graphs agree), one step per token; once ``window`` tokens are there the
    window graph takes over.
    """

    def __init__(self, bundle: Bundle, kind: str = "window") -> None:
        super().__init__(bundle, kind)
        self._tokens_name = self.spec.inputs["tokens"].name
        self._tokens_dtype = _dtype(self.spec, "tokens")
        self._tokens = np.zeros((1, self.window), dtype=self._tokens_dtype)
        self._probs = np.zeros((1, self._size), dtype=np.float32)
        self._binding = self.session.io_binding()
        self._binding.bind_cpu_input(self._tokens_name, self._tokens)
        _bind_output(self._binding, self.spec.outputs["probs"].name, self._probs)
        self._fresh = False
        self._count = self.window  # tokens of real context in the window, at most window
        self._short = (
            None if self.fill else StreamRunner(bundle, _short_history_kind(bundle, kind))
        )
        self._warm_up()

    def reset(self, primer: Sequence[int] = ()) -> None:
        context = self._context(primer)[-self.window :]
        self._count = len(context)
        if context:
            self._tokens[0, self.window - len(context) :] = context
        if self._short is not None and self._count < self.window:
            self._short.reset(context)
        self._fresh = False

    def feed(self, index: int) -> None:
        index = self._check_index(index)
        tokens = self._tokens[0]
        tokens[:-1] = tokens[1:]
        tokens[-1] = index
        if self._count < self.window:
            if self._short is not None:
                self._short.feed(index)
            self._count += 1
        self._fresh = False

    def distribution(self) -> np.ndarray:
        if self._short is not None and self._count < self.window:
            return self._short.distribution()
        if not self._fresh:
            try:
                self.session.run_with_iobinding(self._binding)
            except Exception as err:  # onnxruntime's own exception types
                raise ModelError(f"{self.spec.path}: prediction failed: {err}") from err
            self._fresh = True
        return self._normalised(self._probs[0])

class StreamRunner(_Runner):
    """One LSTM step per token: O(1) per prediction, whatever the history.

    The model was trained on windows of ``window`` tokens from zero state; an
    LSTM run far past the context length it was trained on drifts into states
    it never saw.  So the context is bounded: once the history since the last
    reset reaches ``2 * window`` tokens, the runner continues from a state
    computed from zero on the last ``window`` tokens only.  At that moment
    (and whenever the context is exactly ``window`` tokens long) the stream
    gives the window runner's distribution.

    Re-priming there would cost ``window`` steps on one note, a latency spike
    every ``window`` notes.  Instead the graph runs with a batch of two rows:
    the active row, and a shadow row that starts from zero state when the
    active one reaches ``window`` tokens.  At ``2 * window`` the shadow holds
    exactly the last ``window`` tokens and becomes the active row.  A batch of
    two costs barely more than one (the step is bound by reading the weights).
    """

    ROWS = 2

    def __init__(self, bundle: Bundle, kind: str = "stream") -> None:
        super().__init__(bundle, kind)
        names = bundle.state_names  # read_bundle checked the graph has each, in and out
        if bundle.state_size < 1:
            raise BundleError(f"{bundle.path / MANIFEST}: 'state.size' must be at least 1")
        shape = (self.ROWS, bundle.state_size)
        self._token = np.zeros((self.ROWS, 1), dtype=_dtype(self.spec, "token"))
        self._probs = np.zeros((self.ROWS, self._size), dtype=np.float32)
        # Two sets of state arrays: each step reads one set and writes the other.
        self._states = [{n: np.zeros(shape, dtype=np.float32) for n in names} for _ in range(2)]
        self._bindings = [self._binding(src, 1 - src) for src in range(2)]
        self._current = 0  # which state set the next step reads
        self._active = 0  # which row the answer comes from
        self._length = 0  # tokens in the active row's context
        self._warm_up()

    def _binding(self, src: int, dst: int) -> ort.IOBinding:
        binding = self.session.io_binding()
        binding.bind_cpu_input(self.spec.inputs["token"].name, self._token)
        _bind_output(binding, self.spec.outputs["probs"].name, self._probs)
        for name in self.bundle.state_names:
            binding.bind_cpu_input(self.spec.inputs[name].name, self._states[src][name])
            _bind_output(binding, self.spec.outputs[name].name, self._states[dst][name])
        return binding

    def _zero_row(self, row: int) -> None:
        for array in self._states[self._current].values():
            array[row] = 0.0

    def _step(self, index: int) -> None:
        self._token[:, 0] = index
        try:
            self.session.run_with_iobinding(self._bindings[self._current])
        except Exception as err:  # onnxruntime's own exception types
            raise ModelError(f"{self.spec.path}: prediction failed: {err}") from err
        self._current = 1 - self._current
        self._length += 1
        if self._length == 2 * self.window:
            self._active = 1 - self._active
            self._length = self.window
        if self._length == self.window:
            self._zero_row(1 - self._active)

    def reset(self, primer: Sequence[int] = ()) -> None:
        context = self._context(primer)
        # Tokens before the last "window + (n - window) % window" would be
        # forgotten by the shadow switch anyway; skipping them is exact.
        keep = len(context)
        if keep > self.window:
            keep = self.window + (keep - self.window) % self.window
        for array in self._states[self._current].values():
            array.fill(0.0)
        self._active = 0
        self._length = 0
        for index in context[len(context) - keep :]:
            self._step(index)

    def feed(self, index: int) -> None:
        self._step(self._check_index(index))

    def distribution(self) -> np.ndarray:
        if self._length == 0:  # nothing heard since reset (default preset)
            return self._uniform.copy()
        return self._normalised(self._probs[self._active])


def load_predictor(
    path: str | Path | None = None, runner: str = "stream", int8: bool = False
) -> StreamRunner | WindowRunner:
    """Open the bundle at ``path`` ("" or None: the bundled model) as a predictor."""
    if runner not in RUNNERS:
        raise ConfigError(f"unknown runner {runner!r} (known: {', '.join(RUNNERS)})")
    bundle = read_bundle(path or bundled_model_path())
    if runner == "native":
        from cadenza.native import NativeStreamRunner

        # The same interface as StreamRunner; int8 runs the weights file's int8
        # section, as onnxruntime runs stream_int8 (refused, naming the file, where it has none).
        return NativeStreamRunner(bundle, int8=int8)
    kind = f"{runner}_int8" if int8 else runner
    predictor = StreamRunner(bundle, kind) if runner == "stream" else WindowRunner(bundle, kind)
    log.debug("loaded %s graph of %s", kind, bundle.path)
    return predictor
