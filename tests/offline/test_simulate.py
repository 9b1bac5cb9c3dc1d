"""``cadenza simulate`` and ``cadenza plot``: the offline duet, end to end.

The engine runs on a real ONNX model here: a tiny hand-built window graph
(the next token is mostly "the one after the last"), loaded through the
real runtime and onnxruntime, so the bundle path a user meets is the one
tested.  Building it needs only the ``onnx`` package, not TensorFlow.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import mido
import numpy as np
import pytest

from cadenza.cli import main
from cadenza.config import LiveConfig
from cadenza.errors import BundleError, MidiFileError
from cadenza.live.offline.pianoroll import PlotUnavailable, plot_file, read_notes
from cadenza.live.offline.simulate import example_phrase, read_performance, simulate
from cadenza.tokens import midi_to_name
from testing.fake_predictor import FakePredictor

REPO = Path(__file__).resolve().parents[2]
VOCAB = [midi_to_name(m) for m in range(36, 90)] + ["0.4.7", "2.7.11", "5.9.0", "7.11.2.5"]
WINDOW = 50


@pytest.fixture(scope="module")
def bundle(tmp_path_factory) -> Path:
    """A real bundle folder with one window graph, written without TensorFlow."""
    onnx = pytest.importorskip("onnx")
    from onnx import TensorProto, helper, numpy_helper

    size = len(VOCAB)
    rng = np.random.default_rng(0)
    logits = rng.normal(0.0, 1.0, (size, size)).astype(np.float32)
    logits[np.arange(size), (np.arange(size) + 1) % size] += 3.0
    graph = helper.make_graph(
        [
            helper.make_node("Gather", ["tokens", "last"], ["last_token"], axis=1),
            helper.make_node("Gather", ["logits", "last_token"], ["scores"], axis=0),
            helper.make_node("Softmax", ["scores"], ["probs"], axis=-1),
        ],
        "next_after_last",
        [helper.make_tensor_value_info("tokens", TensorProto.INT64, ["batch", WINDOW])],
        [helper.make_tensor_value_info("probs", TensorProto.FLOAT, ["batch", size])],
        [numpy_helper.from_array(np.array(WINDOW - 1, dtype=np.int64), "last"),
         numpy_helper.from_array(logits, "logits")],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    folder = tmp_path_factory.mktemp("bundle")
    onnx.save(model, folder / "window.onnx")
    manifest = {
        "format": "cadenza-bundle",
        "format_version": 1,
        "token_scheme": 1,
        # A window graph alone, answering from a full window: the seed
        # preset's way, left-filled with the primer.
        "preset": "seed",
        "vocabulary": VOCAB,
        "window": WINDOW,
        "input_encoding": {"kind": "embedding"},
        "state": {"names": [], "size": 0},
        "graphs": {
            "window": {
                "file": "window.onnx",
                "inputs": {"tokens": {"name": "tokens", "shape": [None, WINDOW], "dtype": "int64"}},
                "outputs": {"probs": {"name": "probs", "shape": [None, size], "dtype": "float32"}},
            }
        },
        "primers": [[VOCAB[i % size] for i in range(WINDOW)]],
    }
    (folder / "model.json").write_text(json.dumps(manifest))
    return folder


def simulate_cli(tmp_path, bundle, name, *extra) -> bytes:
    out = tmp_path / name
    code = main(["simulate", "--model", str(bundle), "--runner", "window", "--out", str(out), *extra])
    assert code == 0
    return out.read_bytes()


def test_simulate_is_deterministic_for_a_seed(tmp_path, bundle):
    args = ("--temperature", "1.0", "--top-p", "0.9")
    first = simulate_cli(tmp_path, bundle, "a.mid", "--seed", "5", *args)
    second = simulate_cli(tmp_path, bundle, "b.mid", "--seed", "5", *args)
    other = simulate_cli(tmp_path, bundle, "c.mid", "--seed", "6", *args)
    assert first == second
    assert first != other  # the seed matters once sampling is on


def test_the_duet_holds_the_performer_and_the_answers(tmp_path, bundle):
    simulate_cli(tmp_path, bundle, "duet.mid", "--grid", "1/16", "--plot", str(tmp_path / "duet.png"))
    tracks = read_notes(tmp_path / "duet.mid")
    performer = read_notes(example_phrase())["Performer"]
    assert [(n.start, n.pitch) for n in tracks["Performer"]] == [(n.start, n.pitch) for n in performer]
    cadenza = tracks["Cadenza"]
    assert cadenza
    # answers start after the calls and sit on the sixteenth grid (time zero = grid zero)
    assert min(n.start for n in cadenza) > max(n.end for n in performer if n.start < 8)
    assert all(abs(n.start * 4 - round(n.start * 4)) < 1e-3 for n in cadenza)
    assert (tmp_path / "duet.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_continue_mode_plays_the_requested_bars(tmp_path, bundle):
    simulate_cli(tmp_path, bundle, "c.mid", "--mode", "continue", "--bars", "2", "--grid", "1/4")
    tracks = read_notes(tmp_path / "c.mid")
    starts = [n.start for n in tracks["Cadenza"]]
    phrase_end = max(n.end for n in tracks["Performer"])
    first = min(starts)
    assert first >= phrase_end and first % 4 == pytest.approx(0.0)  # from the next bar line
    assert len(set(starts)) == 9  # beats 0..8 of two bars, both ends included
    assert max(starts) - first == pytest.approx(8.0)


def test_grid_follows_the_input_files_tempo_unless_given(tmp_path):
    path = tmp_path / "slow.mid"
    midi = mido.MidiFile(ticks_per_beat=96)
    track = mido.MidiTrack([mido.MetaMessage("set_tempo", tempo=mido.bpm2tempo(60)),
                            mido.Message("note_on", note=60, velocity=80, time=0),
                            mido.Message("note_off", note=60, time=96)])
    midi.tracks.append(track)
    midi.save(path)
    performance = read_performance(path)
    assert performance.bpm == pytest.approx(60.0)
    assert performance.messages[-1][0] == pytest.approx(1.0)


def test_fake_model_runs_faster_than_real_time():
    import time

    performance = read_performance(example_phrase())
    began = time.perf_counter()
    recorder, summary = simulate(FakePredictor(VOCAB), LiveConfig(), performance)
    assert time.perf_counter() - began < summary["seconds"] / 10
    assert summary["cadenza_notes"] > 0 and len(recorder) > 0


def test_example_phrase_ships_in_the_package_and_the_repo():
    assert example_phrase().is_file()
    assert example_phrase().read_bytes() == (REPO / "examples" / "phrase.mid").read_bytes()
    tracks = read_notes(example_phrase())
    assert len(tracks["Performer"]) > 10


def test_missing_bundled_model_says_what_to_do(tmp_path, monkeypatch, caplog):
    import cadenza.live.model

    monkeypatch.setattr(cadenza.live.model, "bundled_model_path", lambda: tmp_path / "none")
    code = main(["simulate", "--out", str(tmp_path / "x.mid")])
    assert code == BundleError.exit_code and code != 0
    assert "--model" in caplog.text and not (tmp_path / "x.mid").exists()


def test_bad_input_files_are_named(tmp_path, bundle, caplog):
    with pytest.raises(MidiFileError, match="no such MIDI file"):
        read_performance(tmp_path / "missing.mid")
    garbage = tmp_path / "garbage.mid"
    garbage.write_bytes(b"not a midi file at all")
    with pytest.raises(MidiFileError, match="garbage.mid"):
        read_performance(garbage)
    code = main(["simulate", "--model", str(bundle), "--input", str(garbage), "--out",
                 str(tmp_path / "y.mid")])
    assert code != 0 and "garbage.mid" in caplog.text


def test_plot_command_and_a_missing_matplotlib(tmp_path, monkeypatch):
    recorder, _ = simulate(FakePredictor(VOCAB), LiveConfig(), read_performance(example_phrase()))
    duet = recorder.save(tmp_path / "duet.mid")
    assert main(["plot", str(duet), "-o", str(tmp_path / "roll.png")]) == 0
    assert (tmp_path / "roll.png").stat().st_size > 1000
    monkeypatch.setitem(sys.modules, "matplotlib.figure", None)  # as if not installed
    with pytest.raises(PlotUnavailable, match=r'pip install "\.\[plot\]"'):
        plot_file(duet, tmp_path / "again.png")
    with pytest.raises(MidiFileError):
        read_notes(tmp_path / "nothing.mid")


@pytest.mark.slow
@pytest.mark.parametrize("runner", ["stream", "window"])
def test_simulate_on_an_exported_bundle(tmp_path, tiny_bundles, runner):
    """The trainer's and exporter's real output, both runners, through the CLI."""
    bundle = tiny_bundles["default"]
    outputs = []
    for name in ("a.mid", "b.mid"):
        out = tmp_path / name
        assert main(["simulate", "--model", str(bundle), "--runner", runner, "--out", str(out),
                     "--temperature", "0.7", "--seed", "1"]) == 0
        outputs.append(out.read_bytes())
    assert outputs[0] == outputs[1]
    assert read_notes(tmp_path / "a.mid")["Cadenza"]
