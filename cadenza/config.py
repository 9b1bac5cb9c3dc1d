"""Configuration: one TOML file with sections [data] [train] [export] [live].

Each section is a frozen dataclass.  Loading checks every key before any work
starts: an unknown key, a value of the wrong type or an impossible value is a
``ConfigError`` that names the file, the section and the key.  Command-line
options override the file through ``load_config(..., overrides=...)`` and are
checked the same way.
"""

from __future__ import annotations

import dataclasses
import math
import sys
import types
import typing
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - Python 3.10 on older boards
    import tomli as tomllib

from cadenza.errors import ConfigError
from cadenza.key import parse_key

# ONNX opsets the exporter may ask for: 17 has every operator the graphs
# need; tf2onnx 1.17 converts to at most 18.
MIN_OPSET, MAX_OPSET = 17, 18

# Every choice a setting offers, in one place: the config checks, the CLI's
# `choices=` and the code that acts on them all derive from these.
PRESETS = ("seed", "default")
SPLITS = ("windows", "pieces")
STRATEGIES = ("default", "mirrored", "multi-worker")
# The LSTM gates' activation: today's Keras "sigmoid", or the piecewise-linear
# "hard_sigmoid" that Keras up to 2.2 used by default (the original's era).
RECURRENT_ACTIVATIONS = ("sigmoid", "hard_sigmoid")
# Which index each token gets: by count (commonest first), or a permutation
# of that drawn with the run's seed, as the original's set() order was.
VOCAB_ORDERS = ("count", "shuffled")
RUNNERS = ("stream", "window")
MODES = ("call-response", "accompany", "continue")
RHYTHMS = ("grid", "mirror")
CLOCKS = ("internal", "midi")
APIS = ("auto", "alsa", "jack", "coremidi", "windows")
#: Length of one grid step in beats (quarter notes), by grid name.
GRID_BEATS = {
    "1/4": 1.0,
    "1/8": 0.5,
    "1/16": 0.25,
    "1/4t": 2.0 / 3.0,
    "1/8t": 1.0 / 3.0,
    "1/16t": 1.0 / 6.0,
}
GRIDS = tuple(GRID_BEATS)
# How MIDI files become tokens: "fast" reads them with symusic and does
# music21's work in numpy; "music21" is the reference (and always the path
# for scores: MusicXML, kern, the music21 corpus).
TOKENIZERS = ("fast", "music21")
#: The shifts ``[train] transpose = "all"`` trains on: every key once, the
#: original (0) among them, no copy moved more than half an octave down.
ALL_SHIFTS = tuple(range(-5, 7))
MAX_SHIFT = 11
#: [live] key: follow the window's key, leave the model alone, or a key name
#: ("D major", "F# minor", "Bb major": anything cadenza.key.parse_key reads).
#: "call" leans towards the window's own pitch classes, as often as each sounds
#: (finer than a key: what was just played, not its scale).
KEY_AUTO, KEY_OFF, KEY_CALL = "auto", "off", "call"
KEY_SETTINGS = (KEY_AUTO, KEY_OFF, KEY_CALL)
#: [live] register: place single notes near the performer, or as the model gave them.
REGISTERS = ("follow", "model")
#: What a MIDI CC can steer in the live engine ([live.cc] maps name -> CC number),
#: and the controllers they answer to by default (general-purpose CCs 21-26).
DEFAULT_CC = {
    "temperature": 21, "mode": 22, "enabled": 23, "panic": 24, "tempo": 25, "key_strength": 26,
}
CC_CONTROLS = tuple(DEFAULT_CC)


def _one_of(problems: dict[str, str], key: str, value: str, choices: tuple[str, ...]) -> None:
    if value not in choices:
        problems[key] = f"must be one of {', '.join(choices)}"


