"""The VST3 build in a minimal VST3 host (plugin/tests/vst3_host.cpp, on the
travesty headers DPF bundles): the same output as the LV2 build, to the
frame, and the same releases on loops and stops.

The host gives the plugin its process context each block: project time in
samples and quarters (a loop moves both back), the continuous sample count,
tempo and 4/4.  Parameters go in as VST3 sends them (normalized, in the
first block's parameter changes); the component's state is saved and
restored through an in-memory stream.  The host's bypass through VST3 is
not tested.
"""

from __future__ import annotations

import subprocess

import pytest

from tests.plugin.lv2_host import (
    PLUGIN_DIR,
    Instance,
    Transport,
    World,
    perform,
    require_built,
    sounding,
)
from tests.plugin.test_plugin_bundle import VST3_BINARY
from tests.plugin.test_plugin_clap import run_script_host
from tests.plugin.test_plugin_lv2 import BPM, RATE, answers, frame_of, on_grid, the_call

pytestmark = pytest.mark.plugin

VST3_HOST = PLUGIN_DIR / "tools" / "vst3_host"


@pytest.fixture(scope="module")
def vst3_host():
    require_built(VST3_BINARY, VST3_HOST)
    return VST3_HOST


def run_vst3(host, frames, block, midi, locates=(), stop=None):
    events, _ = run_script_host(host, VST3_BINARY, frames, block, midi, locates=locates,
                                stop=stop)
    return events


@pytest.mark.parametrize("block", [32, 64, 128, 512, 1000])
def test_vst3_answers_as_the_lv2_build_does_to_the_frame(vst3_host, block):
    midi = the_call()
    vst3 = run_vst3(vst3_host, frame_of(12), block, midi)
    instance = Instance(World(), rate=RATE, block=block)
    try:
        instance.activate()
        lv2 = perform(instance, Transport(RATE, BPM), frame_of(12), block, midi)
    finally:
        instance.close()
    assert vst3 == lv2
    assert len(answers(vst3)) > 4 and all(on_grid(f) for f, _ in answers(vst3))


def test_a_vst3_loop_releases_every_note_and_the_grid_follows(vst3_host):
    loop_at = frame_of(4.7) // 64 * 64
    again = {loop_at + frame_of(0.25): [bytes([0x90, 65, 80])],
             loop_at + frame_of(0.65): [bytes([0x80, 65, 0])]}
    vst3 = run_vst3(vst3_host, loop_at + frame_of(6), 64, {**the_call(), **again},
                    locates=[(loop_at, 0.0)])
    before = [(f, d) for f, d in vst3 if f < loop_at]
    at_loop = {(d[0] & 0x0F, d[1]) for f, d in vst3 if f == loop_at and d[0] & 0xF0 == 0x80}
    answered = sounding(before) - {(0, 65)}
    assert answered and answered <= at_loop
    after = [(f, d) for f, d in answers(vst3) if f > loop_at and f not in again]  # not the call
    assert after and after[0][0] - loop_at == frame_of(3.0)
    assert all(on_grid(f, origin=loop_at) for f, _ in after)


def test_a_vst3_stop_releases_every_note_and_stays_silent(vst3_host):
    stop_at = frame_of(4.7) // 64 * 64
    vst3 = run_vst3(vst3_host, frame_of(12), 64, the_call(), stop=stop_at)
    assert sounding([(f, d) for f, d in vst3 if f < stop_at])
    assert not sounding(vst3)
    assert all(f <= stop_at for f, _ in vst3)


# plugin/parameters.hpp: ids and plain ranges of the parameters set here.
CHANNEL, PASS_THROUGH, TEMPERATURE = 11, 15, 3


def run_vst3_script(host, lines: list[str]) -> tuple[list[tuple[int, bytes]], bytes]:
    done = subprocess.run([str(host), str(VST3_BINARY)], input="\n".join(lines) + "\n",
                          capture_output=True, text=True, timeout=120, check=True)
    events, state = [], b""
    for line in done.stdout.splitlines():
        word, *rest = line.split()
        if word == "ev":
            events.append((int(rest[0]), bytes.fromhex(rest[1])))
        elif word == "state":
            state = bytes.fromhex(rest[0])
    return events, state


def test_vst3_parameters_reach_the_plugin_as_in_the_lv2_build(vst3_host):
    """Channel 7, pass-through off, temperature 0.9: normalized as VST3 sends
    them; the notes must be the LV2 build's with the same settings."""
    midi = the_call()
    settings = {CHANNEL: (7, 1, 16), PASS_THROUGH: (0, 0, 1), TEMPERATURE: (0.9, 0, 2)}
    lines = [f"rate {RATE}", f"bpm {BPM}", "block 64", f"frames {frame_of(12)}"]
    lines += [f"normalized {pid} {(plain - low) / (high - low)!r}"
              for pid, (plain, low, high) in settings.items()]
    lines += [f"midi {frame} {data.hex()}" for frame, events in midi.items() for data in events]
    done = subprocess.run([str(vst3_host), str(VST3_BINARY)], input="\n".join(lines) + "\n",
                          capture_output=True, text=True, timeout=120, check=True)
    vst3 = [(int(f), bytes.fromhex(h)) for w, f, h in
            (line.split() for line in done.stdout.splitlines() if line.startswith("ev "))]
    instance = Instance(World(), rate=RATE, block=64)
    try:
        instance.set("channel", 7)
        instance.set("pass_through", 0)
        instance.set("temperature", 0.9)
        instance.activate()
        lv2 = perform(instance, Transport(RATE, BPM), frame_of(12), 64, midi)
    finally:
        instance.close()
    assert answers(vst3, channel=7)
    assert all(d[0] & 0x0F == 6 for _, d in vst3)  # pass-through off: only answers, on channel 7
    assert vst3 == lv2


def test_vst3_state_round_trip_restores_parameters_and_the_model_path(vst3_host, tmp_path):
    midi = the_call()
    script = [f"rate {RATE}", f"bpm {BPM}", "block 64", f"frames {frame_of(12)}", "state_out"]
    script += [f"midi {frame} {data.hex()}" for frame, events in midi.items() for data in events]
    first, saved = run_vst3_script(
        vst3_host, script + [f"normalized {CHANNEL} {6 / 15!r}", f"normalized {PASS_THROUGH} 0"])
    assert answers(first, channel=7) and all(d[0] & 0x0F == 6 for _, d in first)
    fields = saved.split(b"\xfe")[0].decode().split("\0")
    assert fields[fields.index("channel") + 1] == "7"
    assert fields[fields.index("precision") + 1] == "fp32"  # the model step's, saved too
    # Restored with no parameter change of its own: the same settings, the same notes.
    again, resaved = run_vst3_script(vst3_host, script + [f"state_in {saved.hex()}"])
    assert again == first
    assert resaved.split(b"\xfe")[0] == saved.split(b"\xfe")[0]
    # A model path in the state is loaded, and saved again.
    chosen = tmp_path / "chosen.model"
    chosen.write_bytes((PLUGIN_DIR / "cadenza.vst3" / "Contents" / "Resources"
                        / "cadenza.model").read_bytes())
    fields[fields.index("model") + 1] = str(chosen)
    with_model = "\0".join(fields).encode() + b"\xfe\0"
    played, kept = run_vst3_script(vst3_host, script + [f"state_in {with_model.hex()}"])
    assert played == first
    kept_fields = kept.split(b"\xfe")[0].decode().split("\0")
    assert kept_fields[kept_fields.index("model") + 1] == str(chosen)
