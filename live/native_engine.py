"""The native engine (``native/``, C++17) behind the Python engine's interface.

``NativeEngine`` has ``Engine``'s public methods and returns the same
``Event(time, mido.Message)`` lists: the identity tests drive both with the
same input and compare what comes out, event for event.  The shared library
is built by ``make native`` into ``build/native/``; ``CADENZA_NATIVE_LIB``
names another copy.

The model: ``FakePredictor`` with its default rule becomes the C++ fake (the
same rule, bit for bit); a predictor that offers ``native_predictor()`` (the
native model step) is handed over as it is; any other predictor is called
back from C++ through ctypes, so ``--engine native`` can run on the
onnxruntime runners too (slowly: for tests and offline runs).
"""

from __future__ import annotations

import contextlib
import ctypes
import logging
import os
from collections.abc import Sequence
from pathlib import Path

import mido
import numpy as np

from cadenza.config import GRIDS, KEY_AUTO, KEY_CALL, KEY_OFF, MODES, RHYTHMS, LiveConfig
from cadenza.errors import CadenzaError
from cadenza.key import parse_key
from cadenza.live.context import DEFAULT_WINDOW
from cadenza.live.events import Event
from cadenza.live.vocab_map import VocabMap
from cadenza.predictor import FakePredictor, Predictor

log = logging.getLogger(__name__)

LIBRARY_NAME = "libcadenza_engine.so"
LIBRARY_ENV = "CADENZA_NATIVE_LIB"
MAX_EVENTS = 4096  # CADENZA_MAX_EVENTS
ERROR_SIZE = 512
LOOKAHEAD = 0.02  # the Python engine's (cadenza.live.engine.LOOKAHEAD)
CC_ORDER = ("temperature", "mode", "enabled", "panic", "tempo", "key_strength")
KEY_SETTING_CODES = {KEY_OFF: 0, KEY_CALL: 1, KEY_AUTO: 2}


class NativeUnavailable(CadenzaError):
    """The native library is not built (or not loadable)."""


class NativeError(CadenzaError):
    """The native engine refused something (the message says what)."""


class _Event(ctypes.Structure):
    _fields_ = [("time", ctypes.c_double), ("data", ctypes.c_uint8 * 3), ("size", ctypes.c_uint8)]


class _Settings(ctypes.Structure):
    _fields_ = [
        ("mode", ctypes.c_int32), ("rhythm", ctypes.c_int32), ("bpm", ctypes.c_double),
        ("grid", ctypes.c_int32), ("clock", ctypes.c_int32), ("clock_window", ctypes.c_int32),
        ("chord_window_ms", ctypes.c_double), ("pause_beats", ctypes.c_double),
        ("answer_bars", ctypes.c_int32), ("max_answer_notes", ctypes.c_int32),
        ("temperature", ctypes.c_double), ("top_k", ctypes.c_int32), ("top_p", ctypes.c_double),
        ("loop_guard", ctypes.c_int32), ("seed", ctypes.c_uint64), ("channel", ctypes.c_int32),
        ("gate", ctypes.c_double), ("octave", ctypes.c_int32), ("register_follow", ctypes.c_int32),
        ("key", ctypes.c_int32), ("key_tonic", ctypes.c_int32), ("key_minor", ctypes.c_int32),
        ("key_strength", ctypes.c_double), ("key_balance", ctypes.c_double),
        ("velocity", ctypes.c_int32), ("cc", ctypes.c_int32 * 6),
    ]


class _Stats(ctypes.Structure):
    _fields_ = [
        ("notes_out", ctypes.c_int64), ("skipped_late", ctypes.c_int64),
        ("performer_tokens", ctypes.c_int64), ("predictions", ctypes.c_int64),
        ("sounding", ctypes.c_int32), ("mode", ctypes.c_int32), ("enabled", ctypes.c_int32),
        ("key", ctypes.c_int32), ("bpm", ctypes.c_double), ("temperature", ctypes.c_double),
    ]


_RESET = ctypes.CFUNCTYPE(None, ctypes.c_void_p, ctypes.POINTER(ctypes.c_int32), ctypes.c_int32)
_FEED = ctypes.CFUNCTYPE(None, ctypes.c_void_p, ctypes.c_int32)
_DISTRIBUTION = ctypes.CFUNCTYPE(ctypes.c_void_p, ctypes.c_void_p)


