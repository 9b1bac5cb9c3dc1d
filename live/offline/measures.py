"""How an answer relates to its call and to what the music really did next.

The measures ``cadenza evaluate`` reports (issue: the musical core), each a
pure function of MIDI note lists (onsets in order; a chord's notes count as
notes), and the baselines every model is judged beside:

- **key fit**: the share of answer notes in the call's key (Krumhansl-Kessler
  estimate; a minor key holds its natural and harmonic notes);
- **pitch-class match**: the cosine between the 12-bin pitch-class counts of
  the answer and of the real continuation;
- **register distance**: |median pitch of the answer - median pitch of the call|;
- **variety**: distinct pitches per note of the answer;
- **copying**: the share of the answer's pitch trigrams that occur in the call.

How the answer moves, from its onsets (each a chord's notes, or one note):

- **top-line step**: the mean |interval| in semitones between the highest
  notes of consecutive onsets (the line a listener follows);
- **leap share**: the share of those steps wider than a fifth (> 7 semitones);
- **rhythm distance**: how far the answer's inter-onset intervals lie from
  the continuation's, as the earth mover's distance between the two sets of
  log2 intervals: in doublings, so 1.0 means twice as fast or slow throughout.
"""

from __future__ import annotations

import statistics
from collections.abc import Sequence

import numpy as np

from cadenza.key import Key, estimate_key, pitch_class_counts

#: A step wider than this many semitones (a fifth) is a leap.
LEAP_SEMITONES = 7
#: Inter-onset intervals are floored here (seconds) before their logarithm.
MIN_INTERVAL_S = 0.001


def key_fit(answer: Sequence[int], key: Key | None) -> float | None:
    if not answer or key is None:
        return None
    inside = key.pitch_classes
    return sum(1 for note in answer if note % 12 in inside) / len(answer)


def call_key(call: Sequence[int]) -> Key | None:
    return estimate_key(pitch_class_counts(call)) if call else None


def pitch_class_match(answer: Sequence[int], continuation: Sequence[int]) -> float | None:
    if not answer or not continuation:
        return None
    a, b = pitch_class_counts(answer), pitch_class_counts(continuation)
    return float(a @ b / (np.linalg.norm(a) * np.linalg.norm(b)))


def register_distance(answer: Sequence[int], call: Sequence[int]) -> float | None:
    if not answer or not call:
        return None
    return abs(statistics.median(answer) - statistics.median(call))


def variety(answer: Sequence[int]) -> float | None:
    return len(set(answer)) / len(answer) if answer else None


def trigram_copy(answer: Sequence[int], call: Sequence[int]) -> float | None:
    grams = [tuple(answer[i : i + 3]) for i in range(len(answer) - 2)]
    if not grams:
        return None
    heard = {tuple(call[i : i + 3]) for i in range(len(call) - 2)}
    return sum(1 for gram in grams if gram in heard) / len(grams)


def top_line(onsets: Sequence[Sequence[int]]) -> list[int]:
    """The highest note of each onset, in onset order (empty onsets skipped)."""
    return [max(notes) for notes in onsets if len(notes)]


def _steps(line: Sequence[int]) -> list[int]:
    return [abs(b - a) for a, b in zip(line, line[1:], strict=False)]


def mean_step(line: Sequence[int]) -> float | None:
    """Mean |interval| in semitones between consecutive notes; None under two notes."""
    steps = _steps(line)
    return statistics.fmean(steps) if steps else None


def leap_share(line: Sequence[int], beyond: int = LEAP_SEMITONES) -> float | None:
    """Share of the steps wider than ``beyond`` semitones; None under two notes."""
    steps = _steps(line)
    return sum(1 for step in steps if step > beyond) / len(steps) if steps else None


def inter_onset_intervals(times: Sequence[float]) -> list[float]:
    """Seconds from each onset to the next."""
    return [b - a for a, b in zip(times, times[1:], strict=False)]


def rhythm_distance(times: Sequence[float], reference: Sequence[float]) -> float | None:
    """Earth mover's distance between the log2 inter-onset intervals of two
    onset-time lists (each interval weighs 1/count of its list): 0 for the
    same rhythm at any order of its intervals, 1 for one twice as fast.
    None unless both have two onsets."""
    a = np.sort(np.log2(np.maximum(inter_onset_intervals(times), MIN_INTERVAL_S)))
    b = np.sort(np.log2(np.maximum(inter_onset_intervals(reference), MIN_INTERVAL_S)))
    if a.size == 0 or b.size == 0:
        return None
    # The area between the two step-wise distribution functions.
    edges = np.sort(np.concatenate([a, b]))
    below_a = np.searchsorted(a, edges[:-1], side="right") / a.size
    below_b = np.searchsorted(b, edges[:-1], side="right") / b.size
    return float(np.sum(np.abs(below_a - below_b) * np.diff(edges)))


def motion(onsets: Sequence[Sequence[int]], times: Sequence[float] | None,
           continuation_times: Sequence[float]) -> dict:
    """How an answer moves: its top line's step and leaps, its onset count,
    and (where it has times) its rhythm's distance from the continuation's."""
    line = top_line(onsets)
    return {
        "top_step": mean_step(line),
        "leap_share": leap_share(line),
        "onsets": len(onsets),
        "rhythm_distance": None if times is None else rhythm_distance(times, continuation_times),
    }


def markov_walk(call: Sequence[int], length: int, rng: np.random.Generator) -> list[int]:
    """A first-order Markov walk over the call's own pitches, from its last note:
    each step picks a pitch that followed the current one in the call (any
    call pitch when none did).  No training at all: the baseline to beat."""
    if not call or length < 1:
        return []
    following: dict[int, list[int]] = {}
    for here, there in zip(call, call[1:], strict=False):
        following.setdefault(here, []).append(there)
    note, out = call[-1], []
    for _ in range(length):
        choices = following.get(note) or list(call)
        note = int(choices[int(rng.integers(len(choices)))])
        out.append(note)
    return out


def uniform_random(call: Sequence[int], length: int, rng: np.random.Generator) -> list[int]:
    """Uniform random pitches in the call's range."""
    if not call or length < 1:
        return []
    return [int(n) for n in rng.integers(min(call), max(call) + 1, size=length)]


def measure(answer: Sequence[int], call: Sequence[int], continuation: Sequence[int]) -> dict:
    """Every measure of one answer, as a dict (None where it is undefined)."""
    key = call_key(call)
    return {
        "key_fit": key_fit(answer, key),
        "pitch_class_match": pitch_class_match(answer, continuation),
        "register_distance": register_distance(answer, call),
        "variety": variety(answer),
        "trigram_copy": trigram_copy(answer, call),
    }
