"""Bad input is named and survived: MIDI files, config files and options, model bundles.

* Training data: every kind of broken MIDI file of ``tests/midi_corruptions``
  is skipped with its reason, the good ones (running status, format 2,
  SMPTE time included) give the right tokens, nothing hangs or allocates
  what a header claims, and a parser process that dies costs only its file.
* Configs: an unknown key, a wrong type or an impossible value stops
  ``train``, ``export``, ``simulate`` and ``live`` before any work.
* Bundles: ``simulate``, ``live`` and ``generate`` refuse a broken bundle
  with one line naming the file and the problem, and write nothing.
"""

from __future__ import annotations

import json
import logging
import os
import random
import shutil
import signal
import tracemalloc
from pathlib import Path

import pytest

from cadenza import cli
from cadenza.bundle import MANIFEST
from cadenza.config import DataConfig
from cadenza.errors import ConfigError
from tests.support import midi_corruptions as bad
from tests.support.midi_corruptions import CASES

pytest.importorskip("music21")

from cadenza.train.corpus import load_corpus  # noqa: E402  (needs music21)
from cadenza.train.parse import ParseSettings, parse_job  # noqa: E402

GOOD = {name: case for name, case in CASES.items() if case.tokens is not None}
BAD = {name: case for name, case in CASES.items() if case.tokens is None}


def write_cases(folder: Path, names=CASES) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    for name in names:
        (folder / name).write_bytes(CASES[name].build())


# -- one file at a time ------------------------------------------------------------


@pytest.mark.parametrize("tokenizer", ["fast", "music21"])
@pytest.mark.parametrize("name", sorted(CASES))
def test_each_kind_of_file_gives_its_tokens_or_its_reason(tmp_path, name, tokenizer):
    write_cases(tmp_path, [name])
    sequences, reason, _ = parse_job(str(tmp_path / name), ParseSettings(tokenizer=tokenizer))
    case = CASES[name]
    if case.tokens is not None:
        assert reason is None
        assert [tuple(s) for s in sequences] == list(case.tokens)
    else:
        assert sequences is None
        assert case.reason in reason, reason


def test_running_status_really_is_running_status():
    """The file leaves out repeated status bytes, and still reads as the plain file does."""
    plain, running = bad.format_0(), bad.running_status()
    assert len(running) < len(plain) - len(bad.MELODY)  # one byte saved per event, at least
    import io

    import mido

    def notes_of(data):
        midi = mido.MidiFile(file=io.BytesIO(data))
        return [(m.note, m.velocity > 0 and m.type == "note_on")
                for m in midi.tracks[0] if m.type in ("note_on", "note_off")]

    assert notes_of(running) == notes_of(plain)


def test_format_2_patterns_are_sequences_of_their_own(tmp_path):
    """Windows never cross sequences, so the patterns are never joined into one."""
    write_cases(tmp_path, ["type2.mid"])
    corpus = load_corpus(DataConfig(sources=(str(tmp_path),), workers=1, min_count=1),
                         cache_dir=tmp_path / "cache")
    (piece,) = corpus.pieces
    assert [tuple(s) for s in piece.sequences] == [bad.MELODY_TOKENS, bad.PATTERN_TOKENS]


@pytest.mark.parametrize("name", ["absurd-length.mid", "absurd-header.mid", "absurd-meta.mid",
                                  "too-many-tracks.mid", "absurd-delta.mid"])
def test_an_absurd_claim_is_refused_without_acting_on_it(tmp_path, name):
    """Gigabyte lengths, 65535 tracks, half a million silent bars: refused from a few bytes.

    Memory is measured, not time: the peak Python allocation while the file
    is checked stays far below what any of the claims would need.
    """
    write_cases(tmp_path, [name])
    tracemalloc.start()
    try:
        sequences, reason, _ = parse_job(str(tmp_path / name), ParseSettings())
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert sequences is None and CASES[name].reason in reason
    assert peak < 2 * 2**20, f"{peak} bytes allocated for a {name}"


def test_a_huge_file_is_refused_before_it_is_read(tmp_path, caplog):
    """A 20 MiB .mid (sparse: no disk used) is skipped by its size; its bytes are never read."""
    write_cases(tmp_path / "data", ["good.mid"])
    huge = tmp_path / "data" / "huge.mid"
    with huge.open("wb") as handle:
        handle.write(bad.good())
        handle.truncate(20 * 2**20)
    with caplog.at_level(logging.INFO, logger="cadenza.train.corpus"):
        corpus = load_corpus(DataConfig(sources=(str(tmp_path / "data"),), workers=1),
                             cache_dir=tmp_path / "cache")
    assert [Path(p.path).name for p in corpus.pieces] == ["good.mid"]
    (skipped,) = corpus.skipped
    assert skipped["file"] == str(huge)
    assert "20 MiB: larger than any MIDI file worth parsing" in skipped["reason"]