@dataclass(frozen=True)
class DataConfig:
    """Where training data comes from and how it becomes windows."""

    sources: tuple[str, ...] = ("music21:bach",)
    min_count: int = 50
    window: int = 50
    cache_dir: str = "~/.cache/cadenza"
    workers: int = 0  # 0: one parser process per core
    max_files: int = 0  # 0: no limit; handy for quick experiments on a big corpus
    chordify: bool = True  # scores with no piano part also give their chordified reduction
    parse_timeout: float = 300.0  # seconds music21 may spend on one file; 0: no limit
    tokenizer: str = "fast"  # for MIDI files; see TOKENIZERS

    def check(self) -> dict[str, str]:
        problems = {}
        if not self.sources:
            problems["sources"] = "needs at least one folder or music21:NAME corpus"
        elif not all(source.strip() for source in self.sources):
            problems["sources"] = "an empty string names no folder"
        if self.min_count < 1:
            problems["min_count"] = "must be at least 1"
        if self.window < 1:
            problems["window"] = "must be at least 1"
        if self.workers < 0:
            problems["workers"] = "must be 0 (auto) or more"
        if self.max_files < 0:
            problems["max_files"] = "must be 0 (no limit) or more"
        if not self.cache_dir.strip():
            problems["cache_dir"] = "must name a folder"
        if self.parse_timeout < 0:
            problems["parse_timeout"] = "must be 0 (no limit) or more seconds"
        _one_of(problems, "tokenizer", self.tokenizer, TOKENIZERS)
        return problems


@dataclass(frozen=True)
class TrainConfig:
    """The model and how it is trained."""

    preset: str = "default"
    epochs: int = 120
    batch_size: int = 512
    split: str = "windows"
    test_fraction: float = 0.2
    seed: int = 42
    learning_rate: float = 0.001
    lstm_units: int = 256
    dropout: float = 0.5
    embedding_dim: int = 64
    recurrent_activation: str = "sigmoid"
    # "shuffled": the vocabulary's order is a seeded permutation.  The seed
    # preset feeds the index itself, so the order is part of what it learns from.
    vocab_order: str = "count"
    strategy: str = "default"
    out: str = "runs/latest"
    # Shifted copies of the training pieces: "none", "all" (the 12 keys) or
    # "LOW..HIGH" semitones, e.g. "-3..3".  Needs split = "pieces".
    transpose: str = "none"
    # Windows start every `stride` tokens; 0: the preset's own (seed 1, as the
    # original; default the window, so each token is a target once an epoch).
    stride: int = 0

    def check(self) -> dict[str, str]:
        problems = {}
        _one_of(problems, "preset", self.preset, PRESETS)
        if self.epochs < 1:
            problems["epochs"] = "must be at least 1"
        if self.batch_size < 1:
            problems["batch_size"] = "must be at least 1"
        _one_of(problems, "split", self.split, SPLITS)
        if not 0.0 < self.test_fraction < 1.0:
            problems["test_fraction"] = "must be between 0 and 1 (exclusive)"
        if self.learning_rate <= 0:
            problems["learning_rate"] = "must be positive"
        if self.lstm_units < 1:
            problems["lstm_units"] = "must be at least 1"
        if not 0.0 <= self.dropout < 1.0:
            problems["dropout"] = "must be in [0, 1)"
        if self.embedding_dim < 1:
            problems["embedding_dim"] = "must be at least 1"
        _one_of(problems, "strategy", self.strategy, STRATEGIES)
        _one_of(problems, "recurrent_activation", self.recurrent_activation,
                RECURRENT_ACTIVATIONS)
        _one_of(problems, "vocab_order", self.vocab_order, VOCAB_ORDERS)
        if not 0 <= self.seed < 2**32:
            problems["seed"] = "must be between 0 and 2**32 - 1 (NumPy's seed range)"
        if not self.out.strip():
            problems["out"] = "must name a folder"
        try:
            shifts = transpose_shifts(self.transpose)
        except ValueError as err:
            problems["transpose"] = str(err)
        else:
            if shifts != (0,) and self.split != "pieces":
                problems["transpose"] = (
                    "needs split = 'pieces', so that no shifted copy of a held-out piece "
                    "is trained on")
        if self.stride < 0:
            problems["stride"] = "must be 0 (the preset's own) or more tokens"
        return problems

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
class ExportConfig:
    """How a trained model becomes an ONNX bundle."""

    opset: int = 17
    int8: bool = False
    tolerance: float = 1e-4
    max_int8_accuracy_drop: float = 0.01
    # Written into the bundle as its "notice": the training data's attribution
    # and licence, which a model trained on CC BY-SA data must carry.
    notice: str = ""

    def check(self) -> dict[str, str]:
        problems = {}
        if not MIN_OPSET <= self.opset <= MAX_OPSET:
            problems["opset"] = f"must be {MIN_OPSET} to {MAX_OPSET} (what tf2onnx converts to)"
        if self.tolerance <= 0:
            problems["tolerance"] = "must be positive"
        if not 0 <= self.max_int8_accuracy_drop < 1:
            problems["max_int8_accuracy_drop"] = "must be in [0, 1)"
        return problems


