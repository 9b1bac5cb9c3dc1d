"""The improviser: timestamped MIDI in, timestamped MIDI out, nothing else.

The engine holds everything musical: the rolling token window, chord
grouping, out-of-vocabulary mapping, the three modes, sampling, voicing and
the note ledger.  It owns no port, thread or clock: every call carries the
time (seconds on the caller's clock), so the daemon drives it in real time
and ``simulate`` drives it from a file, faster than real time, with the same
results.

Time flows in two units.  Performer input arrives in seconds; the music is
planned in beats on the grid of the current clock (internal tempo or a
followed MIDI clock) and turned into seconds when a note is emitted.  A note
is chosen (the model is called) ``lookahead`` seconds before it is due, so
prediction time never makes a note late.

See docs/engine.md for the musical rules.
"""

from __future__ import annotations

import logging
from collections import deque
from collections.abc import Sequence

import mido

from cadenza.config import LiveConfig
from cadenza.live import controls
from cadenza.live.chords import ChordGrouper, NoteGroup
from cadenza.live.clock import (
    TICKS_PER_BEAT,
    InternalClock,
    MidiClockFollower,
    grid_beats,
    step_after,
)
from cadenza.live.context import ModelContext
from cadenza.live.events import Event, in_sending_order
from cadenza.live.ledger import ALL_NOTES_OFF, ALL_SOUND_OFF
from cadenza.live.performer import Performer
from cadenza.live.phrase import CallNote, Phrase, Slot, plan_answer
from cadenza.live.register import Register
from cadenza.live.voices import Voices
from cadenza.predictor import Predictor
from cadenza.sampling import Sampler, SamplingSettings

log = logging.getLogger(__name__)

PERFORMER_RELEASE = (ALL_SOUND_OFF, ALL_NOTES_OFF)  # from the performer: release everything
MAX_CALL = 256  # call notes remembered for the answer's length and rhythm
MAX_LATE = 0.05  # seconds: a step this overdue is skipped, not played in a burst
# Seconds the engine chooses a note before it is due: the daemon and simulate
# both use it, so an offline duet makes the same calls as a live one.
LOOKAHEAD = 0.02


