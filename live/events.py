"""What the engine hands out: timestamped MIDI messages, in the order they must leave."""

from __future__ import annotations

from dataclasses import dataclass, field

import mido


@dataclass(frozen=True, order=True)
class Event:
    """One outgoing MIDI message at an absolute time (seconds on the caller's clock)."""

    time: float
    message: mido.Message = field(compare=False)


def _rank(message: mido.Message) -> int:
    # Among messages due at the same instant: releases first (a retriggered
    # note needs its note-off before its new note-on), note-ons last.
    if message.type == "note_off":
        return 0
    if message.type == "note_on":
        return 2
    return 1


def in_sending_order(events: list[Event]) -> list[Event]:
    """By time; at one instant, note-offs, then other messages, then note-ons."""
    return sorted(events, key=lambda e: (e.time, _rank(e.message)))
