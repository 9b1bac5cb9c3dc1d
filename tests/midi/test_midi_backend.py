"""A machine without the MIDI libraries: one line that says what to install.

python-rtmidi's wheels link the system's ``libasound.so.2``; on a minimal
image its import fails in the dynamic loader.  These tests stand a package
named ``rtmidi`` in front of the real one whose import fails the same way,
then run the real ``cadenza`` in a subprocess, so what a user sees (stderr,
exit status, no traceback) is what is checked.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from cadenza.errors import PortError
from cadenza.live.midi.midi_backend import missing_library, rtmidi_import_error

LOADER_TEXT = "libasound.so.2: cannot open shared object file: No such file or directory"


def unloadable_rtmidi(folder: Path, text: str = LOADER_TEXT) -> Path:
    """A folder holding an ``rtmidi`` package whose import fails as the loader's does."""
    package = folder / "rtmidi"
    package.mkdir(parents=True)
    (package / "__init__.py").write_text(f"raise ImportError({text!r})\n", encoding="utf-8")
    return folder


def run_cadenza(tmp_path: Path, *argv: str) -> subprocess.CompletedProcess:
    shadow = unloadable_rtmidi(tmp_path / "shadow")
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(
        p for p in (str(shadow), os.environ.get("PYTHONPATH", "")) if p
    ))
    # cwd: away from the checkout's config.toml, as a fresh install would be.
    return subprocess.run(
        [sys.executable, "-m", "cadenza", *argv],
        cwd=tmp_path, env=env, capture_output=True, text=True, timeout=120, check=False,
    )


@pytest.mark.parametrize("argv", [["live"], ["ports"], ["panic", "--out", "synth"]])
def test_live_ports_and_panic_name_the_missing_library_in_one_line(tmp_path, argv):
    result = run_cadenza(tmp_path, *argv)
    assert result.returncode == 1, result.stderr
    assert "Traceback" not in result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    line = lines[0]
    assert "ERROR" in line
    assert "libasound.so.2" in line and LOADER_TEXT in line
    assert "sudo apt install libasound2" in line
    assert "libjack-jackd2-0" in line
    assert result.stdout == ""


def test_simulate_still_works_without_the_midi_libraries(tmp_path):
    from cadenza.bundle import MANIFEST, bundled_model_path

    if not (bundled_model_path() / MANIFEST).is_file():
        pytest.skip("the bundled model is not built")
    result = run_cadenza(tmp_path, "simulate", "--out", "duet.mid")
    assert result.returncode == 0, result.stderr
    assert (tmp_path / "duet.mid").is_file()


def test_the_missing_library_is_read_from_the_loaders_text():
    assert missing_library(ImportError(LOADER_TEXT)) == "libasound.so.2"
    assert missing_library(ImportError("libjack.so.0: cannot open shared object file")) == (
        "libjack.so.0"
    )
    assert missing_library(ImportError("undefined symbol: snd_seq_open")) is None


@pytest.mark.parametrize(
    ("err", "expected"),
    [
        (ImportError("libjack.so.0: cannot open shared object file"),
         "cannot load libjack.so.0 (libjack.so.0: cannot open shared object file); "
         "install the JACK library: `sudo apt install libjack-jackd2-0`"),
        (ImportError("libstdc++.so.6: cannot open shared object file"),
         "the package that provides libstdc++.so.6"),
        (ImportError("/x/_rtmidi.so: undefined symbol:\n snd_seq_open"),
         "cannot be imported (/x/_rtmidi.so: undefined symbol: snd_seq_open); "
         "install the ALSA library: `sudo apt install libasound2`"),
        (ModuleNotFoundError("No module named 'rtmidi'", name="rtmidi"),
         "is not installed in this Python: `pip install python-rtmidi`"),
    ],
)
def test_each_import_failure_says_what_to_do(err, expected):
    error = rtmidi_import_error(err)
    assert isinstance(error, PortError) and isinstance(error, OSError)
    assert expected in str(error)
    assert "\n" not in str(error)
