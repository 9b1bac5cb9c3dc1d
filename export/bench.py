"""Latency benchmark: per-prediction times of each runner, and a 200-note generation.

One prediction is what the daemon does per note: feed the token just played,
then ask for the next distribution.  Each runner is warmed up, then timed
over ``calls`` predictions on one thread; the token fed next is the argmax
of the last answer, chosen outside the timed region.  ``keras`` times the
original's path, ``model.predict`` on the last window, per note.
``native_int8`` and ``onnx_int8_paired`` do the same for the int8 steps.
``native_stream`` times the native step (``cadenza.native``) where the
library is built, taking turns call by call with onnxruntime's stream step
(``onnx_stream_paired``); ``native_vs_onnx_stream`` says how many times
faster it is.  ``native_stream_alone`` times it on its own first, as
``onnx_stream`` is, and ``native_vs_onnx_stream_alone`` compares those two:
taking turns, each step starts on caches the other has filled.

The generation benchmark plays 200 notes from the bundle's first primer:
the original's loop (``model.predict`` per note, argmax) against ours
(``StreamRunner`` and argmax, priming included).
"""

from __future__ import annotations

import logging
import os
import platform
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from cadenza.bundle import Bundle, read_bundle
from cadenza.errors import BundleError, ExportError
from cadenza.runtime import StreamRunner, WindowRunner
from cadenza.trained import PROBS

log = logging.getLogger(__name__)

WARMUP_CALLS = 50
KERAS_WARMUP_CALLS = 5  # model.predict is slow; its first calls trace, a few suffice
GENERATION_NOTES = 200


def summarise(samples_ns: list[int]) -> dict[str, float]:
    ms = np.asarray(samples_ns, dtype=np.float64) / 1e6
    return {
        "calls": len(ms),
        "p50_ms": float(np.percentile(ms, 50)),
        "p99_ms": float(np.percentile(ms, 99)),
        "max_ms": float(ms.max()),
    }


def time_calls(
    predict: Callable[[int], np.ndarray], first: int, calls: int, warmup: int = WARMUP_CALLS
) -> dict[str, float]:
    """Time ``predict(token) -> probs`` over ``calls`` calls after ``warmup`` untimed ones."""
    token = first
    for _ in range(warmup):
        token = int(np.argmax(predict(token)))
    samples = []
    clock = time.perf_counter_ns
    for _ in range(calls):
        start = clock()
        probs = predict(token)
        samples.append(clock() - start)
        token = int(np.argmax(probs))
    return summarise(samples)


def time_pair(
    first: Callable[[int], np.ndarray], second: Callable[[int], np.ndarray], token: int,
    calls: int, warmup: int = WARMUP_CALLS,
) -> tuple[dict[str, float], dict[str, float]]:
    """Time two predictors call by call in turn, each fed its own last argmax.

    On a busy machine, timing one runner after the other lets each meet
    different weather; taking turns gives both the same."""
    tokens = [token, token]
    steps = (first, second)
    samples: list[list[int]] = [[], []]
    clock = time.perf_counter_ns
    for n in range(warmup + calls):
        for which in (0, 1):
            start = clock()
            probs = steps[which](tokens[which])
            elapsed = clock() - start
            if n >= warmup:
                samples[which].append(elapsed)
            tokens[which] = int(np.argmax(probs))
    return summarise(samples[0]), summarise(samples[1])


def _runner_step(runner: StreamRunner | WindowRunner) -> Callable[[int], np.ndarray]:
    def step(token: int) -> np.ndarray:
        runner.feed(token)
        return runner.distribution()

    return step


class KerasLoop:
    """The original's generation step: ``model.predict`` on the last window."""

    def __init__(self, keras_dir: Path, bundle: Bundle) -> None:
        from cadenza.export.source import keras_inputs, load_keras_model

        self.model = load_keras_model(Path(keras_dir))
        size = int(self.model.get_layer(PROBS).units)
        if size != bundle.vocab_size:
            raise ExportError(
                f"{keras_dir}: the Keras model predicts {size} tokens, the bundle "
                f"{bundle.path} {bundle.vocab_size}; they are not the same model"
            )
        self._inputs = keras_inputs
        self.encoding, self.scale = bundle.input_encoding, bundle.input_scale
        self.window = np.zeros(bundle.window, dtype=np.int64)

    def reset(self, primer: list[int]) -> None:
        self.window[:] = primer[-len(self.window) :]

    def step(self, token: int) -> np.ndarray:
        self.window[:-1] = self.window[1:]
        self.window[-1] = token
        return self.predict()

    def predict(self) -> np.ndarray:
        x = self._inputs(self.window[None, :], self.encoding, self.scale)
        probs = self.model.predict(x, verbose=0)
        return probs[0, -1] if probs.ndim == 3 else probs[0]


