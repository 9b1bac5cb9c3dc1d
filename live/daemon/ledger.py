"""The output-side note ledger: what Cadenza has actually sent and not yet released.

The engine keeps its own idea of the sounding notes, but only the output side
knows what really left the port (the scheduler may drop a late note-on, a
port may vanish mid-phrase).  Every message the scheduler sends passes
through ``NoteLedger.sent``; on shutdown, on an error or after a lost port
``release_all`` gives the note-offs that silence exactly what is sounding,
then All Sound Off (CC 120) and All Notes Off (CC 123) for synths that missed
something.

A note-off lost on the way (a JACK server that overruns its cycle, a busy
network or Bluetooth link) leaves a note hanging until something else
silences it.  So the ledger also keeps the release echo: once nothing of
Cadenza's sounds for ``echo_delay`` seconds, the notes it released since the
last echo get their note-off once more.  A second note-off for a silent note
changes nothing at a synth; a lost first one no longer sticks.
"""

from __future__ import annotations

import threading
import time
from collections import Counter
from collections.abc import Callable

import mido

from cadenza.live.engine.events import is_note_on, is_release, silence_messages


class NoteLedger:
    """Counts note-ons sent per (channel, note) minus the note-offs sent.

    Counts, not flags: a synth that stacks voices needs one note-off per
    note-on.  Thread-safe: the scheduler thread records sends while the
    supervisor may read ``sounding`` for statistics.
    """

    def __init__(
        self, channel: int, *, clock: Callable[[], float] = time.monotonic,
        echo_delay: float = 0.0,
    ) -> None:
        if not 0 <= channel <= 15:
            raise ValueError(f"output channel must be 0-15, got {channel}")
        if echo_delay < 0:
            raise ValueError(f"echo delay must be 0 (off) or more seconds, got {echo_delay}")
        self.channel = channel
        self.echo_delay = echo_delay  # 0: no release echo
        self._clock = clock
        self._counts: Counter[tuple[int, int]] = Counter()
        self._channels_used: set[int] = set()
        self._released: set[tuple[int, int]] = set()  # since the last echo
        self._silent_since: float | None = None  # when the last sounding note was released
        self._lock = threading.Lock()

    def sent(self, message: mido.Message) -> bool:
        """Record one message that has just been sent; True when it released the
        last sounding note and armed the release echo."""
        if is_note_on(message):
            key = (message.channel, message.note)
            with self._lock:
                self._counts[key] += 1
                self._channels_used.add(message.channel)
                self._silent_since = None
            return False
        if is_release(message):
            key = (message.channel, message.note)
            with self._lock:
                count = self._counts[key]
                if count > 1:
                    self._counts[key] -= 1
                    return False
                # A note-off for a note that is not sounding (its note-on was
                # dropped late, or this is an echo) must not make the count
                # negative, nor be echoed.
                self._counts.pop(key, None)
                if count == 1 and self.echo_delay > 0:
                    self._released.add(key)
                    if not self._counts:
                        self._silent_since = self._clock()
                        return True
        return False

    @property
    def sounding(self) -> frozenset[tuple[int, int]]:
        with self._lock:
            return frozenset(self._counts)

    def __len__(self) -> int:
        with self._lock:
            return len(self._counts)

    def echo_due(self) -> float | None:
        """When the release echo is due (None: nothing to echo)."""
        with self._lock:
            if self._silent_since is None:
                return None
            return self._silent_since + self.echo_delay

    def take_echo(self) -> list[mido.Message]:
        """The note-offs of the release echo, once; empty while anything sounds."""
        with self._lock:
            if self._counts or self._silent_since is None:
                return []
            released, self._released = sorted(self._released), set()
            self._silent_since = None
        return [mido.Message("note_off", channel=channel, note=note, velocity=0)
                for channel, note in released]

    def defer_echo(self) -> None:
        """Not now (a note is on its way): try again one delay later.  The
        note, once sent, disarms the echo until the next silence; a note
        that never goes out (cancelled by a Stop, dropped late) does not."""
        with self._lock:
            if self._silent_since is not None:
                self._silent_since = self._clock()

    def release_all(self) -> list[mido.Message]:
        """Note-offs for every sounding note, then CC 123 and CC 120.

        The controllers go to the output channel and to any other channel a
        note was sent on.  The ledger forgets each note as its note-off goes
        through ``sent``: a note-off that could not be sent (the port is
        gone) leaves its note in the ledger, to be released when it is back.
        """
        with self._lock:
            counts = sorted(self._counts.items())
            channels = sorted(self._channels_used | {self.channel})
        messages = [
            mido.Message("note_off", channel=channel, note=note, velocity=0)
            for (channel, note), count in counts
            for _ in range(count)
        ]
        return messages + silence_messages(channels)
