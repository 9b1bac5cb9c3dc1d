"""``cadenza simulate``: the offline duet.

A performer's MIDI file drives the same engine the daemon runs, on a virtual
clock: each performer message goes in at its time in the file, and
``advance`` is called exactly at each deadline the engine asks for, so the
run takes as long as the computation and not as long as the music.  The
duet (performer track, Cadenza track, tempo) goes to a MIDI file; the same
seed gives the same bytes.
"""

from __future__ import annotations

import argparse
import logging
import math
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from importlib import resources
from pathlib import Path

import mido

from cadenza.config import Config, EngineSettings, LiveConfig
from cadenza.files import read_midi
from cadenza.live.daemon.recorder import Recorder
from cadenza.live.engine.clock import BEATS_PER_BAR
from cadenza.live.engine.engine import Engine, Event
from cadenza.live.engine.events import is_note_on
from cadenza.live.engine_choice import make_engine
from cadenza.predictor import Predictor

log = logging.getLogger(__name__)

DEFAULT_CONTINUE_BARS = 8.0
MAX_MUSIC_SECONDS = 6 * 3600.0  # a runaway guard, far beyond any real input
EXAMPLE = "phrase.mid"


@dataclass(frozen=True)
class Performance:
    """A performer's messages with absolute times (seconds), and the file's tempo."""

    messages: tuple[tuple[float, mido.Message], ...]
    bpm: float | None  # the file's first tempo, if it sets one
    source: str

    @property
    def end(self) -> float:
        return self.messages[-1][0] if self.messages else 0.0


def example_phrase() -> Path:
    """The example performer phrase shipped inside the package."""
    return Path(str(resources.files("cadenza.live") / "examples" / EXAMPLE))


def read_performance(path: str | Path) -> Performance:
    """Every channel message of a MIDI file at its time in seconds.

    A track named "Cadenza" (a duet written by simulate or live --record)
    is left out, so a duet can be played against again.
    """
    path = Path(path)
    midi = read_midi(path)
    tracks = [
        track for track in midi.tracks
        if not any(m.type == "track_name" and m.name.strip() == "Cadenza" for m in track)
    ]
    kept = mido.MidiFile(type=midi.type if midi.type != 2 else 1, ticks_per_beat=midi.ticks_per_beat)
    kept.tracks.extend(tracks)
    now = 0.0
    messages = []
    bpm = None
    for message in kept:  # iterating a MidiFile merges the tracks, times in seconds
        now += message.time
        if message.is_meta:
            if message.type == "set_tempo" and bpm is None:
                bpm = mido.tempo2bpm(message.tempo)
            continue
        messages.append((now, message.copy(time=0)))
    return Performance(tuple(messages), bpm, str(path))


