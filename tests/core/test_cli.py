"""The command line: option checks and the int8 choice for live use."""

from __future__ import annotations

import argparse
import json
import logging
import shutil
from dataclasses import replace

import pytest

from cadenza import cli
from cadenza.config import LiveConfig


@pytest.mark.parametrize(
    "argv",
    [
        ["simulate", "--out", "x.mid", "--bars", "-1"],
        ["simulate", "--out", "x.mid", "--bars", "nan"],
        ["live", "--duration", "0"],
        ["generate", "--model", "m", "--out", "x.mid", "--length", "0"],
        ["bench", "--calls", "-5"],
        ["evaluate", "--data", "x", "--call-onsets", "0"],
    ],
)
def test_a_number_that_must_be_positive_is_refused_by_argparse(argv, capsys):
    with pytest.raises(SystemExit) as stop:
        cli.main(argv)
    assert stop.value.code == 2
    assert "must be above zero" in capsys.readouterr().err


def test_every_choice_of_the_engine_is_explained_in_the_help(capsys):
    from cadenza.config import KEY_SETTINGS, MODES, REGISTERS, RHYTHMS

    assert tuple(cli.MODE_HELP) == MODES and tuple(cli.RHYTHM_HELP) == RHYTHMS
    assert set(cli.KEY_HELP) == set(KEY_SETTINGS) and tuple(cli.REGISTER_HELP) == REGISTERS
    for command in ("simulate", "live"):
        with pytest.raises(SystemExit):
            cli.main([command, "--help"])
        text = " ".join(capsys.readouterr().out.split())
        live = LiveConfig()
        # --key lists every setting, and marks the built-in default as such
        assert f"--key KEY {live.key} (default): " in text
        for choice in (*KEY_SETTINGS, *MODES, *RHYTHMS, *REGISTERS):
            assert f"{choice}: " in text or f"{choice} (default): " in text, (command, choice)


def test_int8_is_used_where_the_bundle_has_it_and_falls_back_with_a_warning(
    tiny_bundles, tmp_path, caplog
):
    from cadenza.live.model import load_live_predictor

    source = tiny_bundles["default"]
    settings = replace(LiveConfig(), model=str(source), int8=True)
    manifest = json.loads((source / "model.json").read_text())
    predictor = load_live_predictor(settings)
    if "stream_int8" in manifest["graphs"]:
        assert predictor.spec.kind == "stream_int8"

    stripped = tmp_path / "fp32-only"
    shutil.copytree(source, stripped)
    manifest["graphs"] = {k: v for k, v in manifest["graphs"].items() if "int8" not in k}
    (stripped / "model.json").write_text(json.dumps(manifest))
    with caplog.at_level(logging.WARNING):
        predictor = load_live_predictor(replace(settings, model=str(stripped)))
    assert predictor.spec.kind == "stream"
    assert "no int8 stream graph" in caplog.text


@pytest.mark.parametrize("command", ["simulate", "live"])
def test_the_key_help_names_every_key_setting_and_the_default(command):
    from cadenza.cli import build_parser
    from cadenza.config import KEY_SETTINGS, LiveConfig

    parser = build_parser()
    sub = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    (key,) = [a for a in sub.choices[command]._actions if "--key" in a.option_strings]
    assert all(choice in key.help for choice in KEY_SETTINGS), key.help
    assert f"{LiveConfig.key} (default)" in key.help
