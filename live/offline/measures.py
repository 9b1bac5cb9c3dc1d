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
"""

from __future__ import annotations

import statistics
from collections.abc import Sequence

import numpy as np

from cadenza.key import Key, estimate_key, pitch_class_counts


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