# -- a folder of them, through real parser processes -----------------------------------


def _parse_or_die(path: str, *args):
    """``parse_job``, except that a file named crash*.mid kills its process, as the OOM killer would."""
    if Path(path).name.startswith("crash"):
        os.kill(os.getpid(), signal.SIGKILL)
    return parse_job(path, *args)


def test_a_parser_process_that_dies_costs_only_its_own_file(tmp_path, monkeypatch, caplog):
    from cadenza.train import corpus as data

    monkeypatch.setattr(data, "parse_job", _parse_or_die)
    write_cases(tmp_path / "data", ["good.mid", "running-status.mid", "type2.mid"])
    (tmp_path / "data" / "crash.mid").write_bytes(bad.format_0())
    config = DataConfig(sources=(str(tmp_path / "data"),), workers=2)
    with caplog.at_level(logging.INFO, logger="cadenza.train.corpus"):
        corpus = load_corpus(config, cache_dir=tmp_path / "cache")
    assert sorted(Path(p.path).name for p in corpus.pieces) == [
        "good.mid", "running-status.mid", "type2.mid"]
    assert [(Path(s["file"]).name, s["reason"]) for s in corpus.skipped] == [
        ("crash.mid", "the parser process died on this file")]
    assert "used 3 files, skipped 1" in caplog.text
    # The death says nothing about the file: it is not cached as bad.
    monkeypatch.undo()
    again = load_corpus(config, cache_dir=tmp_path / "cache")
    assert (again.parsed, len(again.pieces)) == (1, 4)


@pytest.mark.parametrize("workers", [1, 2])
def test_a_file_music21_would_spend_minutes_on_is_skipped_at_the_time_limit(
    tmp_path, caplog, workers
):
    # 20,000 notes: music21 needs most of a minute for them on the development machine.
    rng = random.Random(0)
    long_tune = [rng.randrange(40, 90) for _ in range(20_000)]
    folder = tmp_path / "data"
    write_cases(folder, ["good.mid"])
    (folder / "long.mid").write_bytes(bad.midi_file([bad.track(bad.notes(long_tune, ticks=120))]))
    # The fast tokenizer reads it in milliseconds; the limit is music21's.
    config = DataConfig(sources=(str(folder),), workers=workers, parse_timeout=2.0,
                        tokenizer="music21")
    with caplog.at_level(logging.WARNING, logger="cadenza.train.corpus"):
        corpus = load_corpus(config, cache_dir=tmp_path / "cache")
    assert [Path(p.path).name for p in corpus.pieces] == ["good.mid"]
    assert [(Path(s["file"]).name, s["reason"]) for s in corpus.skipped] == [
        ("long.mid", "parsing took longer than 2 s ([data] parse_timeout)")]
    assert "long.mid: parsing took longer than 2 s" in caplog.text
    if workers == 2:
        # Running out of time is no fact about the file: it is not cached as bad.
        again = load_corpus(DataConfig(sources=(str(folder),), workers=1, parse_timeout=0.5,
                                       tokenizer="music21"), cache_dir=tmp_path / "cache")
        assert again.parsed == 1 and again.cached == 1


def _train_config(folder: Path, window: int = 4) -> Path:
    path = folder / "config.toml"
    path.write_text(
        "[data]\n"
        f"window = {window}\nmin_count = 1\nworkers = 2\ncache_dir = {json.dumps(str(folder / 'cache'))}\n"
        "[train]\n"
        "epochs = 1\nbatch_size = 16\nlstm_units = 8\nembedding_dim = 4\n"
    )
    return path


@pytest.mark.slow
def test_a_mixed_folder_trains_on_the_good_files_and_names_each_bad_one(tmp_path, caplog):
    pytest.importorskip("tensorflow")
    write_cases(tmp_path / "data")
    out = tmp_path / "run"
    with caplog.at_level(logging.INFO):
        code = cli.main(["--config", str(_train_config(tmp_path)), "train", "--preset", "default",
                         "--data", str(tmp_path / "data"), "--out", str(out)])
    assert code == 0
    warnings = [r.getMessage() for r in caplog.records
                if r.levelno == logging.WARNING and r.name == "cadenza.train.corpus"]
    for name, case in BAD.items():
        (line,) = [w for w in warnings if f"{os.sep}{name}:" in w]
        assert case.reason in line, line
    assert f"used {len(GOOD)} files, skipped {len(BAD)}" in caplog.text
    report = json.loads((out / "report.json").read_text())
    assert report["files_used"] == len(GOOD)
    assert sorted(Path(f["file"]).name for f in report["files"]) == sorted(GOOD)
    skipped = {Path(s["file"]).name: s["reason"] for s in report["files_skipped"]}
    assert set(skipped) == set(BAD)
    assert all(BAD[name].reason in reason for name, reason in skipped.items())
    expected_tokens = sum(len(s) for case in GOOD.values() for s in case.tokens)
    assert report["tokens"] == expected_tokens


