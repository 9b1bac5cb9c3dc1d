"""Key awareness: the per-key masks over a vocabulary, the down-weighting, the
fast key estimate against cadenza.key's, and the window's key as it scrolls."""

from __future__ import annotations

import numpy as np
import pytest

from cadenza.key import Key, estimate_key, parse_key
from cadenza.key_mask import KEYS, VocabularyKeys, estimate_key_fast, weigh_by_key
from cadenza.live.engine.key_awareness import KeyAwareness
from cadenza.tokens import midi_to_name

NOTES = [midi_to_name(m) for m in range(60, 72)]  # C4 .. B4, every pitch class once
CHORDS = ["0.4.7", "2.6.9", "1.5.8", "4.8.11", "3.7.10", "8.0.3", "10.2.5"]
VOCAB = NOTES + CHORDS


def test_there_are_24_keys_majors_first():
    assert len(set(KEYS)) == 24
    assert KEYS[0] == Key(0, "major") and KEYS[12] == Key(0, "minor")


def test_a_note_is_inside_when_its_pitch_class_is():
    keys = VocabularyKeys(VOCAB)
    inside = [t for t, m in zip(VOCAB, keys.mask(parse_key("D major")), strict=True) if m]
    assert inside[:7] == ["C#4", "D4", "E4", "F#4", "G4", "A4", "B4"]


def test_a_chord_is_inside_only_when_all_its_pitch_classes_are():
    keys = VocabularyKeys(VOCAB)
    chords = dict(zip(VOCAB, keys.mask(parse_key("C major")), strict=True))
    assert chords["0.4.7"] and not chords["2.6.9"] and not chords["1.5.8"]
    d_major = dict(zip(VOCAB, keys.mask(parse_key("D major")), strict=True))
    assert d_major["2.6.9"] and not d_major["0.4.7"]  # C natural is outside D major
    # A minor holds its harmonic seventh: the dominant E G# B is inside.
    a_minor = dict(zip(VOCAB, keys.mask(parse_key("A minor")), strict=True))
    assert a_minor["4.8.11"] and a_minor["0.4.7"] and not a_minor["2.6.9"]


def test_masks_agree_with_key_pitch_classes_for_every_key():
    keys = VocabularyKeys(NOTES)
    for key in KEYS:
        expected = [m % 12 in key.pitch_classes for m in range(60, 72)]
        assert keys.mask(key).tolist() == expected, key


PROBS = np.array([0.4, 0.3, 0.2, 0.1])
INSIDE = np.array([False, True, True, False])


def test_strength_zero_leaves_the_distribution_alone():
    assert np.array_equal(weigh_by_key(PROBS, INSIDE, 0.0), PROBS)


def test_strength_scales_out_of_key_tokens_then_renormalises():
    weighted = weigh_by_key(PROBS, INSIDE, 0.5)
    expected = np.array([0.2, 0.3, 0.2, 0.05]) / 0.75
    np.testing.assert_allclose(weighted, expected)
    assert weighted.sum() == pytest.approx(1.0)


def test_strength_one_keeps_only_in_key_tokens():
    weighted = weigh_by_key(PROBS, INSIDE, 1.0)
    np.testing.assert_allclose(weighted, [0.0, 0.6, 0.4, 0.0])


def test_strength_one_with_nothing_in_key_keeps_the_model():
    probs = np.array([0.5, 0.0, 0.0, 0.5])
    assert np.array_equal(weigh_by_key(probs, INSIDE, 1.0), probs)


def test_the_fast_estimate_is_estimate_key():
    rng = np.random.default_rng(0)
    for _ in range(500):
        counts = rng.integers(0, 12, size=12).astype(float)
        assert estimate_key_fast(counts) == estimate_key(counts)
    for key in KEYS:  # a scale with its tonic triad twice as often
        counts = np.zeros(12)
        counts[list(key.pitch_classes)] = 1.0
        counts[[key.tonic, (key.tonic + (4 if key.mode == "major" else 3)) % 12,
                (key.tonic + 7) % 12]] += 1.0
        assert estimate_key_fast(counts) == estimate_key(counts) == key
    assert estimate_key_fast(np.zeros(12)) is None is estimate_key(np.zeros(12))
    assert estimate_key_fast(np.ones(12)) is None is estimate_key(np.ones(12))


def index_of(*tokens: str) -> list[int]:
    return [VOCAB.index(t) for t in tokens]


def test_auto_estimates_the_key_of_the_window():
    aware = KeyAwareness(VOCAB)
    aware.configure("auto", 0.5)
    assert aware.key is None  # nothing heard yet
    # D major: the scale, the tonic and the dominant leaning.
    aware.refill(index_of("D4", "E4", "F#4", "G4", "A4", "B4", "C#4", "D4", "A4", "F#4", "D4"))
    assert aware.key == parse_key("D major")
    # F# minor, harmonic: E# (F) is its leading note.
    aware.refill(index_of("F#4", "G#4", "A4", "B4", "C#4", "D4", "F4", "F#4", "C#4", "A4", "F#4"))
    assert aware.key == parse_key("F# minor")
    # Chords alone: I, IV, V of E-flat major.
    aware.refill(index_of("3.7.10", "8.0.3", "10.2.5", "3.7.10"))
    assert aware.key == parse_key("E- major")


