"""README.md as a newcomer reads it: every command it shows exists as written.

Each ``cadenza ...`` line of its command blocks must parse with the real
argument parser (so an option renamed in the code breaks this test, not a
newcomer's first try), each ``make`` target must exist in the Makefile, and
each linked file must be in the repository.  ``scripts/run.sh`` (what
``make run`` runs) is tested for each of its outcomes with a stand-in for the
``cadenza`` executable whose ``ports`` answers what the test needs (or the
real one, on a python-rtmidi that cannot load libasound); the fallback's
``simulate`` is the real one.
"""

from __future__ import annotations

import re
import shlex
import stat
import subprocess
import sys
from pathlib import Path

import mido
import pytest

from cadenza.cli import build_parser
from tests.midi.test_midi_backend import unloadable_rtmidi

REPO = Path(__file__).resolve().parents[2]
README = REPO / "README.md"


def readme_commands() -> list[str]:
    """The lines of README's indented command blocks, comments stripped."""
    commands = []
    for line in README.read_text(encoding="utf-8").splitlines():
        if not line.startswith("    ") or line.strip().startswith(("cadenza/", "train/")):
            continue
        text = line.strip()
        if "#" in text:
            text = text[: text.index("#")].strip()
        if text:
            commands.append(text)
    return commands


def test_readme_shows_the_two_commands_first():
    commands = readme_commands()
    assert commands[:2] == ["make run", "make test"]


@pytest.mark.parametrize(
    "command", [c for c in readme_commands() if c.startswith("cadenza ")] or ["<none>"]
)
def test_every_cadenza_command_in_readme_parses(command):
    argv = shlex.split(command)[1:]
    args = build_parser().parse_args(argv)  # SystemExit (a failure) on an unknown option
    assert args.command == argv[0]


def test_every_subcommand_in_readme_has_help(capsys):
    subcommands = {shlex.split(c)[1] for c in readme_commands() if c.startswith("cadenza ")}
    assert {"live", "simulate", "train", "export"} <= subcommands
    for name in sorted(subcommands):
        with pytest.raises(SystemExit) as exit_info:
            build_parser().parse_args([name, "--help"])
        assert exit_info.value.code == 0
        assert f"usage: cadenza {name}" in capsys.readouterr().out


def test_every_make_target_in_readme_exists():
    makefile = (REPO / "Makefile").read_text(encoding="utf-8")
    targets = set(re.findall(r"^([a-z][\w-]*):", makefile, flags=re.MULTILINE))
    used = {shlex.split(c)[1] for c in readme_commands() if c.startswith("make ")}
    assert used, "README shows no make command"
    assert used <= targets, f"README uses make targets the Makefile lacks: {used - targets}"


def test_every_link_in_readme_exists():
    links = re.findall(r"\]\(([^)#]+)\)", README.read_text(encoding="utf-8"))
    local = [link for link in links if "://" not in link]
    assert "docs/results.md" in local
    missing = [link for link in local if not (REPO / link).exists()]
    assert not missing, f"README links to files that are not there: {missing}"


# -- scripts/run.sh: what `make run` does ------------------------------------


def fake_cadenza(tmp_path: Path, ports_status: int, ports_error: str) -> Path:
    """A ``cadenza`` whose ``ports`` exits as told; ``live`` records its arguments,
    anything else runs the real command."""
    script = tmp_path / "cadenza"
    script.write_text(
        "#!/bin/sh\n"
        'case "$1" in\n'
        f"  ports) echo 'ALSA lib seq_hw.c: noise from C' >&2; "
        f"echo '2026-01-01 00:00:00,000 ERROR cadenza.cli: {ports_error}' >&2; "
        f"exit {ports_status};;\n"
        f'  live) echo "$@" > "{tmp_path}/live-args"; exit 0;;\n'
        f'  *) exec "{sys.executable}" -m cadenza "$@";;\n'
        "esac\n",
        encoding="utf-8",
    )
    script.chmod(script.stat().st_mode | stat.S_IXUSR)
    return script


def run_script(tmp_path: Path, cadenza: Path, *args: str) -> subprocess.CompletedProcess:
    env = {"PATH": "/usr/bin:/bin", "CADENZA": str(cadenza), "DUET": str(tmp_path / "duet")}
    return subprocess.run(
        ["bash", str(REPO / "scripts" / "run.sh"), *args],
        env=env, capture_output=True, text=True, timeout=300, check=False,
    )