# -- configs: refused before any work, by every command ------------------------------------

BAD_CONFIGS = [
    ("[train]\nepochz = 3\n", "[train] epochz: unknown key"),
    ("[live]\ntempo = 90\n", "[live] tempo: unknown key"),
    ("[trainer]\nepochs = 3\n", "unknown section [trainer]"),
    ("epochs = 3\n", "epochs is outside any section"),
    ('[export]\nopset = "17"\n', "[export] opset: expected an integer"),
    ('[live]\nbpm = "fast"\n', "[live] bpm: expected a number"),
    ("[data]\nchordify = 1\n", "[data] chordify: expected true or false"),
    ("[live]\ncc = 21\n", "[live] cc: expected a table"),
    ("[live]\nchannel = 17\n", "[live] channel = 17: must be a MIDI channel"),
    ("[export]\nopset = 12\n", "[export] opset = 12: must be 17 to 18"),
    ("[train]\nseed = -1\n", "[train] seed = -1: must be between 0"),
    ('[train]\nout = ""\n', "[train] out = '': must name a folder"),
    ('[data]\nsources = ["songs", " "]\n', "[data] sources = ('songs', ' '): an empty string"),
    ("[live]\ntemperature = nan\n", "[live] temperature: expected a finite number, got nan"),
    ("[train]\nlearning_rate = inf\n", "[train] learning_rate: expected a finite number"),
    ("[export]\ntolerance = -inf\n", "[export] tolerance: expected a finite number"),
    ("[live.cc]\ntemperature = 21\nmode = 21\n", "controller 21 is given to more than one"),
    ("[train\nepochs = 3\n", "not valid TOML"),
]


def _command(name: str, tmp: Path) -> tuple[list[str], Path]:
    """The command line of ``name``, and the output it must not write."""
    if name == "train":
        return ["train", "--data", str(tmp), "--out", str(tmp / "run")], tmp / "run"
    if name == "export":
        return ["export", "--model", str(tmp), "--out", str(tmp / "bundle")], tmp / "bundle"
    if name == "simulate":
        return ["simulate", "--out", str(tmp / "duet.mid")], tmp / "duet.mid"
    return ["live", "--record", str(tmp / "live.mid"), "--duration", "1"], tmp / "live.mid"


@pytest.fixture
def handlers_started(monkeypatch):
    """Records any command handler that starts (and stops it there)."""
    started = []
    monkeypatch.setattr(cli, "_handler", lambda command: lambda *a: started.append(command) or 0)
    return started


@pytest.mark.parametrize("command", ["train", "export", "simulate", "live"])
@pytest.mark.parametrize(("toml", "named"), BAD_CONFIGS)
def test_a_bad_config_stops_every_command_before_any_work(
    tmp_path, caplog, handlers_started, command, toml, named
):
    config = tmp_path / "config.toml"
    config.write_text(toml)
    argv, output = _command(command, tmp_path)
    with caplog.at_level(logging.ERROR):
        code = cli.main(["--config", str(config), *argv])
    assert code == ConfigError.exit_code != 0
    assert named in caplog.text and str(config) in caplog.text
    assert handlers_started == []
    assert sorted(p.name for p in tmp_path.iterdir()) == ["config.toml"]
    assert not output.exists()


@pytest.mark.parametrize(
    ("command", "option", "named"),
    [
        ("train", ["--seed", "-3"], "[train] seed = -3"),
        ("train", ["--epochs", "0"], "[train] epochs = 0"),
        ("export", ["--opset", "99"], "[export] opset = 99"),
        ("simulate", ["--bpm", "1000"], "[live] bpm = 1000.0"),
        ("simulate", ["--temperature", "nan"], "[live] temperature: expected a finite number"),
        ("simulate", ["--seed", "-1"], "[live] seed = -1"),
        ("live", ["--channel", "0"], "[live] channel = 0"),
        ("live", ["--top-p", "0"], "[live] top_p = 0.0"),
        ("live", ["--bpm", "inf"], "[live] bpm: expected a finite number"),
    ],
)
def test_an_impossible_option_stops_the_command_before_any_work(
    tmp_path, caplog, handlers_started, command, option, named
):
    (tmp_path / "config.toml").write_text("")
    argv, output = _command(command, tmp_path)
    with caplog.at_level(logging.ERROR):
        code = cli.main(["--config", str(tmp_path / "config.toml"), *argv, *option])
    assert code != 0
    assert named in caplog.text and "command line" in caplog.text
    assert handlers_started == []
    assert not output.exists()


