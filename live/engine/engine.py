"""The improviser: timestamped MIDI in, timestamped MIDI out, nothing else.

The engine holds everything musical: the rolling token window, chord
grouping, out-of-vocabulary mapping, the three modes, sampling, voicing and
the notes it has turned on.  It owns no port, thread or clock: every call
carries the time (seconds on the caller's clock, already corrected by the
caller), so the daemon drives it in real time and ``simulate`` drives it
from a file, faster than real time, with the same results.

Time flows in two units.  Performer input arrives in seconds; the music is
planned in beats on the grid of the current clock (internal tempo or a
followed MIDI clock) and turned into seconds when a note is emitted.

``Engine`` is one object made of its seams, one module each: ``listening``
(the performer's notes), ``answering`` (``advance``: the notes it plays),
``transport`` (controllers, a master's clock, ``stop`` and ``panic``) and
``reload`` (settings).  This module holds the state they share, the
properties and the entry points.  See docs/engine.md for the musical rules.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence

import mido

from cadenza.config import EngineSettings, LiveConfig
from cadenza.live.engine.answering import Answering
from cadenza.live.engine.clock import InternalClock, MidiClockFollower
from cadenza.live.engine.context import ModelContext
from cadenza.live.engine.events import Event, in_sending_order, is_note_on, is_release
from cadenza.live.engine.listening import Listening
from cadenza.live.engine.performer import Performer
from cadenza.live.engine.phrase import Phrase
from cadenza.live.engine.register import Register
from cadenza.live.engine.reload import Reload
from cadenza.live.engine.transport import Transport
from cadenza.live.engine.voices import Voices
from cadenza.predictor import Predictor
from cadenza.sampling import Sampler, SamplingSettings

log = logging.getLogger(__name__)

# Seconds the engine chooses a note before it is due: the daemon and simulate
# both use it, so an offline duet makes the same calls as a live one.
LOOKAHEAD = 0.02


class Engine(Listening, Answering, Transport, Reload):
    """The pure improviser engine (see the module docstring and docs/engine.md)."""

    def __init__(
        self,
        predictor: Predictor,
        settings: EngineSettings | LiveConfig,
        *,
        start_time: float = 0.0,
        lookahead: float = LOOKAHEAD,
    ) -> None:
        if lookahead < 0:
            raise ValueError(f"lookahead must be 0 or more seconds, got {lookahead}")
        # A LiveConfig is narrowed to its musical settings here: the engine
        # never sees the ports, the model path, the queue or the recording.
        settings = EngineSettings.of(settings)
        self.predictor = predictor
        self.lookahead = float(lookahead)
        self._context = ModelContext(predictor, Sampler(SamplingSettings(), settings.seed))
        self.vocab = self._context.vocab
        self._now = float(start_time)
        self._start_time = float(start_time)
        self._notes_out = 0
        self._skipped = 0
        self._performer_tokens = 0
        #: Stops so far (see ``stop``): a caller compares it before and after a call.
        self.stops = 0
        self._voices = Voices()
        self._performer = Performer()
        self._register = Register()
        self._enabled = True
        self._settings = settings
        self._apply_settings(settings, first=True)
        self._reset_phrase()
        self.prime(self._context.bundle_primer(), reset=True)

    def _reset_phrase(self) -> None:
        """Forget the call, the answer being played and where continuous play stands."""
        self._phrase = Phrase(resume_beat=self._clock.beat_at(self._now) or 0.0)
        self._register.new_phrase()

    def prime(self, tokens: Sequence[str | int], *, reset: bool = False) -> None:
        """Put tokens (strings of the scheme, or vocabulary indices) into the window.

        With ``reset`` the model's history is cleared first.  ``continue``
        mode plays on from whatever the window holds: the bundle's primer,
        a seed phrase given here, and everything heard since.
        """
        self._context.prime(tokens, reset=reset)

    # ------------------------------------------------------------ properties

    @property
    def settings(self) -> EngineSettings:
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

    def _tick_now(self, now: float) -> None:
        if now > self._now:
            self._now = now

    # ---------------------------------------------------------------- input

    def on_message(self, message: mido.Message, now: float) -> list[Event]:
        """Take one incoming message that arrived at ``now``; returns the events due now.

        Events come back only when the message stopped the music (see
        ``stops``).  A master's clock tick whose time on the master's own
        time line differs from its arrival goes to ``clock_tick`` instead.
        """
        self._tick_now(now)
        out: list[Event] = []
        kind = message.type
        if is_note_on(message):
            self._performer_on(message, now)
        elif is_release(message):
            self._performer_off(message, now)
        elif kind == "control_change":
            self._control(message, now, out)
        elif kind in ("clock", "start", "stop", "continue", "songpos"):
            self._clock_message(message, now, out)
        return in_sending_order(out)

    def prepare(self) -> None:
        """Do now the model work the next choice will need, so the step at the
        next deadline has only the engine's own work.  Changes nothing musical:
        calling it or not, at any time, never changes an event.  The daemon
        calls it when idle, after input or an answer step with nothing due."""
        self._context.prepare()

    def clock_tick(self, now: float, master_time: float | None = None) -> None:
        """A master's clock tick that arrived at ``now``.

        ``master_time``: when it happened on the master's own time line, as
        the caller corrected it (``MidiClockFollower.tick``); default ``now``.
        """
        self._tick_now(now)
        if isinstance(self._clock, MidiClockFollower):
            self._clock.tick(now, master_time)
