"""The MIDI vocabulary every layer shares: what a note-on and a release are, the
controllers that silence a channel, and what the engine hands out: timestamped
messages, in the order they must leave."""

from __future__ import annotations

from dataclasses import dataclass, field

import mido

ALL_SOUND_OFF = 120
ALL_NOTES_OFF = 123
_NOTE_OFF = 0x80
_NOTE_ON = 0x90
_STATUS = {"note_off": _NOTE_OFF, "note_on": _NOTE_ON}


def is_release_status(status: int, velocity: int) -> bool:
    """A note-off, or a note-on of velocity 0 (a note-off by the MIDI standard,
    for running status): the one definition of a release, on raw bytes."""
    kind = status & 0xF0
    return kind == _NOTE_OFF or (kind == _NOTE_ON and velocity == 0)


def is_release(message: mido.Message) -> bool:
    """``message`` releases a note (see ``is_release_status``)."""
    status = _STATUS.get(message.type)
    return status is not None and is_release_status(status, message.velocity)


def is_note_on(message: mido.Message) -> bool:
    """``message`` starts a note: a note-on that is not a release."""
    return message.type == "note_on" and message.velocity > 0


def silence_messages(channels: list[int] | tuple[int, ...] | range) -> list[mido.Message]:
    """CC 123 (all notes off) then CC 120 (all sound off) on each channel (0-15)."""
    messages = []
    for channel in channels:
        messages.append(mido.Message("control_change", channel=channel, control=ALL_NOTES_OFF, value=0))
        messages.append(mido.Message("control_change", channel=channel, control=ALL_SOUND_OFF, value=0))
    return messages


@dataclass(frozen=True, order=True)
class Event:
    """One outgoing MIDI message at an absolute time (seconds on the caller's clock)."""

    time: float
    message: mido.Message = field(compare=False)


def _rank(message: mido.Message) -> int:
    # Among messages due at the same instant: releases first (a retriggered
    # note needs its note-off before its new note-on), note-ons last.
    if is_release(message):
        return 0
    if is_note_on(message):
        return 2
    return 1


def in_sending_order(events: list[Event]) -> list[Event]:
    """By time; at one instant, note-offs, then other messages, then note-ons."""
    return sorted(events, key=lambda e: (e.time, _rank(e.message)))
