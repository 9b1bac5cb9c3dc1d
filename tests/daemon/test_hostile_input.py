"""Hostile MIDI input: the daemon survives it, stays bounded and keeps answering.

The JACK tests run the daemon in this process (real engine, fake model, a
real JACK server) and throw at ``Cadenza In`` what a broken controller, a
bad cable or a runaway sequencer would: random bytes, sysex of any length,
clock at absurd rates, notes on every channel, note-ons without note-offs
and the reverse, running status, active sensing, a flood of notes.  After
each, the test plays a phrase and waits for the answer; at the end every
note Cadenza started has its note-off at the listener.  The input queue's
bound is checked on its high-water mark.  Every wait has a timeout.
"""

from __future__ import annotations

import logging
import random
import threading
import time

import mido
import pytest
from hypothesis import given
from hypothesis import settings as hypothesis_settings
from hypothesis import strategies as st

from cadenza.config import LiveConfig
from cadenza.live.daemon.daemon import HEARD, PORT_POLL, Daemon
from cadenza.live.daemon.input_queue import InputQueue, is_release, parse_input
from cadenza.live.engine.engine import Engine
from testing.fake_predictor import FakePredictor
from tests.daemon.test_daemon_jack import CALL, VOCAB, answer_done, eventually, running
from tests.daemon.test_daemon_jack import settings as live_settings
from tests.support.jack_server import MidiClient, sounding_notes

ANSWER = 4  # notes per answer: short answers keep the tests short


def hostile_settings(**changes) -> LiveConfig:
    return live_settings(max_answer_notes=ANSWER, **changes)


def send_raw(client: MidiClient, data: list[int]) -> bool:
    """Hand arbitrary bytes to JACK; False where python-rtmidi refuses them."""
    try:
        client.send_bytes(data)
    except (ValueError, TypeError):
        return False
    return True