class Engine:
    """The pure improviser engine (see the module docstring and docs/engine.md)."""

    def __init__(
        self,
        predictor: Predictor,
        settings: LiveConfig,
        *,
        start_time: float = 0.0,
        lookahead: float = LOOKAHEAD,
    ) -> None:
        if lookahead < 0:
            raise ValueError(f"lookahead must be 0 or more seconds, got {lookahead}")
        self.predictor = predictor
        self.lookahead = float(lookahead)
        self._context = ModelContext(predictor, Sampler(SamplingSettings(), settings.seed))
        self.vocab = self._context.vocab
        self._now = float(start_time)
        self._start_time = float(start_time)
        self._notes_out = 0
        self._skipped = 0
        self._performer_tokens = 0
        self._voices = Voices()
        self._performer = Performer()
        self._register = Register()
        self._enabled = True
        self._settings = settings
        self._apply_settings(settings, first=True)
        self._reset_phrase()
        self.prime(self._context.bundle_primer(), reset=True)

    # ------------------------------------------------------------------ setup

    def _apply_settings(self, settings: LiveConfig, *, first: bool = False) -> None:
        old = None if first else self._settings
        self._settings = settings
        self._mode = settings.mode
        self._temperature = settings.temperature
        self._context.key.configure(settings.key, settings.key_strength, settings.key_balance)
        self._context.continuity.strength = settings.continuity
        self._step = grid_beats(settings.grid)
        self._channel = settings.channel - 1
        if first:
            self._grouper = ChordGrouper(settings.chord_window_ms)
        else:
            self._grouper.window = settings.chord_window_ms / 1000.0
        sampling = self._sampling_settings()
        if old is None or old.seed != settings.seed:
            self._context.sampler = Sampler(sampling, settings.seed)
        else:
            self._context.sampler.settings = sampling
        if old is None or old.clock != settings.clock or old.clock_window != settings.clock_window:
            if settings.clock == "midi":
                self._clock: InternalClock | MidiClockFollower = MidiClockFollower(
                    settings.bpm, settings.clock_window
                )
            else:
                self._clock = InternalClock(settings.bpm, self._start_time if first else self._now)
            if old is not None:
                self._reset_phrase()
        elif settings.clock == "internal" and old.bpm != settings.bpm:
            self._clock.set_bpm(settings.bpm, self._now)

    def _sampling_settings(self) -> SamplingSettings:
        s = self._settings
        return SamplingSettings(
            temperature=self._temperature, top_k=s.top_k, top_p=s.top_p, loop_guard=s.loop_guard
        )

    def _reset_phrase(self) -> None:
        """Forget the call, the answer being played and where continuous play stands."""
        self._phrase = Phrase(resume_beat=self._beat(self._now) or 0.0)
        self._register.new_phrase()

    def prime(self, tokens: Sequence[str | int], *, reset: bool = False) -> None:
        """Put tokens (strings of the scheme, or vocabulary indices) into the window.

        With ``reset`` the model's history is cleared first.  ``continue``
        mode plays on from whatever the window holds: the bundle's primer,
        a seed phrase given here, and everything heard since.
        """
        self._context.prime(tokens, reset=reset)

    def reload(self, settings: LiveConfig) -> None:
        """New settings (SIGHUP); the window and the sounding notes are kept.

        Values set by CC (temperature, mode, tempo, key strength) go back to the new file's.
        A change of mode or clock source drops the phrase being played.
        """
        old_mode = self._mode
        self._apply_settings(settings)
        if settings.mode != old_mode:
            self._reset_phrase()

    # ------------------------------------------------------------ properties

    @property
    def settings(self) -> LiveConfig:
        return self._settings

    @property
    def mode(self) -> str:
        return self._mode

    @property
    def enabled(self) -> bool:
        return self._enabled

    @property
    def temperature(self) -> float:
        return self._temperature

    @property
    def bpm(self) -> float:
        """The current tempo: the internal clock's, or the followed master's estimate."""
        return self._clock.bpm

    @property
    def clock(self) -> InternalClock | MidiClockFollower:
        return self._clock

    @property
    def window(self) -> tuple[str, ...]:
        """The tokens the model is conditioned on, oldest first."""
        return self._context.tokens

    @property
    def sounding(self) -> frozenset[tuple[int, int]]:
        """(channel 0-15, note) turned on by the engine and not yet turned off."""
        return self._voices.keys

    @property
    def window_length(self) -> int:
        """The most tokens the window holds (the model's context)."""
        return self._context.capacity

    @property
    def held(self) -> frozenset[tuple[int, int]]:
        """(channel 0-15, note) the performer holds down, as the engine heard it."""
        return frozenset(self._performer.held)

    def beat_at(self, time: float) -> float | None:
        return self._beat(time)

    def stats(self) -> dict:
        out: dict = {
            **self._context.latency_stats(),
            "notes_out": self._notes_out,
            "skipped_late": self._skipped,
            "performer_tokens": self._performer_tokens,
            "sounding": len(self._voices),
            "bpm": self.bpm,
            "mode": self._mode,
            "enabled": self._enabled,
            "key": None if self._context.key.key is None else str(self._context.key.key),
            "key_strength": self._context.key.strength,
        }
        return out

    # ------------------------------------------------------------ time helpers

    def _beat(self, time: float) -> float | None:
        return self._clock.beat_at(time)

    def _time(self, beat: float) -> float | None:
        return self._clock.time_at(beat)

    def _tick_now(self, now: float) -> None:
        if now > self._now:
            self._now = now

    # ---------------------------------------------------------------- input

    def on_message(self, message: mido.Message, now: float, lag: float = 0.0) -> list[Event]:
        """Take one incoming message; returns the events due now (if any).

        ``lag``: how far the MIDI system's own clock had fallen behind at
        arrival (JACK's frame clock after xruns); a master's clock is read
        on that clock (see ``MidiClockFollower.tick``).
        """
        self._tick_now(now)
        out: list[Event] = []
        kind = message.type
        if kind == "note_on" and message.velocity > 0:
            self._performer_on(message, now)
        elif kind == "note_off" or kind == "note_on":
            self._performer_off(message, now)
        elif kind == "control_change":
            self._control(message, now, out)
        elif kind in ("clock", "start", "stop", "continue", "songpos"):
            self._clock_message(message, now, out, lag)
        return in_sending_order(out)

    def _performer_on(self, message: mido.Message, now: float) -> None:
        closed = self._grouper.note_on(message.note, message.velocity, now)
        if closed is not None:
            self._take_group(closed)
        beat = self._beat(now)
        paused = not self._performer.held and (
            self._phrase.activity_beat is None
            or beat is None
            or beat >= self._phrase.activity_beat + self._settings.pause_beats
        )
        if paused:
            self._phrase.phrase_onset_beat = beat
            self._performer.new_phrase()
        self._performer.press(message.channel, message.note)
        if beat is not None:
            self._phrase.activity_beat = beat
        if self._mode == "call-response":
            self._interrupt(now, beat)
            self._extend_call(message.note, message.velocity, beat)

    def _extend_call(self, note: int, velocity: int, beat: float | None) -> None:
        # The call's rhythm and count are kept per chord group: a note that
        # joined the open group extends the newest entry instead of starting one.
        group = self._grouper.pending
        if group is not None and len(group.notes) > 1 and self._phrase.call:
            self._phrase.call[-1].open_notes.add(note)
            self._phrase.call[-1].velocity = max(self._phrase.call[-1].velocity, velocity)
            return
        self._phrase.call.append(CallNote(beat if beat is not None else self._phrase.resume_beat, velocity, {note}))
        if len(self._phrase.call) > MAX_CALL:
            del self._phrase.call[0]  # a performer who never pauses: keep the latest notes

    def _performer_off(self, message: mido.Message, now: float) -> None:
        if not self._performer.release(message.channel, message.note):
            return  # a release of something pressed before we listened
        beat = self._beat(now)
        if beat is not None:
            self._phrase.activity_beat = beat
        for entry in reversed(self._phrase.call):
            if message.note in entry.open_notes:
                entry.open_notes.discard(message.note)
                if not entry.open_notes and beat is not None:
                    entry.end_beat = beat
                break

    def _take_group(self, group: NoteGroup) -> None:
        """A closed chord group enters the window as one token."""
        index = self.vocab.index_of_notes(group.notes)
        self._push(index, performer=True)
        self._performer_tokens += 1
        self._performer.onset(group.velocity)

    def _push(self, index: int, *, performer: bool = False) -> None:
        self._context.push(index, performer=performer)

    def _interrupt(self, now: float, beat: float | None) -> None:
        """The performer plays again during an answer: stop within one grid step."""
        if not self._phrase.plan and not self._voices.answering:
            return
        self._phrase.plan.clear()

        def cutoff(on_beat: float | None) -> float:
            # The next grid line after both the interruption and the note's
            # own onset (a note handed out in the lookahead may start later).
            beats = [b for b in (beat, on_beat) if b is not None]
            at = self._time(step_after(max(beats), self._step)) if beats else None
            return now if at is None else at

        self._voices.cut_answers(cutoff)

    # ------------------------------------------------------------- controls

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

    def release_performer(self, now: float, channel: int | None = None) -> None:
        """Let go of every key the performer holds (on ``channel``, or all): their
        keyboard sent All Notes Off, or its port went away with keys down."""
        for key_channel, note in sorted(self._performer.held):
            if channel is None or key_channel == channel:
                self._performer_off(mido.Message("note_off", channel=key_channel, note=note), now)

    def _clock_message(self, message: mido.Message, now: float, out: list[Event],
                       lag: float = 0.0) -> None:
        clock = self._clock
        if not isinstance(clock, MidiClockFollower):
            return  # internal clock: a master's clock is not ours to follow
        kind = message.type
        if kind == "clock":
            clock.tick(now, lag)
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

    # ------------------------------------------------------------ the music

    def _next_slot(self) -> Slot | None:
        """Where the next Cadenza token goes, as far as is known now."""
        if not self._enabled or not self._clock.running:
            return None
        return self._phrase.next_slot(
            self._mode, self._step, self._settings.pause_beats,
            performer_active=bool(self._performer.held) or self._grouper.pending is not None,
            keys_down=bool(self._performer.held),
        )

    def _build_answer(self, start: float) -> None:
        """Turn the call into the answer's slots, starting on ``start``."""
        settings = self._settings
        slots = plan_answer(
            self._phrase.call, start, self._step, rhythm=settings.rhythm,
            answer_bars=settings.answer_bars, max_notes=settings.max_answer_notes,
            follow_velocity=settings.velocity == 0,
        )
        self._phrase.call.clear()
        self._phrase.plan = deque(slots)
        self._register.new_phrase()  # each answer is placed as a phrase of its own

    def _choose(self) -> int:
        return self._context.choose()

    def _centre(self) -> int:
        return self._performer.centre(self._settings.octave)

    def _velocity(self, slot_velocity: int | None) -> int:
        if self._settings.velocity:
            return self._settings.velocity
        if slot_velocity is not None:
            return slot_velocity
        return self._performer.velocity()

    def _notes_of(self, index: int) -> list[int]:
        follow = self._settings.register == "follow"
        return self._register.place(self.vocab.vocabulary[index], self._centre(), follow)

    def _play(self, slot: Slot, on_time: float, out: list[Event]) -> None:
        index = self._choose()
        self._push(index)
        velocity = self._velocity(slot.velocity)
        length = max(slot.length - self._step * (1.0 - self._settings.gate), 1e-3)
        off_time = self._time(slot.beat + length)
        if off_time is None or off_time <= on_time:
            off_time = on_time + 1e-3
        answer = self._mode == "call-response"
        for note in self._notes_of(index):
            out.extend(self._voices.start(self._channel, note, velocity, on_time, slot.beat,
                                          off_time, answer))
            self._notes_out += 1

    def advance(self, now: float) -> list[Event]:
        """Run the music up to ``now``; returns every event due before ``now + lookahead``."""
        self._tick_now(now)
        out: list[Event] = []
        closed = self._grouper.flush(now)
        if closed is not None:
            self._take_group(closed)
        horizon = now + self.lookahead
        while True:
            slot = self._next_slot()
            if slot is None:
                break
            on_time = self._time(slot.beat)
            if on_time is None or on_time > horizon:
                break
            if slot.start_marker:
                self._build_answer(slot.beat)
                if not self._phrase.plan:
                    break
                continue
            if self._phrase.plan:
                self._phrase.plan.popleft()
            self._phrase.last_slot_beat = slot.beat
            if on_time < now - MAX_LATE:
                self._skipped += 1
                continue
            self._release_due(on_time, out)
            self._play(slot, on_time, out)
        self._release_due(horizon, out)
        return in_sending_order(out)

    def _release_due(self, until: float, out: list[Event]) -> None:
        out.extend(self._voices.release_due(until))

    def next_deadline(self) -> float | None:
        """When ``advance`` must be called next (lookahead already taken off)."""
        candidates = []
        group_close = self._grouper.deadline()
        if group_close is not None:
            candidates.append(group_close)
        slot = self._next_slot()
        if slot is not None:
            on_time = self._time(slot.beat)
            if on_time is not None:
                candidates.append(on_time - self.lookahead)
        end = self._voices.next_end()
        if end is not None:
            candidates.append(end - self.lookahead)
        return min(candidates) if candidates else None

    # ----------------------------------------------------------- stopping

    def stop(self, now: float) -> list[Event]:
        """Release everything sounding and forget the phrase in progress.

        A note whose note-on was handed out but is not due yet is released
        at its own onset (after it, in a queue that keeps insertion order),
        so the caller's queue never holds a note-on without its note-off.
        """
        self._tick_now(now)
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

