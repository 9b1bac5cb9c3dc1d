"""Configuration errors are named, and stop the command before any work starts."""

from __future__ import annotations

import json
import logging

import pytest

from cadenza import cli
from cadenza.config import Config, as_dict, load_config, parse_assignment
from cadenza.errors import ConfigError


@pytest.fixture
def no_work(monkeypatch):
    """Fail the test if a train or generate handler ever starts."""
    import cadenza.train.cli as handlers

    started = []
    monkeypatch.setattr(handlers, "run_train", lambda *a: started.append("train") or 0)
    monkeypatch.setattr(handlers, "run_generate", lambda *a: started.append("generate") or 0)
    return started


def _run(tmp_path, caplog, toml: str, *argv: str) -> tuple[int, str]:
    config = tmp_path / "config.toml"
    config.write_text(toml, encoding="utf-8")
    out = tmp_path / "out"
    with caplog.at_level(logging.ERROR):
        code = cli.main(["--config", str(config), "train", "--out", str(out), *argv])
    assert not out.exists()
    return code, caplog.text


@pytest.mark.parametrize(
    ("toml", "named"),
    [
        ("[train]\nepochz = 3\n", "[train] epochz: unknown key"),
        ('[train]\nepochs = "ten"\n', "[train] epochs: expected an integer"),
        ("[data]\nmin_count = 0\n", "[data] min_count = 0: must be at least 1"),
        ("[data]\nchordify = 1\n", "[data] chordify: expected true or false"),
        ('[train]\nsplit = "files"\n', "[train] split = 'files'"),
        ("[train]\ntest_fraction = 1.5\n", "[train] test_fraction = 1.5"),
        ('[data]\nsources = ["a", 3]\n', "[data] sources: expected a list of strings"),
        ("[live]\nrelease_echo_ms = -5\n", "[live] release_echo_ms = -5"),
        ('[train]\nrecurrent_activation = "tanh"\n', "[train] recurrent_activation = 'tanh'"),
        ('[train]\nvocab_order = "set"\n', "[train] vocab_order = 'set'"),
        ("[trainer]\nepochs = 3\n", "unknown section [trainer]"),
        ("[train\nepochs = 3\n", "not valid TOML"),
    ],
)
def test_a_bad_config_file_is_named_and_nothing_runs(tmp_path, caplog, no_work, toml, named):
    code, text = _run(tmp_path, caplog, toml)
    assert code == ConfigError.exit_code != 0
    assert named in text
    assert str(tmp_path / "config.toml") in text
    assert no_work == []


@pytest.mark.parametrize(
    ("argv", "named"),
    [
        (["--epochs", "0"], "[train] epochs = 0: must be at least 1"),
        (["--min-count", "-2"], "[data] min_count = -2"),
        (["--batch-size", "0"], "[train] batch_size = 0"),
        (["--max-files", "-1"], "[data] max_files = -1"),
    ],
)
def test_an_impossible_option_is_named_and_nothing_runs(tmp_path, caplog, no_work, argv, named):
    code, text = _run(tmp_path, caplog, "", *argv)
    assert code != 0
    assert named in text and "command line" in text
    assert no_work == []


def test_a_missing_config_file_is_an_error(tmp_path, caplog, no_work):
    with caplog.at_level(logging.ERROR):
        code = cli.main(["--config", str(tmp_path / "nope.toml"), "train"])
    assert code != 0
    assert "nope.toml: config file not found" in caplog.text
    assert no_work == []


def test_generate_refuses_a_length_below_one(tmp_path, capsys):
    with pytest.raises(SystemExit) as stop:
        cli.main(["generate", "--model", str(tmp_path), "--out", str(tmp_path / "x.mid"),
                  "--length", "0"])
    assert stop.value.code == 2
    assert "--length" in capsys.readouterr().err
    assert not (tmp_path / "x.mid").exists()


def test_command_line_overrides_the_file(tmp_path, monkeypatch):
    config = tmp_path / "config.toml"
    config.write_text('[train]\nepochs = 7\npreset = "seed"\n[data]\nmin_count = 9\n')
    seen: list[Config] = []
    import cadenza.train.cli as handlers

    monkeypatch.setattr(handlers, "run_train", lambda args, cfg: seen.append(cfg) or 0)
    code = cli.main(["--config", str(config), "train", "--epochs", "2", "--data", "x", "y",
                     "--out", str(tmp_path / "o"), "--split", "pieces"])
    assert code == 0
    (used,) = seen
    assert used.train.epochs == 2 and used.train.preset == "seed"
    assert used.train.split == "pieces" and used.train.out == str(tmp_path / "o")
    assert used.data.min_count == 9 and used.data.sources == ("x", "y")


def test_config_round_trips_as_plain_data():
    config = load_config(None, overrides={"data": {"sources": ["music21:bach"], "chordify": False}})
    plain = as_dict(config)
    assert plain["data"]["sources"] == ["music21:bach"]
    assert plain["data"]["chordify"] is False
    assert plain["train"]["preset"] == "default"


def test_the_shipped_config_file_loads_and_round_trips():
    from pathlib import Path

    shipped = Path(__file__).resolve().parents[2] / "config.toml"
    plain = as_dict(load_config(shipped))
    assert plain["live"]["cc"]["temperature"] == 21  # a [live.cc] table survives
    json.dumps(plain)  # reports and bundles store it as JSON


def test_the_repositorys_config_file_is_the_built_in_defaults():
    # One home for every default: the daemon behaves the same inside the
    # checkout (where ./config.toml is read) and outside it.
    from pathlib import Path

    repo_file = Path(__file__).resolve().parents[2] / "config.toml"
    assert as_dict(load_config(repo_file)) == as_dict(Config())


@pytest.mark.parametrize(
    ("text", "expected"),
    [("temperature=0.8", ("temperature", 0.8)), ("top_k = 5", ("top_k", 5)),
     ("clock_out=true", ("clock_out", True)), ("rhythm=mirror", ("rhythm", "mirror")),
     ("grid=1/8", ("grid", "1/8")), ('model="a b"', ("model", "a b"))],
)
def test_a_command_line_assignment_reads_toml_values_and_plain_words(text, expected):
    assert parse_assignment(text) == expected


def test_an_assignment_is_checked_like_the_file():
    key, value = parse_assignment("top_p=1.5")
    with pytest.raises(ConfigError, match=r"\[live\] top_p"):
        load_config(None, overrides={"live": {key: value}})
    with pytest.raises(ConfigError, match="KEY=VALUE"):
        parse_assignment("=3")