@dataclass(frozen=True)
class LiveConfig:
    """The improviser: engine, clock and ports."""

    model: str = ""  # empty: the bundled model
    runner: str = "stream"  # stream (O(1) per note) or window (the original's semantics)
    int8: bool = False  # use the bundle's int8 graph where it has one (faster, smaller)
    mode: str = "call-response"
    rhythm: str = "grid"
    bpm: float = 120.0
    grid: str = "1/8"
    clock: str = "internal"
    clock_out: bool = False
    clock_window: int = 96  # the clock tracker's longest memory in MIDI ticks (4 beats): more is steadier on a steady master
    chord_window_ms: float = 30.0
    pause_beats: float = 2.0
    answer_bars: int = 0  # 0: answer with as many notes as the call
    max_answer_notes: int = 64
    # Defaults chosen with `cadenza evaluate` on held-out piano pieces
    # (docs/results.md): sampled, leaning on the call's key and classes,
    # leaps beyond a fifth held back so the line moves like the music.
    temperature: float = 1.4
    top_k: int = 0
    top_p: float = 1.0
    loop_guard: int = 4  # longest repeated cycle argmax may play before it is broken; 0: off
    seed: int = 0
    channel: int = 1
    gate: float = 0.9
    octave: int = -1  # -1: place answers near the performer's register; else around a fixed octave
    register: str = "follow"  # follow: single notes moved by octaves near that register; model: as given
    key: str = "call"  # call: the call's key and classes; auto: the window's key; off; "D major"
    key_strength: float = 0.7  # 0: the model alone .. 1: out-of-key tokens only when nothing else
    key_balance: float = 4.0  # key "call": how hard the answer keeps the call's pitch-class proportions; 0: off
    continuity: float = 0.8  # 0: off .. 1: leaps beyond a fifth from the answer's previous note only as a last resort
    velocity: int = 0  # 0: follow the performer's dynamics
    api: str = "auto"
    in_port: str = ""
    out_port: str = ""
    record: str = ""
    stats_interval: float = 0.0
    queue_size: int = 4096
    # Once Cadenza falls silent this long, its released notes get a second
    # note-off, in case the first was lost on the way; 0: off.
    release_echo_ms: float = 100.0
    # Which CC steers what ([live.cc]); the file may remap or drop any of them.
    cc: Mapping[str, int] = field(default_factory=lambda: dict(DEFAULT_CC))

    def check(self) -> dict[str, str]:
        problems = {}
        _one_of(problems, "runner", self.runner, RUNNERS)
        _one_of(problems, "mode", self.mode, MODES)
        _one_of(problems, "rhythm", self.rhythm, RHYTHMS)
        if not 20.0 <= self.bpm <= 400.0:
            problems["bpm"] = "must be between 20 and 400"
        _one_of(problems, "grid", self.grid, GRIDS)
        _one_of(problems, "clock", self.clock, CLOCKS)
        if not 2 <= self.clock_window <= 960:
            problems["clock_window"] = "must be between 2 and 960 ticks"
        if not 0.0 <= self.chord_window_ms <= 500.0:
            problems["chord_window_ms"] = "must be between 0 and 500"
        if self.pause_beats <= 0:
            problems["pause_beats"] = "must be positive"
        if self.answer_bars < 0:
            problems["answer_bars"] = "must be 0 (as long as the call) or more"
        if self.max_answer_notes < 1:
            problems["max_answer_notes"] = "must be at least 1"
        if self.temperature < 0:
            problems["temperature"] = "must be 0 (argmax) or more"
        if self.top_k < 0:
            problems["top_k"] = "must be 0 (off) or more"
        if not 0.0 < self.top_p <= 1.0:
            problems["top_p"] = "must be in (0, 1]"
        if self.loop_guard < 0:
            problems["loop_guard"] = "must be 0 (off) or more"
        if self.seed < 0:
            problems["seed"] = "must be 0 or more"
        if not 1 <= self.channel <= 16:
            problems["channel"] = "must be a MIDI channel 1..16"
        if not 0.0 < self.gate <= 1.0:
            problems["gate"] = "must be in (0, 1]"
        if not -1 <= self.octave <= 8:
            problems["octave"] = "must be -1 (follow the performer) or an octave 0..8"
        _one_of(problems, "register", self.register, REGISTERS)
        if self.key not in KEY_SETTINGS:
            try:
                parse_key(self.key)
            except ConfigError:
                problems["key"] = (
                    f"must be {' or '.join(KEY_SETTINGS)} or a key such as 'D major' or 'F# minor'"
                )
        if not 0.0 <= self.key_strength <= 1.0:
            problems["key_strength"] = "must be between 0 (the model alone) and 1"
        if not 0.0 <= self.key_balance <= 10.0:
            problems["key_balance"] = "must be between 0 (off) and 10"
        if not 0.0 <= self.continuity <= 1.0:
            problems["continuity"] = "must be between 0 (off) and 1"
        if not 0 <= self.velocity <= 127:
            problems["velocity"] = "must be 0 (follow the performer) or 1..127"
        _one_of(problems, "api", self.api, APIS)
        if self.stats_interval < 0:
            problems["stats_interval"] = "must be 0 (off) or more seconds"
        if self.queue_size < 16:
            problems["queue_size"] = "must be at least 16"
        if not 0.0 <= self.release_echo_ms <= 5000.0:
            problems["release_echo_ms"] = "must be 0 (off) or up to 5000 ms"
        for name, number in self.cc.items():
            if name not in CC_CONTROLS:
                problems[f"cc.{name}"] = f"unknown control; known: {', '.join(CC_CONTROLS)}"
            elif not isinstance(number, int) or isinstance(number, bool) or not 0 <= number <= 127:
                problems[f"cc.{name}"] = "must be a controller number 0..127"
            elif list(self.cc.values()).count(number) > 1:
                problems[f"cc.{name}"] = f"controller {number} is given to more than one control"
        return problems




