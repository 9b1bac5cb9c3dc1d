"""The prediction worker (plugin/predict_worker.hpp): the same notes as inline.

The native build's engine asks its model through a worker thread that steps
ahead of it; where the worker has not finished, the audio thread replays the
missing tokens itself.  Either way the notes must be those of the inline
predictor (CADENZA_PLUGIN_INLINE_PREDICT=1, read at each model load), to the
frame: with blocks driven back to back in large blocks (several notes chosen
inside one run(): the audio thread must step tokens itself) and with blocks
paced at their deadlines (the worker has its head start: results are ready).
CADENZA_PLUGIN_PREDICT_STATS=1 makes each engine print, when freed, how its
asks were served; the tests read it to know which path they exercised.

Also: a model swap, a deactivate and an instance freed while the worker is
busy leave nothing sounding and do not crash.
"""

from __future__ import annotations

import time

import pytest

from tests.plugin.lv2_host import (
    BUNDLE,
    BUNDLED_MODEL,
    Instance,
    Transport,
    World,
    block_inputs,
    engine_name,
    note_off,
    note_on,
    require_built,
    sounding,
)

pytestmark = [
    pytest.mark.plugin,
    pytest.mark.skipif(engine_name() != "native", reason="the worker is the native engine's"),
]

RATE, BPM = 48000.0, 120.0
SECONDS = 9.0
# Grid parameter values (plugin/parameters.cpp): 1/16, and 1/16t, whose step
# (4000 frames at 120 BPM) is shorter than a 4096-frame block: some blocks
# choose two notes, the second asked for right after the first was fed, in
# the same run(), where no worker can have stepped it yet.
GRID_SIXTEENTH = 2.0
GRID_SIXTEENTH_TRIPLET = 5.0
POSITION_EVERY_BLOCK = False


def calls() -> dict[int, list[bytes]]:
    """Three four-note calls, three seconds apart, by absolute frame."""
    midi: dict[int, list[bytes]] = {}
    for start, pitches in ((0.0, (60, 64, 67, 72)), (3.0, (62, 65, 69, 74)),
                           (6.0, (67, 71, 74, 79))):
        for i, pitch in enumerate(pitches):
            on = round((start + 0.25 * i) * RATE)
            midi.setdefault(on, []).append(note_on(pitch, 90))
            midi.setdefault(on + round(0.2 * RATE), []).append(note_off(pitch))
    return midi


@pytest.fixture(scope="module")
def world():
    require_built(BUNDLE / "manifest.ttl")
    return World()


def play(world: World, block: int, pace: float | None,
         grid: float = GRID_SIXTEENTH) -> list[tuple[int, bytes]]:
    """SECONDS of the calls at `block` frames; `pace`: wall seconds per audio
    second (each run() at its block's deadline), None: back to back."""
    instance = Instance(world, rate=RATE, block=block)
    instance.set("pass_through", 0.0)
    instance.set("grid", grid)
    instance.activate()
    transport = Transport(RATE, BPM)
    midi = calls()
    total = int(SECONDS * RATE)
    out: list[tuple[int, bytes]] = []
    start = time.monotonic()
    while instance.clock < total:
        base = instance.clock
        frames = min(block, total - base)
        if pace is not None:
            wait = start + pace * base / RATE - time.monotonic()
            if wait > 0:
                time.sleep(wait)
        ins = block_inputs(midi, base, frames)
        result = instance.run(frames, transport, ins, position=POSITION_EVERY_BLOCK or base == 0)
        out += [(result.start + f, bytes(d)) for f, d in result.events]
    instance.close()
    return out


def served(captured: str) -> dict[str, int]:
    """The stats line the engine printed when freed (the last one)."""
    lines = [line for line in captured.splitlines() if line.startswith("cadenza-predict:")]
    assert lines, "no prediction stats printed: CADENZA_PLUGIN_PREDICT_STATS not honoured"
    words = lines[-1].split()[1:]
    return {words[i]: int(words[i + 1]) for i in range(0, len(words) - 1, 2)}


def inline(world: World, block: int, monkeypatch, capfd,
           grid: float = GRID_SIXTEENTH) -> list[tuple[int, bytes]]:
    """The reference: the same performance with every prediction inline."""
    monkeypatch.setenv("CADENZA_PLUGIN_INLINE_PREDICT", "1")
    events = play(world, block, None, grid)
    stats = served(capfd.readouterr().err)
    monkeypatch.delenv("CADENZA_PLUGIN_INLINE_PREDICT")
    # Inline: nothing came from a worker, every token fed was stepped here.
    assert stats["ready"] == 0 and stats["inline_steps"] > 0
    notes = [e for e in events if e[1][0] & 0xF0 == 0x90 and e[1][2] > 0]
    assert len(notes) >= 6, "too few answer notes to compare"
    return events