class _Duet:
    """Records what goes in and out of the engine, and the tempo the engine keeps."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self.recorder = Recorder(engine.bpm)
        self.performer_notes = 0
        self.cadenza_notes = 0

    def performer(self, at: float, message: mido.Message) -> None:
        self.recorder.add(at, message, "performer")
        if is_note_on(message):
            self.performer_notes += 1

    def cadenza(self, now: float, events: Sequence[Event]) -> None:
        self.recorder.add_tempo(now, self.engine.bpm)
        for event in events:
            self.recorder.add(event.time, event.message, "cadenza")
            if is_note_on(event.message):
                self.cadenza_notes += 1


def simulate(
    predictor: Predictor,
    settings: LiveConfig,
    performance: Performance,
    *,
    bars: float | None = None,
    engine_kind: str = "python",
) -> tuple[Recorder, dict]:
    """Run the duet; returns the recording and a summary.

    ``engine_kind``: "python" (``Engine``) or "native" (the C++ engine,
    ``NativeEngine``: the same bytes out, by the identity contract).

    ``continue`` mode plays the performance as its seed phrase, then plays
    alone from the next bar line for ``bars`` bars (default 8).  Other modes
    run until the engine has nothing left to do after the last message.
    """
    if settings.clock != "internal":
        # Time in the file is the only clock here; a master's ticks in the
        # file would be followed too, but the grid must start at zero.
        settings = _with(settings, clock="internal")
    start = 0.0
    end: float | None = None
    if settings.mode == "continue":
        seconds_per_bar = BEATS_PER_BAR * 60.0 / settings.bpm
        start = math.ceil(performance.end / seconds_per_bar - 1e-9) * seconds_per_bar
        end = start + (DEFAULT_CONTINUE_BARS if bars is None else bars) * seconds_per_bar
    engine = make_engine(engine_kind, predictor, EngineSettings.of(settings), start_time=start)
    duet = _Duet(engine)
    finish = max(start, performance.end)
    for now, message, events in drive(engine, performance.messages, end=end):
        if message is not None:
            duet.performer(now, message)
        duet.cadenza(now, events)
        finish = max(finish, now)
    if end is not None:
        finish = end
    duet.cadenza(finish, engine.stop(finish))
    stats = engine.stats()
    summary = {
        "performer_notes": duet.performer_notes,
        "cadenza_notes": duet.cadenza_notes,
        "seconds": finish,
        "predictions": stats["predictions"],
        "window": engine.window,
    }
    return duet.recorder, summary


def drive(
    engine: Engine,
    messages: Sequence[tuple[float, mido.Message]],
    *,
    end: float | None = None,
) -> Iterator[tuple[float, mido.Message | None, list[Event]]]:
    """Feed timed messages to ``engine`` and call ``advance`` at each deadline.

    Yields ``(time, message or None, events)`` for every engine call, in
    time order: a message due at the same time as a deadline goes in first.
    Ends when the messages are used up and the engine has nothing pending,
    or at the first deadline after ``end``.
    """
    i = 0
    last_deadline = -math.inf
    repeats = 0
    while True:
        deadline = engine.next_deadline()
        if end is not None and deadline is not None and deadline > end:
            deadline = None
        if i < len(messages) and (deadline is None or messages[i][0] <= deadline):
            at, message = messages[i]
            i += 1
            yield at, message, engine.on_message(message, at)
            continue
        if deadline is None:
            return
        if deadline > MAX_MUSIC_SECONDS:
            log.warning("stopping the simulation after %.0f s of music", MAX_MUSIC_SECONDS)
            return
        repeats = repeats + 1 if deadline <= last_deadline else 0
        if repeats > 1000:
            raise RuntimeError(f"engine made no progress at t={deadline:.6f} s")  # a bug, not input
        last_deadline = deadline
        yield deadline, None, engine.advance(deadline)


def _with(settings: LiveConfig, **changes) -> LiveConfig:
    from dataclasses import replace

    return replace(settings, **changes)


def run_simulate(args: argparse.Namespace, config: Config) -> int:
    """The ``cadenza simulate`` command."""
    settings = config.live
    source = Path(args.input) if args.input else example_phrase()
    performance = read_performance(source)
    if getattr(args, "bpm", None) is None and performance.bpm is not None:
        # Without --bpm the grid follows the performer's file.
        settings = _with(settings, bpm=round(performance.bpm, 3))
        problems = settings.check()
        if problems:
            settings = _with(settings, bpm=config.live.bpm)
    from cadenza.live.model import load_live_predictor  # onnxruntime loads only for a run

    predictor = load_live_predictor(settings)
    began = time.perf_counter()
    recorder, summary = simulate(predictor, settings, performance, bars=getattr(args, "bars", None),
                                 engine_kind=getattr(args, "engine", None) or "python")
    elapsed = time.perf_counter() - began
    out = recorder.save(args.out)
    log.info(
        "%s: %d performer notes, %d Cadenza notes, %.1f s of music in %.2f s (%s, %s BPM, grid %s)",
        out, summary["performer_notes"], summary["cadenza_notes"], summary["seconds"],
        elapsed, settings.mode, f"{settings.bpm:g}", settings.grid,
    )
    if getattr(args, "plot", None):
        from cadenza.live.offline.pianoroll import plot_file

        plot_file(out, args.plot)
    return 0