@dataclass(frozen=True)
class Config:
    data: DataConfig = field(default_factory=DataConfig)
    train: TrainConfig = field(default_factory=TrainConfig)
    export: ExportConfig = field(default_factory=ExportConfig)
    live: LiveConfig = field(default_factory=LiveConfig)
    source: str = "<defaults>"

    def replace(self, section: str, **values: Any) -> Config:
        """A copy with ``values`` set in ``section``, checked like a file."""
        return load_config(None, overrides={section: values}, base=self)


SECTIONS: dict[str, type] = {
    "data": DataConfig,
    "train": TrainConfig,
    "export": ExportConfig,
    "live": LiveConfig,
}


def _coerce(value: Any, annotation: Any, where: str) -> Any:
    """Check ``value`` against a field's type; allow int for float, list for tuple."""
    hint = annotation
    origin = typing.get_origin(hint)
    if hint is float:
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            # TOML has nan and inf; no setting means anything by them, and
            # nan passes every "must be at least" comparison unnoticed.
            if not math.isfinite(value):
                raise ConfigError(f"{where}: expected a finite number, got {value!r}")
            return float(value)
        raise ConfigError(f"{where}: expected a number, got {value!r}")
    if hint is bool:
        if isinstance(value, bool):
            return value
        raise ConfigError(f"{where}: expected true or false, got {value!r}")
    if hint is int:
        if isinstance(value, int) and not isinstance(value, bool):
            return value
        raise ConfigError(f"{where}: expected an integer, got {value!r}")
    if hint is str:
        if isinstance(value, str):
            return value
        raise ConfigError(f"{where}: expected a string, got {value!r}")
    if origin is tuple:
        if isinstance(value, str):
            value = [value]
        if isinstance(value, (list, tuple)) and all(isinstance(v, str) for v in value):
            return tuple(value)
        raise ConfigError(f"{where}: expected a list of strings, got {value!r}")
    if origin in (Mapping, dict) or hint is Mapping:
        if isinstance(value, Mapping):
            return types.MappingProxyType(dict(value))
        raise ConfigError(f"{where}: expected a table, got {value!r}")
    raise ConfigError(f"{where}: unsupported setting type {hint!r}")  # a bug, not user error


