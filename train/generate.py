"""Offline generation, the original's way: a held-out window as the start, then
one predicted token at a time, written to a MIDI file with mido.

The model is a training output folder (``model.keras``, run by Keras) or an
exported bundle folder (``model.json``, run by ONNX Runtime through
``cadenza.runtime``).  Both start from the same 64 held-out windows in
the same order (a bundle carries them as ``primers``), so the same seed
gives the same start, and at temperature 0 the same notes, from either.
Nothing here imports TensorFlow or music21 unless a Keras folder is used.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import mido
import numpy as np

from cadenza.errors import ModelError, TokenError
from cadenza.files import write_atomic
from cadenza.predictor import Predictor
from cadenza.sampling import Sampler, SamplingSettings
from cadenza.tokens import token_to_midis
from cadenza.trained import (
    EMBEDDING,
    HELDOUT_FILE,
    MODEL_FILE,
    PRIMER_COUNT,
    REPORT_FILE,
    VOCAB_FILE,
)

log = logging.getLogger(__name__)

TICKS_PER_BEAT = 480
PIANO_PROGRAM = 0


class KerasPredictor:
    """A trained Keras model behind the ``Predictor`` interface, with window semantics:
    the distribution is the model's answer to the last ``window`` tokens."""

    def __init__(
        self,
        model: Any,
        vocabulary: Sequence[str],
        window: int,
        input_encoding: str,
        input_scale: float = 1.0,
    ) -> None:
        self.model = model
        self.vocabulary = tuple(vocabulary)
        self.window = window
        self.input_encoding = input_encoding
        self.input_scale = input_scale
        self.history: list[int] = []

    @classmethod
    def from_dir(cls, path: str | Path) -> KerasPredictor:
        """Load ``model.keras`` and its vocabulary from a training output folder."""
        path = Path(path)
        model_file = path / MODEL_FILE
        if not model_file.is_file():
            raise ModelError(f"{path}: no model.keras here; not a training output folder")
        import keras  # lazily: the bundle path must not load TensorFlow

        import cadenza.train.activations  # noqa: F401  (registers the gate activations a model may name)
        from cadenza.train.vocab import load_vocabulary
        try:
            model = keras.models.load_model(model_file)
        except Exception as err:  # Keras raises many types for a bad file
            raise ModelError(f"{model_file}: cannot load the model: {err}") from err
        vocab = load_vocabulary(path / VOCAB_FILE)
        facts = _read_json(path / REPORT_FILE, required=False)
        embedding = any(layer.name == EMBEDDING for layer in model.layers)
        window = facts.get("window") or model.input_shape[1] or len(_primers_of_run(path)[0])
        return cls(
            model,
            vocab.tokens,
            int(window),
            "embedding" if embedding else "scalar",
            float(facts.get("input_scale") or (1.0 if embedding else len(vocab))),
        )

    def reset(self, primer: Sequence[int] = ()) -> None:
        self.history = [int(i) for i in primer]

    def feed(self, index: int) -> None:
        self.history.append(int(index))

    def distribution(self) -> np.ndarray:
        context = self.history[-self.window:]
        if not context or (self.input_encoding == "scalar" and len(context) < self.window):
            raise ModelError(
                f"the model needs {self.window} tokens of history, it has {len(context)}"
            )
        tokens = np.asarray([context], dtype=np.int32)
        if self.input_encoding == "scalar":
            inputs = (tokens.astype(np.float32) / np.float32(self.input_scale))[..., None]
        else:
            inputs = tokens
        # predict_on_batch runs a compiled graph: ~50x faster per step than
        # calling the model eagerly.
        probs = np.asarray(self.model.predict_on_batch(inputs), dtype=np.float64)
        probs = probs[0, -1] if probs.ndim == 3 else probs[0]
        return probs / probs.sum()


def _read_json(path: Path, required: bool = True) -> dict[str, Any]:
    try:
        doc = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError as err:
        if not required:
            return {}
        raise ModelError(f"{path}: missing") from err
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as err:
        raise ModelError(f"{path}: cannot read it: {err}") from err
    if not isinstance(doc, dict):
        raise ModelError(f"{path}: expected a JSON object")
    return doc


def _primers_of_run(path: Path) -> list[list[int]]:
    windows = _read_json(path / HELDOUT_FILE).get("windows")
    if not isinstance(windows, list) or not windows:
        raise ModelError(f"{path / 'heldout.json'}: no held-out windows to start from")
    return [[int(i) for i in w] for w in windows[:PRIMER_COUNT]]


