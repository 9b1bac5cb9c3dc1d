"""The musical measures of an answer, and the baselines, on hand-made phrases."""

from __future__ import annotations

import numpy as np
import pytest

from cadenza.key import Key
from cadenza.live.offline.measures import (
    call_key,
    key_fit,
    markov_walk,
    measure,
    pitch_class_match,
    register_distance,
    trigram_copy,
    uniform_random,
    variety,
)

D_MAJOR_CALL = [62, 64, 66, 67, 69, 71, 73, 74, 69, 66, 62, 69, 66, 62]


def test_the_key_of_a_call_and_the_share_of_an_answer_in_it():
    key = call_key(D_MAJOR_CALL)
    assert key == Key(2, "major")
    assert key_fit([62, 66, 69, 74], key) == 1.0
    assert key_fit([62, 65, 69, 72], key) == 0.5  # F and C are outside D major
    assert key_fit([], key) is None and key_fit([60], None) is None


def test_pitch_class_match_is_a_cosine_of_the_counts():
    assert pitch_class_match([60, 64, 67], [72, 76, 79]) == pytest.approx(1.0)
    assert pitch_class_match([60, 60], [61, 61]) == pytest.approx(0.0)
    assert pitch_class_match([60, 62], [60]) == pytest.approx(1 / np.sqrt(2))


def test_register_variety_and_copying():
    assert register_distance([72, 74, 76], [60, 62, 64]) == 12
    assert variety([60, 60, 62, 64]) == 0.75
    call = [60, 62, 64, 65, 67]
    assert trigram_copy([60, 62, 64, 65], call) == 1.0
    assert trigram_copy([64, 62, 60, 59], call) == 0.0
    assert trigram_copy([60, 62], call) is None


def test_the_markov_walk_uses_only_transitions_of_the_call():
    rng = np.random.default_rng(0)
    walk = markov_walk(D_MAJOR_CALL, 200, rng)
    pairs = set(zip(D_MAJOR_CALL, D_MAJOR_CALL[1:], strict=False))
    steps = list(zip([D_MAJOR_CALL[-1], *walk], walk, strict=False))
    assert len(walk) == 200 and all(step in pairs for step in steps)
    assert markov_walk(D_MAJOR_CALL, 20, np.random.default_rng(5)) == markov_walk(
        D_MAJOR_CALL, 20, np.random.default_rng(5))  # seeded


def test_uniform_random_stays_in_the_calls_range():
    notes = uniform_random(D_MAJOR_CALL, 500, np.random.default_rng(1))
    assert min(notes) >= 62 and max(notes) <= 74 and len(set(notes)) == 13


def test_measure_gives_every_column():
    row = measure([62, 66, 69, 74], D_MAJOR_CALL, [62, 64, 66])
    assert set(row) == {"key_fit", "pitch_class_match", "register_distance", "variety",
                        "trigram_copy"}
    assert row["key_fit"] == 1.0