def _generate(
    first: Callable[[], np.ndarray], step: Callable[[int], np.ndarray], notes: int
) -> list[int]:
    probs = first()
    played = []
    for _ in range(notes):
        token = int(np.argmax(probs))
        played.append(token)
        probs = step(token)
    return played


def _full_window(bundle: Bundle) -> list[int]:
    """A window of real music to time from: the first primer that fills the
    window (the default preset's runners need none, the benchmark does: every
    call must cost what a full context costs), else the commonest token."""
    index = {token: i for i, token in enumerate(bundle.vocabulary)}
    for primer in bundle.primers:
        if len(primer) >= bundle.window:
            return [index[token] for token in primer[-bundle.window :]]
    return [0] * bundle.window


def _time_native_against(results: dict, native_name: str, native, onnx_name: str, onnx,
                         ratio_name: str, primer, calls: int) -> None:
    """``native`` and the onnxruntime runner ``onnx`` timed in turn, call by
    call: results[native_name], results[onnx_name + "_paired"] and the one's
    times over the other's (results[ratio_name])."""
    # Alone first, as each onnxruntime runner is timed above: taking turns
    # puts both on caches the other has just filled with its own weights, a
    # cost alone (and in a plugin among others) that each meets differently.
    native.reset(primer)
    results[f"{native_name}_alone"] = time_calls(_runner_step(native), primer[-1], calls)
    onnx.reset(primer)
    native.reset(primer)
    paired = f"{onnx_name}_paired"
    results[paired], results[native_name] = time_pair(
        _runner_step(onnx), _runner_step(native), primer[-1], calls
    )
    log.info("%s: p99 %.3f ms", native_name, results[native_name]["p99_ms"])
    results[ratio_name] = {
        key: results[paired][key] / results[native_name][key] for key in ("p50_ms", "p99_ms")
    }
    results[f"{ratio_name}_alone"] = {
        key: results[onnx_name][key] / results[f"{native_name}_alone"][key] for key in ("p50_ms", "p99_ms")
    }


def run_benchmark(
    bundle_path: Path,
    calls: int,
    keras_dir: Path | None = None,
    notes: int = GENERATION_NOTES,
) -> dict[str, Any]:
    """Time every runner of the bundle (and Keras); the results as plain data."""
    bundle = read_bundle(bundle_path)
    load_before = os.getloadavg()
    results: dict[str, Any] = {}
    runners: dict[str, StreamRunner | WindowRunner] = {
        "onnx_stream": StreamRunner(bundle),
        "onnx_window": WindowRunner(bundle),
    }
    primer = _full_window(bundle)
    if "stream_int8" in bundle.graphs:
        runners["onnx_int8"] = StreamRunner(bundle, "stream_int8")
    if "window_int8" in bundle.graphs:
        runners["onnx_window_int8"] = WindowRunner(bundle, "window_int8")
    native_runner = _native_runner(bundle)
    for name, runner in runners.items():
        runner.reset(primer)
        results[name] = time_calls(_runner_step(runner), primer[-1], calls)
        log.info("%s: p99 %.3f ms", name, results[name]["p99_ms"])

    # The bar: the native step's p99 at most half of onnxruntime's stream
    # step's, in one run: the two take turns, call by call (the int8 step
    # against onnxruntime's int8 stream step alike).
    if native_runner is not None:
        _time_native_against(results, "native_stream", native_runner, "onnx_stream",
                             runners["onnx_stream"], "native_vs_onnx_stream", primer, calls)
    native_int8 = _native_runner(bundle, int8=True) if "onnx_int8" in runners else None
    if native_int8 is not None:
        _time_native_against(results, "native_int8", native_int8, "onnx_int8",
                             runners["onnx_int8"], "native_int8_vs_onnx_int8", primer, calls)
    keras = _keras_loop(keras_dir, bundle)
    if keras is not None:
        keras.reset(primer)
        results["keras"] = time_calls(keras.step, primer[-1], calls, KERAS_WARMUP_CALLS)
        log.info("keras: p99 %.3f ms", results["keras"]["p99_ms"])

    stream = runners["onnx_stream"]
    start = time.perf_counter()
    stream.reset(primer)
    onnx_notes = _generate(stream.distribution, _runner_step(stream), notes)
    onnx_s = time.perf_counter() - start
    generation: dict[str, Any] = {"notes": notes, "keras_s": None, "onnx_s": onnx_s, "speedup": None}
    if keras is not None:
        start = time.perf_counter()
        keras.reset(primer)
        keras_notes = _generate(keras.predict, keras.step, notes)
        generation["keras_s"] = time.perf_counter() - start
        generation["speedup"] = generation["keras_s"] / onnx_s
        window = runners["onnx_window"]
        window.reset(primer)
        window_notes = _generate(window.distribution, _runner_step(window), notes)
        # The window runner is the original's semantics: same argmax notes expected.
        generation["onnx_window_same_notes"] = window_notes == keras_notes
        generation["onnx_stream_same_notes"] = onnx_notes == keras_notes
    results[f"generation_{notes}"] = generation
    results["setup"] = {
        "bundle": str(bundle.path),
        "keras": str(keras_dir) if keras is not None else None,
        "vocabulary": bundle.vocab_size,
        "lstm_units": bundle.state_size,
        "window": bundle.window,
        "machine": platform.machine(),
        "processor": platform.processor() or None,
        "python": platform.python_version(),
        # Under a real-time policy (chrt -f) other work cannot preempt the calls.
        "scheduler": _scheduler(),
        # Other work on the machine shows up in p99 and max: say how busy it was.
        "load_average_before": [round(x, 2) for x in load_before],
        "load_average_after": [round(x, 2) for x in os.getloadavg()],
    }
    return results


