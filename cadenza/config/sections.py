"""The sections of the configuration file: [data] [train] [export] [live].

Each section is a frozen dataclass; each field states its default and, where
it has one, its range or choices (``setting(default, rule)``, checked
generically by ``check``).  ``EngineSettings`` is the musical part of
``[live]``: all the engine takes.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field, fields
from typing import Any

from cadenza.config.choices import (
    ALL_SHIFTS,
    APIS,
    CC_CONTROLS,
    CLOCKS,
    DEFAULT_CC,
    GRIDS,
    KEY_SETTINGS,
    MAX_OPSET,
    MAX_SHIFT,
    MIN_OPSET,
    MODES,
    PRESETS,
    RECURRENT_ACTIVATIONS,
    REGISTERS,
    RHYTHMS,
    RUNNERS,
    SPLITS,
    STRATEGIES,
    TOKENIZERS,
    VOCAB_ORDERS,
)
from cadenza.config.rules import (
    at_least,
    between,
    field_problems,
    not_blank,
    one_of,
    positive,
    setting,
)
from cadenza.errors import ConfigError
from cadenza.key import parse_key


class Section:
    """What every section shares: ``check`` (key -> why, empty when all is well)."""

    def check(self) -> dict[str, str]:
        return {**field_problems(self), **self._more_problems()}

    def _more_problems(self) -> dict[str, str]:
        """Checks that one field's rule cannot state alone."""
        return {}


@dataclass(frozen=True)
class DataConfig(Section):
    """Where training data comes from and how it becomes windows."""

    sources: tuple[str, ...] = ("music21:bach",)
    min_count: int = setting(50, at_least(1))
    window: int = setting(50, at_least(1))
    cache_dir: str = setting("~/.cache/cadenza", not_blank("must name a folder"))
    # 0: one parser process per core
    workers: int = setting(0, at_least(0, "must be 0 (auto) or more"))
    # 0: no limit; handy for quick experiments on a big corpus
    max_files: int = setting(0, at_least(0, "must be 0 (no limit) or more"))
    chordify: bool = True  # scores with no piano part also give their chordified reduction
    # seconds music21 may spend on one file; 0: no limit
    parse_timeout: float = setting(300.0, at_least(0, "must be 0 (no limit) or more seconds"))
    tokenizer: str = setting("fast", one_of(TOKENIZERS))  # for MIDI files

    def _more_problems(self) -> dict[str, str]:
        if not self.sources:
            return {"sources": "needs at least one folder or music21:NAME corpus"}
        if not all(source.strip() for source in self.sources):
            return {"sources": "an empty string names no folder"}
        return {}


@dataclass(frozen=True)
class TrainConfig(Section):
    """The model and how it is trained."""

    preset: str = setting("default", one_of(PRESETS))
    epochs: int = setting(120, at_least(1))
    batch_size: int = setting(512, at_least(1))
    split: str = setting("windows", one_of(SPLITS))
    test_fraction: float = setting(0.2, between(
        0.0, 1.0, "must be between 0 and 1 (exclusive)", low_open=True, high_open=True))
    seed: int = setting(42, between(
        0, 2**32, "must be between 0 and 2**32 - 1 (NumPy's seed range)", high_open=True))
    learning_rate: float = setting(0.001, positive())
    lstm_units: int = setting(256, at_least(1))
    dropout: float = setting(0.5, between(0.0, 1.0, "must be in [0, 1)", high_open=True))
    embedding_dim: int = setting(64, at_least(1))
    recurrent_activation: str = setting("sigmoid", one_of(RECURRENT_ACTIVATIONS))
    # "shuffled": the vocabulary's order is a seeded permutation.  The seed
    # preset feeds the index itself, so the order is part of what it learns from.
    vocab_order: str = setting("count", one_of(VOCAB_ORDERS))
    strategy: str = setting("default", one_of(STRATEGIES))
    out: str = setting("runs/latest", not_blank("must name a folder"))
    # Shifted copies of the training pieces: "none", "all" (the 12 keys) or
    # "LOW..HIGH" semitones, e.g. "-3..3".  Needs split = "pieces".
    transpose: str = "none"
    # Windows start every `stride` tokens; 0: the preset's own (seed 1, as the
    # original; default the window, so each token is a target once an epoch).
    stride: int = setting(0, at_least(0, "must be 0 (the preset's own) or more tokens"))

    def _more_problems(self) -> dict[str, str]:
        try:
            shifts = transpose_shifts(self.transpose)
        except ValueError as err:
            return {"transpose": str(err)}
        if shifts != (0,) and self.split != "pieces":
            return {"transpose": (
                "needs split = 'pieces', so that no shifted copy of a held-out piece "
                "is trained on")}
        return {}

    def window_stride(self, window: int) -> int:
        """How far apart training windows start (``stride``, or the preset's own)."""
        if self.stride:
            return self.stride
        return 1 if self.preset == "seed" else window


