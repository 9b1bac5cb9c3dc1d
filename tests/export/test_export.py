"""Export to a bundle: contents, parity (checked here independently of the
exporter's own check), int8 decisions, failures that leave nothing behind,
and the latency benchmark's report."""

from __future__ import annotations

import json
import logging
import shutil

import numpy as np
import onnx
import onnxruntime as ort
import pytest

from cadenza.bundle import MANIFEST, read_bundle
from cadenza.cli import main
from cadenza.config import ExportConfig
from cadenza.errors import ExportError
from cadenza.export import writer
from cadenza.export.bench import run_benchmark
from cadenza.export.source import keras_predict, load_keras_model
from cadenza.export.writer import export_bundle
from tests.support.bundle_factory import make_model_folder

pytestmark = pytest.mark.slow
PRESETS = ["seed", "default"]


def manifest_of(folder):
    return json.loads((folder / MANIFEST).read_text())


def heldout(model_dir):
    doc = json.loads((model_dir / "heldout.json").read_text())
    return np.asarray(doc["windows"]), np.asarray(doc["targets"])


@pytest.fixture
def empty_config(tmp_path):
    path = tmp_path / "empty.toml"
    path.write_text("")
    return path


@pytest.mark.parametrize("preset", PRESETS)
def test_export_writes_a_self_describing_bundle(tiny_models, tiny_bundles, preset):
    model_dir, folder = tiny_models[preset], tiny_bundles[preset]
    doc = manifest_of(folder)
    vocab = json.loads((model_dir / "vocab.json").read_text())["vocabulary"]
    report = json.loads((model_dir / "report.json").read_text())
    windows, _ = heldout(model_dir)
    assert doc["format"] == "cadenza-bundle" and doc["format_version"] == 1
    assert doc["token_scheme"] == 1
    assert doc["preset"] == preset
    assert doc["vocabulary"] == vocab
    assert doc["window"] == 50
    if preset == "seed":
        # Raw indices, as the original fed them.
        assert doc["input_encoding"] == {"kind": "scalar", "scale": 1.0, "in_graph": True}
    else:
        assert doc["input_encoding"] == {"kind": "embedding"}
    assert doc["state"] == {"names": ["h1", "c1", "h2", "c2"], "size": 16}
    window, stream = doc["graphs"]["window"], doc["graphs"]["stream"]
    assert window["inputs"]["tokens"] == {"name": "tokens", "shape": [None, 50], "dtype": "int64"}
    assert window["outputs"]["probs"] == {"name": "probs", "shape": [None, 24], "dtype": "float32"}
    assert stream["inputs"]["token"]["shape"] == [None, 1]
    for state in ("h1", "c1", "h2", "c2"):
        assert stream["inputs"][state] == {"name": state, "shape": [None, 16], "dtype": "float32"}
        assert stream["outputs"][state]["name"] == f"{state}_out"
    assert doc["primers"] == [[vocab[i] for i in w] for w in windows[:64].tolist()]
    assert doc["training"] == {"report": report, "config": report["config"]}
    assert doc["data_digest"] == "sha256:test-random-walk"
    assert doc["metrics"] == {"train_accuracy": 0.1, "test_accuracy": 0.1, "test_loss": 3.0}
    assert set(doc["versions"]) >= {"tensorflow", "tf2onnx", "onnx", "onnxruntime", "cadenza"}
    assert doc["created"].endswith("+00:00")
    for spec in doc["graphs"].values():
        graph = onnx.load(folder / spec["file"])
        onnx.checker.check_model(graph)
        assert max(o.version for o in graph.opset_import if o.domain in ("", "ai.onnx")) >= 17
    assert read_bundle(folder).vocab_size == 24
    assert not [p for p in folder.parent.iterdir() if p.name.startswith(".")], "temporary left"


