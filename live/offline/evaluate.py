"""Scoring the engine's answers to calls cut from pieces, beside the baselines.

Each call is played into a fresh ``Engine`` (call-response mode, internal
clock) through ``simulate.drive``, the offline duet's own loop, so the
answer is the one ``cadenza simulate`` would give; the predictor is loaded
once and reset by every new engine.  Beside Cadenza's answer stand four
others, scored against the same call and continuation (see ``ROWS``).

What the measures take (``live.measures``): pitch lists with every note of
every onset, in onset order and each chord low to high, for the call, the
continuation, the answer and the baselines alike.  The baselines draw as
many notes as the real continuation holds.  How a line moves is measured on
onsets: the piece's and the engine's as they sound, each baseline note an
onset of its own; the baselines have no rhythm, so no rhythm distance.
"""

from __future__ import annotations

import logging
import statistics
from collections.abc import Sequence
from dataclasses import dataclass, replace

import numpy as np

from cadenza.config import LiveConfig
from cadenza.live.engine_choice import make_engine
from cadenza.live.offline.calls import Call, onset_notes
from cadenza.live.offline.measures import markov_walk, measure, motion, uniform_random
from cadenza.live.offline.simulate import drive
from cadenza.predictor import Predictor

log = logging.getLogger(__name__)

#: Who answers, in the table's order: (row name, what it is).
ROWS = (
    ("continuation", "the piece itself (what it played next)"),
    ("cadenza", "Cadenza"),
    ("markov", "Markov walk over the call's pitches"),
    ("random", "uniform random pitches in the call's range"),
    ("other_call", "Cadenza's answer to another piece's call"),
)
MEASURES = ("key_fit", "pitch_class_match", "register_distance", "variety", "trigram_copy",
            "top_step", "leap_share", "rhythm_distance")
PROGRESS_EVERY = 100  # calls between progress lines


def engine_settings(settings: LiveConfig) -> LiveConfig:
    """The settings calls are answered with: the given ones in call-response
    mode on the internal clock (the file's time is the only clock offline)."""
    return replace(settings, mode="call-response", clock="internal")


def silence_limit(settings: LiveConfig) -> float:
    """Seconds a silence inside a call may last: half the engine's pause, so
    only the silence after the call's last note starts an answer."""
    return 0.5 * settings.pause_beats * 60.0 / settings.bpm


def answer_call(predictor: Predictor, settings: LiveConfig, call: Call,
                engine_kind: str = "python") -> list[tuple[int, ...]]:
    """The engine's answer to ``call``: the notes of each answer onset, low to high
    (``engine_kind``: "python" or "native", the same notes)."""
    return timed_answer(predictor, settings, call, engine_kind)[1]


def timed_answer(predictor: Predictor, settings: LiveConfig, call: Call,
                 engine_kind: str = "python") -> tuple[list[float], list[tuple[int, ...]]]:
    """The engine's answer to ``call``: each onset's time (seconds) and notes, low to high."""
    engine = make_engine(engine_kind, predictor, settings)
    onsets: dict[float, set[int]] = {}
    now = 0.0
    for at, _, events in drive(engine, call.messages):
        now = at
        for event in events:
            message = event.message
            if message.type == "note_on" and message.velocity > 0:
                onsets.setdefault(event.time, set()).add(message.note)
    engine.stop(now)  # releases only: every note-on was handed out above
    times = sorted(onsets)
    return times, [tuple(sorted(onsets[time])) for time in times]


@dataclass(frozen=True)
class Scored:
    """One call: its place, and each row's pitches and measures."""

    call: Call
    answers: dict[str, list[int]]  # row name -> pitch list
    figures: dict[str, dict]  # row name -> measures (None where undefined)


def other_call_index(calls: Sequence[Call]) -> list[int | None]:
    """For each call, the call whose answer stands in as "another piece's":
    the same ordinal in the next piece (cyclically; the ordinal wraps when
    that piece has fewer calls).  None when only one piece has calls."""
    pieces: dict[str, list[int]] = {}
    for i, call in enumerate(calls):
        pieces.setdefault(call.piece, []).append(i)
    order = list(pieces)
    if len(order) < 2:
        return [None] * len(calls)
    out: list[int | None] = []
    for call in calls:
        others = pieces[order[(order.index(call.piece) + 1) % len(order)]]
        out.append(others[call.ordinal % len(others)])
    return out


def evaluate_calls(
    predictor: Predictor, settings: LiveConfig, calls: Sequence[Call], seed: int,
    engine_kind: str = "python",
) -> list[Scored]:
    """Answer every call and score it beside the baselines (deterministic for
    a seed: call ``k`` is sampled with ``settings.seed + k``, the baselines
    draw from one generator seeded with ``seed``)."""
    settings = engine_settings(settings)
    answers, timed = [], []
    for k, call in enumerate(calls):
        times, answer = timed_answer(predictor, replace(settings, seed=settings.seed + k), call,
                                     engine_kind)
        answers.append([note for onset in answer for note in onset])
        timed.append((times, answer))
        if (k + 1) % PROGRESS_EVERY == 0:
            log.info("answered %d of %d calls", k + 1, len(calls))
    rng = np.random.default_rng(seed)
    others = other_call_index(calls)
    scored = []
    for call, answer, shape, other in zip(calls, answers, timed, others, strict=True):
        heard = onset_notes(call.onsets)
        continuation = onset_notes(call.continuation)
        rows = {
            "continuation": continuation,
            "cadenza": answer,
            "markov": markov_walk(heard, len(continuation), rng),
            "random": uniform_random(heard, len(continuation), rng),
        }
        # (times or None, onsets) of each row: a baseline's notes are onsets without times
        shapes = {"continuation": ([o.time for o in call.continuation],
                                   [o.notes for o in call.continuation]),
                  "cadenza": shape}
        shapes.update({name: (None, [(n,) for n in rows[name]]) for name in ("markov", "random")})
        if other is not None:
            rows["other_call"] = answers[other]
            shapes["other_call"] = timed[other]
        reference = shapes["continuation"][0]
        figures = {name: {**measure(notes, heard, continuation),
                          **motion(shapes[name][1], shapes[name][0], reference)}
                   for name, notes in rows.items()}
        scored.append(Scored(call, rows, figures))
    return scored


def _mean(values: Sequence[float | None]) -> float | None:
    defined = [v for v in values if v is not None]
    return round(statistics.fmean(defined), 6) if defined else None


def summarise(scored: Sequence[Scored]) -> list[dict]:
    """One row per answerer: the mean of each measure over the calls where it
    is defined, how many calls it answered, and its mean notes and onsets per answer."""
    rows = []
    for name, label in ROWS:
        answered = [s for s in scored if s.answers.get(name)]
        row: dict = {
            "row": name,
            "label": label,
            "calls": len(answered),
            "notes": _mean([len(s.answers[name]) for s in answered]),
            "onsets": _mean([s.figures[name]["onsets"] for s in answered]),
        }
        for key in MEASURES:
            row[key] = _mean([s.figures[name][key] for s in answered])
        rows.append(row)
    return rows


def per_call(scored: Sequence[Scored]) -> list[dict]:
    """Every call's place, pitches and figures (for ``--per-call``)."""
    out = []
    for s in scored:
        out.append({
            "piece": s.call.piece,
            "ordinal": s.call.ordinal,
            "start_onset": s.call.start,
            "call": onset_notes(s.call.onsets),
            "rows": {
                name: {"notes": s.answers[name], **{
                    k: (None if v is None else round(v, 6)) for k, v in s.figures[name].items()
                }}
                for name in s.answers
            },
        })
    return out