def _build_section(
    name: str, base: Any, values: Mapping[str, Any], source: str
) -> Any:
    cls = SECTIONS[name]
    hints = typing.get_type_hints(cls)
    known = {f.name for f in dataclasses.fields(cls)}
    changes = {}
    for key, value in values.items():
        where = f"{source}: [{name}] {key}"
        if key not in known:
            raise ConfigError(f"{where}: unknown key (known keys: {', '.join(sorted(known))})")
        if value is None:
            continue
        changes[key] = _coerce(value, hints[key], where)
    section = dataclasses.replace(base, **changes)
    problems = section.check()
    if problems:
        key, why = next(iter(problems.items()))
        shown = changes.get(key.split(".")[0], getattr(section, key.split(".")[0], None))
        raise ConfigError(f"{source}: [{name}] {key} = {shown!r}: {why}")
    return section


def load_config(
    path: str | Path | None,
    overrides: Mapping[str, Mapping[str, Any]] | None = None,
    base: Config | None = None,
) -> Config:
    """Read ``path`` (None: defaults only), then apply ``overrides`` per section.

    ``overrides`` holds command-line values; ``None`` values mean "not given"
    and leave the file's value in place.
    """
    config = base or Config()
    source = config.source
    sections: dict[str, Any] = {name: getattr(config, name) for name in SECTIONS}
    if path is not None:
        path = Path(path)
        source = str(path)
        try:
            with path.open("rb") as handle:
                document = tomllib.load(handle)
        except FileNotFoundError as err:
            raise ConfigError(f"{path}: config file not found") from err
        except tomllib.TOMLDecodeError as err:
            raise ConfigError(f"{path}: not valid TOML: {err}") from err
        except OSError as err:
            raise ConfigError(f"{path}: cannot read config file: {err}") from err
        for name, values in document.items():
            if name not in SECTIONS and not isinstance(values, Mapping):
                raise ConfigError(
                    f"{path}: {name} is outside any section; settings go under "
                    f"{', '.join(f'[{s}]' for s in SECTIONS)}"
                )
            if name not in SECTIONS:
                raise ConfigError(
                    f"{path}: unknown section [{name}] (known: {', '.join(SECTIONS)})"
                )
            if not isinstance(values, Mapping):
                raise ConfigError(f"{path}: {name} must be a [section] table")
            sections[name] = _build_section(name, sections[name], values, source)
    for name, values in (overrides or {}).items():
        if name not in SECTIONS:
            raise ConfigError(f"unknown config section {name!r}")
        sections[name] = _build_section(name, sections[name], values, "command line")
    return Config(source=source, **sections)


def parse_assignment(text: str) -> tuple[str, Any]:
    """``"key=value"`` from a command line (``--set temperature=0.8``) -> (key, value).

    The value is read as a TOML value where it is one (``0.8``, ``16``,
    ``true``, ``"x"``), else taken as a plain string (``mirror``, ``1/8``);
    whether the key exists and the value fits is checked by ``load_config``.
    """
    key, sep, raw = text.partition("=")
    key, raw = key.strip(), raw.strip()
    if not sep or not key:
        raise ConfigError(f"{text!r}: expected KEY=VALUE, like temperature=0.8")
    try:
        value = tomllib.loads(f"value = {raw}")["value"]
    except tomllib.TOMLDecodeError:
        value = raw
    return key, value


def as_dict(config: Config) -> dict[str, dict[str, Any]]:
    """The configuration as plain data (for reports and bundles)."""
    out: dict[str, dict[str, Any]] = {}
    for name in SECTIONS:
        values = getattr(config, name)
        # Not dataclasses.asdict: it deep-copies, and a mappingproxy ([live.cc]) cannot be.
        section = {f.name: getattr(values, f.name) for f in dataclasses.fields(values)}
        out[name] = {k: (list(v) if isinstance(v, tuple) else dict(v) if isinstance(v, Mapping) else v) for k, v in section.items()}
    return out
