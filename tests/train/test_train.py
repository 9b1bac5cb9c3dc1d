"""Training runs of both presets on a tiny corpus, and generation from their output."""

from __future__ import annotations

import csv
import json
import logging
import random
from pathlib import Path

import mido
import numpy as np
import pytest

from cadenza import cli
from cadenza.train.generate import write_midi

pytest.importorskip("tensorflow")
pytest.importorskip("music21")

pytestmark = pytest.mark.slow

OUTPUTS = ("model.keras", "vocab.json", "heldout.json", "history.csv", "accuracy.png",
           "loss.png", "report.json")
REPORT_KEYS = (
    "preset", "split", "vocab_size", "windows", "train_windows", "test_windows", "epochs",
    "train_accuracy", "train_loss", "test_accuracy", "test_loss", "window", "input_encoding",
    "input_scale", "lstm_units", "seconds_per_epoch", "data_digest", "sources", "files_used",
    "files_skipped", "versions", "config", "created",
)
WINDOW = 12
EPOCHS = 2
# A small "style": each token usually leads to one of two successors.
STYLE = {
    "C4": ("E4", "G4"), "E4": ("G4", "0.4.7"), "G4": ("C5", "E4"), "C5": ("2.5.9", "G4"),
    "0.4.7": ("F4", "C4"), "F4": ("A4", "2.5.9"), "A4": ("F4", "C5"), "2.5.9": ("C4", "7.11.2"),
    "7.11.2": ("C4", "G4"),
}


def _write_style_corpus(folder: Path, files: int = 6, length: int = 70) -> None:
    rng = random.Random(1)
    for number in range(files):
        token, tokens = "C4", []
        for _ in range(length):
            tokens.append(token)
            token = rng.choice(STYLE[token])
        write_midi(tokens, folder / f"style{number}.mid")


@pytest.fixture(scope="module")
def corpus_dir(tmp_path_factory) -> Path:
    folder = tmp_path_factory.mktemp("style")
    _write_style_corpus(folder)
    (folder / "broken.mid").write_bytes(b"MThd\x00\x00\x00\x06\x00")  # one bad file
    return folder


def _config(folder: Path, **train: object) -> Path:
    data = {"window": WINDOW, "min_count": 1, "workers": 1, "cache_dir": str(folder / "cache")}
    train = {"lstm_units": 16, "embedding_dim": 8, "epochs": EPOCHS, "batch_size": 64, **train}
    lines = ["[data]", *(f"{k} = {json.dumps(v)}" for k, v in data.items()),
             "[train]", *(f"{k} = {json.dumps(v)}" for k, v in train.items())]
    path = folder / "config.toml"
    path.write_text("\n".join(lines) + "\n")
    return path


def _train(tmp: Path, corpus: Path, preset: str, *extra: str, **train: object) -> Path:
    out = tmp / f"run-{preset}"
    code = cli.main(["--config", str(_config(tmp, **train)), "train", "--preset", preset,
                     "--data", str(corpus), "--out", str(out), *extra])
    assert code == 0
    return out


@pytest.fixture(scope="module")
def runs(tmp_path_factory, corpus_dir) -> dict[str, Path]:
    tmp = tmp_path_factory.mktemp("runs")
    return {
        "seed": _train(tmp, corpus_dir, "seed"),
        # The default preset also goes through a tf.distribute strategy scope.
        "default": _train(tmp, corpus_dir, "default", "--strategy", "mirrored"),
    }


@pytest.mark.parametrize("preset", ["seed", "default"])
def test_training_writes_every_output(runs, preset):
    out = runs[preset]
    for name in OUTPUTS:
        assert (out / name).is_file() and (out / name).stat().st_size > 0, name
    report = json.loads((out / "report.json").read_text())
    assert set(REPORT_KEYS) <= set(report)
    assert report["preset"] == preset and report["epochs"] == EPOCHS
    assert report["window"] == WINDOW
    assert report["train_windows"] + report["test_windows"] == report["windows"]
    assert 0 <= report["test_accuracy"] <= 1 and report["test_loss"] > 0
    assert report["files_used"] == 6
    assert [Path(s["file"]).name for s in report["files_skipped"]] == ["broken.mid"]
    vocab = json.loads((out / "vocab.json").read_text())
    assert len(vocab["vocabulary"]) == report["vocab_size"] == len(STYLE)
    assert report["input_encoding"] == ("scalar" if preset == "seed" else "embedding")
    if preset == "seed":
        assert report["input_scale"] == 1.0  # raw indices, as the original fed them
    with (out / "history.csv").open() as handle:
        rows = list(csv.DictReader(handle))
    assert len(rows) == EPOCHS
    assert {"loss", "accuracy", "val_loss", "val_accuracy"} <= set(rows[0])
    for plot in ("accuracy.png", "loss.png"):
        assert (out / plot).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    heldout = json.loads((out / "heldout.json").read_text())
    assert len(heldout["windows"]) == len(heldout["targets"]) == min(2048, report["test_windows"])
    assert all(len(w) == WINDOW for w in heldout["windows"])