# -- bundles: refused by the commands that run them -----------------------------------------


def _corrupt_graph(folder: Path) -> str:
    """Every graph file garbage (generate runs the window graph, live the stream one)."""
    for graph in folder.glob("*.onnx"):
        graph.write_bytes(b"\x08\x07not a protobuf at all" * 8)
    return ".onnx: corrupt or unreadable ONNX graph"


def _truncated_manifest(folder: Path) -> str:
    text = (folder / MANIFEST).read_text()
    (folder / MANIFEST).write_text(text[: len(text) // 3])
    return f"{folder / MANIFEST}: corrupt JSON"


def _vocabulary_not_the_graphs(folder: Path) -> str:
    """The manifest agrees with itself; the graph predicts one token more."""
    doc = json.loads((folder / MANIFEST).read_text())
    doc["vocabulary"] = doc["vocabulary"][:-1]
    keep = set(doc["vocabulary"])
    doc["primers"] = [[t if t in keep else doc["vocabulary"][0] for t in p] for p in doc["primers"]]
    for spec in doc["graphs"].values():
        spec["outputs"]["probs"]["shape"][-1] = len(doc["vocabulary"])
    (folder / MANIFEST).write_text(json.dumps(doc))
    return "predicts 24 tokens but the vocabulary"


def _future_scheme(folder: Path) -> str:
    doc = json.loads((folder / MANIFEST).read_text())
    doc["token_scheme"] = 99
    (folder / MANIFEST).write_text(json.dumps(doc))
    return f"{folder / MANIFEST}: token scheme version 99 is not supported"


def _bundle_command(command: str, bundle: Path, tmp: Path) -> tuple[list[str], Path]:
    if command == "simulate":
        out = tmp / "duet.mid"
        return ["simulate", "--model", str(bundle), "--out", str(out)], out
    if command == "generate":
        out = tmp / "song.mid"
        return ["generate", "--model", str(bundle), "--length", "8", "--out", str(out)], out
    out = tmp / "live.mid"
    return ["live", "--model", str(bundle), "--record", str(out), "--duration", "1"], out


@pytest.mark.slow
@pytest.mark.parametrize("command", ["simulate", "live", "generate"])
@pytest.mark.parametrize(
    "corrupt", [_corrupt_graph, _truncated_manifest, _vocabulary_not_the_graphs, _future_scheme]
)
def test_a_broken_bundle_is_refused_by_name(tiny_bundles, tmp_path, caplog, command, corrupt):
    folder = tmp_path / "bundle"
    shutil.copytree(tiny_bundles["default"], folder)
    expected = corrupt(folder)
    (tmp_path / "config.toml").write_text("")
    argv, output = _bundle_command(command, folder, tmp_path)
    with caplog.at_level(logging.ERROR):
        code = cli.main(["--config", str(tmp_path / "config.toml"), *argv])
    assert code != 0
    errors = [r for r in caplog.records if r.levelno >= logging.ERROR]
    assert len(errors) == 1 and expected in errors[0].getMessage(), caplog.text
    assert errors[0].exc_info is None  # one line, not a traceback
    assert str(folder) in errors[0].getMessage()
    assert not output.exists()


def test_the_parse_time_limit_holds_even_when_the_first_alarm_is_swallowed():
    import time

    from cadenza.train.parse import ParseTimeout, _time_limit

    started = time.perf_counter()
    swallowed = 0
    with pytest.raises(ParseTimeout), _time_limit(0.2):
        while time.perf_counter() - started < 5:
            try:
                while True:
                    time.sleep(0.01)
            except BaseException:  # a bare except, as some library code has
                swallowed += 1
                if swallowed > 1:
                    raise
    assert swallowed == 2
    assert time.perf_counter() - started < 1.0


def test_a_time_limit_signal_that_lands_where_it_cannot_raise_is_not_reported():
    """Inside the limit, an unraisable ParseTimeout (the signal fell in a gc
    callback) is dropped, to be raised again at the next re-arm; any other
    unraisable exception still reaches the host's hook."""
    import sys
    import types

    from cadenza.train.parse import ParseTimeout, _time_limit

    seen = []
    saved = sys.unraisablehook
    sys.unraisablehook = seen.append
    try:
        with _time_limit(60.0):
            sys.unraisablehook(types.SimpleNamespace(exc_value=ParseTimeout()))
            other = types.SimpleNamespace(exc_value=ValueError("x"))
            sys.unraisablehook(other)
        assert seen == [other]
        assert sys.unraisablehook == seen.append  # the host's hook is back
    finally:
        sys.unraisablehook = saved
