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
import statistics
import time as _time
from collections import deque
from collections.abc import Sequence
from dataclasses import dataclass, field

import mido

from cadenza.config import MODES, LiveConfig
from cadenza.live.chords import ChordGrouper, NoteGroup
from cadenza.live.clock import (
    BEATS_PER_BAR,
    TICKS_PER_BEAT,
    InternalClock,
    MidiClockFollower,
    grid_beats,
    snap,
    step_after,
    step_at_or_after,
)
from cadenza.live.ledger import ALL_NOTES_OFF, ALL_SOUND_OFF
from cadenza.live.vocab_map import VocabMap
from cadenza.predictor import Predictor
from cadenza.sampling import Sampler, SamplingSettings
from cadenza.tokens import chord_pitch_classes, is_chord, name_to_midi, voice_chord

log = logging.getLogger(__name__)

DEFAULT_WINDOW = 50  # the model's context when the predictor does not say
DEFAULT_VELOCITY = 80  # before the performer has played anything
DEFAULT_CENTRE = 60  # chords are voiced around middle C until the performer plays
RECENT_NOTES = 16  # performer notes that define "the recent register"
RECENT_VELOCITIES = 8  # performer onsets that define "the recent dynamics"
PERFORMER_RELEASE = (ALL_SOUND_OFF, ALL_NOTES_OFF)  # from the performer: release everything
MAX_CALL = 256  # call notes remembered for the answer's length and rhythm
MAX_LATE = 0.05  # seconds: a step this overdue is skipped, not played in a burst
LATENCY_SAMPLES = 4096
TEMPERATURE_CC_MAX = 2.0  # CC value 127 means this temperature
TEMPO_CC_RANGE = (40.0, 240.0)  # CC values 0..127 span this tempo range
# Seconds the engine chooses a note before it is due: the daemon and simulate
# both use it, so an offline duet makes the same calls as a live one.
LOOKAHEAD = 0.02


@dataclass(frozen=True, order=True)
class Event:
    """One outgoing MIDI message at an absolute time (seconds on the caller's clock)."""

    time: float
    message: mido.Message = field(compare=False)


@dataclass
class _Sounding:
    on_time: float
    on_beat: float | None
    off_time: float
    answer: bool  # part of a call-response answer (cut short when the performer returns)


@dataclass
class _Slot:
    """A place for one Cadenza token: where, how long, how loud (None: follow)."""

    beat: float
    length: float  # beats the note sounds (before the gate)
    velocity: int | None = None
    start_marker: bool = False  # call-response: "the answer starts here", plan not built yet


@dataclass
class _CallNote:
    beat: float
    velocity: int
    open_notes: set[int]
    end_beat: float | None = None


def _rank(message: mido.Message) -> int:
    # Among messages due at the same instant: releases first (a retriggered
    # note needs its note-off before its new note-on), note-ons last.
    if message.type == "note_off":
        return 0
    if message.type == "note_on":
        return 2
    return 1


