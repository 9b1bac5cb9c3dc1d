"""The native engine (``native/``, C++17) behind the Python engine's interface.

``NativeEngine`` has ``Engine``'s public methods and returns the same
``Event(time, mido.Message)`` lists: the identity tests drive both with the
same input and compare what comes out, event for event.  The shared library
is built by ``make native`` into ``build/native/``; ``CADENZA_NATIVE_LIB``
names another copy.

The model: ``FakePredictor`` with its default rule becomes the C++ fake (the
same rule, bit for bit); a predictor with a ``native_weights_path`` (the
native model step, ``cadenza.native.NativeStreamRunner``) is made again inside
the engine library from the same checked weights file, so the engine calls
the step directly (the engine library links the model step; the two shared
libraries share no C++ objects); any other predictor is called back from C++
through ctypes, so ``--engine native`` can run on the onnxruntime runners too
(slowly: for tests and offline runs).
"""

from __future__ import annotations

import contextlib
import ctypes
import logging
from collections.abc import Sequence

import mido
import numpy as np

from cadenza.config import MODES, EngineSettings, LiveConfig
from cadenza.live.engine.context import DEFAULT_WINDOW, latency_stats
from cadenza.live.engine.engine import LOOKAHEAD
from cadenza.live.engine.events import Event
from cadenza.live.engine.vocab_map import VocabMap
from cadenza.live.native_library import (
    _DISTRIBUTION,
    _FEED,
    _RESET,
    ERROR_SIZE,
    LATENCY_SAMPLES,
    LIBRARY_ENV,
    MAX_EVENTS,
    MAX_PAIRS,
    NativeError,
    NativeUnavailable,
    _Callbacks,
    _Event,
    _Stats,
    load_library,
    native_settings,
)
from cadenza.predictor import Predictor

log = logging.getLogger(__name__)
__all__ = ["LIBRARY_ENV", "NativeEngine", "NativeError", "NativeUnavailable", "load_library"]

def bundle_primer(predictor: Predictor, window: int) -> list[int]:
    """ModelContext.bundle_primer: the runner's fill, else the first primer; its last ``window``."""
    fill = getattr(predictor, "fill", None)
    if fill is None:
        primers = getattr(predictor, "primers", None) or ()
        fill = primers[0] if primers else ()
    return list(fill)[-window:] if window else []


class _CallbackModel:
    """A Python predictor the C++ engine calls back (kept alive with the engine)."""

    def __init__(self, lib: ctypes.CDLL, predictor: Predictor, window: int) -> None:
        self.predictor = predictor
        self.size = len(predictor.vocabulary)
        self._probs = np.zeros(self.size)
        self._error: BaseException | None = None
        self._callbacks = _Callbacks(self.size, window, _RESET(self._reset), _FEED(self._feed),
                                     _DISTRIBUTION(self._distribution), None)
        self.handle = lib.cadenza_callback_predictor_new(ctypes.byref(self._callbacks))

    def _reset(self, _user, primer, count) -> None:
        self.predictor.reset([primer[i] for i in range(count)])

    def _feed(self, _user, index) -> None:
        self.predictor.feed(int(index))

    def _distribution(self, _user) -> int | None:
        try:
            probs = np.ascontiguousarray(self.predictor.distribution(), dtype=np.float64)
            if probs.shape != (self.size,):
                raise NativeError(f"the model gave {probs.shape} probabilities, not ({self.size},)")
        except Exception as err:  # reported by the engine call that asked
            self._error = err
            return None
        self._probs = probs  # alive until the next call, as the C++ side expects
        return probs.ctypes.data

    def take_error(self) -> BaseException | None:
        error, self._error = self._error, None
        return error


class _NativeClock:
    def __init__(self, engine: NativeEngine) -> None:
        self._engine = engine

    @property
    def bpm(self) -> float:
        return self._engine.bpm

    def time_at(self, beat: float) -> float | None:
        return self._engine.time_at(beat)

    def beat_at(self, time: float) -> float | None:
        return self._engine.beat_at(time)


def _uses_default_rule(predictor: Predictor) -> bool:
    # A stand-in model for tests (testing/fake_predictor.py, never installed)
    # says so; the native library has its twin, so no Python callback is needed.
    return getattr(predictor, "native_twin", None) == "next-in-cycle"