def burst(client: MidiClient, messages, per_slice: int, slice_seconds: float) -> int:
    """Send ``messages`` at about ``per_slice`` per ``slice_seconds`` (the
    sender's own pace: rtmidi's JACK ring buffer holds a few thousand bytes
    per cycle); returns how many were accepted."""
    accepted = 0
    began = time.monotonic()
    for k, data in enumerate(messages):
        if k and k % per_slice == 0:
            due = began + (k // per_slice) * slice_seconds
            time.sleep(max(0.0, due - time.monotonic()))
        accepted += send_raw(client, data)
    return accepted


def release_everything(client: MidiClient) -> None:
    """What a performer's panic button sends: All Notes Off on every channel.

    An end-of-sysex byte goes first: a random 0xF0 leaves RtMidi's JACK input
    inside a sysex until one comes (the daemon's sysex guard would end it
    within a second, but the tests need not wait for it).
    """
    send_raw(client, [0xF7])
    for channel in range(16):
        client.send(mido.Message("control_change", channel=channel, control=123, value=0))


def still_answers(daemon: Daemon, client: MidiClient) -> None:
    """Play the call and wait for a whole answer, released at the listener."""
    # First make sure the way in is clear (a burst may still fill the sender's
    # JACK ring buffer, which would lose a note of the call): a harmless probe,
    # sent again until Cadenza hears it.
    probe = mido.Message("note_off", channel=15, note=0, velocity=17)
    deadline = time.monotonic() + 10
    while not any(m == probe for _, m in list(daemon.heard)):
        assert time.monotonic() < deadline, "Cadenza hears nothing any more"
        client.send(probe)
        eventually(lambda: any(m == probe for _, m in list(daemon.heard)), timeout=0.3)
    # The performer lets go of everything the hostile input left "held" (sent
    # now that the way is clear, so JACK cannot lose it in a full buffer).
    release_everything(client)
    assert eventually(lambda: not daemon.engine.held, timeout=5), daemon.engine.held
    before = len([r for r in daemon.scheduler.recent if r[2].type == "note_on" and r[2].velocity])
    before += daemon.scheduler.dropped + daemon.engine.stats()["skipped_late"]
    for note in CALL:
        client.send(mido.Message("note_on", note=note, velocity=90))
        time.sleep(0.06)  # the performer's rhythm
        client.send(mido.Message("note_off", note=note))
        time.sleep(0.03)
    assert client.wait_for(lambda _: answer_done(daemon, client, ANSWER, before), timeout=10), (
        "no answer after the hostile input", daemon.engine.stats(), len(daemon.ledger),
        daemon.engine.window,
    )


def check_healthy(daemon: Daemon) -> None:
    assert daemon.failure is None, daemon.failure
    assert daemon._worker is not None and daemon._worker.is_alive()
    queue = daemon.queue
    assert queue.peak <= 2 * queue.size, (queue.peak, queue.size)
    assert len(daemon.heard) <= HEARD
    assert len(daemon.engine.window) <= daemon.engine.window_length


def nothing_left_sounding(daemon: Daemon, client: MidiClient) -> None:
    """After the stop: the ledger is empty and the listener heard every note-off."""
    assert len(daemon.ledger) == 0
    assert client.wait_for(lambda got: sounding_notes(got) == set(), timeout=5), \
        sounding_notes(client.messages())


# -- without JACK: the queue and the engine -------------------------------------


def test_releases_get_in_beyond_the_bound_but_not_past_twice_it():
    queue = InputQueue(4)
    for note in range(6):
        queue.put([0x90, note, 100], 0.0)
    assert queue.dropped == 2 and queue.peak == 4
    for note in range(6):
        queue.put([0x80, note, 0], 0.0)
    # Four releases squeeze in (up to twice the bound), the rest are dropped.
    assert queue.peak == 8 and queue.dropped == 4
    queue.put([0xB0, 123, 0], 0.0)
    assert queue.dropped == 5
    kinds = [queue.get(0).data[0] for _ in range(8)]
    assert kinds == [0x90] * 4 + [0x80] * 4 and queue.taken == 8
    assert queue.get(0.0) is None


def test_bytes_that_are_no_message_parse_to_none():
    # mido raises IndexError (not ValueError) for some of these.
    for data in ([], [0xE0], [0x90], [0x90, 60], [0xF0], [0xF7], [0x3C, 0x40], [0x90, 200, 5]):
        assert parse_input(data) is None, data
    assert parse_input([0x90, 60, 100]) == mido.Message("note_on", note=60, velocity=100)


def test_is_release():
    assert is_release([0x83, 60, 0]) and is_release([0x95, 60, 0])
    assert is_release([0xB2, 123, 0]) and is_release([0xB0, 120, 0])
    assert not is_release([0x90, 60, 1]) and not is_release([0xB0, 7, 100])
    assert not is_release([0x80, 60]) and not is_release([0xF8])


def test_all_notes_off_from_the_performer_ends_a_call_held_open():
    engine = Engine(FakePredictor(VOCAB), hostile_settings(), start_time=0.0)
    for channel in (0, 3):
        engine.on_message(mido.Message("note_on", channel=channel, note=60, velocity=90), 0.1)
    # Note-offs that never came: the call is held open, nothing is answered.
    assert not any(e.message.type == "note_on" for e in engine.advance(5.0))
    for channel in (0, 3):
        engine.on_message(mido.Message("control_change", channel=channel, control=123), 5.1)
    played = []
    now = 5.1
    while now < 12.0 and not played:
        deadline = engine.next_deadline()
        assert deadline is not None, "the call ended but no answer is planned"
        now = max(now, deadline)
        played = [e for e in engine.advance(now) if e.message.type == "note_on"]
    assert played, "no answer after All Notes Off"


@st.composite
def raw_messages(draw) -> list[int]:
    """Byte strings as a broken cable delivers them: any length up to 3, any
    byte, or a sysex of any content."""
    if draw(st.booleans()):
        return draw(st.lists(st.integers(0, 255), max_size=3))
    body = draw(st.lists(st.integers(0, 255), max_size=40))
    return [0xF0, *body, 0xF7]


@hypothesis_settings(max_examples=60, deadline=None)
@given(st.lists(raw_messages(), max_size=200), st.integers(0, 2**31))
def test_the_engine_survives_any_bytes_and_releases_what_it_plays(stream, seed):
    engine = Engine(
        FakePredictor(VOCAB), hostile_settings(seed=seed, pause_beats=0.5), start_time=0.0
    )
    rng = random.Random(seed)
    now, sounding = 0.0, {}
    for data in stream:
        now += rng.choice([0.0, 0.001, 0.05, 0.3])
        message = parse_input(data)
        if message is None:
            continue  # the daemon's worker ignores what is not a message, so do we
        events = list(engine.on_message(message, now))
        deadline = engine.next_deadline()
        if deadline is not None and deadline <= now:
            events += engine.advance(now)
        for event in events:
            key = (getattr(event.message, "channel", None), getattr(event.message, "note", None))
            if event.message.type == "note_on" and event.message.velocity:
                sounding[key] = sounding.get(key, 0) + 1
            elif event.message.type in ("note_on", "note_off") and sounding.get(key):
                sounding[key] -= 1
    for event in engine.stop(now + 1.0):
        message = event.message
        key = (getattr(message, "channel", None), getattr(message, "note", None))
        if message.type in ("note_off", "note_on") and not message.velocity and sounding.get(key):
            sounding[key] -= 1
    assert not any(sounding.values()), sounding
    assert engine.sounding == frozenset()


# -- on JACK, in process -----------------------------------------------------------


@pytest.mark.jack
def test_random_bytes_through_a_real_port(jack_server):
    rng = random.Random(7)
    stream = []
    for _ in range(3000):
        roll = rng.random()
        if roll < 0.9:  # one to three bytes, anything at all (data bytes over 127 too)
            stream.append([rng.randrange(256) for _ in range(rng.randint(1, 3))])
        elif roll < 0.95:  # longer strings: rtmidi refuses those not starting with 0xF0
            stream.append([rng.randrange(256) for _ in range(rng.randint(4, 12))])
        else:  # a sysex, well-formed or not
            stream.append([0xF0, *(rng.randrange(256) for _ in range(rng.randint(0, 64))), 0xF7])
    with running(hostile_settings()) as (daemon, result), MidiClient() as client:
        accepted = burst(client, stream, per_slice=100, slice_seconds=0.02)
        assert accepted > 2500  # rtmidi refuses only the long non-sysex strings
        release_everything(client)
        # Everything sent has been taken off the queue (or counted as dropped).
        assert eventually(lambda: daemon.queue.taken + daemon.queue.dropped >= 0.5 * accepted,
                          timeout=10), (daemon.queue.taken, daemon.queue.dropped, accepted)
        check_healthy(daemon)
        still_answers(daemon, client)
        check_healthy(daemon)
    assert result["status"] == 0
    nothing_left_sounding(daemon, client)


@pytest.mark.jack
def test_sysex_of_any_length_clock_storms_and_active_sensing(jack_server, caplog):
    caplog.set_level(logging.WARNING)
    with running(hostile_settings()) as (daemon, result), MidiClient() as client:
        for length in (0, 1, 10, 100, 1000, 3000, 10_000, 100_000):
            send_raw(client, [0xF0, *([0x42] * length), 0xF7])
            # Split across events, its end byte coming late (see the xfail below).
            send_raw(client, [0xF0, *([0x42] * min(length, 200))])
            send_raw(client, [0x42, 0x43, 0xF7])
            time.sleep(0.01)  # one JACK cycle or so between the big ones
        # MIDI clock at an absurd rate (a tick every ~15 us, 1000x a fast
        # tempo), active sensing and stray real-time bytes in between.
        storm = [[0xF8]] * 8000 + [[0xFE]] * 1000 + [[0xF9], [0xFD], [0xF4], [0xF5]] * 100
        random.Random(3).shuffle(storm)
        accepted = burst(client, storm, per_slice=200, slice_seconds=0.003)
        assert accepted == len(storm)
        # Active sensing is filtered out by rtmidi; the sender's JACK ring buffer
        # loses part of a burst this dense, the more the busier the machine
        # (about a quarter came through on a loaded two-core machine: 2093 of
        # 9400 once), so what is asked is that the storm reached the daemon, in
        # thousands, and every message of it was taken or dropped.
        assert eventually(lambda: daemon.queue.taken + daemon.queue.dropped >= 0.1 * accepted,
                          timeout=10), (daemon.queue.taken, daemon.queue.dropped, accepted)
        check_healthy(daemon)
        still_answers(daemon, client)
    assert result["status"] == 0
    nothing_left_sounding(daemon, client)
    assert not [r for r in caplog.records if r.levelno >= logging.ERROR]


@pytest.mark.jack
def test_all_channels_unmatched_notes_and_running_status(jack_server):
    with running(hostile_settings()) as (daemon, result), MidiClient() as client:
        messages = []
        for channel in range(16):
            messages.append([0x90 | channel, 60 + channel, 100])  # held, never released
            messages.append([0x80 | channel, 30 + channel, 0])  # released, never pressed
            messages.append([0x90 | channel, 40 + channel, 0])  # a velocity-0 note-off, alone
        # Running status: the data bytes of later notes without their status
        # byte.  JACK carries whole events, so they arrive as lone data bytes.
        messages += [[0x91, 70, 90], [72, 90], [74, 90], [70, 0], [72, 0], [74, 0]]
        messages += [[0xA0, 60, 10], [0xD5, 40], [0xE7, 0, 64], [0xC3, 5], [0xF2, 10, 10]]
        burst(client, messages, per_slice=50, slice_seconds=0.01)
        # The keys "held" by the note-ons above keep the call open until the
        # performer's All Notes Off lets go of them.
        # (JACK on a busy machine may lose one or two of a burst.)
        assert eventually(lambda: len(daemon.engine.held) >= 8)
        release_everything(client)
        assert eventually(lambda: not daemon.engine.held)
        check_healthy(daemon)
        still_answers(daemon, client)
    assert result["status"] == 0
    nothing_left_sounding(daemon, client)


@pytest.mark.jack
def test_an_unterminated_sysex_does_not_deafen_the_input(jack_server):
    # RtMidi 5's JACK input swallows every event after a sysex start until one
    # ends in 0xF7; the daemon's sysex guard ends it at each port check
    # (PORT_POLL), so the performer is heard again within about a second.
    with running(hostile_settings()) as (daemon, _), MidiClient() as client:
        send_raw(client, [0xF0, 0x42, 0x42])
        broken = time.monotonic()
        heard = len(daemon.heard)
        probe = 40

        def heard_a_probe() -> bool:
            nonlocal probe
            client.send(mido.Message("note_on", note=probe, velocity=90))
            client.send(mido.Message("note_off", note=probe))
            probe += 1
            return len(daemon.heard) > heard

        assert eventually(heard_a_probe, timeout=2 * PORT_POLL + 2.0)
        assert time.monotonic() - broken < 2 * PORT_POLL + 2.0
        release_everything(client)
        still_answers(daemon, client)


def flood(client: MidiClient, seconds: float, notes_per_second: int) -> int:
    """Note-on/note-off pairs at ``notes_per_second`` on all 16 channels."""
    pairs = int(seconds * notes_per_second)
    messages = []
    for k in range(pairs):
        channel, note = k % 16, 36 + (k * 7) % 60
        messages += [[0x90 | channel, note, 64 + k % 64], [0x80 | channel, note, 0]]
    # 10 notes (20 messages) every 10 ms is 1,000 notes a second.
    per_slice = max(2, notes_per_second // 100 * 2)
    return burst(client, messages, per_slice=per_slice, slice_seconds=0.01)


@pytest.mark.jack
def test_a_flood_of_1000_notes_a_second(jack_server):
    with running(hostile_settings()) as (daemon, result), MidiClient() as client:
        began = time.monotonic()
        accepted = flood(client, seconds=4.0, notes_per_second=1000)
        took = time.monotonic() - began
        assert accepted == 8000 and took < 8.0, took
        assert eventually(lambda: daemon.queue.taken + daemon.queue.dropped >= 0.5 * accepted,
                          timeout=10)
        check_healthy(daemon)
        still_answers(daemon, client)
    assert result["status"] == 0
    nothing_left_sounding(daemon, client)


class Gated(FakePredictor):
    """A model that, once armed, stalls on its next call until the gate opens:
    the worker stops taking input, as on an overloaded machine."""

    def __init__(self, vocabulary) -> None:
        super().__init__(vocabulary)
        self.armed = False
        self.entered = threading.Event()
        self.gate = threading.Event()

    def distribution(self):
        if self.armed:
            self.armed = False
            self.entered.set()
            self.gate.wait(10)
        return super().distribution()


@pytest.mark.jack
def test_a_stalled_worker_drops_the_newest_input_and_counts_it(jack_server, caplog):
    caplog.set_level(logging.WARNING, logger="cadenza.live.daemon.daemon")
    predictor = Gated(VOCAB)
    size = 64
    with running(hostile_settings(queue_size=size), predictor) as (daemon, result), \
            MidiClient() as client:
        try:
            predictor.armed = True
            for note in CALL:
                client.send(mido.Message("note_on", note=note, velocity=90))
                time.sleep(0.05)  # the performer's rhythm
                client.send(mido.Message("note_off", note=note))
            assert predictor.entered.wait(10), "the answer never started"
            accepted = flood(client, seconds=0.5, notes_per_second=1000)
            # Half the flood are note-ons, the other half note-offs: note-ons stop
            # at the bound, note-offs at twice it, and the rest is counted.
            assert eventually(lambda: daemon.queue.taken + daemon.queue.dropped
                              + len(daemon.queue._input) >= 0.5 * accepted, timeout=10)
            assert daemon.queue.dropped > 0
            assert size <= daemon.queue.peak <= 2 * size
        finally:
            predictor.gate.set()
        assert eventually(lambda: any("input queue full" in r.getMessage()
                                      for r in caplog.records), timeout=5)
        # (That releases are the last to be dropped, so no key stays held, is
        # test_releases_get_in_beyond_the_bound_but_not_past_twice_it: through
        # JACK on a busy machine a note-off now and then never arrives at all.)
        check_healthy(daemon)
        still_answers(daemon, client)
    assert result["status"] == 0
    nothing_left_sounding(daemon, client)