def transpose_shifts(value: str) -> tuple[int, ...]:
    """The semitone shifts ``[train] transpose`` names, in rising order."""
    text = value.strip().lower()
    if text in ("", "none", "0"):
        return (0,)
    if text == "all":
        return ALL_SHIFTS
    low, sep, high = text.partition("..")
    try:
        if not sep:
            raise ValueError
        first, last = int(low), int(high)
    except ValueError:
        raise ValueError(
            f'{value!r} is not "none", "all" or a range of semitones like "-3..3"') from None
    if not -MAX_SHIFT <= first <= last <= MAX_SHIFT:
        raise ValueError(
            f"{value!r}: the range must rise and stay within -{MAX_SHIFT}..{MAX_SHIFT} semitones")
    return tuple(range(first, last + 1))


@dataclass(frozen=True)
class ExportConfig(Section):
    """How a trained model becomes an ONNX bundle."""

    opset: int = setting(17, between(
        MIN_OPSET, MAX_OPSET, f"must be {MIN_OPSET} to {MAX_OPSET} (what tf2onnx converts to)"))
    int8: bool = False
    tolerance: float = setting(1e-4, positive())
    max_int8_accuracy_drop: float = setting(0.01, between(
        0.0, 1.0, "must be in [0, 1)", high_open=True))
    # Written into the bundle as its "notice": the training data's attribution
    # and licence, which a model trained on CC BY-SA data must carry.
    notice: str = ""


@dataclass(frozen=True)
class LiveConfig(Section):
    """The improviser: engine, clock and ports."""

    model: str = ""  # empty: the bundled model
    # stream (O(1) per note) or window (the original's semantics)
    runner: str = setting("stream", one_of(RUNNERS))  # stream (O(1) per note), window (the original's semantics), native
    int8: bool = False  # use the bundle's int8 graph where it has one (faster, smaller)
    mode: str = setting("call-response", one_of(MODES))
    rhythm: str = setting("grid", one_of(RHYTHMS))
    bpm: float = setting(120.0, between(20.0, 400.0, "must be between 20 and 400"))
    grid: str = setting("1/8", one_of(GRIDS))
    clock: str = setting("internal", one_of(CLOCKS))
    clock_out: bool = False
    # the clock tracker's longest memory in MIDI ticks (4 beats): more is steadier on a steady master
    clock_window: int = setting(96, between(2, 960, "must be between 2 and 960 ticks"))
    chord_window_ms: float = setting(30.0, between(0.0, 500.0, "must be between 0 and 500"))
    pause_beats: float = setting(2.0, positive())
    # 0: answer with as many notes as the call
    answer_bars: int = setting(0, at_least(0, "must be 0 (as long as the call) or more"))
    max_answer_notes: int = setting(64, at_least(1))
    # Defaults chosen with `cadenza evaluate` on held-out piano pieces
    # (docs/results.md): sampled, leaning hard on the call's key and classes.
    temperature: float = setting(1.4, at_least(0, "must be 0 (argmax) or more"))
    top_k: int = setting(0, at_least(0, "must be 0 (off) or more"))
    top_p: float = setting(1.0, between(0.0, 1.0, "must be in (0, 1]", low_open=True))
    # longest repeated cycle argmax may play before it is broken; 0: off
    loop_guard: int = setting(4, at_least(0, "must be 0 (off) or more"))
    seed: int = setting(0, at_least(0, "must be 0 or more"))
    channel: int = setting(1, between(1, 16, "must be a MIDI channel 1..16"))
    gate: float = setting(0.9, between(0.0, 1.0, "must be in (0, 1]", low_open=True))
    # -1: place answers near the performer's register; else around a fixed octave
    octave: int = setting(-1, between(-1, 8, "must be -1 (follow the performer) or an octave 0..8"))
    # follow: single notes moved by octaves near that register; model: as given
    register: str = setting("follow", one_of(REGISTERS))
    key: str = "call"  # call: the call's key and classes; auto: the window's key; off; "D major"
    # 0: the model alone .. 1: out-of-key tokens only when nothing else
    key_strength: float = setting(0.7, between(
        0.0, 1.0, "must be between 0 (the model alone) and 1"))
    # key "call": how hard the answer keeps the call's pitch-class proportions; 0: off
    key_balance: float = setting(4.0, between(0.0, 10.0, "must be between 0 (off) and 10"))
    # key "call": each class of the key, beyond the call's own share, as a share of the call; 0: off
    key_spread: float = setting(0.08, between(0.0, 1.0, "must be between 0 (off) and 1"))
    # 0: off .. 1: leaps beyond a fifth from the answer's previous note only as a last resort
    continuity: float = setting(0.8, between(0.0, 1.0, "must be between 0 (off) and 1"))
    # 0: off .. 1: chords as often as the model alone would play them, whatever the key's steering
    texture: float = setting(0.0, between(0.0, 1.0, "must be between 0 (off) and 1"))
    # 0: follow the performer's dynamics
    velocity: int = setting(0, between(0, 127, "must be 0 (follow the performer) or 1..127"))
    api: str = setting("auto", one_of(APIS))
    in_port: str = ""
    out_port: str = ""
    record: str = ""
    stats_interval: float = setting(0.0, at_least(0, "must be 0 (off) or more seconds"))
    queue_size: int = setting(4096, at_least(16))
    # Once Cadenza falls silent this long, its released notes get a second
    # note-off, in case the first was lost on the way; 0: off.
    release_echo_ms: float = setting(100.0, between(
        0.0, 5000.0, "must be 0 (off) or up to 5000 ms"))
    # Which CC steers what ([live.cc]); the file may remap or drop any of them.
    cc: Mapping[str, int] = field(default_factory=lambda: dict(DEFAULT_CC))

    def _more_problems(self) -> dict[str, str]:
        problems = {}
        if self.key not in KEY_SETTINGS:
            try:
                parse_key(self.key)
            except ConfigError:
                problems["key"] = (
                    f"must be {' or '.join(KEY_SETTINGS)} or a key such as 'D major' or 'F# minor'"
                )
        for name, number in self.cc.items():
            if name not in CC_CONTROLS:
                problems[f"cc.{name}"] = f"unknown control; known: {', '.join(CC_CONTROLS)}"
            elif not isinstance(number, int) or isinstance(number, bool) or not 0 <= number <= 127:
                problems[f"cc.{name}"] = "must be a controller number 0..127"
            elif list(self.cc.values()).count(number) > 1:
                problems[f"cc.{name}"] = f"controller {number} is given to more than one control"
        return problems