class NativeEngine:
    """``cadenza.live.engine.Engine`` on the native library (see the module docstring)."""

    def __init__(
        self,
        predictor: Predictor,
        settings: EngineSettings | LiveConfig,
        *,
        start_time: float = 0.0,
        lookahead: float = LOOKAHEAD,
    ) -> None:
        if lookahead < 0:
            raise ValueError(f"lookahead must be 0 or more seconds, got {lookahead}")
        settings = EngineSettings.of(settings)
        self._lib = lib = load_library()
        self.predictor = predictor
        self.lookahead = float(lookahead)
        self.vocab = VocabMap(predictor.vocabulary)
        window = int(getattr(predictor, "window", None) or DEFAULT_WINDOW)
        self._model: _CallbackModel | None = None
        weights_path = getattr(predictor, "native_weights_path", None)
        if weights_path is not None:
            error = ctypes.create_string_buffer(ERROR_SIZE)
            make = (lib.cadenza_native_int8_predictor_new if getattr(predictor, "int8", False)
                    else lib.cadenza_native_predictor_new)
            handle = make(str(weights_path).encode(), error, ERROR_SIZE)
            if not handle:
                raise NativeError(f"native engine: {error.value.decode(errors='replace')}")
        elif _uses_default_rule(predictor):
            handle = lib.cadenza_fake_predictor_new(len(self.vocab.vocabulary), window)
        else:
            self._model = _CallbackModel(lib, predictor, window)
            handle = self._model.handle
        if not handle:
            raise NativeError("the native engine could not take this model")
        self._predictor_handle = handle
        self._settings = settings
        words = [token.encode() for token in self.vocab.vocabulary]
        vocabulary = (ctypes.c_char_p * len(words))(*words)
        primer = bundle_primer(predictor, window)
        primer_array = (ctypes.c_int32 * max(1, len(primer)))(*primer)
        error = ctypes.create_string_buffer(ERROR_SIZE)
        self._handle = lib.cadenza_engine_new(
            handle, vocabulary, len(words), primer_array, len(primer),
            ctypes.byref(native_settings(settings)), float(start_time), self.lookahead,
            error, ERROR_SIZE,
        )
        if not self._handle:
            self._free_predictor()
            raise NativeError(f"native engine: {error.value.decode(errors='replace')}")
        self._events = (_Event * MAX_EVENTS)()
        self._window_buffer = (ctypes.c_int32 * lib.cadenza_engine_window_capacity(self._handle))()

    def close(self) -> None:
        if getattr(self, "_handle", None):
            self._lib.cadenza_engine_free(self._handle)
            self._handle = None
        self._free_predictor()

    def _free_predictor(self) -> None:
        if getattr(self, "_predictor_handle", None):
            self._lib.cadenza_predictor_free(self._predictor_handle)
            self._predictor_handle = None

    def __del__(self) -> None:
        # At interpreter shutdown the library may be gone already.
        with contextlib.suppress(Exception):
            self.close()

    # ------------------------------------------------------------- events

    def _collect(self, count: int) -> list[Event]:
        if count < 0:
            error = self._model.take_error() if self._model is not None else None
            if error is not None:
                raise error
            raise NativeError("the native engine failed (its model gave no distribution)"
                              if count == -2 else f"the native engine failed (code {count})")
        out = []
        for i in range(count):
            event = self._events[i]
            out.append(Event(event.time, mido.Message.from_bytes(bytes(event.data[: event.size]))))
        return out

    def on_message(self, message: mido.Message, now: float) -> list[Event]:
        data = message.bytes()
        buffer = (ctypes.c_uint8 * len(data))(*data)
        return self._collect(self._lib.cadenza_engine_on_message(
            self._handle, buffer, len(data), now, self._events, MAX_EVENTS))

    def clock_tick(self, now: float, master_time: float | None = None) -> None:
        """A master's clock tick that arrived at ``now`` (``master_time``: on the
        master's own time line; default ``now``), as ``Engine.clock_tick``."""
        code = self._lib.cadenza_engine_clock_tick(
            self._handle, now, now if master_time is None else master_time)
        if code < 0:
            self._collect(code)

    @property
    def stops(self) -> int:
        """Stops so far (``Engine.stops``): a caller compares it before and after a call."""
        return self._stats().stops

    def advance(self, now: float) -> list[Event]:
        return self._collect(self._lib.cadenza_engine_advance(self._handle, now, self._events, MAX_EVENTS))

    def next_deadline(self) -> float | None:
        deadline = ctypes.c_double()
        if self._lib.cadenza_engine_next_deadline(self._handle, ctypes.byref(deadline)):
            return deadline.value
        return None

    def prepare(self) -> None:
        """The model work the next choice needs, done now (``Engine.prepare``)."""
        code = self._lib.cadenza_engine_prepare(self._handle)
        if code < 0:
            self._collect(code)

    def stop(self, now: float) -> list[Event]:
        return self._collect(self._lib.cadenza_engine_stop(self._handle, now, self._events, MAX_EVENTS))

    def panic(self, now: float) -> list[Event]:
        return self._collect(self._lib.cadenza_engine_panic(self._handle, now, self._events, MAX_EVENTS))

    def release_performer(self, now: float, channel: int | None = None) -> None:
        self._lib.cadenza_engine_release_performer(self._handle, now, -1 if channel is None else channel)

    # -------------------------------------------------------------- setup

    def reload(self, settings: EngineSettings | LiveConfig) -> None:
        settings = EngineSettings.of(settings)
        error = ctypes.create_string_buffer(ERROR_SIZE)
        if self._lib.cadenza_engine_reload(self._handle, ctypes.byref(native_settings(settings)),
                                           error, ERROR_SIZE):
            raise NativeError(f"native engine: {error.value.decode(errors='replace')}")
        self._settings = settings

    def prime(self, tokens: Sequence[str | int], *, reset: bool = False) -> None:
        indices = [int(t) if isinstance(t, int) else self.vocab.index_of_token(t) for t in tokens]
        array = (ctypes.c_int32 * max(1, len(indices)))(*indices)
        error = ctypes.create_string_buffer(ERROR_SIZE)
        if self._lib.cadenza_engine_prime(self._handle, array, len(indices), int(reset), error, ERROR_SIZE):
            raise NativeError(f"native engine: {error.value.decode(errors='replace')}")

    def set_tempo(self, bpm: float, now: float) -> None:
        """The internal clock's tempo from ``now`` (a host's tempo)."""
        self._lib.cadenza_engine_set_tempo(self._handle, bpm, now)

    def locate(self, beat: float, now: float) -> None:
        """Beat ``beat`` falls at ``now`` (a host's locate); the phrase is dropped."""
        self._lib.cadenza_engine_locate(self._handle, beat, now)

    # --------------------------------------------------------- properties

    def _stats(self) -> _Stats:
        stats = _Stats()
        self._lib.cadenza_engine_stats(self._handle, ctypes.byref(stats))
        return stats

    @property
    def settings(self) -> EngineSettings:
        return self._settings

    @property
    def mode(self) -> str:
        return MODES[self._stats().mode]

    @property
    def enabled(self) -> bool:
        return bool(self._stats().enabled)

    @property
    def temperature(self) -> float:
        return self._stats().temperature

    @property
    def bpm(self) -> float:
        return self._stats().bpm

    @property
    def window(self) -> tuple[str, ...]:
        count = self._lib.cadenza_engine_window(self._handle, self._window_buffer, len(self._window_buffer))
        return tuple(self.vocab.vocabulary[self._window_buffer[i]] for i in range(count))

    @property
    def window_length(self) -> int:
        return len(self._window_buffer)

    def _pairs(self, function) -> frozenset[tuple[int, int]]:
        buffer = (ctypes.c_int32 * MAX_PAIRS)()
        count = function(self._handle, buffer, MAX_PAIRS)
        return frozenset((buffer[i] >> 8, buffer[i] & 0xFF) for i in range(min(count, MAX_PAIRS)))

    @property
    def sounding(self) -> frozenset[tuple[int, int]]:
        """(channel 0-15, note) turned on by the engine and not yet turned off."""
        return self._pairs(self._lib.cadenza_engine_sounding)

    @property
    def held(self) -> frozenset[tuple[int, int]]:
        """(channel 0-15, note) the performer holds down, as the engine heard it."""
        return self._pairs(self._lib.cadenza_engine_held)

    @property
    def clock(self) -> _NativeClock:
        """The engine's clock, read only: ``bpm`` and ``time_at`` (what clock-out needs)."""
        return _NativeClock(self)

    def time_at(self, beat: float) -> float | None:
        time = ctypes.c_double()
        return time.value if self._lib.cadenza_engine_time_at(self._handle, beat, ctypes.byref(time)) else None

    def beat_at(self, time: float) -> float | None:
        beat = ctypes.c_double()
        return beat.value if self._lib.cadenza_engine_beat_at(self._handle, time, ctypes.byref(beat)) else None

    def latencies(self) -> list[float]:
        """Seconds per prediction, oldest first: the engine calls that ran the
        model, timed by the library (each call's time over its predictions)."""
        buffer = (ctypes.c_double * LATENCY_SAMPLES)()
        count = self._lib.cadenza_engine_latencies(self._handle, buffer, LATENCY_SAMPLES)
        return list(buffer[:count])

    def stats(self) -> dict:
        stats = self._stats()
        from cadenza.key_mask import KEYS

        return {
            **latency_stats(stats.predictions, self.latencies()),
            "notes_out": stats.notes_out,
            "skipped_late": stats.skipped_late,
            "performer_tokens": stats.performer_tokens,
            "sounding": stats.sounding,
            "bpm": stats.bpm,
            "mode": MODES[stats.mode],
            "enabled": bool(stats.enabled),
            "key": None if stats.key < 0 else str(KEYS[stats.key]),
            "key_strength": stats.key_strength,
        }
