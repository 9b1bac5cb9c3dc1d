"""The LV2 plugin in a headless host: timing, transport, state, many instances.

The build plays the native engine where the checkout has it, else a
temporary stand-in that replays the call's pitches on the grid after the
pause (build/plugin/ENGINE says which).  These tests check what the plugin
does around any engine: where notes land, what is released when, what is
saved; what the stand-in must answer is checked where STAND_IN.
"""

from __future__ import annotations

import shutil

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
    perform,
    require_built,
    sounding,
)

pytestmark = pytest.mark.plugin

# A call of four eighth notes from beat 0; at 97 BPM and 44.1 kHz a beat is
# 27278.35 frames, so every grid line needs the rounding rule.
RATE, BPM = 44100.0, 97.0
CALL_PITCHES = (60, 64, 67, 72)


def frame_of(beat: float, bpm: float = BPM, rate: float = RATE) -> int:
    return round(beat * 60.0 / bpm * rate)


def the_call(pitches=CALL_PITCHES, start_beat=0.0, channel=1) -> dict[int, list[bytes]]:
    midi: dict[int, list[bytes]] = {}
    for i, pitch in enumerate(pitches):
        midi.setdefault(frame_of(start_beat + 0.5 * i), []).append(note_on(pitch, 90, channel))
        midi.setdefault(frame_of(start_beat + 0.5 * i + 0.4), []).append(note_off(pitch, channel))
    return midi


STAND_IN = engine_name() == "standin"


def on_grid(frame: int, step: float = 0.5, origin: int = 0) -> bool:
    """Whether `frame` (counted from `origin`, where the host's beat is 0) is a grid line's."""
    beat = (frame - origin) * BPM / (60.0 * RATE)
    return frame - origin == frame_of(round(beat / step) * step)


def answers(events, channel=1):
    return [(f, d) for f, d in events if d[0] & 0x0F == channel - 1 and d[0] & 0xF0 == 0x90
            and d[2] > 0]


@pytest.fixture(scope="module")
def world():
    require_built(BUNDLE / "manifest.ttl")
    return World()


@pytest.fixture
def make(world):
    made = []

    def factory(block=64, rate=RATE, **params):
        instance = Instance(world, rate=rate, block=block)
        for name, value in params.items():
            instance.set(name, value)
        instance.activate()
        made.append(instance)
        return instance

    yield factory
    for instance in made:
        instance.close()


def test_answers_land_on_the_hosts_grid_to_the_frame(make):
    instance = make(pass_through=0)
    out = perform(instance, Transport(RATE, BPM), frame_of(12), 64, the_call())
    ons = answers(out)
    # The call ends at beat 1.9; after the two-beat pause the answer starts on
    # the next eighth, 4.0, and every note starts on an eighth.
    assert ons and ons[0][0] == frame_of(4.0)
    assert all(on_grid(f) for f, _ in ons), [f for f, _ in ons]
    if STAND_IN:  # the call's pitches, an eighth apart, each held 0.9 of an eighth
        assert [d[1] for _, d in ons] == list(CALL_PITCHES)
        assert [f for f, _ in ons] == [frame_of(4.0 + 0.5 * i) for i in range(4)]
        offs = [f for f, d in out if d[0] & 0xF0 == 0x80]
        assert offs == [frame_of(4.0 + 0.5 * i + 0.45) for i in range(4)]


@pytest.mark.parametrize("grid, step", [(0, 1.0), (4, 1.0 / 3.0)])
def test_the_grid_parameter_moves_the_answer_to_its_lines(make, grid, step):
    instance = make(pass_through=0, grid=grid)
    out = perform(instance, Transport(RATE, BPM), frame_of(12), 64, the_call())
    ons = [f for f, _ in answers(out)]
    assert ons
    assert all(on_grid(f, step) for f in ons), ons
    if STAND_IN:
        assert len(ons) == 4


