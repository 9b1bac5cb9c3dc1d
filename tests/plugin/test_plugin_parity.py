"""The plugin plays the same notes as ``cadenza simulate --engine native``.

The same call, settings, seed and tempo go into the simulator (a MIDI file)
and into the LV2 plugin (the headless host, transport from beat 0); Cadenza's
notes must agree in pitch, channel and beat.  Runs where the plugin is built
on the native engine and this checkout's ``simulate`` has ``--engine native``
(with the native library built: ``make native``); skipped, saying which is
missing, elsewhere.
"""

from __future__ import annotations

import subprocess
import sys

import mido
import pytest

from tests.plugin.lv2_host import (
    ATOM,
    BUNDLE,
    PRECISION_KEY,
    REPO,
    Instance,
    Transport,
    World,
    engine_name,
    perform,
    require_built,
)
from tests.plugin.test_plugin_lv2 import RATE, frame_of, the_call

pytestmark = pytest.mark.plugin

TICKS_PER_BEAT = 960
CALLS = {
    "arpeggio": ((60, 64, 67, 72), 0.0),
    "low, off the beat": ((43, 47, 50), 0.25),
}


def _simulate_supports_native() -> bool:
    from cadenza.cli import build_parser

    try:
        build_parser().parse_args(["simulate", "--engine", "native", "--out", "x.mid"])
    except SystemExit:
        return False
    return True


@pytest.fixture(scope="module")
def native_plugin():
    require_built(BUNDLE / "manifest.ttl")
    if engine_name() != "native":
        pytest.skip("the plugin is built on the temporary stand-in (no native/ in this checkout)")
    if not _simulate_supports_native():
        pytest.skip("this checkout's `cadenza simulate` has no --engine native")
    return World()


def write_call(path, midi: dict[int, list[bytes]], bpm: float) -> None:
    """The call as a MIDI file at `bpm`, each event at its beat."""
    song = mido.MidiFile(ticks_per_beat=TICKS_PER_BEAT)
    track = mido.MidiTrack()
    song.tracks.append(track)
    track.append(mido.MetaMessage("set_tempo", tempo=mido.bpm2tempo(bpm), time=0))
    last = 0
    for frame in sorted(midi):
        tick = round(frame * bpm / (60.0 * RATE) * TICKS_PER_BEAT)
        for data in midi[frame]:
            track.append(mido.Message.from_bytes(list(data)).copy(time=tick - last))
            last = tick
    song.save(path)


def simulated_notes(path) -> list[tuple[float, bytes]]:
    """(beat, MIDI) of the Cadenza track's notes in a duet file."""
    song = mido.MidiFile(path)
    track = next(t for t in song.tracks if t.name == "Cadenza")
    notes, tick = [], 0
    for message in track:
        tick += message.time
        if message.type in ("note_on", "note_off"):
            notes.append((round(tick / song.ticks_per_beat, 3), bytes(message.bytes())))
    return notes


@pytest.mark.parametrize("seed", [0, 7])
@pytest.mark.parametrize("call", sorted(CALLS))
def test_the_plugin_plays_what_simulate_plays(native_plugin, tmp_path, call, seed):
    bpm = 97.0
    pitches, start = CALLS[call]
    midi = the_call(pitches, start)
    write_call(tmp_path / "call.mid", midi, bpm)
    done = subprocess.run(
        [sys.executable, "-m", "cadenza", "simulate", "--engine", "native", "--input",
         str(tmp_path / "call.mid"), "--out", str(tmp_path / "duet.mid"), "--bpm", str(bpm),
         "--seed", str(seed)],
        cwd=REPO, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    expected = simulated_notes(tmp_path / "duet.mid")
    instance = Instance(native_plugin, rate=RATE, block=64)
    try:
        instance.set("pass_through", 0)
        instance.set("seed", seed)
        instance.activate()
        out = perform(instance, Transport(RATE, bpm), frame_of(16), 64, midi)
    finally:
        instance.close()
    played = [(round(f * bpm / (60.0 * RATE), 3), d) for f, d in out]
    assert expected, "simulate played nothing"
    assert played[: len(expected)] == expected


def test_key_spread_and_texture_reach_the_engine_as_the_daemons_settings(native_plugin, tmp_path):
    """The two parameters at other values than the defaults: the plugin plays
    what simulate plays with the same [live] settings (and they change it)."""
    bpm, seed = 97.0, 3
    pitches, start = CALLS[sorted(CALLS)[0]]
    midi = the_call(pitches, start)
    write_call(tmp_path / "call.mid", midi, bpm)
    (tmp_path / "config.toml").write_text("[live]\nkey_spread = 0.3\ntexture = 1.0\n")

    def plugin_notes(**values) -> list[tuple[float, bytes]]:
        instance = Instance(native_plugin, rate=RATE, block=64)
        try:
            for name, value in {"pass_through": 0, "seed": seed, **values}.items():
                instance.set(name, value)
            instance.activate()
            out = perform(instance, Transport(RATE, bpm), frame_of(16), 64, midi)
        finally:
            instance.close()
        return [(round(f * bpm / (60.0 * RATE), 3), d) for f, d in out]

    done = subprocess.run(
        [sys.executable, "-m", "cadenza", "--config", str(tmp_path / "config.toml"), "simulate",
         "--engine", "native", "--input", str(tmp_path / "call.mid"), "--out",
         str(tmp_path / "duet.mid"), "--bpm", str(bpm), "--seed", str(seed)],
        cwd=REPO, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    expected = simulated_notes(tmp_path / "duet.mid")
    assert expected, "simulate played nothing"
    steered = plugin_notes(key_spread=0.3, texture=1.0)
    assert steered[: len(expected)] == expected
    assert plugin_notes()[: len(expected)] != expected  # the defaults answer otherwise


def test_precision_int8_plays_what_simulate_plays_on_the_int8_step(native_plugin, tmp_path):
    """The `precision` state at int8: the plugin's notes are the native
    engine's on the bundle's int8 step (`--runner native --int8`), which are
    not the fp32 step's (at this seed: at most seeds the two steps' answers
    to this call are the same)."""
    bpm, seed = 97.0, 4
    pitches, start = CALLS["arpeggio"]
    midi = the_call(pitches, start)
    write_call(tmp_path / "call.mid", midi, bpm)

    def simulated(*extra: str) -> list[tuple[float, bytes]]:
        out = tmp_path / f"duet{len(extra)}.mid"
        done = subprocess.run(
            [sys.executable, "-m", "cadenza", "simulate", "--engine", "native", *extra, "--input",
             str(tmp_path / "call.mid"), "--out", str(out), "--bpm", str(bpm), "--seed", str(seed)],
            cwd=REPO, capture_output=True, text=True, timeout=300)
        assert done.returncode == 0, done.stderr
        return simulated_notes(out)

    expected = simulated("--runner", "native", "--int8")
    assert expected and expected != simulated(), "the int8 step should answer otherwise here"
    instance = Instance(native_plugin, rate=RATE, block=64)
    try:
        instance.set("pass_through", 0)
        instance.set("seed", seed)
        # As a host restoring a project that chose it (patch:Set is tested in test_plugin_lv2).
        instance.restore_state({PRECISION_KEY: (b"int8\0", native_plugin.urid(ATOM + "String"))})
        instance.activate()
        out = perform(instance, Transport(RATE, bpm), frame_of(16), 64, midi)
        assert instance.get("model_status") == 0.0
    finally:
        instance.close()
    played = [(round(f * bpm / (60.0 * RATE), 3), d) for f, d in out]
    assert played[: len(expected)] == expected
