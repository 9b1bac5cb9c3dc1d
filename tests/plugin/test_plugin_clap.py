"""The CLAP build in a small CLAP host (plugin/tests/clap_host.cpp): the same
timing as the LV2 build, to the frame, and the same releases on stop and loops.

The CLAP host gives the plugin its steady sample count and the song position
in beats each block; a loop moves the beats while the sample count runs on.
"""

from __future__ import annotations

import subprocess

import pytest

from tests.plugin.lv2_host import (
    CLAP_FILE,
    PLUGIN_DIR,
    Instance,
    Transport,
    World,
    perform,
    require_built,
    sounding,
)
from tests.plugin.test_plugin_lv2 import (
    BPM,
    CALL_PITCHES,
    RATE,
    STAND_IN,
    answers,
    frame_of,
    on_grid,
    the_call,
)

pytestmark = pytest.mark.plugin

CLAP_HOST = PLUGIN_DIR / "tools" / "clap_host"
PASS_THROUGH, CHANNEL = 15, 11  # parameter ids (plugin/parameters.hpp)


@pytest.fixture(scope="module")
def clap_host():
    require_built(CLAP_FILE, CLAP_HOST)
    return CLAP_HOST


def run_clap(host, frames, block, midi, params=(), locates=(), stop=None):
    return run_script_host(host, CLAP_FILE, frames, block, midi, params, locates, stop)


def run_script_host(host, plugin, frames, block, midi, params=(), locates=(), stop=None):
    """Play a script (plugin/tests/host_script.hpp) through a C++ test host."""
    lines = [f"rate {RATE}", f"bpm {BPM}", f"block {block}", f"frames {frames}"]
    lines += [f"param {pid} {value}" for pid, value in params]
    lines += [f"midi {frame} {data.hex()}" for frame, events in midi.items() for data in events]
    lines += [f"locate {frame} {beat}" for frame, beat in locates]
    if stop is not None:
        lines.append(f"stop {stop}")
    done = subprocess.run([str(host), str(plugin)], input="\n".join(lines) + "\n",
                          capture_output=True, text=True, timeout=120, check=True)
    events, status = [], None
    for line in done.stdout.splitlines():
        word, *rest = line.split()
        if word == "ev":
            events.append((int(rest[0]), bytes.fromhex(rest[1])))
        elif word == "status":
            status = float(rest[0])
    return events, status


@pytest.mark.parametrize("block", [32, 64, 128, 512, 1000])
def test_clap_answers_as_the_lv2_build_does_to_the_frame(clap_host, block):
    midi = the_call()
    clap, status = run_clap(clap_host, frame_of(12), block, midi, params=[(PASS_THROUGH, 0)])
    assert status == 0.0
    instance = Instance(World(), rate=RATE, block=block)
    try:
        instance.set("pass_through", 0)
        instance.activate()
        lv2 = perform(instance, Transport(RATE, BPM), frame_of(12), block, midi)
    finally:
        instance.close()
    assert clap == lv2
    assert answers(clap) and all(on_grid(f) for f, _ in answers(clap))
    if STAND_IN:
        assert [f for f, _ in answers(clap)] == [frame_of(4.0 + 0.5 * i) for i in range(4)]
        assert [d[1] for _, d in answers(clap)] == list(CALL_PITCHES)


def test_clap_parameters_reach_the_plugin(clap_host):
    clap, _ = run_clap(clap_host, frame_of(12), 64, the_call(),
                       params=[(PASS_THROUGH, 0), (CHANNEL, 7)])
    assert answers(clap, channel=7)
    assert all(d[0] & 0x0F == 6 for _, d in clap)


def test_a_clap_loop_releases_every_note_and_the_grid_follows(clap_host):
    # At beat 4.7 (mid-answer) the host loops back to beat 0; the sample count runs on.
    loop_at = frame_of(4.7) // 64 * 64
    again = {loop_at + frame_of(0.25): [bytes([0x90, 65, 80])],
             loop_at + frame_of(0.65): [bytes([0x80, 65, 0])]}
    clap, _ = run_clap(clap_host, loop_at + frame_of(6), 64, {**the_call(), **again},
                       params=[(PASS_THROUGH, 0)], locates=[(loop_at, 0.0)])
    before = [(f, d) for f, d in clap if f < loop_at]
    at_loop = [(f, d) for f, d in clap if f == loop_at]
    assert sounding(before)
    assert sounding(before) == {(d[0] & 0x0F, d[1]) for _, d in at_loop if d[0] & 0xF0 == 0x80}
    after = answers([(f, d) for f, d in clap if f > loop_at])
    assert after and after[0][0] - loop_at == frame_of(3.0)
    assert all(on_grid(f, origin=loop_at) for f, _ in after)
    if STAND_IN:
        assert [(f - loop_at, d[1]) for f, d in after] == [(frame_of(3.0), 65)]