def is_bundle(path: str | Path) -> bool:
    path = Path(path)
    return path.name == "model.json" or (path / "model.json").is_file()


def load_generator(path: str | Path) -> tuple[Predictor, list[list[int]]]:
    """The predictor of a training folder or a bundle, and its primers (as indices)."""
    if is_bundle(path):
        from cadenza.bundle import read_bundle
        from cadenza.runtime import load_predictor

        bundle = read_bundle(path)
        if not bundle.primers:
            raise ModelError(f"{bundle.path / 'model.json'}: the bundle has no primers")
        index = {token: i for i, token in enumerate(bundle.vocabulary)}
        primers = [[index[t] for t in primer] for primer in bundle.primers]
        # The window graph is the original's semantics, the same as the Keras
        # folder's; a bundle without one still generates, with its state carried.
        runner = "window" if "window" in bundle.graphs else "stream"
        return load_predictor(bundle.path, runner=runner), primers
    path = Path(path)
    if not path.is_dir():
        raise ModelError(f"{path}: no such model folder (a training output or a bundle)")
    return KerasPredictor.from_dir(path), _primers_of_run(path)


def generate_indices(
    predictor: Predictor,
    primers: Sequence[Sequence[int]],
    length: int,
    seed: int,
    settings: SamplingSettings,
) -> tuple[list[int], list[int]]:
    """(start, generated): a seeded start among ``primers``, then ``length`` choices."""
    if length < 1:
        raise ValueError(f"length must be at least 1, got {length}")
    rng = np.random.default_rng(seed)
    start = [int(i) for i in primers[int(rng.integers(len(primers)))]]
    sampler = Sampler(settings, seed=seed)
    predictor.reset(start)
    history = list(start)
    generated = []
    for _ in range(length):
        choice = sampler.choose(predictor.distribution(), history)
        predictor.feed(choice)
        history.append(choice)
        generated.append(choice)
    return start, generated


def write_midi(
    tokens: Sequence[str],
    path: str | Path,
    *,
    bpm: float = 120.0,
    velocity: int = 90,
    program: int = PIANO_PROGRAM,
) -> None:
    """One token per beat, each a quarter note long; chords voiced from their pitch classes."""
    events: list[tuple[int, int, mido.Message]] = []  # (tick, order, message)
    for step, token in enumerate(tokens):
        try:
            notes = token_to_midis(token)
        except TokenError as err:
            raise ModelError(f"cannot write token {token!r} as notes: {err}") from err
        for note in notes:
            on, off = step * TICKS_PER_BEAT, (step + 1) * TICKS_PER_BEAT
            # Note-offs sort before note-ons at the same tick, so a repeated
            # note is released before it strikes again.
            events.append((on, 1, mido.Message("note_on", note=note, velocity=velocity)))
            events.append((off, 0, mido.Message("note_off", note=note, velocity=0)))
    events.sort(key=lambda e: (e[0], e[1]))
    track = mido.MidiTrack()
    track.append(mido.MetaMessage("track_name", name="Cadenza", time=0))
    track.append(mido.MetaMessage("set_tempo", tempo=mido.bpm2tempo(bpm), time=0))
    track.append(mido.Message("program_change", program=program, time=0))
    now = 0
    for tick, _, message in events:
        track.append(message.copy(time=tick - now))
        now = tick
    track.append(mido.MetaMessage("end_of_track", time=0))
    midi = mido.MidiFile(ticks_per_beat=TICKS_PER_BEAT)
    midi.tracks.append(track)
    write_atomic(path, midi.save)


def generate_file(
    model_path: str | Path,
    out: str | Path,
    *,
    length: int = 200,
    seed: int = 0,
    settings: SamplingSettings | None = None,
) -> list[str]:
    """Generate ``length`` tokens with the model at ``model_path`` into MIDI file ``out``."""
    predictor, primers = load_generator(model_path)
    settings = settings or SamplingSettings()
    start, generated = generate_indices(predictor, primers, length, seed, settings)
    tokens = [predictor.vocabulary[i] for i in generated]
    write_midi(tokens, out)
    log.info("wrote %d tokens to %s (start: held-out window beginning %s)",
             len(tokens), out, " ".join(predictor.vocabulary[i] for i in start[:4]))
    return tokens