@pytest.mark.parametrize("position_every_block", [True, False])
def test_output_is_the_same_at_every_block_size(make, position_every_block):
    results = {}
    for block in (32, 64, 128, 512, 1000):
        instance = make(block=block)
        midi = the_call()
        for pitches, start in (((62, 65), 8.0), ((70, 69, 67), 14.25)):
            for frame, data in the_call(pitches, start).items():
                midi.setdefault(frame, []).extend(data)
        results[block] = perform(instance, Transport(RATE, BPM), frame_of(24), block, midi,
                                 position=position_every_block)
    first = results[32]
    assert len(answers(first)) > 4 + 2 + 3  # the calls passed through, and answered
    if STAND_IN:
        assert len(answers(first)) == 2 * (4 + 2 + 3)
    for block, out in results.items():
        assert out == first, f"block size {block} differs from 32"


@pytest.mark.parametrize("grid", [1, 2])  # 1/8 and 1/16
def test_output_is_the_same_at_an_offline_renders_large_blocks(make, grid):
    """Blocks longer than a grid step (a 1/16 at 120 BPM is 6000 frames; a
    bounce may use 4096): every step is still played, where it falls."""
    results = {}
    for block in (64, 2048, 3000, 4096):
        instance = make(block=block, grid=grid)
        results[block] = perform(instance, Transport(RATE, BPM), frame_of(24), block, the_call())
    assert len(answers(results[64])) > 4
    for block, out in results.items():
        assert out == results[64], f"block size {block} differs from 64"


def _mid_answer(make, **params):
    """An instance and a transport stopped in the middle of its answer (two notes out)."""
    instance = make(pass_through=0, **params)
    transport = Transport(RATE, BPM)
    out = perform(instance, transport, frame_of(4.7), 64, the_call())
    assert sounding(out), "expected an answer note sounding at beat 4.7"
    return instance, transport, out


def _assert_released_at_block_start(block_events, before):
    offs = {(d[0] & 0x0F, d[1]) for f, d in block_events if f == 0 and d[0] & 0xF0 == 0x80}
    assert sounding(before) <= offs
    assert not sounding(before + [(0, d) for _, d in block_events])


def test_transport_stop_releases_every_note_in_that_block_and_stays_silent(make):
    instance, transport, out = _mid_answer(make)
    transport.rolling = False
    block = instance.run(64, transport)
    _assert_released_at_block_start(block.events, out)
    later = perform(instance, transport, frame_of(8), 64)
    assert later == []


def test_a_call_while_stopped_passes_through_and_is_not_answered(make):
    instance = make()
    transport = Transport(RATE, BPM, rolling=False)
    out = perform(instance, transport, frame_of(12), 64, the_call())
    assert [d for _, d in out if d[0] & 0xF0 == 0x90] == [note_on(p, 90) for p in CALL_PITCHES]
    assert len(out) == 2 * len(CALL_PITCHES)


@pytest.mark.parametrize("target", [0.0, 64.0])
def test_relocation_and_loop_jump_release_every_note_and_the_grid_follows(make, target):
    instance, transport, out = _mid_answer(make)
    transport.locate(target)  # 0.0: a loop back to its start; 64.0: a jump ahead
    jumped_at = instance.clock  # the plugin's frame where the host's beat is `target`
    block = instance.run(64, transport)
    _assert_released_at_block_start(block.events, out)
    # The phrase is forgotten; a new call after the jump is answered on the new grid:
    # on at target + 0.25, off at + 0.65, two beats' pause, the next eighth is + 3.0.
    call = {jumped_at + frame_of(0.25): [note_on(65, 80)], jumped_at + frame_of(0.65): [note_off(65)]}
    later = perform(instance, transport, frame_of(6), 64, call)
    ons = answers(later)
    assert ons and ons[0][0] - jumped_at == frame_of(3.0)
    assert all(on_grid(f, origin=jumped_at) for f, _ in ons)
    if STAND_IN:
        assert [d[1] for _, d in ons] == [65]