class _Callbacks(ctypes.Structure):
    _fields_ = [
        ("vocab_size", ctypes.c_int32), ("window", ctypes.c_int32), ("reset", _RESET),
        ("feed", _FEED), ("distribution", _DISTRIBUTION), ("user", ctypes.c_void_p),
    ]


def library_path() -> Path:
    """Where the library is looked for: ``CADENZA_NATIVE_LIB``, else ``build/native/``."""
    named = os.environ.get(LIBRARY_ENV)
    if named:
        return Path(named)
    return Path(__file__).resolve().parents[1] / "build" / "native" / LIBRARY_NAME


_LIBRARY: ctypes.CDLL | None = None


def load_library() -> ctypes.CDLL:
    """The engine library, loaded once; ``NativeUnavailable`` says how to build it."""
    global _LIBRARY
    if _LIBRARY is not None:
        return _LIBRARY
    path = library_path()
    if not path.exists():
        raise NativeUnavailable(f"{path}: the native engine is not built; run `make native`")
    try:
        lib = ctypes.CDLL(str(path))
    except OSError as err:
        raise NativeUnavailable(f"{path}: cannot load the native engine ({err}); run `make native`") from err
    _declare(lib)
    _LIBRARY = lib
    return lib


def _declare(lib: ctypes.CDLL) -> None:
    p, i32, dbl, vp = ctypes.POINTER, ctypes.c_int32, ctypes.c_double, ctypes.c_void_p
    events = p(_Event)
    signatures = {
        "cadenza_settings_default": (None, [p(_Settings)]),
        "cadenza_fake_predictor_new": (vp, [i32, i32]),
        "cadenza_callback_predictor_new": (vp, [p(_Callbacks)]),
        "cadenza_predictor_free": (None, [vp]),
        "cadenza_engine_new": (vp, [vp, p(ctypes.c_char_p), i32, p(i32), i32, p(_Settings), dbl, dbl,
                                    ctypes.c_char_p, i32]),
        "cadenza_engine_free": (None, [vp]),
        "cadenza_engine_on_message": (i32, [vp, p(ctypes.c_uint8), i32, dbl, dbl, events, i32]),
        "cadenza_engine_advance": (i32, [vp, dbl, events, i32]),
        "cadenza_engine_stop": (i32, [vp, dbl, events, i32]),
        "cadenza_engine_panic": (i32, [vp, dbl, events, i32]),
        "cadenza_engine_next_deadline": (i32, [vp, p(dbl)]),
        "cadenza_engine_release_performer": (None, [vp, dbl, i32]),
        "cadenza_engine_reload": (i32, [vp, p(_Settings), ctypes.c_char_p, i32]),
        "cadenza_engine_prime": (i32, [vp, p(i32), i32, i32, ctypes.c_char_p, i32]),
        "cadenza_engine_set_tempo": (None, [vp, dbl, dbl]),
        "cadenza_engine_locate": (None, [vp, dbl, dbl]),
        "cadenza_engine_beat_at": (i32, [vp, dbl, p(dbl)]),
        "cadenza_engine_window": (i32, [vp, p(i32), i32]),
        "cadenza_engine_window_capacity": (i32, [vp]),
        "cadenza_engine_stats": (None, [vp, p(_Stats)]),
        "cadenza_debug_random": (None, [ctypes.c_uint64, p(dbl), i32]),
        "cadenza_debug_choice": (None, [ctypes.c_uint64, p(dbl), i32, i32, p(ctypes.c_int64)]),
        "cadenza_debug_pairwise_sum": (dbl, [p(dbl), i32]),
        "cadenza_debug_profiles": (None, [p(dbl)]),
        "cadenza_debug_estimate_key": (i32, [p(dbl)]),
        "cadenza_debug_filter": (i32, [p(dbl), i32, dbl, i32, dbl, p(dbl)]),
        "cadenza_debug_chord_token": (i32, [i32, ctypes.c_char_p, i32]),
        "cadenza_debug_token": (i32, [ctypes.c_char_p, p(i32)]),
    }
    for name, (restype, argtypes) in signatures.items():
        function = getattr(lib, name)
        function.restype = restype
        function.argtypes = argtypes


