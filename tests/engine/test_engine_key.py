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
from cadenza.live.engine.engine import Engine
from cadenza.tokens import midi_to_name
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


def test_the_cc_steers_a_running_engine_and_reload_restores_the_file():
    settings = LiveConfig(key="C major", key_strength=1.0, loop_guard=0, temperature=0.0)
    engine = Engine(FakePredictor(VOCAB, loves_c_sharp), settings)
    engine.on_message(cc(26, 0), 0.0)  # the model alone
    run(engine, phrase(C_MAJOR_CALL), end=20.0)
    assert set(engine.window[len(C_MAJOR_CALL) :]) == {"C#4"}
    engine.reload(settings)
    assert engine.stats()["key_strength"] == 1.0
    assert engine.stats()["key"] == "C major"
