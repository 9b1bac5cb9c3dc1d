"""Transport: the performer's controllers, a master's clock and stopping.

A part of ``Engine`` (see ``engine.py``): the state it reads and sets is the
engine's.  Every stop (a Stop or Start from the master, a panic, a change of
mode, switching off) goes through ``stop``, which counts it in ``stops``.
"""

from __future__ import annotations

import mido

from cadenza.live.engine import controls
from cadenza.live.engine.clock import TICKS_PER_BEAT, InternalClock, MidiClockFollower
from cadenza.live.engine.events import ALL_NOTES_OFF, ALL_SOUND_OFF, Event, in_sending_order

PERFORMER_RELEASE = (ALL_SOUND_OFF, ALL_NOTES_OFF)  # from the performer: release everything


class Transport:
    """Controllers, clock messages, ``stop`` and ``panic``."""

    def _control(self, message: mido.Message, now: float, out: list[Event]) -> None:
        if message.control in PERFORMER_RELEASE:
            # A keyboard that lost its note-offs (a cable pulled mid-chord) would
            # otherwise hold the call open for ever: its All Notes Off lets go.
            self.release_performer(now, channel=message.channel)
        for name in controls.controls_of(self._settings.cc, message.control):
            value = message.value
            if name == "temperature":
                self._temperature = controls.temperature_from(value)
                self._context.sampler.settings = self._sampling_settings()
            elif name == "mode":
                mode = controls.mode_from(value)
                if mode != self._mode:
                    out.extend(self.stop(now))
                    self._mode = mode
                    self._reset_phrase()
            elif name == "enabled":
                enabled = controls.switch_from(value)
                if enabled != self._enabled:
                    if not enabled:
                        out.extend(self.stop(now))
                    self._enabled = enabled
                    self._reset_phrase()
            elif name == "panic":
                if controls.switch_from(value):
                    out.extend(self.panic(now))
            elif name == "tempo" and isinstance(self._clock, InternalClock):
                self._clock.set_bpm(controls.tempo_from(value), now)
            elif name == "key_strength":
                self._context.key.strength = controls.strength_from(value)

    def _clock_message(self, message: mido.Message, now: float, out: list[Event]) -> None:
        clock = self._clock
        if not isinstance(clock, MidiClockFollower):
            return  # internal clock: a master's clock is not ours to follow
        kind = message.type
        if kind == "clock":
            clock.tick(now)
        elif kind == "start":
            out.extend(self.stop(now))
            clock.start(now)
            self._reset_phrase()
            self._phrase.resume_beat = 0.0
        elif kind == "continue":
            out.extend(self.stop(now))
            clock.continue_(now)
            self._reset_phrase()
            self._phrase.resume_beat = clock.position_ticks / TICKS_PER_BEAT
        elif kind == "stop":
            clock.stop(now)
            out.extend(self.stop(now))
        elif kind == "songpos":
            clock.song_position(message.pos)

    def stop(self, now: float) -> list[Event]:
        """Release everything sounding and forget the phrase in progress.

        A note whose note-on was handed out but is not due yet is released
        at its own onset (after it, in a queue that keeps insertion order),
        so the caller's queue never holds a note-on without its note-off.
        The caller's queue may still hold note-ons handed out earlier that
        must no longer sound: ``stops`` counts every stop, so a caller can
        tell that one happened and drop them.
        """
        self._tick_now(now)
        self.stops += 1
        out = self._voices.release_all(now)
        closed = self._grouper.close()
        if closed is not None:
            self._take_group(closed)
        self._reset_phrase()
        return in_sending_order(out)

    def panic(self, now: float) -> list[Event]:
        """Note-offs for everything sounding, then All Notes Off and All Sound Off."""
        out = self.stop(now)
        for control in (ALL_NOTES_OFF, ALL_SOUND_OFF):
            out.append(
                Event(now, mido.Message("control_change", channel=self._channel, control=control, value=0))
            )
        # A note handed out ahead is released at its onset, after these.
        return in_sending_order(out)