def test_bypass_releases_every_note_and_passes_the_performer_through(make):
    instance, transport, out = _mid_answer(make)
    instance.set("bypass", 1.0)
    block = instance.run(64, transport, [(10, note_on(50))])
    # Bypassed, the input goes through untouched; every answer note is released.
    released = [note_off(pitch, channel + 1) for channel, pitch in sorted(sounding(out))]
    assert block.events == [(0, data) for data in released] + [(10, note_on(50))]
    later = perform(instance, transport, frame_of(8), 64)
    assert later == []


def test_disabling_releases_every_note(make):
    instance, transport, out = _mid_answer(make)
    instance.set("enabled", 0.0)
    block = instance.run(64, transport)
    _assert_released_at_block_start(block.events, out)
    assert perform(instance, transport, frame_of(8), 64) == []


def test_deactivate_releases_every_note_first_thing_after_activate(make):
    instance, transport, out = _mid_answer(make)
    instance.deactivate()
    instance.activate()
    block = instance.run(64, transport)
    _assert_released_at_block_start(block.events, out)
    assert perform(instance, transport, frame_of(8), 64) == []


def test_sixteen_instances_each_keep_their_own_state(make):
    transport = Transport(RATE, BPM)
    instances = [make(channel=i + 1, pass_through=0) for i in range(16)]
    calls = [the_call((40 + i, 41 + i)) for i in range(16)]
    outs: list[list] = [[] for _ in instances]
    for _ in range(frame_of(8) // 64):
        for i, instance in enumerate(instances):
            base = instance.clock
            ins = block_inputs(calls[i], base, 64)
            block = instance.run(64, transport_copy(transport), ins)
            outs[i] += [(block.start + f, bytes(d)) for f, d in block.events]
        transport.advance(64)
    for i, out in enumerate(outs):
        assert answers(out, channel=i + 1)
        assert all(d[0] & 0x0F == i for _, d in out)
        if STAND_IN:
            ons = answers(out, channel=i + 1)
            assert [d[1] for _, d in ons] == [40 + i, 41 + i]
            assert [f for f, _ in ons] == [frame_of(3.0), frame_of(3.5)]
    # Each plays what it would have played alone.
    for i in (0, 15):
        alone = make(channel=i + 1, pass_through=0)
        assert perform(alone, Transport(RATE, BPM), frame_of(8) // 64 * 64, 64, calls[i]) == outs[i]


def transport_copy(transport: Transport) -> Transport:
    """The shared transport as one instance sees it in this block (not advanced by it)."""
    return Transport(transport.rate, transport.bpm, transport.beats_per_bar, transport.rolling,
                     transport.frame, transport.beat)


def test_a_missing_or_corrupt_model_is_refused_and_the_current_one_keeps_playing(make, tmp_path):
    instance = make(pass_through=0)
    transport = Transport(RATE, BPM)
    corrupt = tmp_path / "corrupt.model"
    corrupt.write_bytes(bytes(range(256)) * 4)
    for path, status in ((tmp_path / "missing.model", 1.0), (corrupt, 2.0)):
        instance.run(64, transport, extra_atoms=[instance.set_model(str(path))])
        instance.run(64, transport)
        assert instance.get("model_status") == status
    start = instance.clock
    out = perform(instance, transport, frame_of(12), 64,
                  {start + f: d for f, d in the_call().items()})
    assert answers(out)
    if STAND_IN:
        assert [d[1] for _, d in answers(out)] == list(CALL_PITCHES)


@pytest.mark.parametrize("damage, status", [("missing", 1.0), ("corrupt", 2.0)])
def test_a_bundle_without_a_usable_model_is_silent_and_says_why(tmp_path, damage, status):
    bundle = tmp_path / "cadenza.lv2"
    shutil.copytree(BUNDLE, bundle)
    model = bundle / "resources" / "cadenza.model"
    if damage == "missing":
        model.unlink()
    else:
        model.write_bytes(b"\x00garbage" * 100)
    instance = Instance(World(bundle), rate=RATE, block=64)
    try:
        instance.activate()
        out = perform(instance, Transport(RATE, BPM), frame_of(12), 64, the_call())
        assert instance.get("model_status") == status
        passed = sorted((f, d) for f, events in the_call().items() for d in events)
        assert out == passed  # only the performer's notes, passed through
    finally:
        instance.close()


def test_parameters_steer_the_answer(make):
    instance = make(channel=5, pass_through=0)
    out = perform(instance, Transport(RATE, BPM), frame_of(12), 64, the_call())
    assert len(answers(out, channel=5)) == 4 and all(d[0] & 0x0F == 4 for _, d in out)
    quiet = make(enabled=0)
    out = perform(quiet, Transport(RATE, BPM), frame_of(12), 64, the_call())
    assert len(out) == 8  # the call passed through, no answer


def test_turning_pass_through_off_never_strands_a_held_note(make):
    instance = make()
    transport = Transport(RATE, BPM)
    first = instance.run(64, transport, [(5, note_on(55))])
    assert first.events == [(5, note_on(55))]
    instance.set("pass_through", 0.0)
    second = instance.run(64, transport, [(3, note_on(57)), (9, note_off(55))])
    assert second.events == [(9, note_off(55))]


def test_the_cc_map_works_as_in_the_daemon(make):
    instance = make(pass_through=0)
    transport = Transport(RATE, BPM)
    # CC 23 (enabled) off: no answer; the CC itself goes no further.
    out = perform(instance, transport, frame_of(12), 64,
                  {0: [bytes([0xB0, 23, 0])], **the_call(start_beat=0.25)})
    assert out == []
    instance.set("enabled", 0.0)  # the host's parameter wins back when it changes
    instance.run(64, transport)
    instance.set("enabled", 1.0)
    instance.run(64, transport)
    out = perform(instance, transport, frame_of(12), 64,
                  {instance.clock + f: d for f, d in the_call().items()})
    assert len(answers(out)) == 4


def test_the_model_path_is_saved_and_restored(make, tmp_path):
    chosen = tmp_path / "chosen.model"
    shutil.copy(BUNDLED_MODEL, chosen)
    first = make()
    first.run(64, Transport(RATE, BPM), extra_atoms=[first.set_model(str(chosen))])
    saved = first.save_state()
    value, _type = saved["urn:cadenza:improviser#model"]
    assert value.rstrip(b"\0").decode() == str(chosen)
    second = make()
    chosen.write_bytes(b"now corrupt")  # restoring reads the file again: refused, says so
    second.restore_state(saved)
    second.run(64, Transport(RATE, BPM))
    assert second.get("model_status") == 2.0
    shutil.copy(BUNDLED_MODEL, chosen)
    third = make()
    third.restore_state(saved)
    third.run(64, Transport(RATE, BPM))
    assert third.get("model_status") == 0.0


def test_the_precision_is_set_saved_and_restored(make):
    first = make()
    transport = Transport(RATE, BPM)
    first.run(64, transport, extra_atoms=[first.set_precision("int8")])
    first.run(64, transport)
    assert first.get("model_status") == 0.0
    saved = first.save_state()
    value, _type = saved["urn:cadenza:improviser#precision"]
    assert value.rstrip(b"\0").decode() == "int8"
    second = make()
    second.restore_state(saved)
    second.run(64, Transport(RATE, BPM))
    assert second.save_state()["urn:cadenza:improviser#precision"][0].rstrip(b"\0") == b"int8"
    assert second.get("model_status") == 0.0


@pytest.mark.skipif(STAND_IN, reason="the stand-in engine has no model step to refuse")
def test_a_bad_precision_or_a_model_without_int8_is_refused_and_the_current_one_keeps_playing(
        make, tmp_path):
    from dataclasses import replace

    from cadenza import native_format

    fp32_only = tmp_path / "fp32-only.model"
    native_format.write(fp32_only, replace(native_format.read(BUNDLED_MODEL), int8=None))
    instance = make(pass_through=0)
    transport = Transport(RATE, BPM)
    instance.run(64, transport, extra_atoms=[instance.set_precision("int16")])
    instance.run(64, transport)  # the status port reads the outcome a block later
    assert instance.get("model_status") == 2.0  # refused: the log says it must be fp32 or int8
    instance.run(64, transport, extra_atoms=[instance.set_model(str(fp32_only))])
    instance.run(64, transport)  # the status port reads the outcome a block later
    assert instance.get("model_status") == 0.0  # its fp32 step is there
    instance.run(64, transport, extra_atoms=[instance.set_precision("int8")])
    instance.run(64, transport)  # the status port reads the outcome a block later
    assert instance.get("model_status") == 2.0  # no int8 step in it: refused
    start = instance.clock
    out = perform(instance, transport, frame_of(12), 64,
                  {start + f: d for f, d in the_call().items()})
    assert answers(out)


def test_cycles_the_host_lost_keep_the_phrase_and_the_grid(make):
    """An xrun: the transport runs on through cycles the plugin never saw."""
    call = the_call()
    steady = perform(make(pass_through=0), Transport(RATE, BPM), frame_of(12), 64, call)
    due = [f for f, _ in steady] + list(call)  # no cycle lost over an event
    instance = make(pass_through=0)
    transport = Transport(RATE, BPM)
    heard = []  # (host transport frame, MIDI)
    blocks = lost = 0
    while transport.frame < frame_of(12):
        base = transport.frame
        ins = block_inputs(call, base, 64)
        block = instance.run(64, transport, ins)
        heard += [(block.host_frame + f, bytes(d)) for f, d in block.events]
        blocks += 1
        gap = range(transport.frame, transport.frame + 3 * 64)
        if blocks % 50 == 7 and not any(f in gap for f in due):
            transport.advance(3 * 64)  # three cycles lost, before and during the answer
            lost += 1
    assert lost > 30
    ons = answers(heard)
    assert ons and ons[0][0] == frame_of(4.0)
    assert all(on_grid(f) for f, _ in ons)
    # The same notes at the same host frames as with no cycle lost.
    assert heard == [(f, d) for f, d in steady if f < transport.frame]


@pytest.mark.parametrize("odd", [64, -64])
def test_a_transport_frame_one_block_off_for_one_block_is_noise(make, odd):
    """JACK can hand a late client the next cycle's transport frame, then the
    same frame again (or the last one, then two periods on): a block whose
    frame is a block off, with the next back on time, changes nothing."""
    call = the_call()
    steady = perform(make(pass_through=0), Transport(RATE, BPM), frame_of(12), 64, call)
    instance = make(pass_through=0)
    transport = Transport(RATE, BPM)
    heard = []  # (host transport frame, MIDI)
    blocks = stutters = 0
    while transport.frame < frame_of(12):
        base = transport.frame
        ins = block_inputs(call, base, 64)
        stutter = blocks % 40 == 9
        if stutter:  # this block's position says `odd` frames off; the next is on time
            transport.frame += odd
            transport.beat += odd * BPM / (60.0 * RATE)
            stutters += 1
        block = instance.run(64, transport, ins)
        if stutter:
            transport.frame -= odd
            transport.beat -= odd * BPM / (60.0 * RATE)
        heard += [(base + f, bytes(d)) for f, d in block.events]
        blocks += 1
    assert stutters > 30
    assert answers(heard) and heard == steady


def test_one_lost_cycle_is_a_skip_taken_a_block_later(make):
    """One cycle lost (a frame one block ahead, the next going on from it):
    the phrase is kept and the answer stays on the grid."""
    call = the_call()
    instance = make(pass_through=0)
    transport = Transport(RATE, BPM)
    heard = []
    blocks = lost = 0
    while transport.frame < frame_of(12):
        base = transport.frame
        ins = block_inputs(call, base, 64)
        block = instance.run(64, transport, ins)
        heard += [(block.host_frame + f, bytes(d)) for f, d in block.events]
        blocks += 1
        if blocks % 50 == 7:
            transport.advance(64)  # one cycle lost
            lost += 1
    assert lost > 30
    ons = answers(heard)
    assert ons and ons[0][0] == frame_of(4.0)
    # Every onset on the grid, or at most one block late where it fell just after a loss.
    assert all(on_grid(f) or any(on_grid(g) for g in range(f - 64, f)) for f, _ in ons)
