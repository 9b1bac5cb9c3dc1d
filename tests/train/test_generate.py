"""Offline generation: the MIDI writer, seeded starts, and the bundle path without TensorFlow."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import mido
import numpy as np
import pytest

from cadenza import cli
from cadenza.sampling import SamplingSettings
from cadenza.tokens import token_to_midis
from cadenza.train import generate
from cadenza.train.generate import generate_file, generate_indices, write_midi
from testing.fake_predictor import FakePredictor

REPO = Path(__file__).resolve().parents[2]
VOCAB = ["C4", "D4", "E4", "0.4.7", "G4", "2.5.9", "A3"]
WINDOW = 4


def _onsets(path: Path) -> list[tuple[int, list[int]]]:
    """(tick, sorted notes) per distinct note-on time, checking every note is released."""
    midi = mido.MidiFile(path)
    assert midi.ticks_per_beat == 480 and len(midi.tracks) == 1
    now, sounding, onsets = 0, {}, {}
    for message in midi.tracks[0]:
        now += message.time
        if message.type == "note_on" and message.velocity > 0:
            assert message.note not in sounding, "a note struck again before its release"
            sounding[message.note] = now
            onsets.setdefault(now, []).append(message.note)
        elif message.type == "note_off" or message.type == "note_on":
            assert now - sounding.pop(message.note) == 480  # one quarter long
    assert not sounding, "notes left hanging"
    return [(tick, sorted(notes)) for tick, notes in sorted(onsets.items())]


def test_write_midi_one_quarter_per_token_chords_voiced(tmp_path):
    tokens = ["C4", "C4", "0.4.7", "B-3", "2.6.9", "C#5"]
    path = tmp_path / "out.mid"
    write_midi(tokens, path, bpm=90)
    onsets = _onsets(path)
    assert [tick for tick, _ in onsets] == [480 * i for i in range(len(tokens))]
    assert [notes for _, notes in onsets] == [sorted(token_to_midis(t)) for t in tokens]
    messages = list(mido.MidiFile(path).tracks[0])
    tempo = [m for m in messages if m.type == "set_tempo"]
    assert len(tempo) == 1 and round(mido.tempo2bpm(tempo[0].tempo)) == 90
    assert [m.program for m in messages if m.type == "program_change"] == [0]


def _cycle_rule(history):
    probs = np.full(len(VOCAB), 0.01)
    probs[(history[-1] + 2) % len(VOCAB)] = 1.0
    return probs


def test_generation_is_seeded_and_argmax_at_temperature_zero():
    primers = [[0, 1, 2, 3], [4, 5, 6, 0], [1, 1, 1, 1]]
    predictor = FakePredictor(VOCAB, _cycle_rule)
    start, out = generate_indices(predictor, primers, 10, seed=5, settings=SamplingSettings())
    assert start in primers
    expected, last = [], start[-1]
    for _ in range(10):
        last = (last + 2) % len(VOCAB)
        expected.append(last)
    assert out == expected
    assert generate_indices(FakePredictor(VOCAB, _cycle_rule), primers, 10, 5,
                            SamplingSettings()) == (start, out)
    starts = {tuple(generate_indices(FakePredictor(VOCAB), primers, 1, s, SamplingSettings())[0])
              for s in range(20)}
    assert len(starts) == 3  # the seed picks among all primers


def test_sampling_follows_the_seed():
    settings = SamplingSettings(temperature=1.0)
    flat = FakePredictor(VOCAB, lambda h: np.ones(len(VOCAB)))
    first = generate_indices(flat, [[0] * WINDOW], 30, 11, settings)[1]
    again = generate_indices(flat, [[0] * WINDOW], 30, 11, settings)[1]
    other = generate_indices(flat, [[0] * WINDOW], 30, 12, settings)[1]
    assert first == again and first != other and len(set(first)) > 3


def _fake_run(folder: Path, windows: list[list[int]]) -> Path:
    folder.mkdir(parents=True)
    (folder / "heldout.json").write_text(json.dumps({"windows": windows, "targets": [0] * len(windows)}))
    return folder


def _fake_bundle(folder: Path, primers: list[list[str]]) -> Path:
    folder.mkdir(parents=True)
    (folder / "window.onnx").write_bytes(b"not used: the runtime is faked")
    manifest = {
        "format": "cadenza-bundle",
        "format_version": 1,
        "token_scheme": 1,
        "vocabulary": VOCAB,
        "window": WINDOW,
        "input_encoding": {"kind": "embedding"},
        "state": {"names": [], "size": 0},
        "graphs": {"window": {
            "file": "window.onnx",
            "inputs": {"tokens": {"name": "tokens", "shape": [None, WINDOW], "dtype": "int64"}},
            "outputs": {"probs": {"name": "probs", "shape": [None, len(VOCAB)]}},
        }},
        "primers": primers,
    }
    (folder / "model.json").write_text(json.dumps(manifest))
    return folder


FAKE_RUNTIME = '''
import types, sys
from testing.fake_predictor import FakePredictor
from cadenza.bundle import read_bundle

def load_predictor(path, runner="stream", int8=False):
    assert runner == "window", runner  # the original's semantics, like a Keras folder
    return FakePredictor(read_bundle(path).vocabulary)

module = types.ModuleType("cadenza.runtime")
module.load_predictor = load_predictor
sys.modules["cadenza.runtime"] = module
'''


@pytest.fixture
def fake_runtime(monkeypatch):
    namespace: dict = {}
    exec(FAKE_RUNTIME, namespace)  # registers the module in sys.modules
    module = sys.modules.pop("cadenza.runtime")
    monkeypatch.setitem(sys.modules, "cadenza.runtime", module)
    return module


def test_a_bundle_and_its_training_folder_start_alike(tmp_path, fake_runtime, monkeypatch):
    rng = np.random.default_rng(0)
    windows = rng.integers(0, len(VOCAB), size=(80, WINDOW)).tolist()
    run = _fake_run(tmp_path / "run", windows)
    # The exporter copies the first 64 held-out windows, as tokens, as primers.
    bundle = _fake_bundle(tmp_path / "bundle", [[VOCAB[i] for i in w] for w in windows[:64]])
    monkeypatch.setattr(generate.KerasPredictor, "from_dir",
                        classmethod(lambda cls, path: FakePredictor(VOCAB)))
    for seed in (0, 1, 2):
        from_run = generate_file(run, tmp_path / f"run{seed}.mid", length=12, seed=seed)
        from_bundle = generate_file(bundle, tmp_path / f"b{seed}.mid", length=12, seed=seed)
        assert from_run == from_bundle
        assert (tmp_path / f"run{seed}.mid").read_bytes() == (tmp_path / f"b{seed}.mid").read_bytes()


def test_generate_command_writes_the_requested_onsets(tmp_path, fake_runtime):
    bundle = _fake_bundle(tmp_path / "bundle", [["C4", "D4", "E4", "0.4.7"]])
    out = tmp_path / "gen.mid"
    code = cli.main(["generate", "--model", str(bundle), "--length", "37", "--seed", "3",
                     "--out", str(out)])
    assert code == 0
    assert len(_onsets(out)) == 37


def test_bundle_generation_never_imports_tensorflow_or_music21(tmp_path):
    bundle = _fake_bundle(tmp_path / "bundle", [["C4", "D4", "E4", "0.4.7"]])
    out = tmp_path / "gen.mid"
    script = (
        "import sys\n"
        f"sys.path.insert(0, {str(REPO)!r})  # the test infrastructure, testing/\n"
        "for name in ('tensorflow', 'keras', 'music21'):\n"
        "    sys.modules[name] = None  # any import of them now fails\n"
        + FAKE_RUNTIME
        + "from cadenza import cli\n"
        f"sys.exit(cli.main(['generate', '--model', {str(bundle)!r}, '--length', '9', "
        f"'--out', {str(out)!r}]))\n"
    )
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                          timeout=120, cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    assert len(_onsets(out)) == 9


def test_a_folder_that_is_no_model_is_named(tmp_path, caplog):
    (tmp_path / "empty").mkdir()
    code = cli.main(["generate", "--model", str(tmp_path / "empty"), "--out",
                     str(tmp_path / "x.mid")])
    assert code != 0
    assert f"{tmp_path / 'empty'}: no model.keras here" in caplog.text
    code = cli.main(["generate", "--model", str(tmp_path / "absent"), "--out",
                     str(tmp_path / "x.mid")])
    assert code != 0
    assert "no such model folder" in caplog.text
    assert not (tmp_path / "x.mid").exists()
