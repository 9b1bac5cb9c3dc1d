"""The native engine's shared library, loaded by ctypes: where it is, its C
API's structs and signatures (native/include/cadenza/cadenza_engine.h), and
LiveConfig turned into its settings struct.  ``make native`` builds it."""

from __future__ import annotations

import ctypes
import os
from pathlib import Path

from cadenza.config import (
    GRIDS,
    KEY_AUTO,
    KEY_CALL,
    KEY_OFF,
    MODES,
    RHYTHMS,
    EngineSettings,
    LiveConfig,
)
from cadenza.errors import CadenzaError
from cadenza.key import parse_key

LIBRARY_NAME = "libcadenza_engine.so"
LIBRARY_ENV = "CADENZA_NATIVE_LIB"
MAX_EVENTS = 4096  # CADENZA_MAX_EVENTS
API_VERSION = 4  # CADENZA_ENGINE_API_VERSION
LATENCY_SAMPLES = 4096  # CADENZA_LATENCY_SAMPLES
MAX_PAIRS = 16 * 128  # (channel, note) pairs
ERROR_SIZE = 512
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
        ("velocity", ctypes.c_int32), ("cc", ctypes.c_int32 * 6), ("continuity", ctypes.c_double),
        ("texture", ctypes.c_double), ("key_spread", ctypes.c_double),
    ]


class _Stats(ctypes.Structure):
    _fields_ = [
        ("notes_out", ctypes.c_int64), ("skipped_late", ctypes.c_int64),
        ("performer_tokens", ctypes.c_int64), ("predictions", ctypes.c_int64),
        ("sounding", ctypes.c_int32), ("mode", ctypes.c_int32), ("enabled", ctypes.c_int32),
        ("key", ctypes.c_int32), ("bpm", ctypes.c_double), ("temperature", ctypes.c_double),
        ("stops", ctypes.c_int64), ("key_strength", ctypes.c_double),
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
    version = lib.cadenza_engine_api_version()
    if version != API_VERSION:
        raise NativeUnavailable(f"{path}: the native engine's API is version {version}, not "
                                f"{API_VERSION}; rebuild it with `make native`")
    _LIBRARY = lib
    return lib


def _declare(lib: ctypes.CDLL) -> None:
    p, i32, dbl, vp = ctypes.POINTER, ctypes.c_int32, ctypes.c_double, ctypes.c_void_p
    events = p(_Event)
    signatures = {
        "cadenza_settings_default": (None, [p(_Settings)]),
        "cadenza_fake_predictor_new": (vp, [i32, i32]),
        "cadenza_callback_predictor_new": (vp, [p(_Callbacks)]),
        "cadenza_native_predictor_new": (vp, [ctypes.c_char_p, ctypes.c_char_p, i32]),
        "cadenza_native_int8_predictor_new": (vp, [ctypes.c_char_p, ctypes.c_char_p, i32]),
        "cadenza_predictor_free": (None, [vp]),
        "cadenza_engine_new": (vp, [vp, p(ctypes.c_char_p), i32, p(i32), i32, p(_Settings), dbl, dbl,
                                    ctypes.c_char_p, i32]),
        "cadenza_engine_free": (None, [vp]),
        "cadenza_engine_api_version": (i32, []),
        "cadenza_engine_on_message": (i32, [vp, p(ctypes.c_uint8), i32, dbl, events, i32]),
        "cadenza_engine_clock_tick": (i32, [vp, dbl, dbl]),
        "cadenza_engine_advance": (i32, [vp, dbl, events, i32]),
        "cadenza_engine_stop": (i32, [vp, dbl, events, i32]),
        "cadenza_engine_panic": (i32, [vp, dbl, events, i32]),
        "cadenza_engine_next_deadline": (i32, [vp, p(dbl)]),
        "cadenza_engine_prepare": (i32, [vp]),
        "cadenza_engine_release_performer": (None, [vp, dbl, i32]),
        "cadenza_engine_reload": (i32, [vp, p(_Settings), ctypes.c_char_p, i32]),
        "cadenza_engine_prime": (i32, [vp, p(i32), i32, i32, ctypes.c_char_p, i32]),
        "cadenza_engine_set_tempo": (None, [vp, dbl, dbl]),
        "cadenza_engine_locate": (None, [vp, dbl, dbl]),
        "cadenza_engine_beat_at": (i32, [vp, dbl, p(dbl)]),
        "cadenza_engine_window": (i32, [vp, p(i32), i32]),
        "cadenza_engine_latencies": (i32, [vp, p(dbl), i32]),
        "cadenza_engine_time_at": (i32, [vp, dbl, p(dbl)]),
        "cadenza_engine_sounding": (i32, [vp, p(i32), i32]),
        "cadenza_engine_held": (i32, [vp, p(i32), i32]),
        "cadenza_engine_window_capacity": (i32, [vp]),
        "cadenza_engine_stats": (None, [vp, p(_Stats)]),
        "cadenza_debug_random": (None, [ctypes.c_uint64, p(dbl), i32]),
        "cadenza_debug_choice": (None, [ctypes.c_uint64, p(dbl), i32, i32, p(ctypes.c_int64)]),
        "cadenza_debug_pairwise_sum": (dbl, [p(dbl), i32]),
        "cadenza_debug_exp": (None, [p(dbl), p(dbl), i32]),
        "cadenza_debug_log": (None, [p(dbl), p(dbl), i32]),
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


def native_settings(settings: EngineSettings | LiveConfig) -> _Settings:
    """The engine's musical settings (``EngineSettings.of`` a LiveConfig) as the C struct."""
    settings = EngineSettings.of(settings)
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
    s.continuity = settings.continuity
    s.texture = settings.texture
    s.key_spread = settings.key_spread
    for i, name in enumerate(CC_ORDER):
        s.cc[i] = settings.cc.get(name, -1)
    return s