def test_each_preset_cuts_windows_at_its_own_stride(runs):
    reports = {p: json.loads((runs[p] / "report.json").read_text()) for p in runs}
    keys = ("data_digest", "vocab_size", "pieces")
    assert {k: reports["seed"][k] for k in keys} == {k: reports["default"][k] for k in keys}
    # The seed learns one target a window, from a window at every token, as
    # the original; the default every position of windows a window apart.
    seed, default = reports["seed"], reports["default"]
    assert seed["stride"] == 1 and default["stride"] == WINDOW
    assert default["windows"] < seed["windows"] / (WINDOW / 2)
    assert seed["predictions_per_epoch"] == seed["train_windows"]
    assert default["predictions_per_epoch"] == default["train_windows"] * WINDOW
    for report in reports.values():
        assert report["tokens_per_second"] == pytest.approx(
            report["predictions_per_epoch"] / report["seconds_per_epoch"], rel=0.01)
    assert "test_accuracy_all_positions" in default


def test_seed_keeps_its_last_epoch_and_default_its_best(runs):
    import keras

    from cadenza.train.callbacks import evaluate_windows

    for preset, out in runs.items():
        report = json.loads((out / "report.json").read_text())
        with (out / "history.csv").open() as handle:
            rows = list(csv.DictReader(handle))
        losses = [float(r["val_loss"]) for r in rows]
        assert report["best_epoch"] == int(np.argmin(losses)) + 1
        assert report["best_test_loss"] == pytest.approx(min(losses), abs=1e-5)
        if preset == "seed":
            # The original notebook reported its model after the last epoch,
            # with Keras's own train figures beside the held-out ones.
            assert report["kept_epoch"] == "last"
            assert report["test_loss"] == pytest.approx(losses[-1], abs=1e-5)
            assert report["train_accuracy_keras"] == pytest.approx(float(rows[-1]["accuracy"]))
            assert report["train_loss_keras"] == pytest.approx(float(rows[-1]["loss"]))
        else:
            assert report["kept_epoch"] == "best"
            assert report["test_loss"] == pytest.approx(min(losses), abs=1e-5)
        # The report's numbers come from the saved model itself.
        heldout = json.loads((out / "heldout.json").read_text())
        model = keras.models.load_model(out / "model.keras")
        windows = np.asarray(heldout["windows"], dtype=np.int32)
        inputs = windows.astype(np.float32)[..., None] if preset == "seed" else windows
        metrics = evaluate_windows(model, inputs, np.asarray(heldout["targets"]))
        if report["test_windows"] <= 2048:
            assert metrics["loss"] == pytest.approx(report["test_loss"], abs=1e-5)


