"""The engine's settings: applied at start-up and again on a reload (SIGHUP).

A part of ``Engine`` (see ``engine.py``): the state it sets is the engine's.
"""

from __future__ import annotations

from cadenza.config import EngineSettings, LiveConfig
from cadenza.live.engine.chords import ChordGrouper
from cadenza.live.engine.clock import InternalClock, MidiClockFollower, grid_beats
from cadenza.sampling import Sampler, SamplingSettings


class Reload:
    """Settings in: the mode, the grid, the clock source, sampling, the key."""

    def _apply_settings(self, settings: EngineSettings, *, first: bool = False) -> None:
        old = None if first else self._settings
        self._settings = settings
        self._mode = settings.mode
        self._temperature = settings.temperature
        self._context.key.configure(settings.key, settings.key_strength, settings.key_balance,
                                    settings.key_spread)
        self._context.continuity.strength = settings.continuity
        self._context.texture.strength = settings.texture
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

    def reload(self, settings: EngineSettings | LiveConfig) -> None:
        """New settings (SIGHUP); the window and the sounding notes are kept.

        Values set by CC (temperature, mode, tempo, key strength) go back to the new file's.
        A change of mode or clock source drops the phrase being played.
        """
        settings = EngineSettings.of(settings)
        old_mode = self._mode
        self._apply_settings(settings)
        if settings.mode != old_mode:
            self._reset_phrase()
