"""The Windows build (`make plugin-windows`: MinGW-w64, DPF's WINDOWS=true),
played under Wine by the CLAP and VST3 test hosts built as Windows programs: it loads
the bundled model from its resources folder through a Windows path and plays,
to the frame, what the Linux build plays.

This is the Windows build's code on Wine's Windows API, not Windows itself:
what it proves is the cross-build, the Windows code paths of the plugin and
its host (LoadLibrary, backslash paths) and that nothing in the engine
depends on the platform's C library.  A real Windows DAW is not tested.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from pathlib import Path

import pytest

from tests.plugin.lv2_host import CLAP_FILE, PLUGIN_DIR, REPO, require_built
from tests.plugin.test_plugin_bundle import VST3_BINARY
from tests.plugin.test_plugin_clap import CLAP_HOST, PASS_THROUGH, run_script_host
from tests.plugin.test_plugin_lv2 import answers, frame_of, on_grid, the_call
from tests.plugin.test_plugin_vst3 import VST3_HOST

pytestmark = pytest.mark.plugin

WINDOWS_DIR = REPO / "build" / "plugin-windows"
WINDOWS_CLAP = WINDOWS_DIR / "cadenza.clap"
WINDOWS_HOST = WINDOWS_DIR / "tools" / "clap_host.exe"
WINDOWS_VST3_HOST = WINDOWS_DIR / "tools" / "vst3_host.exe"
WINDOWS_VST3 = WINDOWS_DIR / "cadenza.vst3" / "Contents" / "x86_64-win" / "cadenza.vst3"
WINDOWS_LV2 = WINDOWS_DIR / "cadenza.lv2"


def wine() -> str:
    for candidate in ("/usr/lib/wine/wine64", shutil.which("wine64"), shutil.which("wine")):
        if candidate and Path(candidate).is_file():
            return candidate
    message = "no Wine (wine64) to run the Windows build"
    if os.environ.get("CI"):
        pytest.fail(message)
    pytest.skip(message)


def windows_path(path: Path) -> str:
    """Wine's drive Z: is the Unix root."""
    return "Z:" + str(path.resolve()).replace("/", "\\")


def under_wine(directory: Path, program: Path) -> Path:
    """A launcher that runs the Windows ``program`` under Wine, quietly."""
    launcher = directory / f"{program.stem}_under_wine"
    launcher.write_text(f'#!/bin/sh\nWINEDEBUG=-all exec "{wine()}" "{program}" "$@"\n')
    launcher.chmod(0o755)
    return launcher


@pytest.fixture(scope="module")
def windows_host(tmp_path_factory):
    require_built(WINDOWS_CLAP, WINDOWS_HOST, CLAP_FILE, CLAP_HOST)
    return under_wine(tmp_path_factory.mktemp("wine"), WINDOWS_HOST)


@pytest.mark.parametrize("block", [64, 1000])
def test_the_windows_build_plays_as_the_linux_build_to_the_frame(windows_host, block):
    midi = the_call()
    frames = frame_of(12)
    windows, windows_status = run_script_host(windows_host, windows_path(WINDOWS_CLAP), frames,
                                              block, midi, params=[(PASS_THROUGH, 0)])
    linux, linux_status = run_script_host(CLAP_HOST, CLAP_FILE, frames, block, midi,
                                          params=[(PASS_THROUGH, 0)])
    assert windows_status == linux_status == 0.0  # the bundled model loaded on both
    assert answers(windows) and all(on_grid(f) for f, _ in answers(windows))
    assert windows == linux


def test_a_missing_model_on_windows_is_an_error_state_and_silence(windows_host, tmp_path):
    # The .clap alone, without its resources folder beside it.
    lonely = tmp_path / "cadenza.clap"
    shutil.copy(WINDOWS_CLAP, lonely)
    events, status = run_script_host(windows_host, windows_path(lonely), frame_of(12), 64,
                                     the_call(), params=[(PASS_THROUGH, 0)])
    assert status not in (None, 0.0)
    assert answers(events) == []


@pytest.mark.parametrize("block", [64, 1000])
def test_the_windows_vst3_plays_as_the_linux_vst3_to_the_frame(tmp_path, block):
    require_built(WINDOWS_VST3, WINDOWS_VST3_HOST, VST3_BINARY, VST3_HOST)
    midi = the_call()
    windows, _ = run_script_host(under_wine(tmp_path, WINDOWS_VST3_HOST), windows_path(WINDOWS_VST3),
                                 frame_of(12), block, midi)
    linux, _ = run_script_host(VST3_HOST, VST3_BINARY, frame_of(12), block, midi)
    assert answers(windows) and windows == linux


def exports(binary: Path) -> set[str]:
    objdump = shutil.which("x86_64-w64-mingw32-objdump")
    if objdump is None:
        pytest.skip("no x86_64-w64-mingw32-objdump (binutils-mingw-w64-x86-64)")
    table = subprocess.run([objdump, "-p", str(binary)], capture_output=True, text=True,
                           check=True).stdout
    return set(re.findall(r"^\s*\[\s*\d+\]\s+(\w+)$", table, re.MULTILINE))


def test_each_windows_binary_exports_its_formats_entry_point():
    require_built(WINDOWS_CLAP, WINDOWS_VST3, WINDOWS_LV2 / "cadenza_dsp.dll")
    assert "clap_entry" in exports(WINDOWS_CLAP)
    assert "GetPluginFactory" in exports(WINDOWS_VST3)
    assert "lv2_descriptor" in exports(WINDOWS_LV2 / "cadenza_dsp.dll")


def test_the_windows_lv2_bundle_describes_the_linux_bundles_plugin():
    """Its TTL, written by DPF's generator run under Wine, is the Linux one
    but for the binary's name."""
    require_built(WINDOWS_LV2 / "manifest.ttl", PLUGIN_DIR / "cadenza.lv2" / "manifest.ttl")
    for name in ("manifest.ttl", "cadenza_dsp.ttl"):
        windows = (WINDOWS_LV2 / name).read_text()
        linux = (PLUGIN_DIR / "cadenza.lv2" / name).read_text()
        assert windows == linux.replace("cadenza_dsp.so", "cadenza_dsp.dll"), name