def test_run_without_a_midi_system_writes_the_offline_duet(tmp_path):
    pytest.importorskip("matplotlib")
    if not (REPO / "models" / "default" / "model.json").is_file():
        pytest.skip("the bundled model is not built")
    cadenza = fake_cadenza(tmp_path, 1, "no MIDI system is available (tried ALSA: none)")
    result = run_script(tmp_path, cadenza)
    assert result.returncode == 0, result.stderr
    assert "no MIDI system" in result.stderr
    assert "noise from C" not in result.stderr  # the reason is shown, not the C libraries' chatter
    assert not (tmp_path / "live-args").exists()
    duet = mido.MidiFile(tmp_path / "duet.mid")
    names = {m.name for track in duet.tracks for m in track if m.type == "track_name"}
    assert "Cadenza" in names
    cadenza_notes = [
        m for track in duet.tracks
        if any(m.type == "track_name" and m.name == "Cadenza" for m in track)
        for m in track if m.type == "note_on" and m.velocity > 0
    ]
    assert cadenza_notes, "Cadenza played nothing in the fallback duet"
    assert (tmp_path / "duet.png").read_bytes().startswith(b"\x89PNG")


def test_run_with_a_midi_system_starts_the_daemon_with_the_options_given(tmp_path):
    cadenza = fake_cadenza(tmp_path, 0, "")
    result = run_script(tmp_path, cadenza, "--mode", "accompany")
    assert result.returncode == 0, result.stderr
    assert (tmp_path / "live-args").read_text().split() == ["live", "--mode", "accompany"]
    assert not (tmp_path / "duet.mid").exists()


def test_run_with_a_bad_config_says_so_and_does_not_fall_back(tmp_path):
    cadenza = fake_cadenza(tmp_path, 2, "config.toml: [live] bpm = 1000.0: must be between 20 and 400")
    result = run_script(tmp_path, cadenza)
    assert result.returncode == 2
    assert "[live] bpm = 1000.0" in result.stderr
    assert not (tmp_path / "duet.mid").exists()
    assert not (tmp_path / "live-args").exists()


def test_run_without_the_midi_libraries_says_which_one_and_falls_back(tmp_path):
    """A minimal image: python-rtmidi cannot load libasound.  The real ``cadenza``
    runs, with an ``rtmidi`` in front of the real one that fails as the loader does."""
    pytest.importorskip("matplotlib")
    if not (REPO / "models" / "default" / "model.json").is_file():
        pytest.skip("the bundled model is not built")
    shadow = unloadable_rtmidi(tmp_path / "shadow")
    cadenza = tmp_path / "cadenza"
    cadenza.write_text(
        f'#!/bin/sh\nPYTHONPATH="{shadow}" exec "{sys.executable}" -m cadenza "$@"\n',
        encoding="utf-8",
    )
    cadenza.chmod(cadenza.stat().st_mode | stat.S_IXUSR)
    result = run_script(tmp_path, cadenza)
    assert result.returncode == 0, result.stderr
    assert "Traceback" not in result.stderr
    reason = next(line for line in result.stderr.splitlines() if "libasound.so.2" in line)
    assert "sudo apt install libasound2" in reason
    assert "cannot open shared object file" in reason
    assert (tmp_path / "duet.mid").is_file()


def test_run_passes_on_the_last_line_of_a_crash_that_logged_nothing(tmp_path):
    cadenza = tmp_path / "cadenza"
    cadenza.write_text(
        "#!/bin/sh\n"
        'case "$1" in\n'
        "  ports) printf 'Traceback (most recent call last):\\n  File \"x\"\\n"
        "ImportError: libfoo.so.1: cannot open\\n\\n' >&2; exit 1;;\n"
        f'  simulate) echo "$@" > "{tmp_path}/simulate-args";;\n'
        "esac\n",
        encoding="utf-8",
    )
    cadenza.chmod(cadenza.stat().st_mode | stat.S_IXUSR)
    result = run_script(tmp_path, cadenza)
    assert result.returncode == 0, result.stderr
    assert "(ImportError: libfoo.so.1: cannot open)" in result.stderr
    assert (tmp_path / "simulate-args").read_text().startswith("simulate --out")