@pytest.mark.parametrize("preset", PRESETS)
def test_exported_graphs_match_keras(tiny_models, tiny_bundles, preset):
    """Checked with plain onnxruntime sessions, apart from the exporter's own check."""
    model_dir, folder = tiny_models[preset], tiny_bundles[preset]
    doc = manifest_of(folder)
    windows, _ = heldout(model_dir)
    keras_probs = keras_predict(
        load_keras_model(model_dir), windows, doc["input_encoding"]["kind"],
        doc["input_encoding"].get("scale", 1.0),
    )
    window = ort.InferenceSession(str(folder / "window.onnx"), providers=["CPUExecutionProvider"])
    (window_probs,) = window.run(["probs"], {"tokens": windows.astype(np.int64)})
    stream = ort.InferenceSession(str(folder / "stream.onnx"), providers=["CPUExecutionProvider"])
    states = {s: np.zeros((len(windows), 16), np.float32) for s in ("h1", "c1", "h2", "c2")}
    for step in range(50):
        probs, *new = stream.run(
            ["probs", "h1_out", "c1_out", "h2_out", "c2_out"],
            {"token": windows[:, step : step + 1].astype(np.int64)} | states,
        )
        states = dict(zip(("h1", "c1", "h2", "c2"), new, strict=True))
    for candidate in (window_probs, probs):
        assert np.abs(candidate - keras_probs).max() < 1e-4
        assert (candidate.argmax(axis=1) == keras_probs.argmax(axis=1)).all()
    assert np.abs(probs - window_probs).max() < 1e-4


@pytest.mark.parametrize("preset", PRESETS)
def test_parity_is_recorded(tiny_bundles, preset):
    parity = manifest_of(tiny_bundles[preset])["parity"]
    assert parity["tolerance"] == 1e-4
    assert parity["windows"] == 96
    assert set(parity["comparisons"]) == {"keras_vs_window", "keras_vs_stream", "window_vs_stream"}
    for comparison in parity["comparisons"].values():
        assert comparison["passed"] is True
        assert comparison["max_abs_diff"] < 1e-4
        assert comparison["argmax_equal"] + comparison["argmax_ties"] == 96
    assert set(parity["heldout_accuracy"]) == {"window", "stream"}


@pytest.mark.parametrize("preset", PRESETS)
def test_int8_decision_is_recorded_and_applied(tiny_bundles, preset):
    folder = tiny_bundles[preset]
    doc = manifest_of(folder)
    record = doc["int8"]
    assert record["requested"] is True
    assert set(record["graphs"]) == {"stream_int8", "window_int8"}
    for kind, decision in record["graphs"].items():
        assert decision["max_drop"] == 0.01
        assert decision["kept"] == (decision["drop"] < 0.01)
        assert decision["drop"] == pytest.approx(decision["accuracy_fp32"] - decision["accuracy_int8"])
        assert 0.0 <= decision["top1_agreement"] <= 1.0
        assert (kind in doc["graphs"]) == decision["kept"]
        assert (folder / f"{kind}.onnx").exists() == decision["kept"]


def test_int8_is_dropped_when_it_may_not_lose_anything(tiny_models, tmp_path):
    """With no accuracy loss allowed, an int8 graph no better than fp32 is not kept."""
    doc = export_bundle(
        tiny_models["default"], tmp_path / "b", ExportConfig(int8=True, max_int8_accuracy_drop=0.0)
    )
    for kind, decision in doc["int8"]["graphs"].items():
        assert decision["kept"] == (decision["drop"] < 0)
        assert (kind in doc["graphs"]) == decision["kept"]
        assert (tmp_path / "b" / f"{kind}.onnx").exists() == decision["kept"]


def test_cli_export_without_int8(tiny_models, tmp_path, empty_config):
    out = tmp_path / "bundle"
    code = main(["--config", str(empty_config), "export", "--model", str(tiny_models["seed"]),
                 "--out", str(out)])
    assert code == 0
    doc = manifest_of(out)
    assert doc["int8"] == {"requested": False}
    assert sorted(p.name for p in out.iterdir()) == [
        "model.json", "native.bin", "stream.onnx", "window.onnx"]


def test_failed_parity_is_fatal_and_keeps_the_previous_bundle(
    tiny_models, tiny_bundles, tmp_path, empty_config, monkeypatch, caplog
):
    out = tmp_path / "bundle"
    shutil.copytree(tiny_bundles["default"], out)
    before = {p.name: p.read_bytes() for p in out.iterdir()}

    def off_by_a_little(model, windows, encoding, scale):
        probs = keras_predict(model, windows, encoding, scale)
        probs[:, 0] += 1e-3  # a conversion bug of this size must not pass
        return probs

    monkeypatch.setattr(writer, "keras_predict", off_by_a_little)
    with caplog.at_level(logging.INFO):
        code = main(["--config", str(empty_config), "export", "--model",
                     str(tiny_models["default"]), "--out", str(out)])
    assert code == 1
    assert "parity check failed" in caplog.text
    assert "keras vs window" in caplog.text and "FAILED" in caplog.text
    assert {p.name: p.read_bytes() for p in out.iterdir()} == before
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".")] == []