@pytest.fixture(autouse=True)
def stats_on(monkeypatch):
    monkeypatch.setenv("CADENZA_PLUGIN_PREDICT_STATS", "1")


def test_the_worker_driven_back_to_back_steals_and_plays_the_inline_notes(
        world, monkeypatch, capfd):
    reference = inline(world, 4096, monkeypatch, capfd, GRID_SIXTEENTH_TRIPLET)
    events = play(world, 4096, None, GRID_SIXTEENTH_TRIPLET)
    stats = served(capfd.readouterr().err)
    assert events == reference
    # Notes chosen in the run() that fed the token before: the audio thread
    # stepped tokens itself.
    assert stats["inline_steps"] > 0
    assert stats["asked"] >= 6


def test_the_worker_paced_in_real_time_has_the_results_ready_and_the_same_notes(
        world, monkeypatch, capfd):
    reference = inline(world, 256, monkeypatch, capfd)
    # Twice real time at 256-frame blocks: a sixteenth is still 62 ms of wall time.
    events = play(world, 256, 0.5)
    stats = served(capfd.readouterr().err)
    assert events == reference
    assert stats["ready"] > 0, stats
    assert stats["ready"] >= stats["asked"] // 2, stats


def answer_run(world: World, block: int = 4096) -> tuple[Instance, Transport, list]:
    """An instance in the middle of answering the first call, driven fast."""
    instance = Instance(world, rate=RATE, block=block)
    instance.set("pass_through", 0.0)
    instance.set("grid", GRID_SIXTEENTH)
    instance.activate()
    transport = Transport(RATE, BPM)
    midi = calls()
    out = []
    # The first call's last release is at 0.95 s (beat 1.9); its answer starts
    # two beats later, on the next sixteenth: 2.0 s.  Stop a block into it.
    while instance.clock < int(2.05 * RATE):
        base = instance.clock
        ins = block_inputs(midi, base, block)
        result = instance.run(block, transport, ins, position=POSITION_EVERY_BLOCK or base == 0)
        out += [(result.start + f, bytes(d)) for f, d in result.events]
    return instance, transport, out


def test_a_model_swap_while_answering_releases_every_note_and_answers_again(world):
    instance, transport, out = answer_run(world)
    assert sounding(out), "the answer should be sounding when the model changes"
    held = sounding(out)
    # The host's worker loads the model after this block; the next block takes it.
    loading = instance.run(64, transport, extra_atoms=[instance.set_model(str(BUNDLED_MODEL))])
    out += [(loading.start + f, bytes(d)) for f, d in loading.events]
    swap = instance.run(4096, transport)
    out += [(swap.start + f, bytes(d)) for f, d in swap.events]
    assert not sounding(out)
    released = {(d[0] & 0x0F, d[1]) for f, d in swap.events if f == 0 and d[0] & 0xF0 == 0x80}
    assert held <= released | {(d[0] & 0x0F, d[1]) for f, d in loading.events
                               if d[0] & 0xF0 == 0x80}
    # The new engine answers the next call.
    midi = calls()
    while instance.clock < int(SECONDS * RATE):
        base = instance.clock
        ins = block_inputs(midi, base, 4096)
        result = instance.run(4096, transport, ins)
        out += [(result.start + f, bytes(d)) for f, d in result.events]
    later = [f for f, d in out if f > swap.start + 4096 and d[0] & 0xF0 == 0x90 and d[2] > 0]
    assert later, "no answer after the swap"
    instance.close()


def test_deactivate_and_free_while_the_worker_is_busy(world):
    instance, transport, out = answer_run(world)
    held = sounding(out)
    assert held
    instance.deactivate()
    instance.activate()
    first = instance.run(64, transport)
    out += [(first.start + f, bytes(d)) for f, d in first.events]
    assert not sounding(out)
    released = {(d[0] & 0x0F, d[1]) for f, d in first.events if f == 0 and d[0] & 0xF0 == 0x80}
    assert held <= released
    # Freed straight after blocks that fed tokens, many times over: the worker
    # is stopped and joined mid-work without a crash or a hang.
    for _ in range(8):
        busy, _transport, _out = answer_run(world)
        busy.close()
    instance.close()
