"""The model in the box: models/default/, as the daemon, simulate and generate find it.

The committed bundle must read, run on onnxruntime in both modes, agree
with itself across them, say truthfully how it was made (the settings of
models/default.toml), stay small enough for git, and be found with no
``--model`` by every command that plays a model.  The last test builds a
real (non-editable) wheel from a copy of the sources, offline, installs it
into a folder and checks the installed package finds its own bundled model:
what a ``pip install .`` on a Raspberry Pi gets.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import sysconfig
import textwrap
import zipfile
from pathlib import Path

import mido
import numpy as np
import pytest

from cadenza.bundle import MANIFEST, bundled_model_path, read_bundle
from cadenza.cli import main
from cadenza.runtime import load_predictor

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib

REPO = Path(__file__).resolve().parents[2]
COMMITTED = REPO / "models" / "default"
RECIPE = REPO / "models" / "default.toml"
# "a few MB": the bundle lives in git (about 4.4 MB of graphs, and 1.7 MB of
# native weights, docs/native.md).
MAX_BUNDLE_BYTES = 7 * 1024 * 1024


@pytest.fixture(scope="module")
def bundle():
    return read_bundle(bundled_model_path())


def cadenza_notes(path: Path) -> list[mido.Message]:
    duet = mido.MidiFile(path)
    return [
        message
        for track in duet.tracks
        if any(m.type == "track_name" and m.name == "Cadenza" for m in track)
        for message in track
        if message.type == "note_on" and message.velocity > 0
    ]


def test_the_package_finds_the_committed_bundle():
    found = bundled_model_path()
    assert found.name == "default" and found.parent.name == "models"
    assert (found / MANIFEST).read_bytes() == (COMMITTED / MANIFEST).read_bytes()


def test_the_bundle_says_how_it_was_made(bundle):
    recipe = tomllib.loads(RECIPE.read_text(encoding="utf-8"))
    report = bundle.manifest["training"]["report"]
    assert report["preset"] == recipe["train"]["preset"] == bundle.manifest["preset"]
    assert report["sources"] == recipe["data"]["sources"]
    assert report["split"] == recipe["train"]["split"]
    assert report["lstm_units"] == recipe["train"]["lstm_units"] == bundle.state_size
    # A finished run of the epochs the recipe asks for, not a stopped one.
    assert report["epochs"] == report["epochs_requested"] == recipe["train"]["epochs"]
    assert report["interrupted"] is False
    assert report["vocab_size"] == bundle.vocab_size and report["window"] == bundle.window
    metrics = bundle.manifest["metrics"]
    assert 0.0 < metrics["test_accuracy"] <= 1.0 and metrics["test_loss"] > 0.0
    comparisons = bundle.manifest["parity"]["comparisons"].values()
    assert comparisons and all(c["passed"] for c in comparisons)


def test_the_bundle_is_small_enough_for_git(bundle):
    files = [p for p in COMMITTED.iterdir() if p.is_file()]
    native = bundle.manifest["native"]["file"]
    assert {p.name for p in files} == {MANIFEST, native} | {g.path.name for g in bundle.graphs.values()}
    assert sum(p.stat().st_size for p in files) < MAX_BUNDLE_BYTES


def test_both_modes_are_there(bundle):
    assert {"window", "stream"} <= set(bundle.graphs)


@pytest.mark.parametrize("runner", ["stream", "window"])
@pytest.mark.parametrize("int8", [False, True], ids=["fp32", "int8"])
def test_each_graph_answers_a_distribution_over_the_vocabulary(bundle, runner, int8):
    if int8 and f"{runner}_int8" not in bundle.graphs:
        pytest.skip(f"the export did not keep a {runner}_int8 graph")
    predictor = load_predictor(None, runner=runner, int8=int8)
    assert predictor.vocabulary == bundle.vocabulary
    index = {token: i for i, token in enumerate(bundle.vocabulary)}
    predictor.reset([index[t] for t in bundle.primers[0]])
    before = predictor.distribution()
    assert before.shape == (bundle.vocab_size,)
    assert np.all(before >= 0.0) and abs(before.sum() - 1.0) < 1e-6
    predictor.feed(int(before.argmax()))
    after = predictor.distribution()
    assert after.shape == (bundle.vocab_size,) and not np.allclose(before, after)


def test_stream_and_window_agree_on_a_full_window(bundle):
    index = {token: i for i, token in enumerate(bundle.vocabulary)}
    primer = [index[t] for t in bundle.primers[1]]
    assert len(primer) == bundle.window
    answers = []
    for runner in ("stream", "window"):
        predictor = load_predictor(None, runner=runner)
        predictor.reset(primer)
        answers.append(predictor.distribution())
    assert np.max(np.abs(answers[0] - answers[1])) < 1e-4


def test_the_model_predicts_held_out_music_better_than_its_commonest_token(bundle):
    """The primers are held-out windows: from the first 49 tokens of each,
    predict the 50th.  Garbage weights (a broken export, a mixed-up
    vocabulary) cannot beat always answering the commonest token."""
    index = {token: i for i, token in enumerate(bundle.vocabulary)}
    windows = np.array([[index[t] for t in p] for p in bundle.primers])
    predictor = load_predictor(None, runner="window")
    hits = 0
    for window in windows:
        predictor.reset(window[:-1].tolist())
        hits += int(predictor.distribution().argmax() == window[-1])
    commonest = np.bincount(windows[:, -1]).max()
    assert hits > commonest, f"{hits} right of {len(windows)}; the commonest target alone: {commonest}"


# -- conditioned on the call -----------------------------------------------------

D_MAJOR = [62, 64, 66, 67, 69, 71, 73, 74]  # D4 .. D5
A_FLAT_MAJOR = [56, 58, 60, 61, 63, 65, 67, 68]  # G#3 .. G#4: shares only G and C# with D major
TEMPERATURES = (0.0, 0.7, 1.0)


def scale_walk(scale: list[int], seed: int, length: int = 8) -> list[int]:
    """A seeded walk over a scale by steps and thirds, from its tonic back to it."""
    rng = np.random.default_rng(seed)
    degrees = [0]
    for _ in range(length - 2):
        degrees.append(int(np.clip(degrees[-1] + rng.choice([-2, -1, 1, 2]), 0, len(scale) - 1)))
    return [scale[d] for d in [*degrees, 0]]


def first_answer_token(runner: str, call: list[int], **settings) -> str:
    from cadenza.config import LiveConfig
    from cadenza.live.engine.engine import Engine
    from tests.engine.test_engine import phrase, run

    engine = Engine(load_predictor(None, runner=runner), LiveConfig(**settings))
    assert engine.window == ()  # no primer: the model hears the call alone
    run(engine, phrase(call), end=30.0)
    assert len(engine.window) > len(call)
    return engine.window[len(call)]


def in_d_major(token: str) -> bool:
    """A note by its pitch class; a chord only when every pitch class is in the key."""
    from cadenza.key import parse_key
    from cadenza.key_mask import token_pitch_classes

    return set(token_pitch_classes(token)) <= parse_key("D major").pitch_classes


def test_the_bundled_model_starts_from_the_call_alone(bundle):
    from cadenza.config import LiveConfig
    from cadenza.live.engine.engine import Engine

    assert not bundle.left_filled  # the default preset: no primer in front of the call
    for runner in ("stream", "window"):
        predictor = load_predictor(None, runner=runner)
        assert predictor.fill == ()
        assert Engine(predictor, LiveConfig()).window == ()


def test_different_calls_give_different_answers(bundle):
    from cadenza.live.engine.vocab_map import VocabMap

    vocab = VocabMap(bundle.vocabulary)
    distributions = {}
    for runner in ("stream", "window"):
        predictor = load_predictor(None, runner=runner)
        for name, scale in (("D", D_MAJOR), ("Ab", A_FLAT_MAJOR)):
            predictor.reset([vocab.index_of_notes([n]) for n in scale_walk(scale, 1)])
            distributions[runner, name] = predictor.distribution()
    # Shorter than the window, both runners run the same model from zero state.
    for name in ("D", "Ab"):
        np.testing.assert_allclose(distributions["stream", name], distributions["window", name],
                                   atol=1e-5)
    total_variation = 0.5 * np.abs(distributions["stream", "D"] - distributions["stream", "Ab"]).sum()
    assert total_variation > 0.2


def test_an_answer_to_a_call_in_d_major_starts_in_d_major(bundle):
    """The first answer token after 12 seeded D major calls, at three
    temperatures, with key awareness off (the model alone): in D major far
    more often than a token drawn from the vocabulary at random is, and than
    the answers to calls in A-flat major are.  The bundled model (Bach
    chorales) does 30 of 36 here, against a chance of 0.43."""
    chance = np.mean([in_d_major(token) for token in bundle.vocabulary])
    rates = {}
    for name, scale in (("D", D_MAJOR), ("Ab", A_FLAT_MAJOR)):
        hits = [
            in_d_major(first_answer_token("stream", scale_walk(scale, seed), key="off",
                                          temperature=temperature, seed=seed))
            for seed in range(12)
            for temperature in TEMPERATURES
        ]
        rates[name] = float(np.mean(hits))
    assert rates["D"] >= 0.65, rates
    assert rates["D"] >= chance + 0.2, (rates, chance)
    assert rates["D"] >= rates["Ab"] + 0.2, rates


def test_key_strength_one_keeps_every_first_answer_in_the_key():
    for seed in range(4):
        for temperature in TEMPERATURES:
            token = first_answer_token("window", scale_walk(A_FLAT_MAJOR, seed), key="D major",
                                       key_strength=1.0, temperature=temperature, seed=seed)
            assert in_d_major(token), (seed, temperature, token)


def test_simulate_with_no_model_plays_the_bundled_one(tmp_path):
    out = tmp_path / "duet.mid"
    assert main(["simulate", "--out", str(out)]) == 0
    assert cadenza_notes(out)
    assert main(["simulate", "--runner", "window", "--out", str(tmp_path / "w.mid")]) == 0
    assert cadenza_notes(tmp_path / "w.mid")


def test_generate_with_no_model_plays_the_bundled_one(tmp_path):
    out = tmp_path / "melody.mid"
    assert main(["generate", "--length", "24", "--seed", "1", "--out", str(out)]) == 0
    notes = [m for m in mido.MidiFile(out) if m.type == "note_on" and m.velocity > 0]
    assert len(notes) >= 24  # a chord token plays several notes


def test_no_bundled_model_says_what_to_do(tmp_path, monkeypatch, caplog):
    import cadenza.cli

    monkeypatch.setattr(cadenza.cli, "bundled_model_path", lambda: tmp_path / "none")
    code = main(["generate", "--out", str(tmp_path / "x.mid")])
    assert code != 0 and not (tmp_path / "x.mid").exists()
    assert "--model" in caplog.text and "make bundle" in caplog.text


# -- a real, non-editable install ---------------------------------------------

SOURCES = ("pyproject.toml", "README.md", "cadenza", "live", "train", "export", "models")


def test_a_non_editable_install_carries_the_bundled_model(tmp_path):
    """pip builds a wheel from a copy of the sources (no network: the
    environment's setuptools, no dependencies) and installs it into a folder;
    a fresh interpreter that sees only that folder (and, for numpy and
    onnxruntime, the site-packages, but not the editable install's finder)
    finds the model inside the installed package and plays it."""
    source = tmp_path / "src"
    source.mkdir()
    ignore = shutil.ignore_patterns("__pycache__", "*.pyc")
    for name in SOURCES:
        path = REPO / name
        if path.is_dir():
            shutil.copytree(path, source / name, ignore=ignore)
        else:
            shutil.copy2(path, source / name)
    pip = [sys.executable, "-m", "pip", "--disable-pip-version-check", "-q"]
    env = dict(os.environ, PIP_NO_INDEX="1")
    subprocess.run([*pip, "wheel", "--no-deps", "--no-build-isolation", "-w",
                    str(tmp_path / "dist"), str(source)], check=True, env=env, timeout=300)
    (wheel,) = (tmp_path / "dist").glob("cadenza-*.whl")
    names = set(zipfile.ZipFile(wheel).namelist())
    graphs = {f"cadenza/models/default/{p.name}" for p in COMMITTED.iterdir() if p.is_file()}
    assert graphs <= names
    assert "cadenza/live/examples/phrase.mid" in names

    target = tmp_path / "site"
    subprocess.run([*pip, "install", "--no-deps", "--target", str(target), str(wheel)],
                   check=True, env=env, timeout=300)
    check = textwrap.dedent(f"""
        import sys
        sys.path[:0] = [{str(target)!r}, {sysconfig.get_paths()["purelib"]!r},
                        {sysconfig.get_paths()["platlib"]!r}]
        import cadenza.bundle
        from cadenza.cli import main
        path = cadenza.bundle.bundled_model_path()
        assert path.is_relative_to({str(target)!r}), path
        cadenza.bundle.read_bundle(path)
        sys.exit(main(["simulate", "--out", {str(tmp_path / "duet.mid")!r}]))
    """)
    # -S: no site processing, so the editable install's import hook is not loaded.
    result = subprocess.run([sys.executable, "-S", "-c", check], cwd=tmp_path,
                            capture_output=True, text=True, timeout=300, check=False)
    assert result.returncode == 0, result.stderr
    assert cadenza_notes(tmp_path / "duet.mid")