def _sorted(events: list[Event]) -> list[Event]:
    return sorted(events, key=lambda e: (e.time, _rank(e.message)))


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
        self.vocab = VocabMap(predictor.vocabulary)
        window = getattr(predictor, "window", None)
        self._window: deque[int] = deque(maxlen=int(window) if window else DEFAULT_WINDOW)
        self._now = float(start_time)
        self._start_time = float(start_time)
        self._predictions = 0
        self._latencies: deque[float] = deque(maxlen=LATENCY_SAMPLES)
        self._notes_out = 0
        self._skipped = 0
        self._performer_tokens = 0
        self._sounding: dict[tuple[int, int], _Sounding] = {}
        self._held: set[tuple[int, int]] = set()
        self._recent_notes: deque[int] = deque(maxlen=RECENT_NOTES)
        self._recent_velocities: deque[int] = deque(maxlen=RECENT_VELOCITIES)
        self._enabled = True
        self._settings = settings
        self._apply_settings(settings, first=True)
        self._reset_phrase()
        self.prime(self._bundle_primer(), reset=True)

    # ------------------------------------------------------------------ setup

    def _apply_settings(self, settings: LiveConfig, *, first: bool = False) -> None:
        old = None if first else self._settings
        self._settings = settings
        self._mode = settings.mode
        self._temperature = settings.temperature
        self._step = grid_beats(settings.grid)
        self._channel = settings.channel - 1
        if first:
            self._grouper = ChordGrouper(settings.chord_window_ms)
        else:
            self._grouper.window = settings.chord_window_ms / 1000.0
        sampling = self._sampling_settings()
        if old is None or old.seed != settings.seed:
            self._sampler = Sampler(sampling, settings.seed)
        else:
            self._sampler.settings = sampling
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

    def _bundle_primer(self) -> list[str | int]:
        # The ONNX runners left-fill a short history with the bundle's first
        # primer (``fill``, indices); starting the window from the same tokens
        # makes both runners see exactly what ``window`` shows.
        fill = getattr(self.predictor, "fill", None)
        if fill is None:
            primers = getattr(self.predictor, "primers", None) or ()
            fill = primers[0] if primers else ()
        return list(fill)[-self._window.maxlen :] if self._window.maxlen else []

    def _reset_phrase(self) -> None:
        """Forget the call, the answer being played and where continuous play stands."""
        self._call: list[_CallNote] = []
        self._plan: deque[_Slot] = deque()
        self._last_slot_beat: float | None = None
        self._activity_beat: float | None = None  # last performer onset or release
        self._phrase_onset_beat: float | None = None  # first onset after a pause
        self._resume_beat = self._beat(self._now) or 0.0

    def prime(self, tokens: Sequence[str | int], *, reset: bool = False) -> None:
        """Put tokens (strings of the scheme, or vocabulary indices) into the window.

        With ``reset`` the model's history is cleared first.  ``continue``
        mode plays on from whatever the window holds: the bundle's primer,
        a seed phrase given here, and everything heard since.
        """
        indices = [
            int(t) if isinstance(t, int) else self.vocab.index_of_token(t) for t in tokens
        ]
        if reset:
            self._window.clear()
            self._window.extend(indices)
            self.predictor.reset(list(self._window))
        else:
            for index in indices:
                self._push(index)

    def reload(self, settings: LiveConfig) -> None:
        """New settings (SIGHUP); the window and the sounding notes are kept.

        Values set by CC (temperature, mode, tempo) go back to the new file's.
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
        vocabulary = self.vocab.vocabulary
        return tuple(vocabulary[i] for i in self._window)

    @property
    def sounding(self) -> frozenset[tuple[int, int]]:
        """(channel 0-15, note) turned on by the engine and not yet turned off."""
        return frozenset(self._sounding)

    def beat_at(self, time: float) -> float | None:
        return self._beat(time)

    def stats(self) -> dict:
        latencies = list(self._latencies)
        out: dict = {
            "predictions": self._predictions,
            "latencies": latencies,
            "notes_out": self._notes_out,
            "skipped_late": self._skipped,
            "performer_tokens": self._performer_tokens,
            "sounding": len(self._sounding),
            "bpm": self.bpm,
            "mode": self._mode,
            "enabled": self._enabled,
        }
        if latencies:
            ordered = sorted(latencies)
            out["latency_p50"] = statistics.median(ordered)
            out["latency_p99"] = ordered[min(len(ordered) - 1, int(0.99 * len(ordered)))]
            out["latency_max"] = ordered[-1]
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

    def on_message(self, message: mido.Message, now: float) -> list[Event]:
        """Take one incoming message; returns the events due now (if any)."""
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
            self._clock_message(message, now, out)
        return _sorted(out)

    def _performer_on(self, message: mido.Message, now: float) -> None:
        closed = self._grouper.note_on(message.note, message.velocity, now)
        if closed is not None:
            self._take_group(closed)
        beat = self._beat(now)
        paused = not self._held and (
            self._activity_beat is None
            or beat is None
            or beat >= self._activity_beat + self._settings.pause_beats
        )
        if paused:
            self._phrase_onset_beat = beat
        self._held.add((message.channel, message.note))
        self._recent_notes.append(message.note)
        if beat is not None:
            self._activity_beat = beat
        if self._mode == "call-response":
            self._interrupt(now, beat)
            self._extend_call(message.note, message.velocity, beat)

    def _extend_call(self, note: int, velocity: int, beat: float | None) -> None:
        # The call's rhythm and count are kept per chord group: a note that
        # joined the open group extends the newest entry instead of starting one.
        group = self._grouper.pending
        if group is not None and len(group.notes) > 1 and self._call:
            self._call[-1].open_notes.add(note)
            self._call[-1].velocity = max(self._call[-1].velocity, velocity)
            return
        self._call.append(_CallNote(beat if beat is not None else self._resume_beat, velocity, {note}))
        if len(self._call) > MAX_CALL:
            del self._call[0]  # a performer who never pauses: keep the latest notes

    def _performer_off(self, message: mido.Message, now: float) -> None:
        key = (message.channel, message.note)
        if key not in self._held:
            return  # a release of something pressed before we listened
        self._held.discard(key)
        beat = self._beat(now)
        if beat is not None:
            self._activity_beat = beat
        for entry in reversed(self._call):
            if message.note in entry.open_notes:
                entry.open_notes.discard(message.note)
                if not entry.open_notes and beat is not None:
                    entry.end_beat = beat
                break

    def _take_group(self, group: NoteGroup) -> None:
        """A closed chord group enters the window as one token."""
        index = self.vocab.index_of_notes(group.notes)
        self._push(index)
        self._performer_tokens += 1
        self._recent_velocities.append(group.velocity)

    def _push(self, index: int) -> None:
        self._window.append(index)
        self.predictor.feed(index)

    def _interrupt(self, now: float, beat: float | None) -> None:
        """The performer plays again during an answer: stop within one grid step."""
        if not self._plan and not any(s.answer for s in self._sounding.values()):
            return
        self._plan.clear()
        for sounding in self._sounding.values():
            if not sounding.answer:
                continue
            # Cut at the next grid line after both the interruption and the
            # note's own onset (a note handed out in the lookahead may start later).
            beats = [b for b in (beat, sounding.on_beat) if b is not None]
            cutoff = self._time(step_after(max(beats), self._step)) if beats else None
            if cutoff is None:
                cutoff = now
            sounding.off_time = max(sounding.on_time, min(sounding.off_time, cutoff))

    # ------------------------------------------------------------- controls

    def _control(self, message: mido.Message, now: float, out: list[Event]) -> None:
        if message.control in PERFORMER_RELEASE:
            # A keyboard that lost its note-offs (a cable pulled mid-chord) would
            # otherwise hold the call open for ever: its All Notes Off lets go.
            for channel, note in sorted(self._held):
                if channel == message.channel:
                    self._performer_off(mido.Message("note_off", channel=channel, note=note), now)
        names = [name for name, number in self._settings.cc.items() if number == message.control]
        for name in names:
            value = message.value
            if name == "temperature":
                self._temperature = TEMPERATURE_CC_MAX * value / 127.0
                self._sampler.settings = self._sampling_settings()
            elif name == "mode":
                mode = MODES[min(len(MODES) - 1, value * len(MODES) // 128)]
                if mode != self._mode:
                    out.extend(self.stop(now))
                    self._mode = mode
                    self._reset_phrase()
            elif name == "enabled":
                enabled = value >= 64
                if enabled != self._enabled:
                    if not enabled:
                        out.extend(self.stop(now))
                    self._enabled = enabled
                    self._reset_phrase()
            elif name == "panic":
                if value >= 64:
                    out.extend(self.panic(now))
            elif name == "tempo" and isinstance(self._clock, InternalClock):
                low, high = TEMPO_CC_RANGE
                self._clock.set_bpm(low + (high - low) * value / 127.0, now)

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
            self._resume_beat = 0.0
        elif kind == "continue":
            out.extend(self.stop(now))
            clock.continue_(now)
            self._reset_phrase()
            self._resume_beat = clock.position_ticks / TICKS_PER_BEAT
        elif kind == "stop":
            clock.stop(now)
            out.extend(self.stop(now))
        elif kind == "songpos":
            clock.song_position(message.pos)

    # ------------------------------------------------------------ the music

    def _next_slot(self) -> _Slot | None:
        """Where the next Cadenza token goes, as far as is known now."""
        if not self._enabled or not self._clock.running:
            return None
        step = self._step
        gate_length = step
        if self._mode == "call-response":
            if self._plan:
                return self._plan[0]
            if not self._call or self._held or self._grouper.pending is not None:
                return None
            base = self._activity_beat if self._activity_beat is not None else self._resume_beat
            start = step_at_or_after(base + self._settings.pause_beats, step)
            return _Slot(start, gate_length, start_marker=True)
        if self._mode == "accompany":
            onset = self._phrase_onset_beat
            if onset is None or self._activity_beat is None:
                return None
            after = onset if self._last_slot_beat is None else max(onset, self._last_slot_beat)
            beat = step_after(after, step)
            if self._held or beat < self._activity_beat + self._settings.pause_beats:
                return _Slot(beat, gate_length)
            return None
        # continue
        if self._last_slot_beat is None:
            beat = step_at_or_after(self._resume_beat, step)
        else:
            beat = step_after(self._last_slot_beat, step)
        return _Slot(beat, gate_length)

    def _build_answer(self, start: float) -> None:
        """Turn the call into the answer's slots, starting on ``start``."""
        step = self._step
        settings = self._settings
        limit = settings.max_answer_notes
        bar_limit = start + settings.answer_bars * BEATS_PER_BAR if settings.answer_bars else None
        slots: list[_Slot] = []
        if settings.rhythm == "mirror" and self._call:
            pattern = self._mirror_pattern()
            period = max(offset + length for offset, length, _ in pattern)
            repeat = 0
            while len(slots) < (limit if bar_limit else min(limit, len(pattern))):
                offset, length, velocity = pattern[len(slots) % len(pattern)]
                beat = start + (repeat * period + offset) * step
                if bar_limit is not None and beat >= bar_limit - 1e-9:
                    break
                slots.append(_Slot(beat, length * step, velocity))
                if len(slots) % len(pattern) == 0:
                    repeat += 1
        else:
            count = len(self._call) if bar_limit is None else 10**9
            index = 0
            while len(slots) < min(limit, count):
                beat = start + index * step
                if bar_limit is not None and beat >= bar_limit - 1e-9:
                    break
                slots.append(_Slot(beat, step))
                index += 1
        self._call.clear()
        self._plan = deque(slots)

    def _mirror_pattern(self) -> list[tuple[int, int, int | None]]:
        """The call's onsets and lengths in grid steps from its first onset."""
        step = self._step
        first = self._call[0].beat
        follow = self._settings.velocity == 0
        offsets: list[int] = []
        for entry in self._call:
            offset = snap(entry.beat - first, step)
            if offsets and offset <= offsets[-1]:
                offset = offsets[-1] + 1  # two onsets on one step: push the later one on
            offsets.append(offset)
        pattern = []
        for i, entry in enumerate(self._call):
            length = 1
            if entry.end_beat is not None:
                length = max(1, snap(entry.end_beat - entry.beat, step))
            if i + 1 < len(offsets):
                length = min(length, offsets[i + 1] - offsets[i])
            pattern.append((offsets[i], length, entry.velocity if follow else None))
        return pattern

    def _choose(self) -> int:
        # perf_counter measures prediction latency only; musical time is passed in.
        began = _time.perf_counter()
        probs = self.predictor.distribution()
        index = self._sampler.choose(probs, list(self._window))
        self._latencies.append(_time.perf_counter() - began)
        self._predictions += 1
        return index

    def _centre(self) -> int:
        if self._settings.octave >= 0:
            return (self._settings.octave + 1) * 12 + 6
        if self._recent_notes:
            return int(statistics.median(self._recent_notes))
        return DEFAULT_CENTRE

    def _velocity(self, slot_velocity: int | None) -> int:
        if self._settings.velocity:
            return self._settings.velocity
        if slot_velocity is not None:
            return slot_velocity
        if self._recent_velocities:
            return max(1, min(127, round(statistics.fmean(self._recent_velocities))))
        return DEFAULT_VELOCITY

    def _notes_of(self, index: int) -> list[int]:
        token = self.vocab.vocabulary[index]
        if is_chord(token):
            return voice_chord(chord_pitch_classes(token), self._centre())
        return [name_to_midi(token)]

    def _play(self, slot: _Slot, on_time: float, out: list[Event]) -> None:
        index = self._choose()
        self._push(index)
        velocity = self._velocity(slot.velocity)
        length = max(slot.length - self._step * (1.0 - self._settings.gate), 1e-3)
        off_time = self._time(slot.beat + length)
        if off_time is None or off_time <= on_time:
            off_time = on_time + 1e-3
        answer = self._mode == "call-response"
        for note in self._notes_of(index):
            key = (self._channel, note)
            if key in self._sounding:
                # Retrigger: the old note ends where the new one begins.
                del self._sounding[key]
                out.append(Event(on_time, mido.Message("note_off", channel=key[0], note=note)))
            out.append(
                Event(on_time, mido.Message("note_on", channel=key[0], note=note, velocity=velocity))
            )
            self._sounding[key] = _Sounding(on_time, slot.beat, off_time, answer)
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
                if not self._plan:
                    break
                continue
            if self._plan:
                self._plan.popleft()
            self._last_slot_beat = slot.beat
            if on_time < now - MAX_LATE:
                self._skipped += 1
                continue
            self._release_due(on_time, out)
            self._play(slot, on_time, out)
        self._release_due(horizon, out)
        return _sorted(out)

    def _release_due(self, until: float, out: list[Event]) -> None:
        for key, sounding in list(self._sounding.items()):
            if sounding.off_time <= until:
                del self._sounding[key]
                out.append(Event(sounding.off_time, mido.Message("note_off", channel=key[0], note=key[1])))

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
        candidates.extend(s.off_time - self.lookahead for s in self._sounding.values())
        return min(candidates) if candidates else None

    # ----------------------------------------------------------- stopping

    def stop(self, now: float) -> list[Event]:
        """Release everything sounding and forget the phrase in progress.

        A note whose note-on was handed out but is not due yet is released
        at its own onset (after it, in a queue that keeps insertion order),
        so the caller's queue never holds a note-on without its note-off.
        """
        self._tick_now(now)
        out = [
            Event(max(now, s.on_time), mido.Message("note_off", channel=key[0], note=key[1]))
            for key, s in self._sounding.items()
        ]
        self._sounding.clear()
        closed = self._grouper.close()
        if closed is not None:
            self._take_group(closed)
        self._reset_phrase()
        return _sorted(out)

    def panic(self, now: float) -> list[Event]:
        """Note-offs for everything sounding, then All Notes Off and All Sound Off."""
        out = self.stop(now)
        for control in (ALL_NOTES_OFF, ALL_SOUND_OFF):
            out.append(
                Event(now, mido.Message("control_change", channel=self._channel, control=control, value=0))
            )
        # A note handed out ahead is released at its onset, after these.
        return _sorted(out)

