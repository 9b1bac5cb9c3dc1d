"""Texture and the key's spread: [live] texture and key_spread, their checks,
and what each does to a distribution."""

from __future__ import annotations

import numpy as np
import pytest

from cadenza.config import LiveConfig, load_config
from cadenza.errors import ConfigError
from cadenza.live.engine.engine import Engine
from cadenza.live.engine.key_awareness import KeyAwareness
from cadenza.live.engine.texture import Texture
from cadenza.tokens import is_chord, midi_to_name
from testing.fake_predictor import FakePredictor
from tests.engine.test_engine import phrase, run

VOCAB = [midi_to_name(m) for m in range(48, 84)] + ["0.4.7", "2.5.9", "7.11.2", "0.3.7"]
CHORDS = np.array([is_chord(t) for t in VOCAB])


@pytest.mark.parametrize(("values", "named"), [
    ({"texture": 1.5}, "[live] texture = 1.5: must be between 0 (off) and 1"),
    ({"texture": -0.1}, "[live] texture = -0.1"),
    ({"key_spread": 2.0}, "[live] key_spread = 2.0: must be between 0 (off) and 1"),
    ({"key_spread": -0.5}, "[live] key_spread = -0.5"),
])
def test_bad_settings_are_named(values, named):
    with pytest.raises(ConfigError) as caught:
        load_config(None, {"live": values})
    assert named in str(caught.value)


# -- texture -------------------------------------------------------------------------


def test_texture_moves_the_chords_share_back_to_the_models():
    texture = Texture(VOCAB)
    rng = np.random.default_rng(0)
    model = rng.random(len(VOCAB))
    model /= model.sum()
    steered = model * np.where(CHORDS, 0.1, 1.0)  # a steering that thinned the chords
    steered /= steered.sum()
    assert texture.apply(model, steered) is steered  # strength 0: off
    for strength in (0.25, 0.5, 1.0):
        texture.strength = strength
        out = texture.apply(model, steered)
        given, kept = model[CHORDS].sum(), steered[CHORDS].sum()
        assert out[CHORDS].sum() == pytest.approx(kept + strength * (given - kept))
        assert out.sum() == pytest.approx(1.0)
        # which chord, and which note, stays the steering's choice
        np.testing.assert_allclose(out[CHORDS] / out[CHORDS].sum(), steered[CHORDS] / kept)
        np.testing.assert_allclose(out[~CHORDS] / out[~CHORDS].sum(),
                                   steered[~CHORDS] / steered[~CHORDS].sum())


def test_texture_leaves_what_it_cannot_scale():
    texture = Texture(VOCAB)
    texture.strength = 1.0
    model = np.full(len(VOCAB), 1 / len(VOCAB))
    assert texture.apply(model, model) is model  # nothing steered
    notes_only = np.where(CHORDS, 0.0, 1.0)
    notes_only /= notes_only.sum()
    assert texture.apply(model, notes_only) is notes_only  # no chord left to scale
    chords_only = np.where(CHORDS, 0.25, 0.0)
    assert texture.apply(model, chords_only) is chords_only


def loves_chords(history):
    """Half the mass on the chords, which lie partly outside C major."""
    return np.where(CHORDS, 0.5 / CHORDS.sum(), 0.5 / (~CHORDS).sum())


def chord_share(texture: float) -> float:
    """The share of chord tokens in the answers to a scale, over five seeds."""
    chords = 0
    for seed in range(5):
        engine = Engine(FakePredictor(VOCAB, loves_chords),
                        LiveConfig(texture=texture, key_spread=0.0, temperature=1.0,
                                   key_strength=0.9, seed=seed))
        run(engine, phrase([60, 62, 64, 65, 67, 69, 71, 72] * 2), end=30.0)
        answer = engine.window[16:]
        assert len(answer) == 16
        chords += sum(is_chord(t) for t in answer)
    return chords / 80


def test_texture_keeps_chords_the_key_would_thin_out():
    assert chord_share(1.0) > chord_share(0.0) + 0.05


# -- the key's spread ------------------------------------------------------------------


def call_weights(spread: float) -> np.ndarray:
    """The weights of ``key = "call"`` after a call on C, E and G alone."""
    key = KeyAwareness(VOCAB)
    key.configure("call", 0.8, 0.0, spread)
    for index in [VOCAB.index(n) for n in ("C4", "E4", "G4", "C4", "E4", "G4", "C5")]:
        key.enter(index)
        key.hear(index)
    return key._call_weights()


def test_spread_lifts_the_keys_other_classes_and_not_the_rest():
    d, f_sharp, c = VOCAB.index("D4"), VOCAB.index("F#4"), VOCAB.index("C4")
    off, on = call_weights(0.0), call_weights(0.3)
    assert off[d] == pytest.approx(0.2)  # a class of the key the call left out: 1 - strength
    assert on[d] > off[d]  # lifted towards the call's own classes
    assert on[f_sharp] == pytest.approx(off[f_sharp])  # outside C major: nothing added
    assert on[c] == pytest.approx(1.0)  # the call's commonest class still weighs most
    assert on[d] < on[c]

