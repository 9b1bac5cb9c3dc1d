"""The musical measures of an answer, and the baselines, on hand-made phrases."""

from __future__ import annotations

import numpy as np
import pytest

from cadenza.key import Key
from cadenza.live.offline.measures import (
    call_key,
    inter_onset_intervals,
    key_fit,
    leap_share,
    markov_walk,
    mean_step,
    measure,
    motion,
    pitch_class_match,
    register_distance,
    rhythm_distance,
    top_line,
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
                        "trigram_copy"}  # of pitches; how the answer moves is ``motion``
    assert row["key_fit"] == 1.0


def test_the_top_line_is_the_highest_note_of_each_onset():
    assert top_line([(48, 60, 64), (62,), (), (50, 67)]) == [64, 62, 67]
    assert top_line([]) == []


def test_the_mean_step_and_the_share_of_leaps_beyond_a_fifth():
    line = [60, 62, 69, 77, 65]  # steps 2, 7, 8, 12
    assert mean_step(line) == pytest.approx(29 / 4)
    assert leap_share(line) == pytest.approx(2 / 4)  # a fifth (7) is no leap, 8 and 12 are
    assert leap_share(line, beyond=1) == 1.0
    assert mean_step([60]) is None and leap_share([]) is None


def test_the_rhythm_distance_is_in_doublings_and_ignores_order():
    even = [0.0, 0.25, 0.5, 0.75, 1.0]
    assert inter_onset_intervals(even) == [0.25, 0.25, 0.25, 0.25]
    assert rhythm_distance(even, even) == 0.0
    assert rhythm_distance(even, [0.0, 0.5, 1.0, 1.5]) == pytest.approx(1.0)  # half as fast
    assert rhythm_distance(even, [0.0, 1.0]) == pytest.approx(2.0)
    # the same intervals in another order: the same rhythm to this measure
    assert rhythm_distance([0.0, 0.25, 0.75, 1.0], [0.0, 0.5, 0.75, 1.0]) == 0.0
    # half of the intervals a doubling off: half a doubling
    assert rhythm_distance([0.0, 0.25, 0.5], [0.0, 0.25, 0.75]) == pytest.approx(0.5)
    # symmetric, and defined only with two onsets on each side
    a, b = [0.0, 0.1, 0.4, 0.5, 1.2], [0.0, 0.3, 0.35, 0.9]
    assert rhythm_distance(a, b) == pytest.approx(rhythm_distance(b, a))
    assert rhythm_distance([0.0], even) is None and rhythm_distance(even, []) is None


def test_motion_gives_the_line_and_rhythm_of_an_answer():
    row = motion([(60, 64), (67,), (55, 59, 76)], [0.0, 0.5, 1.0], [0.0, 0.5, 1.0])
    assert row == {"top_step": 6.0, "leap_share": 0.5, "onsets": 3, "rhythm_distance": 0.0}
    assert motion([(60,), (62,)], None, [0.0, 1.0])["rhythm_distance"] is None
