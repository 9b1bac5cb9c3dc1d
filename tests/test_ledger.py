"""The output-side note ledger: every note-on sent gets its note-off."""

from __future__ import annotations

import mido
import pytest

from cadenza.live.ledger import ALL_NOTES_OFF, ALL_SOUND_OFF, NoteLedger, silence_messages


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
