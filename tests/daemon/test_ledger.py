"""The output-side note ledger: every note-on sent gets its note-off."""

from __future__ import annotations

import mido
import pytest

from cadenza.live.daemon.ledger import NoteLedger
from cadenza.live.engine.events import ALL_NOTES_OFF, ALL_SOUND_OFF, silence_messages


def on(note: int, channel: int = 0, velocity: int = 90) -> mido.Message:
    return mido.Message("note_on", channel=channel, note=note, velocity=velocity)


def off(note: int, channel: int = 0) -> mido.Message:
    return mido.Message("note_off", channel=channel, note=note)


def test_tracks_what_was_sent_and_released():
    ledger = NoteLedger(channel=0)
    for message in (on(60), on(64), off(60), on(67)):
        ledger.sent(message)
    assert ledger.sounding == {(0, 64), (0, 67)}
    assert len(ledger) == 2


def test_velocity_zero_note_on_is_a_note_off():
    ledger = NoteLedger(channel=0)
    ledger.sent(on(60))
    ledger.sent(on(60, velocity=0))
    assert ledger.sounding == frozenset()


def test_stray_note_off_does_not_go_negative():
    ledger = NoteLedger(channel=0)
    ledger.sent(off(60))  # its note-on was dropped late
    ledger.sent(on(60))
    assert ledger.sounding == {(0, 60)}


def test_release_all_sends_note_offs_then_cc123_then_cc120_on_the_output_channel():
    ledger = NoteLedger(channel=3)
    ledger.sent(on(72, channel=3))
    ledger.sent(on(48, channel=3))
    messages = ledger.release_all()
    assert [(m.type, m.channel, m.note) for m in messages[:2]] == [
        ("note_off", 3, 48),
        ("note_off", 3, 72),
    ]
    assert [(m.type, m.channel, m.control) for m in messages[2:]] == [
        ("control_change", 3, ALL_NOTES_OFF),
        ("control_change", 3, ALL_SOUND_OFF),
    ]
    for message in messages:  # as the daemon does: each one sent goes through the ledger
        ledger.sent(message)
    assert ledger.sounding == frozenset()
    # Nothing sounds any more: a second release is controllers only.
    assert all(m.type == "control_change" for m in ledger.release_all())


def test_a_note_off_that_could_not_be_sent_keeps_its_note():
    ledger = NoteLedger(channel=0)
    ledger.sent(on(60))
    ledger.sent(on(62))
    first, _second, *_ = ledger.release_all()
    ledger.sent(first)  # the port vanished before the second note-off
    assert ledger.sounding == {(0, 62)}


def test_a_stacked_note_gets_one_note_off_per_note_on():
    ledger = NoteLedger(channel=0)
    ledger.sent(on(60))
    ledger.sent(on(60))
    offs = [m for m in ledger.release_all() if m.type == "note_off"]
    assert len(offs) == 2
    for message in offs:
        ledger.sent(message)
    assert ledger.sounding == frozenset()


def test_other_channels_that_sounded_are_silenced_too():
    ledger = NoteLedger(channel=0)
    ledger.sent(on(60, channel=5))
    messages = ledger.release_all()
    assert ("note_off", 5, 60) in [(m.type, m.channel, getattr(m, "note", None)) for m in messages]
    cc_channels = {m.channel for m in messages if m.type == "control_change"}
    assert cc_channels == {0, 5}


def test_silence_messages_and_bad_channel():
    assert [(m.channel, m.control) for m in silence_messages([1])] == [
        (1, ALL_NOTES_OFF),
        (1, ALL_SOUND_OFF),
    ]
    with pytest.raises(ValueError, match="0-15"):
        NoteLedger(channel=16)


class Clock:
    """A clock the test moves by hand."""

    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def echoing(delay: float = 0.1) -> tuple[NoteLedger, Clock]:
    clock = Clock()
    return NoteLedger(channel=0, clock=clock, echo_delay=delay), clock


def test_release_echo_is_due_once_everything_is_released():
    ledger, clock = echoing()
    ledger.sent(on(60))
    ledger.sent(on(64))
    clock.now = 1.0
    ledger.sent(off(60))
    assert ledger.echo_due() is None  # 64 still sounds
    clock.now = 1.5
    ledger.sent(off(64))
    assert ledger.echo_due() == pytest.approx(1.6)
    echo = ledger.take_echo()
    assert [(m.type, m.note, m.velocity) for m in echo] == [("note_off", 60, 0), ("note_off", 64, 0)]
    assert ledger.echo_due() is None and ledger.take_echo() == []


def test_the_echo_itself_is_not_echoed():
    ledger, _ = echoing()
    ledger.sent(on(60))
    ledger.sent(off(60))
    for message in ledger.take_echo():
        ledger.sent(message)
    assert ledger.echo_due() is None
    assert ledger.take_echo() == []


def test_a_stray_note_off_arms_no_echo():
    ledger, _ = echoing()
    ledger.sent(off(60))  # its note-on was dropped late: nothing sounded
    assert ledger.echo_due() is None


def test_a_new_note_disarms_the_echo_and_the_next_silence_echoes_both():
    ledger, clock = echoing()
    ledger.sent(on(60))
    ledger.sent(off(60))
    ledger.sent(on(62))
    assert ledger.echo_due() is None and ledger.take_echo() == []
    clock.now = 2.0
    ledger.sent(off(62))
    assert ledger.echo_due() == pytest.approx(2.1)
    assert [m.note for m in ledger.take_echo()] == [60, 62]


def test_a_deferred_echo_is_tried_again_one_delay_later():
    ledger, clock = echoing()
    ledger.sent(on(60))
    ledger.sent(off(60))
    clock.now = 0.1
    ledger.defer_echo()  # a note-on was on its way; it may yet be cancelled
    assert ledger.echo_due() == pytest.approx(0.2)
    assert [m.note for m in ledger.take_echo()] == [60]


def test_a_deferred_echo_keeps_its_notes_for_the_next_silence():
    ledger, clock = echoing()
    ledger.sent(on(60))
    ledger.sent(off(60))
    ledger.defer_echo()
    ledger.sent(on(67))  # the note that was on its way went out
    assert ledger.echo_due() is None
    clock.now = 3.0
    ledger.sent(off(67))
    assert [m.note for m in ledger.take_echo()] == [60, 67]


def test_stacked_voices_echo_after_the_last_note_off():
    ledger, _ = echoing()
    ledger.sent(on(60))
    ledger.sent(on(60))
    ledger.sent(off(60))
    assert ledger.echo_due() is None
    ledger.sent(off(60))
    assert [m.note for m in ledger.take_echo()] == [60]


def test_no_echo_when_its_delay_is_zero():
    ledger, _ = echoing(delay=0.0)
    ledger.sent(on(60))
    ledger.sent(off(60))
    assert ledger.echo_due() is None and ledger.take_echo() == []


def test_a_negative_echo_delay_is_refused():
    with pytest.raises(ValueError, match="echo delay"):
        NoteLedger(channel=0, echo_delay=-0.1)
