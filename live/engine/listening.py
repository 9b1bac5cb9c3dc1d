"""Listening: the performer's notes become the call and tokens in the window.

A part of ``Engine`` (see ``engine.py``): the state it reads and sets is the engine's.
"""

from __future__ import annotations

import mido

from cadenza.live.engine.chords import NoteGroup
from cadenza.live.engine.clock import step_after
from cadenza.live.engine.phrase import CallNote

MAX_CALL = 256  # call notes remembered for the answer's length and rhythm


class Listening:
    """Note-ons and releases from the performer; chord groups into the window."""

    def _performer_on(self, message: mido.Message, now: float) -> None:
        closed = self._grouper.note_on(message.note, message.velocity, now)
        if closed is not None:
            self._take_group(closed)
        beat = self._clock.beat_at(now)
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
        beat = self._clock.beat_at(now)
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
        self._context.push(index, performer=True)
        self._performer_tokens += 1
        self._performer.onset(group.velocity)

    def _interrupt(self, now: float, beat: float | None) -> None:
        """The performer plays again during an answer: stop within one grid step."""
        if not self._phrase.plan and not self._voices.answering:
            return
        self._phrase.plan.clear()

        def cutoff(on_beat: float | None) -> float:
            # The next grid line after both the interruption and the note's
            # own onset (a note handed out in the lookahead may start later).
            beats = [b for b in (beat, on_beat) if b is not None]
            at = self._clock.time_at(step_after(max(beats), self._step)) if beats else None
            return now if at is None else at

        self._voices.cut_answers(cutoff)

    def release_performer(self, now: float, channel: int | None = None) -> None:
        """Let go of every key the performer holds (on ``channel``, or all): their
        keyboard sent All Notes Off, or its port went away with keys down."""
        for key_channel, note in sorted(self._performer.held):
            if channel is None or key_channel == channel:
                self._performer_off(mido.Message("note_off", channel=key_channel, note=note), now)