@pytest.mark.parametrize("preset", ["seed", "default"])
def test_keras_predictor_answers_for_the_last_window(runs, preset):
    from cadenza.train.generate import KerasPredictor

    predictor = KerasPredictor.from_dir(runs[preset])
    size = len(predictor.vocabulary)
    rng = np.random.default_rng(3)
    history = rng.integers(0, size, WINDOW + 5).tolist()
    predictor.reset(history[:-1])
    predictor.feed(history[-1])
    probs = predictor.distribution()
    assert probs.shape == (size,) and probs.dtype == np.float64
    assert probs.sum() == pytest.approx(1.0)
    last = np.asarray([history[-WINDOW:]], dtype=np.int32)
    if preset == "seed":
        direct = predictor.model.predict_on_batch(last.astype(np.float32)[..., None])[0]
    else:
        direct = predictor.model.predict_on_batch(last)[0, -1]
    np.testing.assert_allclose(probs, direct / direct.sum(), rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("preset", ["seed", "default"])
def test_generate_from_a_training_folder(runs, tmp_path, preset):
    paths = []
    for name in ("a", "b"):
        paths.append(tmp_path / f"{name}.mid")
        code = cli.main(["generate", "--model", str(runs[preset]), "--length", "25",
                         "--seed", "7", "--out", str(paths[-1])])
        assert code == 0
    assert paths[0].read_bytes() == paths[1].read_bytes()  # seeded: the same notes
    midi = mido.MidiFile(paths[0])
    onsets = set()
    now = 0
    for message in midi.tracks[0]:
        now += message.time
        if message.type == "note_on" and message.velocity:
            onsets.add(now)
    assert len(onsets) == 25


def test_a_trained_seed_run_exports_and_generates_the_notes_keras_does(runs, tmp_path):
    # The seed's raw-index encoding end to end: trainer -> exporter -> bundle runner.
    from cadenza.config import ExportConfig
    from cadenza.export.writer import export_bundle
    from cadenza.train.generate import generate_file

    bundle = tmp_path / "bundle"
    export_bundle(runs["seed"], bundle, ExportConfig())
    manifest = json.loads((bundle / "model.json").read_text())
    assert manifest["input_encoding"]["scale"] == 1.0
    from_keras = generate_file(runs["seed"], tmp_path / "k.mid", length=40, seed=4)
    from_bundle = generate_file(bundle, tmp_path / "b.mid", length=40, seed=4)
    assert from_bundle == from_keras


def test_ctrl_c_keeps_the_best_model_and_still_reports(tmp_path, corpus_dir, monkeypatch, caplog):
    from cadenza.train import callbacks

    original = callbacks.HeldOutEvaluation.on_epoch_end

    def interrupt_in_second_epoch(self, epoch, logs=None):
        original(self, epoch, logs)
        if epoch == 1:
            raise KeyboardInterrupt

    monkeypatch.setattr(callbacks.HeldOutEvaluation, "on_epoch_end", interrupt_in_second_epoch)
    config = _config(tmp_path, epochs=5)
    out = tmp_path / "stopped"
    with caplog.at_level(logging.WARNING):
        code = cli.main(["--config", str(config), "train", "--preset", "default", "--data",
                         str(corpus_dir), "--out", str(out)])
    assert code == 130
    assert "interrupted after" in caplog.text
    report = json.loads((out / "report.json").read_text())
    assert report["interrupted"] is True
    assert report["epochs"] == 1 and report["best_epoch"] == 1
    for name in OUTPUTS:
        assert (out / name).is_file(), name
    import keras

    keras.models.load_model(out / "model.keras")  # a whole model, not a torn file


def _fail_in_epoch(monkeypatch, number: int) -> None:
    """Make the run die (as a kill would) at the end of epoch ``number`` (1-based)."""
    from cadenza.train import callbacks

    original = callbacks.HeldOutEvaluation.on_epoch_end

    def die(self, epoch, logs=None):
        if epoch + 1 == number:
            raise RuntimeError("the machine went away")
        original(self, epoch, logs)

    monkeypatch.setattr(callbacks.HeldOutEvaluation, "on_epoch_end", die)


def test_a_killed_run_resumes_from_its_last_finished_epoch(tmp_path, corpus_dir, monkeypatch,
                                                          caplog):
    config = _config(tmp_path, epochs=3)
    out = tmp_path / "resumed"
    args = ["--config", str(config), "train", "--preset", "seed", "--data", str(corpus_dir),
            "--out", str(out)]
    with monkeypatch.context() as patch:
        _fail_in_epoch(patch, 3)
        with pytest.raises(RuntimeError, match="went away"):
            cli.main(args)
    assert not (out / "report.json").exists()
    (staged,) = out.glob(".partial-*")
    assert {"last.keras", "resume.json", "history.csv"} <= {p.name for p in staged.iterdir()}
    with caplog.at_level(logging.INFO):
        assert cli.main([*args, "--resume"]) == 0
    assert "resuming after epoch 2 of 3" in caplog.text
    report = json.loads((out / "report.json").read_text())
    assert report["epochs"] == 3 and report["resumed_after_epoch"] == 2
    with (out / "history.csv").open() as handle:
        assert [int(r["epoch"]) for r in csv.DictReader(handle)] == [0, 1, 2]
    # A finished run publishes no resume files and leaves no staging folder.
    assert not (out / "last.keras").exists() and not (out / "resume.json").exists()
    assert not list(out.glob(".partial-*"))


def test_a_resume_with_other_settings_is_refused_by_name(tmp_path, corpus_dir, monkeypatch,
                                                        caplog):
    out = tmp_path / "other"
    args = ["train", "--preset", "seed", "--data", str(corpus_dir), "--out", str(out)]
    with monkeypatch.context() as patch:
        _fail_in_epoch(patch, 2)
        with pytest.raises(RuntimeError, match="went away"):
            cli.main(["--config", str(_config(tmp_path, epochs=3)), *args])
    with caplog.at_level(logging.ERROR):
        code = cli.main(["--config", str(_config(tmp_path, epochs=3, batch_size=32)), *args,
                         "--resume"])
    assert code != 0
    assert "cannot resume: the run was started with other [train] batch_size" in caplog.text
    # Without --resume the same folder starts afresh.
    assert cli.main(["--config", str(_config(tmp_path, epochs=1)), *args]) == 0


def test_a_failed_save_leaves_the_old_model_alone(tmp_path):
    from cadenza.train.callbacks import save_atomic

    class Exploding:
        def save(self, path):
            Path(path).write_bytes(b"half a model")
            raise OSError("disk full")

    target = tmp_path / "model.keras"
    target.write_bytes(b"the good old model")
    with pytest.raises(OSError, match="disk full"):
        save_atomic(Exploding(), target)
    assert target.read_bytes() == b"the good old model"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["model.keras"]


def test_the_default_preset_learns_a_pattern(tmp_path):
    # A pattern a next-token model must learn: the held-out windows are
    # whole other pieces (split by pieces), so this is not memorisation.
    folder = tmp_path / "cycle"
    cycle = ["C4", "E4", "G4", "0.4.7", "D4", "F4", "2.5.9"]
    for number in range(6):
        shift = number % len(cycle)
        write_midi((cycle[shift:] + cycle[:shift]) * 8, folder / f"c{number}.mid")
    # Windows at every token (stride 1): this many short pieces give too few
    # rows a window apart to learn from in 8 epochs.
    config = _config(tmp_path, epochs=8, learning_rate=0.02, split="pieces", stride=1)
    out = tmp_path / "learned"
    code = cli.main(["--config", str(config), "train", "--preset", "default", "--data",
                     str(folder), "--out", str(out)])
    assert code == 0
    report = json.loads((out / "report.json").read_text())
    assert report["split"] == "pieces" and report["test_pieces"]
    assert report["test_accuracy"] > 0.9, report


def test_multi_worker_without_tf_config_is_named_before_parsing(tmp_path, corpus_dir, caplog,
                                                               monkeypatch):
    monkeypatch.delenv("TF_CONFIG", raising=False)
    with caplog.at_level(logging.INFO):
        code = cli.main(["--config", str(_config(tmp_path)), "train", "--data", str(corpus_dir),
                         "--strategy", "multi-worker", "--out", str(tmp_path / "o")])
    assert code != 0
    assert "needs the TF_CONFIG environment variable" in caplog.text
    assert "parsing" not in caplog.text and not (tmp_path / "o").exists()


JAX_TRAIN = """
import sys

class BlockTensorFlow:
    def find_spec(self, name, path=None, target=None):
        if name == "tensorflow" or name.startswith("tensorflow."):
            raise ImportError("TensorFlow is blocked in this test")

sys.meta_path.insert(0, BlockTensorFlow())
from cadenza import cli
sys.exit(cli.main(sys.argv[1:]))
"""


def test_the_fit_runs_on_keras_with_jax_and_no_tensorflow(tmp_path, corpus_dir):
    """A GPU machine may have Keras on JAX and no TensorFlow: the fit must not need it."""
    pytest.importorskip("jax")
    import os
    import subprocess
    import sys

    out = tmp_path / "run-jax"
    config = _config(tmp_path, epochs=1, split="pieces", transpose="-1..1")
    env = {**os.environ, "KERAS_BACKEND": "jax", "JAX_PLATFORMS": "cpu"}
    done = subprocess.run(
        [sys.executable, "-c", JAX_TRAIN, "--config", str(config), "train",
         "--data", str(corpus_dir), "--out", str(out)],
        env=env, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-3000:]
    report = json.loads((out / "report.json").read_text())
    assert report["versions"]["keras_backend"] == "jax"
    assert report["epochs"] == 1 and report["transpose"] == [-1, 0, 1]
    assert (out / "model.keras").stat().st_size > 0
