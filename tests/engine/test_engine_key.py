"""Key awareness in the engine: [live] key and key_strength, their checks, the
key_strength CC, and what the answers play under each setting."""

from __future__ import annotations

import numpy as np
import pytest

from cadenza.config import DEFAULT_CC, LiveConfig, load_config
from cadenza.errors import ConfigError
from cadenza.key import parse_key
from cadenza.key_mask import token_pitch_classes
from cadenza.live.engine import controls
from cadenza.live.engine.context import Continuity
from cadenza.live.engine.engine import Engine
from cadenza.tokens import is_chord, midi_to_name, name_to_midi
from testing.fake_predictor import FakePredictor
from tests.engine.test_engine import cc, phrase, run

VOCAB = [midi_to_name(m) for m in range(48, 84)] + ["0.4.7", "1.5.8"]
C_SHARP = VOCAB.index("C#4")
C_MAJOR_CALL = [60, 62, 64, 65, 67, 69, 71, 72, 67, 64, 60]


def loves_c_sharp(history):
    """A model that answers C#4 (outside C major) most of the time, else any note."""
    probs = np.full(len(VOCAB), 0.3 / (len(VOCAB) - 1))
    probs[C_SHARP] = 0.7
    return probs


def answer(**settings) -> list[str]:
    """The tokens of the answer to a C major call (no loop guard: argmax may repeat)."""
    engine = Engine(FakePredictor(VOCAB, loves_c_sharp), LiveConfig(**{"temperature": 0.0, "key": "auto", "loop_guard": 0, **settings}))
    run(engine, phrase(C_MAJOR_CALL), end=20.0)
    tokens = list(engine.window[len(C_MAJOR_CALL) :])
    assert len(tokens) == len(C_MAJOR_CALL)
    return tokens


def inside(tokens: list[str], key: str) -> bool:
    return all(set(token_pitch_classes(t)) <= parse_key(key).pitch_classes for t in tokens)


# -- the settings -----------------------------------------------------------------------


@pytest.mark.parametrize("key", ["auto", "off", "D major", "f# minor", "Bb major", "E- minor"])
def test_key_settings_that_load(key):
    assert load_config(None, {"live": {"key": key}}).live.key == key


@pytest.mark.parametrize(
    ("values", "named"),
    [
        ({"key": "H major"}, "[live] key = 'H major': must be auto or off or call or a key"),
        ({"key": "D"}, "[live] key = 'D'"),
        ({"key": ""}, "[live] key = ''"),
        ({"key_strength": 1.5}, "[live] key_strength = 1.5: must be between 0"),
        ({"key_strength": -0.1}, "[live] key_strength = -0.1"),
        ({"register": "up"}, "[live] register = 'up': must be one of follow, model"),
        ({"continuity": 1.5}, "[live] continuity = 1.5: must be between 0 (off) and 1"),
        ({"continuity": -0.1}, "[live] continuity = -0.1"),
    ],
)
def test_bad_key_settings_are_named(values, named):
    with pytest.raises(ConfigError) as caught:
        load_config(None, {"live": values})
    assert named in str(caught.value)


def test_a_bad_key_in_a_file_names_the_file(tmp_path):
    path = tmp_path / "config.toml"
    path.write_text('[live]\nkey = "Q minor"\n')
    with pytest.raises(ConfigError, match=r"config\.toml: \[live\] key = 'Q minor'"):
        load_config(path)


def test_the_key_strength_cc_is_the_next_general_purpose_controller():
    assert DEFAULT_CC["key_strength"] == 26
    assert sorted(DEFAULT_CC.values()) == list(range(21, 27))


@pytest.mark.parametrize(("value", "strength"), [(0, 0.0), (64, 64 / 127), (127, 1.0)])
def test_the_cc_maps_0_127_to_strength_0_1(value, strength):
    assert controls.strength_from(value) == pytest.approx(strength)
    engine = Engine(FakePredictor(VOCAB), LiveConfig(temperature=0.0, key="auto", key_strength=0.3))
    engine.on_message(cc(26, value), 0.0)
    assert engine.stats()["key_strength"] == pytest.approx(strength)


# -- what the answers play ----------------------------------------------------------------


def test_off_or_strength_zero_is_the_model_alone():
    for settings in ({"key": "off", "key_strength": 1.0}, {"key": "auto", "key_strength": 0.0}):
        assert set(answer(**settings)) == {"C#4"}


def test_strength_one_never_plays_outside_the_windows_key():
    tokens = answer(key="auto", key_strength=1.0)
    assert inside(tokens, "C major"), tokens