def test_tokens_entering_and_leaving_keep_the_counts_of_the_window():
    aware = KeyAwareness(VOCAB)
    aware.configure("auto", 1.0)
    window = 6
    held: list[int] = []
    rng = np.random.default_rng(4)
    for index in rng.integers(0, len(VOCAB), size=40).tolist():
        if len(held) == window:
            aware.leave(held.pop(0))
        held.append(index)
        aware.enter(index)
        fresh = KeyAwareness(VOCAB)
        fresh.configure("auto", 1.0)
        fresh.refill(held)
        assert aware.key == fresh.key


def test_off_and_a_fixed_key():
    aware = KeyAwareness(VOCAB)
    probs = np.full(len(VOCAB), 1.0 / len(VOCAB))
    aware.configure("off", 1.0)
    aware.refill(index_of("D4", "F#4", "A4"))
    assert aware.key is None and np.array_equal(aware.apply(probs), probs)
    aware.configure("Bb major", 1.0)  # whatever the window says
    assert aware.key == Key(10, "major")
    kept = [t for t, p in zip(VOCAB, aware.apply(probs), strict=True) if p > 0]
    assert kept == ["C4", "D4", "E-4", "F4", "G4", "A4", "B-4", "3.7.10", "10.2.5"]


def test_call_leans_towards_the_performers_pitch_classes_as_often_as_they_sound():
    from cadenza.live.engine.key_awareness import HEARD

    aware = KeyAwareness(VOCAB)
    aware.configure("call", 1.0)
    probs = np.full(len(VOCAB), 1.0 / len(VOCAB))
    assert np.allclose(aware.apply(probs), probs)  # nothing heard: the model alone
    # The engine's window takes every token (enter); the performer's also count
    # for the call (hear).
    for index in index_of("D4", "F4") * HEARD:  # scrolls out: only the last HEARD count
        aware.enter(index)
        aware.hear(index)
    aware.enter(VOCAB.index("D4"))  # an answer's note enters the window: not counted
    for index in index_of("C4", "C4", "E4", "G4", "C4", "E4") * (HEARD // 6 + 1):
        aware.enter(index)
        aware.hear(index)  # C three times, E twice, G once, over and over
    weighted = dict(zip(VOCAB, aware.apply(probs), strict=True))
    assert weighted["C4"] > weighted["E4"] > weighted["G4"] > 0
    assert weighted["D4"] == 0 and weighted["2.6.9"] == 0  # not heard lately: gone at strength 1
    assert weighted["0.4.7"] > weighted["G4"]  # a chord weighs the mean of its classes
    aware.configure("call", 0.5)
    half = dict(zip(VOCAB, aware.apply(probs), strict=True))
    assert half["D4"] == pytest.approx(half["C4"] * 0.5)  # 1 - 0.5 + 0.5 * 0
    assert aware.key is None  # no key is named in this mode


def test_call_balances_the_answer_towards_the_calls_proportions():
    """The call sounds C and E equally: once the answer has sounded C twice,
    E is owed and C held back, by exp(balance * owed); the performer's next
    note ends the answer, and the balance starts again."""
    aware = KeyAwareness(VOCAB)
    aware.configure("call", 1.0, balance=2.0)
    probs = np.full(len(VOCAB), 1.0 / len(VOCAB))
    for index in index_of("C4", "E4") * 4:
        aware.enter(index)
        aware.hear(index)
    before = dict(zip(VOCAB, aware.apply(probs), strict=True))
    assert before["C4"] == pytest.approx(before["E4"])  # no answer yet: the call's shares alone
    for index in index_of("C4", "C4"):
        aware.enter(index)  # the answer's own notes
    after = dict(zip(VOCAB, aware.apply(probs), strict=True))
    # owed: C 0.5 * 3 - 2 = -0.5, E 0.5 * 3 - 0 = 1.5
    assert after["E4"] / after["C4"] == pytest.approx(np.exp(2.0 * 2.0))
    assert after["D4"] == 0  # balancing never brings back a class the call did not sound
    aware.enter(VOCAB.index("E4"))
    aware.hear(VOCAB.index("E4"))  # the performer plays again
    again = dict(zip(VOCAB, aware.apply(probs), strict=True))
    # the call's shares alone again: C 4 times, E 5, so C weighs 4/5 of E
    assert again["C4"] / again["E4"] == pytest.approx(4 / 5)
    aware.configure("call", 1.0, balance=0.0)
    for index in index_of("C4", "C4"):
        aware.enter(index)
    off = dict(zip(VOCAB, aware.apply(probs), strict=True))
    assert off["C4"] / off["E4"] == pytest.approx(4 / 5)  # balance 0: the shares alone
