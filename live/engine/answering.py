"""Answering: where the next note goes, which note it is, and when it ends.

A part of ``Engine`` (see ``engine.py``): the state it reads and sets is the
engine's.  A note is chosen (the model is called) ``lookahead`` seconds
before it is due, so prediction time never makes a note late.
"""

from __future__ import annotations

from collections import deque

from cadenza.live.engine.events import Event, in_sending_order
from cadenza.live.engine.phrase import Slot, plan_answer

MAX_LATE = 0.05  # seconds: a step this overdue is skipped, not played in a burst


class Answering:
    """``advance`` and ``next_deadline``: the music, step by step on the grid."""

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

    def _velocity(self, slot_velocity: int | None) -> int:
        if self._settings.velocity:
            return self._settings.velocity
        if slot_velocity is not None:
            return slot_velocity
        return self._performer.velocity()

    def _notes_of(self, index: int) -> list[int]:
        follow = self._settings.register == "follow"
        centre = self._performer.centre(self._settings.octave)
        return self._register.place(self.vocab.vocabulary[index], centre, follow)

    def _play(self, slot: Slot, on_time: float, out: list[Event]) -> None:
        index = self._context.choose()
        self._context.push(index, performer=False)
        velocity = self._velocity(slot.velocity)
        length = max(slot.length - self._step * (1.0 - self._settings.gate), 1e-3)
        off_time = self._clock.time_at(slot.beat + length)
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
            on_time = self._clock.time_at(slot.beat)
            # As next_deadline reckons it (on_time - lookahead): a deadline
            # handed out is then always reached, whatever the rounding.
            if on_time is None or on_time - self.lookahead > now:
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
            out.extend(self._voices.release_due(on_time))
            self._play(slot, on_time, out)
        out.extend(self._voices.release_due(horizon))
        return in_sending_order(out)

    def next_deadline(self) -> float | None:
        """When ``advance`` must be called next (lookahead already taken off)."""
        candidates = []
        group_close = self._grouper.deadline()
        if group_close is not None:
            candidates.append(group_close)
        slot = self._next_slot()
        if slot is not None:
            on_time = self._clock.time_at(slot.beat)
            if on_time is not None:
                candidates.append(on_time - self.lookahead)
        end = self._voices.next_end()
        if end is not None:
            candidates.append(end - self.lookahead)
        return min(candidates) if candidates else None
