"""Shared by the native engine's tests: the library (or a skip saying how to
build it), and a driver that runs any engine over a script of timed inputs."""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import mido
import pytest

from cadenza.config import LiveConfig
from cadenza.tokens import midi_to_name


def require_native():
    """The loaded library, or a skip that says to run ``make native``."""
    from cadenza.live.native_engine import NativeUnavailable, load_library

    try:
        return load_library()
    except NativeUnavailable as err:
        pytest.skip(str(err))


#: A small vocabulary with notes over four octaves and some chords (the fake
#: predictor walks it cyclically, so answers cover notes and chords alike).
VOCAB = tuple([midi_to_name(m) for m in range(40, 90)] + [
    "0.4.7", "2.5.9", "7.11.2", "0.3.7", "4.7.11", "5.9.0", "9.0.4", "11.2.5.7", "0.4", "0",
    "D-4", "B#3",
])


@dataclass
class Step:
    """One scripted input at ``time``: a message, or an engine call by name."""

    time: float
    message: mido.Message | None = None
    call: str = ""  # "stop", "panic", "reload", "release", "prime", "set_tempo", "tick"
    args: dict[str, Any] = field(default_factory=dict)
    #: For call "tick": the tick's time on the master's time line (None: arrival).
    master_time: float | None = None


def run_script(engine, steps: Sequence[Step], *, end: float, prepare: bool = False) -> list[tuple]:
    """Every event the engine hands out (time, bytes), its deadlines and state, in order.

    Scripted inputs go in at their times; ``advance`` is called at every
    deadline the engine asks for in between (as ``simulate`` does), up to ``end``.
    ``prepare``: ``engine.prepare()`` before the first call and after every
    call (twice after every other one), which must change nothing in the trace.
    """
    trace: list[tuple] = []
    if prepare:
        engine.prepare()

    def record(kind: str, events) -> None:
        if prepare:
            for _ in range(1 + len(trace) % 2):
                engine.prepare()
        trace.append((kind, tuple((e.time, tuple(e.message.bytes())) for e in events),
                      engine.next_deadline(), engine.stops))

    i = 0
    last_deadline, repeats = None, 0
    while True:
        deadline = engine.next_deadline()
        if deadline is not None and deadline > end:
            deadline = None
        if i < len(steps) and (deadline is None or steps[i].time <= deadline):
            step = steps[i]
            i += 1
            if step.message is not None:
                record("in", engine.on_message(step.message, step.time))
            elif step.call == "tick":
                engine.clock_tick(step.time, step.master_time)
                record("tick", [])
            elif step.call in ("stop", "panic"):
                record(step.call, getattr(engine, step.call)(step.time))
            elif step.call == "reload":
                engine.reload(step.args["settings"])
                record("reload", [])
            elif step.call == "release":
                engine.release_performer(step.time, channel=step.args.get("channel"))
                record("release", [])
            elif step.call in ("set_tempo", "locate"):
                host_call(engine, step.call, step.args["value"], step.time)
                record(step.call, [])
            elif step.call == "prime":
                engine.prime(step.args["tokens"], reset=step.args.get("reset", False))
                record("prime", [])
            continue
        if deadline is None or not math.isfinite(deadline):
            break
        # The Python engine can ask for the same deadline for ever when a note
        # falls within the lookahead of time 0 ((t - 0.02) + 0.02 < t there);
        # both engines must do that alike, so it is recorded, not raised.
        repeats = repeats + 1 if deadline == last_deadline else 0
        last_deadline = deadline
        if repeats > 100:
            trace.append(("stuck", deadline))
            break
        record("advance", engine.advance(deadline))
    record("end", engine.stop(end))
    trace.append(("window", engine.window, engine.stats()["predictions"]))
    return trace


def host_call(engine, name: str, value: float, now: float) -> None:
    """A plugin host's tempo or locate: the native engine's own calls; on the
    Python engine, what they are defined as (the internal clock's set_bpm; the
    clock re-anchored at ``value`` beats and the phrase dropped)."""
    from cadenza.live.engine.engine import Engine

    if not isinstance(engine, Engine):
        getattr(engine, name)(value, now)
    elif name == "set_tempo":
        engine.clock.set_bpm(value, now)
    else:
        engine._tick_now(now)
        engine.clock._anchor_beat, engine.clock._anchor_time = value, now
        engine._reset_phrase()


def both(settings: LiveConfig, steps: Sequence[Step], *, end: float, vocab: Sequence[str] = VOCAB,
         start_time: float = 0.0, model_attributes: dict | None = None) -> tuple[list, list]:
    """The traces of the Python engine and the native engine on the same script."""
    from cadenza.live.engine.engine import Engine
    from cadenza.live.native_engine import NativeEngine
    from testing.fake_predictor import FakePredictor

    require_native()

    def model() -> FakePredictor:
        # ``model_attributes``: what a runner may carry (window, fill, primers)
        fake = FakePredictor(vocab)
        for name, value in (model_attributes or {}).items():
            setattr(fake, name, value)
        return fake

    python = run_script(Engine(model(), settings, start_time=start_time), steps, end=end)
    native = run_script(NativeEngine(model(), settings, start_time=start_time), steps, end=end)
    return python, native


def first_difference(a: Sequence, b: Sequence) -> str:
    for k, (x, y) in enumerate(zip(a, b, strict=False)):
        if x != y:
            return f"step {k}: python {x!r} native {y!r}"
    return f"lengths {len(a)} and {len(b)}"


def note(time: float, pitch: int, length: float, velocity: int = 90, channel: int = 0) -> list[Step]:
    return [Step(time, mido.Message("note_on", note=pitch, velocity=velocity, channel=channel)),
            Step(time + length, mido.Message("note_off", note=pitch, channel=channel))]


def phrase(start: float, pitches: Sequence[int], spacing: float = 0.25, length: float = 0.2,
           velocity: int = 90) -> list[Step]:
    steps: list[Step] = []
    for k, pitch in enumerate(pitches):
        steps += note(start + k * spacing, pitch, length, velocity + (k * 7) % 30)
    return steps


def ordered(steps: list[Step]) -> list[Step]:
    """By time; at one time in the order given (a stable sort)."""
    return sorted(steps, key=lambda s: s.time)