def test_a_new_export_replaces_an_old_bundle(tiny_models, tiny_bundles, tmp_path):
    out = tmp_path / "bundle"
    shutil.copytree(tiny_bundles["default"], out)
    (out / "stale.txt").write_text("from the old bundle")
    export_bundle(tiny_models["seed"], out, ExportConfig())
    assert manifest_of(out)["preset"] == "seed"
    assert not (out / "stale.txt").exists()
    assert [p.name for p in tmp_path.iterdir()] == ["bundle"]


def test_refuses_to_replace_a_folder_that_is_not_a_bundle(tiny_models, tmp_path):
    out = tmp_path / "precious"
    out.mkdir()
    (out / "notes.txt").write_text("keep me")
    with pytest.raises(ExportError, match="precious: exists and is not a model bundle"):
        export_bundle(tiny_models["default"], out, ExportConfig())
    assert (out / "notes.txt").read_text() == "keep me"


def _drop_heldout(folder):
    (folder / "heldout.json").unlink()


def _short_vocab(folder):
    doc = json.loads((folder / "vocab.json").read_text())
    doc["vocabulary"] = doc["vocabulary"][:-1]  # a well-formed vocabulary, one token short
    doc["counts"] = doc["counts"][:-1]
    (folder / "vocab.json").write_text(json.dumps(doc))


def _counts_disagree(folder):
    doc = json.loads((folder / "vocab.json").read_text())
    doc["counts"] = doc["counts"][:-1]
    (folder / "vocab.json").write_text(json.dumps(doc))


def _future_scheme(folder):
    doc = json.loads((folder / "vocab.json").read_text())
    doc["token_scheme"] = 2
    (folder / "vocab.json").write_text(json.dumps(doc))


def _short_windows(folder):
    doc = json.loads((folder / "heldout.json").read_text())
    doc["windows"] = [w[:10] for w in doc["windows"]]
    (folder / "heldout.json").write_text(json.dumps(doc))


def _bad_index(folder):
    doc = json.loads((folder / "heldout.json").read_text())
    doc["targets"][3] = 999
    (folder / "heldout.json").write_text(json.dumps(doc))


def _truncated_report(folder):
    (folder / "report.json").write_text('{"preset": "def')


@pytest.mark.parametrize(
    ("corrupt", "file", "expected"),
    [
        (_drop_heldout, "heldout.json", "missing from the model folder"),
        (_short_vocab, "model.keras", "predicts 24 tokens but"),
        (_counts_disagree, "vocab.json", "vocabulary and counts disagree"),
        (_future_scheme, "vocab.json", "token scheme 2 is not this Cadenza's"),
        (_short_windows, "heldout.json", "50-token windows"),
        (_bad_index, "heldout.json", "targets hold indices outside the vocabulary"),
        (_truncated_report, "report.json", "corrupt JSON"),
    ],
)
def test_refuses_a_broken_model_folder(tiny_models, tmp_path, corrupt, file, expected):
    model_dir = tmp_path / "model"
    shutil.copytree(tiny_models["default"], model_dir)
    corrupt(model_dir)
    with pytest.raises(ExportError) as caught:
        export_bundle(model_dir, tmp_path / "bundle", ExportConfig())
    assert str(model_dir / file) in str(caught.value)
    assert expected in str(caught.value)
    assert [p.name for p in tmp_path.iterdir()] == ["model"]


def test_export_at_full_size(tmp_path):
    """LSTM 256, the real model's size: parity holds there too."""
    model_dir = make_model_folder(tmp_path / "model", "default", lstm_units=256, windows=64,
                                  heldout=32)
    doc = export_bundle(model_dir, tmp_path / "bundle", ExportConfig())
    assert doc["state"]["size"] == 256
    assert all(c["passed"] for c in doc["parity"]["comparisons"].values())