@dataclass(frozen=True)
class EngineSettings:
    """The musical settings: all the engine takes of ``LiveConfig``.

    No model path, MIDI system, ports, queue, recording or statistics: those
    belong to the daemon and the command around the engine.  Defaults and
    ranges are ``LiveConfig``'s (a LiveConfig is checked when it is loaded).
    """

    mode: str = LiveConfig.mode
    rhythm: str = LiveConfig.rhythm
    bpm: float = LiveConfig.bpm
    grid: str = LiveConfig.grid
    clock: str = LiveConfig.clock
    clock_window: int = LiveConfig.clock_window
    chord_window_ms: float = LiveConfig.chord_window_ms
    pause_beats: float = LiveConfig.pause_beats
    answer_bars: int = LiveConfig.answer_bars
    max_answer_notes: int = LiveConfig.max_answer_notes
    temperature: float = LiveConfig.temperature
    top_k: int = LiveConfig.top_k
    top_p: float = LiveConfig.top_p
    loop_guard: int = LiveConfig.loop_guard
    seed: int = LiveConfig.seed
    channel: int = LiveConfig.channel
    gate: float = LiveConfig.gate
    octave: int = LiveConfig.octave
    register: str = LiveConfig.register
    key: str = LiveConfig.key
    key_strength: float = LiveConfig.key_strength
    key_balance: float = LiveConfig.key_balance
    key_spread: float = LiveConfig.key_spread
    continuity: float = LiveConfig.continuity
    texture: float = LiveConfig.texture
    velocity: int = LiveConfig.velocity
    cc: Mapping[str, int] = field(default_factory=lambda: dict(DEFAULT_CC))

    @classmethod
    def of(cls, live: LiveConfig | EngineSettings) -> EngineSettings:
        """The musical part of ``live``."""
        if isinstance(live, cls):
            return live
        return cls(**{f.name: getattr(live, f.name) for f in fields(cls)})


@dataclass(frozen=True)
class Config:
    data: DataConfig = field(default_factory=DataConfig)
    train: TrainConfig = field(default_factory=TrainConfig)
    export: ExportConfig = field(default_factory=ExportConfig)
    live: LiveConfig = field(default_factory=LiveConfig)
    source: str = "<defaults>"

    def replace(self, section: str, **values: Any) -> Config:
        """A copy with ``values`` set in ``section``, checked like a file."""
        from cadenza.config.loader import load_config

        return load_config(None, overrides={section: values}, base=self)


SECTIONS: dict[str, type] = {
    "data": DataConfig,
    "train": TrainConfig,
    "export": ExportConfig,
    "live": LiveConfig,
}