def test_a_fixed_key_holds_whatever_is_played():
    # The call is in C major; the setting says D major: C#4 is inside now.
    assert set(answer(key="D major", key_strength=1.0)) == {"C#4"}
    tokens = answer(key="E- major", key_strength=1.0, temperature=1.0)
    assert inside(tokens, "E- major") and not inside(tokens, "C major"), tokens


def test_half_strength_at_temperature_halves_the_odds_of_out_of_key_tokens():
    """At temperature 1, C#4 (0.7 of the model's mass) is played ~70 % of the time
    alone; at strength 0.5 its mass and the 15 other out-of-key tokens' halve:
    0.35 / (0.35 + 22 * 0.3/37 + 15 * 0.15/37) = 0.594 of the time; at 1, never."""
    def share(strength: float) -> float:
        played = []
        for seed in range(40):
            played += answer(key="C major", key_strength=strength, temperature=1.0, seed=seed)
        return played.count("C#4") / len(played)

    assert share(0.0) == pytest.approx(0.7, abs=0.07)
    assert share(0.5) == pytest.approx(0.594, abs=0.07)
    assert share(1.0) == 0.0


# -- continuity: leaps beyond a fifth held back ---------------------------------------


def test_continuity_weighs_each_leap_from_the_answers_previous_note():
    vocab = ["C4", "G4", "G#4", "C5", "0.4.7", "A3"]
    continuity = Continuity(vocab)
    continuity.strength = 0.75
    probs = np.full(len(vocab), 1 / len(vocab))
    assert continuity.apply(probs) is probs  # no previous note: the first note is free
    continuity.chose(vocab.index("C4"))
    # G4 is a fifth (7): no leap; G#4 (8) and C5 (12) are; the chord never is; A3 is 3 down
    expected = np.array([1.0, 1.0, 0.25, 0.25, 1.0, 1.0])
    np.testing.assert_allclose(continuity.apply(probs), expected / expected.sum())
    continuity.chose(vocab.index("0.4.7"))  # a chord leaves the previous note as it was
    np.testing.assert_allclose(continuity.apply(probs), expected / expected.sum())
    continuity.chose(vocab.index("C5"))
    np.testing.assert_allclose(continuity.apply(probs),
                               np.array([0.25, 1.0, 1.0, 1.0, 1.0, 0.25]) / 4.5)
    continuity.heard()  # the performer plays: the next answer starts free again
    assert continuity.apply(probs) is probs
    continuity.chose(0)
    continuity.strength = 1.0  # leaps only when nothing else has any probability
    only_leaps = np.array([0.0, 0.0, 0.5, 0.5, 0.0, 0.0])
    assert continuity.apply(only_leaps) is only_leaps
    continuity.strength = 0.0
    assert continuity.apply(probs) is probs


def leaps_an_octave(history):
    """A model that jumps an octave from the last token most of the time."""
    probs = np.full(len(VOCAB), 0.2 / len(VOCAB))
    last = VOCAB[history[-1]] if history else "C4"
    if not is_chord(last):
        target = name_to_midi(last) + (12 if name_to_midi(last) < 66 else -12)
        probs[VOCAB.index(midi_to_name(target))] += 0.8
    return probs


@pytest.mark.parametrize(("strength", "leaps"), [(0.0, True), (1.0, False)])
def test_full_continuity_keeps_an_octave_leaper_within_a_fifth(strength, leaps):
    engine = Engine(FakePredictor(VOCAB, leaps_an_octave),
                    LiveConfig(temperature=0.0, key="off", loop_guard=0, continuity=strength))
    run(engine, phrase(C_MAJOR_CALL), end=20.0)
    line = [name_to_midi(t) for t in engine.window[len(C_MAJOR_CALL):]]
    steps = np.abs(np.diff(line))
    assert len(line) == len(C_MAJOR_CALL)
    assert (steps > 7).any() == leaps, line


def test_the_cc_steers_a_running_engine_and_reload_restores_the_file():
    settings = LiveConfig(key="C major", key_strength=1.0, loop_guard=0, temperature=0.0)
    engine = Engine(FakePredictor(VOCAB, loves_c_sharp), settings)
    engine.on_message(cc(26, 0), 0.0)  # the model alone
    run(engine, phrase(C_MAJOR_CALL), end=20.0)
    assert set(engine.window[len(C_MAJOR_CALL) :]) == {"C#4"}
    engine.reload(settings)
    assert engine.stats()["key_strength"] == 1.0
    assert engine.stats()["key"] == "C major"