def test_benchmark_reports_every_runner(tiny_models, tiny_bundles):
    results = run_benchmark(tiny_bundles["default"], calls=20, keras_dir=tiny_models["default"],
                            notes=8)
    runners = {"onnx_stream", "onnx_window", "keras"}
    runners |= {"onnx_int8"} if "stream_int8" in read_bundle(tiny_bundles["default"]).graphs else set()
    assert runners <= set(results)
    for name in runners:
        r = results[name]
        assert r["calls"] == 20
        assert 0 < r["p50_ms"] <= r["p99_ms"] <= r["max_ms"]
    generation = results["generation_8"]
    assert generation["keras_s"] > 0 and generation["onnx_s"] > 0
    assert generation["speedup"] == pytest.approx(generation["keras_s"] / generation["onnx_s"])
    # The window runner is the original's semantics: it plays the Keras loop's notes.
    assert generation["onnx_window_same_notes"] is True


def test_cli_bench_writes_json(tiny_bundles, tmp_path, empty_config, capsys):
    out = tmp_path / "bench.json"
    code = main(["--config", str(empty_config), "bench", "--model", str(tiny_bundles["seed"]),
                 "--calls", "30", "--json", str(out)])
    assert code == 0
    results = json.loads(out.read_text())
    assert {"onnx_stream", "onnx_window", "generation_200"} <= set(results)
    assert "keras" not in results
    assert results["generation_200"]["keras_s"] is None
    assert set(results["onnx_stream"]) == {"calls", "p50_ms", "p99_ms", "max_ms"}
    table = capsys.readouterr().out
    assert "onnx_stream" in table and "p99 ms" in table and "generation of 200 notes" in table


@pytest.mark.parametrize("model", ["seed", "default", "sensitive"])
def test_generate_gives_the_same_notes_from_keras_and_from_the_bundle(
    tiny_models, tiny_bundles, model, tmp_path
):
    from cadenza.train.generate import generate_file

    from_keras = generate_file(tiny_models[model], tmp_path / "k.mid", length=60, seed=4)
    from_bundle = generate_file(tiny_bundles[model], tmp_path / "b.mid", length=60, seed=4)
    assert from_bundle == from_keras


def test_a_seed_model_with_keras2_gates_exports_and_generates_alike(tmp_path):
    """``recurrent_activation = "hard_sigmoid"`` (Keras 2.2's gates, for the
    original's run): the saved model loads again, the exporter rebuilds its
    steps with the same gates, and Keras and the bundle play the same notes."""
    from cadenza.config import ExportConfig
    from cadenza.export.writer import export_bundle
    from cadenza.train.generate import generate_file
    from tests.support.bundle_factory import make_model_folder

    folder = make_model_folder(tmp_path / "seed-hard", "seed", recurrent_activation="hard_sigmoid",
                               weight_scale=3.0)
    bundle = tmp_path / "bundle"
    export_bundle(folder, bundle, ExportConfig(int8=False))
    from_keras = generate_file(folder, tmp_path / "k.mid", length=60, seed=4)
    from_bundle = generate_file(bundle, tmp_path / "b.mid", length=60, seed=4)
    assert from_bundle == from_keras


def test_keras2_hard_sigmoid_is_the_old_piecewise_line():
    import numpy as np

    from cadenza.train.activations import keras2_hard_sigmoid

    x = np.array([-3.0, -2.5, -1.0, 0.0, 1.0, 2.5, 3.0], dtype="float32")
    got = np.asarray(keras2_hard_sigmoid(x))
    np.testing.assert_allclose(got, [0.0, 0.0, 0.3, 0.5, 0.7, 1.0, 1.0], atol=1e-6)


def test_the_bundle_keeps_no_absolute_paths_of_the_training_machine():
    from cadenza.export.writer import portable_report

    report = {
        "test_pieces": ["/home/me/data/piano-midi/chopin/chpn_op7_1.mid", "piano/x.mid"],
        "files": [{"file": "/home/me/data/piano-midi/bach/bach_846.mid", "tokens": 3}],
        "files_skipped": [{"file": "/srv/a/b.mid", "reason": "empty file"}],
        "sources": ["/home/me/data/piano-midi", "music21:bach"],
        "test_accuracy": 0.5,
    }
    portable = portable_report(report)
    assert portable["test_pieces"] == ["chopin/chpn_op7_1.mid", "piano/x.mid"]
    assert portable["files"] == [{"file": "bach/bach_846.mid", "tokens": 3}]
    assert portable["files_skipped"][0] == {"file": "a/b.mid", "reason": "empty file"}
    assert portable["sources"] == ["data/piano-midi", "music21:bach"]
    assert portable["test_accuracy"] == 0.5
    assert report["test_pieces"][0].startswith("/home")  # the run's own report is unchanged