def native_settings(settings: LiveConfig) -> _Settings:
    """LiveConfig's musical settings as the C struct."""
    if not 0 <= settings.seed < 2**64:
        raise NativeError(f"seed {settings.seed}: the native engine takes seeds below 2**64")
    s = _Settings()
    s.mode = MODES.index(settings.mode)
    s.rhythm = RHYTHMS.index(settings.rhythm)
    s.bpm = settings.bpm
    s.grid = GRIDS.index(settings.grid)
    s.clock = 1 if settings.clock == "midi" else 0
    s.clock_window = settings.clock_window
    s.chord_window_ms = settings.chord_window_ms
    s.pause_beats = settings.pause_beats
    s.answer_bars = settings.answer_bars
    s.max_answer_notes = settings.max_answer_notes
    s.temperature = settings.temperature
    s.top_k = settings.top_k
    s.top_p = settings.top_p
    s.loop_guard = settings.loop_guard
    s.seed = settings.seed
    s.channel = settings.channel
    s.gate = settings.gate
    s.octave = settings.octave
    s.register_follow = 1 if settings.register == "follow" else 0
    if settings.key in KEY_SETTING_CODES:
        s.key = KEY_SETTING_CODES[settings.key]
    else:
        key = parse_key(settings.key)
        s.key, s.key_tonic, s.key_minor = 3, key.tonic, int(key.mode == "minor")
    s.key_strength = settings.key_strength
    s.key_balance = settings.key_balance
    s.velocity = settings.velocity
    for i, name in enumerate(CC_ORDER):
        s.cc[i] = settings.cc.get(name, -1)
    return s


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


def _uses_default_rule(predictor: Predictor) -> bool:
    return isinstance(predictor, FakePredictor) and predictor._rule == predictor._next_in_cycle


class NativeEngine:
    """``cadenza.live.engine.Engine`` on the native library (see the module docstring)."""

    def __init__(
        self,
        predictor: Predictor,
        settings: LiveConfig,
        *,
        start_time: float = 0.0,
        lookahead: float = LOOKAHEAD,
    ) -> None:
        if lookahead < 0:
            raise ValueError(f"lookahead must be 0 or more seconds, got {lookahead}")
        self._lib = lib = load_library()
        self.predictor = predictor
        self.lookahead = float(lookahead)
        self.vocab = VocabMap(predictor.vocabulary)
        window = int(getattr(predictor, "window", None) or DEFAULT_WINDOW)
        self._model: _CallbackModel | None = None
        self._owned_predictor = True
        native = getattr(predictor, "native_predictor", None)
        if native is not None:
            handle = native()  # the native model step: a cadenza_predictor* it owns
            self._owned_predictor = False
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
        if self._owned_predictor and getattr(self, "_predictor_handle", None):
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

    def on_message(self, message: mido.Message, now: float, lag: float = 0.0) -> list[Event]:
        data = message.bytes()
        buffer = (ctypes.c_uint8 * len(data))(*data)
        return self._collect(self._lib.cadenza_engine_on_message(
            self._handle, buffer, len(data), now, lag, self._events, MAX_EVENTS))

    def advance(self, now: float) -> list[Event]:
        return self._collect(self._lib.cadenza_engine_advance(self._handle, now, self._events, MAX_EVENTS))

    def next_deadline(self) -> float | None:
        deadline = ctypes.c_double()
        if self._lib.cadenza_engine_next_deadline(self._handle, ctypes.byref(deadline)):
            return deadline.value
        return None

    def stop(self, now: float) -> list[Event]:
        return self._collect(self._lib.cadenza_engine_stop(self._handle, now, self._events, MAX_EVENTS))

    def panic(self, now: float) -> list[Event]:
        return self._collect(self._lib.cadenza_engine_panic(self._handle, now, self._events, MAX_EVENTS))

    def release_performer(self, now: float, channel: int | None = None) -> None:
        self._lib.cadenza_engine_release_performer(self._handle, now, -1 if channel is None else channel)

    # -------------------------------------------------------------- setup

    def reload(self, settings: LiveConfig) -> None:
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
    def settings(self) -> LiveConfig:
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

    def beat_at(self, time: float) -> float | None:
        beat = ctypes.c_double()
        return beat.value if self._lib.cadenza_engine_beat_at(self._handle, time, ctypes.byref(beat)) else None

    def stats(self) -> dict:
        stats = self._stats()
        from cadenza.key_mask import KEYS

        return {
            "predictions": stats.predictions,
            "notes_out": stats.notes_out,
            "skipped_late": stats.skipped_late,
            "performer_tokens": stats.performer_tokens,
            "sounding": stats.sounding,
            "bpm": stats.bpm,
            "mode": MODES[stats.mode],
            "enabled": bool(stats.enabled),
            "key": None if stats.key < 0 else str(KEYS[stats.key]),
        }
