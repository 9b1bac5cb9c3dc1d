"""Which engine runs the music: the Python one, or the native one (C++,
``make native``), which plays the same notes (docs/native.md, The engine)."""

from __future__ import annotations

from cadenza.config import LiveConfig
from cadenza.live.engine.engine import LOOKAHEAD, Engine
from cadenza.predictor import Predictor

ENGINES = ("python", "native")


def make_engine(kind: str, predictor: Predictor, settings: LiveConfig, *, start_time: float = 0.0,
                lookahead: float = LOOKAHEAD):
    """An ``Engine``, or a ``NativeEngine`` with the same interface."""
    if kind == "native":
        from cadenza.live.native_engine import NativeEngine

        return NativeEngine(predictor, settings, start_time=start_time, lookahead=lookahead)
    if kind != "python":
        raise ValueError(f"unknown engine {kind!r} (known: {', '.join(ENGINES)})")
    return Engine(predictor, settings, start_time=start_time, lookahead=lookahead)