def test_a_clap_stop_releases_every_note_and_stays_silent(clap_host):
    stop_at = frame_of(4.7) // 64 * 64
    clap, _ = run_clap(clap_host, frame_of(12), 64, the_call(), params=[(PASS_THROUGH, 0)],
                       stop=stop_at)
    before = [(f, d) for f, d in clap if f < stop_at]
    assert sounding(before)
    assert not sounding(clap)
    assert all(f <= stop_at for f, _ in clap)


TEMPERATURE, SEED = 3, 14  # parameter ids (plugin/parameters.hpp)


def run_clap_state(host, frames, midi, params=(), state_in: bytes | None = None):
    """A run that loads `state_in` before activate and saves the state after:
    (events, {param id: value}, model status, saved state bytes)."""
    lines = [f"rate {RATE}", f"bpm {BPM}", "block 64", f"frames {frames}", "state_out"]
    lines += [f"param {pid} {value}" for pid, value in params]
    lines += [f"midi {frame} {data.hex()}" for frame, events in midi.items() for data in events]
    if state_in is not None:
        lines.append(f"state_in {state_in.hex()}")
    done = subprocess.run([str(host), str(CLAP_FILE)], input="\n".join(lines) + "\n",
                          capture_output=True, text=True, timeout=120, check=True)
    events, values, status, state = [], {}, None, b""
    for line in done.stdout.splitlines():
        word, *rest = line.split()
        if word == "ev":
            events.append((int(rest[0]), bytes.fromhex(rest[1])))
        elif word == "param":
            values[int(rest[0])] = float(rest[1])
        elif word == "status":
            status = float(rest[0])
        elif word == "state":
            state = bytes.fromhex(rest[0])
    return events, values, status, state


def state_fields(state: bytes) -> list[str]:
    """DPF's CLAP state: NUL-separated keys and values, then a 0xFE terminator."""
    return state.split(b"\xfe")[0].decode().split("\0")


def with_model(state: bytes, path: str) -> bytes:
    fields = state_fields(state)
    fields[fields.index("model") + 1] = path
    return "\0".join(fields).encode() + b"\xfe\0"


def test_clap_state_round_trip_restores_parameters_and_the_model_path(clap_host, tmp_path):
    params = [(PASS_THROUGH, 0), (CHANNEL, 11), (TEMPERATURE, 0.9), (SEED, 4242)]
    first, values, status, saved = run_clap_state(clap_host, frame_of(12), the_call(), params)
    assert status == 0.0 and answers(first, channel=11)
    fields = state_fields(saved)
    assert "model" in fields and "channel" in fields
    # Restored with no parameter of its own: the same settings, so the same notes.
    again, restored, status, resaved = run_clap_state(clap_host, frame_of(12), the_call(),
                                                      state_in=saved)
    assert status == 0.0
    assert {pid: restored[pid] for pid, _ in params} == pytest.approx(dict(params))
    assert again == first
    assert state_fields(resaved) == fields

    # A model path chosen: saved with the project and loaded on restore.
    chosen = tmp_path / "chosen.model"
    chosen.write_bytes((PLUGIN_DIR / "cadenza-resources" / "cadenza.model").read_bytes())
    chosen_state = with_model(saved, str(chosen))
    played, _, status, kept = run_clap_state(clap_host, frame_of(12), the_call(),
                                             state_in=chosen_state)
    assert status == 0.0 and played == first
    assert state_fields(kept)[state_fields(kept).index("model") + 1] == str(chosen)

    # A saved path whose file has gone: refused (status 1); the bundled model plays on.
    gone = with_model(saved, str(tmp_path / "gone.model"))
    played, _, status, _ = run_clap_state(clap_host, frame_of(12), the_call(), state_in=gone)
    assert status == 1.0 and played == first

    # The model step's precision: saved, and loaded on restore (its notes: test_plugin_parity).
    assert state_fields(saved)[state_fields(saved).index("precision") + 1] == "fp32"
    fields = state_fields(saved)
    fields[fields.index("precision") + 1] = "int8"
    int8_state = "\0".join(fields).encode() + b"\xfe\0"
    played, _, status, kept = run_clap_state(clap_host, frame_of(12), the_call(), state_in=int8_state)
    assert status == 0.0 and answers(played, channel=11)
    assert state_fields(kept)[state_fields(kept).index("precision") + 1] == "int8"