def _scheduler() -> str | None:
    """This process's scheduling policy and priority, as ``chrt`` names them."""
    if not hasattr(os, "sched_getscheduler"):
        return None
    names = {os.SCHED_OTHER: "SCHED_OTHER", os.SCHED_FIFO: "SCHED_FIFO", os.SCHED_RR: "SCHED_RR"}
    policy = os.sched_getscheduler(0)
    return f"{names.get(policy, policy)} {os.sched_getparam(0).sched_priority}"


def _native_runner(bundle: Bundle, int8: bool = False) -> Any:
    """The native step on the bundle's weights, or None (with the reason logged)."""
    from cadenza import native

    try:
        return native.NativeStreamRunner(bundle, int8=int8)
    except (native.NativeError, BundleError) as err:
        log.warning("%s not timed: %s", "native_int8" if int8 else "native_stream", err)
        return None


def _keras_loop(keras_dir: Path | None, bundle: Bundle) -> KerasLoop | None:
    if keras_dir is None:
        return None
    try:
        import tensorflow  # noqa: F401  (only to know whether it is there)
    except ImportError:
        log.warning("TensorFlow is not installed: skipping the Keras timings of %s", keras_dir)
        return None
    return KerasLoop(keras_dir, bundle)


def _alone(results: dict[str, Any], ratio_name: str) -> str:
    alone = results.get(f"{ratio_name}_alone")
    if not alone:
        return ""
    return f"; each alone {alone['p50_ms']:.1f}x and {alone['p99_ms']:.1f}x"


def format_table(results: dict[str, Any]) -> str:
    lines = [f"{'runner':<20} {'calls':>6} {'p50 ms':>9} {'p99 ms':>9} {'max ms':>9}"]
    for name, r in results.items():
        if isinstance(r, dict) and "calls" in r:
            lines.append(
                f"{name:<20} {r['calls']:>6} {r['p50_ms']:>9.3f} {r['p99_ms']:>9.3f} {r['max_ms']:>9.3f}"
            )
    g = next(v for k, v in results.items() if k.startswith("generation_"))
    line = f"generation of {g['notes']} notes: onnx stream {g['onnx_s']:.3f} s"
    if g.get("keras_s") is not None:
        line += f", keras loop {g['keras_s']:.2f} s, speed-up {g['speedup']:.0f}x"
    lines.append(line)
    ratio = results.get("native_vs_onnx_stream")
    if ratio:
        lines.append(f"native step against onnxruntime's stream step: {ratio['p50_ms']:.1f}x "
                     f"faster at p50, {ratio['p99_ms']:.1f}x at p99 (in turn)" + _alone(results, "native_vs_onnx_stream"))
    ratio = results.get("native_int8_vs_onnx_int8")
    if ratio:
        lines.append(f"native int8 step against onnxruntime's int8 stream step: "
                     f"{ratio['p50_ms']:.1f}x faster at p50, {ratio['p99_ms']:.1f}x at p99 (in turn)"
                     + _alone(results, "native_int8_vs_onnx_int8"))
    setup = results.get("setup", {})
    if "load_average_before" in setup:
        lines.append(
            f"machine load (1/5/15 min): {setup['load_average_before']} before, "
            f"{setup['load_average_after']} after"
        )
    return "\n".join(lines)
