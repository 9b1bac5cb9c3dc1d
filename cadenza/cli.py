"""The ``cadenza`` command: one entry point, a subcommand per job.

Subcommands are declared here with their options; each one's work lives in
the package that owns it and is imported only when that subcommand runs, so
``cadenza live --help`` never loads TensorFlow.  Options given on the command
line override ``config.toml``.
"""

from __future__ import annotations

import argparse
import importlib
import logging
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from cadenza import __version__
from cadenza.bundle import MANIFEST, bundled_model_path
from cadenza.config import (
    APIS,
    CLOCKS,
    GRIDS,
    KEY_AUTO,
    KEY_CALL,
    KEY_OFF,
    MODES,
    PRESETS,
    REGISTERS,
    RHYTHMS,
    RUNNERS,
    SPLITS,
    STRATEGIES,
    TOKENIZERS,
    Config,
    LiveConfig,
    load_config,
    parse_assignment,
)
from cadenza.errors import BundleError, CadenzaError

log = logging.getLogger(__name__)

# What each choice of the engine's settings does, for --help; a test holds
# these to the config's choice lists, so a new choice cannot go unexplained.
MODE_HELP = {
    "call-response": "answer each phrase after a pause",
    "accompany": "play along on every step while the performer plays",
    "continue": "play alone from the phrase in the window",
}
RHYTHM_HELP = {
    "grid": "one token per grid step",
    "mirror": "the call's onsets, lengths and dynamics, snapped to the grid (call-response)",
}
KEY_HELP = {
    KEY_CALL: "lean towards the call's key and its own pitch classes",
    KEY_AUTO: "lean towards the key of what was just played",
    KEY_OFF: "the model alone",
}
REGISTER_HELP = {
    "follow": "answers near the performer's register",
    "model": "the octaves the model gave",
}


def _choices_help(meanings: dict[str, str], default: str, extra: str = "") -> str:
    """Each choice and what it does, the default first; ``extra`` is appended."""
    order = [default] + [c for c in meanings if c != default]
    text = "; ".join(f"{c}{' (default)' if c == default else ''}: {meanings[c]}" for c in order)
    return f"{text}{extra}".replace("%", "%%")

DEFAULT_CONFIG = Path("config.toml")

# subcommand -> "module:function"; the function takes (args, config) -> int.
HANDLERS = {
    "train": "cadenza.train.cli:run_train",
    "generate": "cadenza.train.cli:run_generate",
    "tokens": "cadenza.train.tokens_cmd:run_tokens",
    "export": "cadenza.export.cli:run_export",
    "bench": "cadenza.export.cli:run_bench",
    "native-weights": "cadenza.export.cli:run_native_weights",
    "simulate": "cadenza.live.offline.simulate:run_simulate",
    "evaluate": "cadenza.live.offline.evaluate_cmd:run_evaluate",
    "plot": "cadenza.live.offline.pianoroll:run_plot",
    "live": "cadenza.cli:run_live_command",
    "ports": "cadenza.cli:run_ports_command",
    "panic": "cadenza.cli:run_panic_command",
}


def _positive(kind: type) -> Callable[[str], Any]:
    """An argparse type: a number of ``kind`` above zero."""

    def parse(text: str) -> Any:
        try:
            value = kind(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"not a number: {text!r}") from None
        if not value > 0 or value != value:  # also refuses nan
            raise argparse.ArgumentTypeError(f"must be above zero, got {text}")
        return value

    return parse


def _sampling_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--seed", type=int, help="seed for sampling (reproducible output)")
    parser.add_argument("--temperature", type=float, help="0 = argmax (the original)")
    parser.add_argument("--top-k", type=int, dest="top_k", help="sample from the k likeliest")
    parser.add_argument("--top-p", type=float, dest="top_p", help="nucleus sampling mass")


def _engine_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--model", help="model bundle folder (default: the bundled model)")
    live = LiveConfig()
    parser.add_argument("--mode", choices=MODES, help=_choices_help(MODE_HELP, live.mode))
    parser.add_argument("--rhythm", choices=RHYTHMS, help=_choices_help(RHYTHM_HELP, live.rhythm))
    parser.add_argument("--bpm", type=float, help="tempo of the internal clock")
    parser.add_argument("--grid", choices=GRIDS, help="note grid of the answers")
    parser.add_argument("--runner", choices=RUNNERS, help="how the model is run")
    parser.add_argument("--int8", action="store_true", default=None,
                        help="use the bundle's int8 graph where it has one")
    parser.add_argument("--channel", type=int, help="output MIDI channel 1..16")
    parser.add_argument("--key", help=_choices_help(
        KEY_HELP, live.key, "; or a key such as 'D major' or 'F# minor'"))
    parser.add_argument("--key-strength", type=float, dest="key_strength",
                        help="0: the model alone .. 1: out-of-key tokens only as a last resort")
    parser.add_argument("--register", choices=REGISTERS,
                        help=_choices_help(REGISTER_HELP, live.register))
    _sampling_options(parser)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="cadenza",
        description="Cadenza: a live MIDI improviser. Train a next-note LSTM, export it "
        "to ONNX, and let it answer what you play.",
    )
    parser.add_argument("--version", action="version", version=f"cadenza {__version__}")
    parser.add_argument("-v", "--verbose", action="store_true", help="debug logging")
    parser.add_argument(
        "--config", type=Path, help="config file (default: ./config.toml when it exists)"
    )
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    sub.required = True

    p = sub.add_parser("train", help="train a model on MIDI files or a music21 corpus")
    p.add_argument("--preset", choices=PRESETS)
    p.add_argument("--data", nargs="+", metavar="SOURCE", help="folders or music21:NAME")
    p.add_argument("--epochs", type=int)
    p.add_argument("--batch-size", type=int, dest="batch_size")
    p.add_argument("--split", choices=SPLITS)
    p.add_argument("--min-count", type=int, dest="min_count")
    p.add_argument("--strategy", choices=STRATEGIES)
    p.add_argument("--max-files", type=int, dest="max_files",
                   help="use at most N files of each source")
    p.add_argument("--seed", type=int, help="seed for the split and the weights")
    p.add_argument("--out", type=Path, help="output folder")
    p.add_argument("--resume", action="store_true",
                   help="go on from the last finished epoch of an unfinished run into --out")

    p = sub.add_parser("tokens", help="write the tokens of training files as JSON "
                       "(what the model will see; warms the parse cache)")
    p.add_argument("--data", nargs="+", metavar="SOURCE", required=True,
                   help="folders, MIDI files or music21:NAME")
    p.add_argument("--tokenizer", choices=TOKENIZERS, help="how MIDI files are read")
    p.add_argument("--no-cache", action="store_true", dest="no_cache",
                   help="parse every file again, and store nothing")
    p.add_argument("--json", type=Path, required=True, metavar="FILE", help="JSON file to write")

    p = sub.add_parser("generate", help="write a generated melody to a MIDI file")
    p.add_argument("--model", help="a trained model folder or an ONNX bundle "
                   "(default: the bundled model)")
    p.add_argument("--length", type=_positive(int), default=200, help="tokens to generate")
    p.add_argument("--out", type=Path, required=True, help="MIDI file to write")
    _sampling_options(p)

    p = sub.add_parser("export", help="export a trained model to an ONNX bundle")
    p.add_argument("--model", required=True, type=Path, help="trained model folder")
    p.add_argument("--out", required=True, type=Path, help="bundle folder to write")
    p.add_argument("--int8", action="store_true", default=None, help="add an int8 graph")
    p.add_argument("--opset", type=int)

    p = sub.add_parser("native-weights", help="add the native step's weights (native.bin) to "
                       "a bundle, checked against its stream graph")
    p.add_argument("bundle", nargs="?", type=Path,
                   help="bundle folder (default: the bundled model)")

    p = sub.add_parser("bench", help="measure prediction latency")
    p.add_argument("--model", type=Path, help="bundle (default: the bundled model)")
    p.add_argument("--keras", type=Path, help="trained Keras model folder to compare")
    p.add_argument("--calls", type=_positive(int), default=2000, help="predictions per runner")
    p.add_argument("--json", type=Path, help="also write the results as JSON")

    p = sub.add_parser("simulate", help="offline duet: a MIDI file in, the duet out")
    _engine_options(p)
    p.add_argument("--input", type=Path, help="performer MIDI file (default: bundled example)")
    p.add_argument("--out", type=Path, required=True, help="duet MIDI file to write")
    p.add_argument("--plot", type=Path, help="also draw a piano roll PNG")
    p.add_argument("--bars", type=_positive(float), help="with --mode continue: how long to play")
    p.add_argument("--engine", choices=("python", "native"), default="python",
                   help="the Python engine, or the native (C++) one: the same notes (make native)")

    p = sub.add_parser("evaluate", help="score the engine's answers to calls cut from pieces, "
                       "beside baselines (table, and JSON)")
    p.add_argument("--model", help="model bundle folder (default: the bundled model)")
    p.add_argument("--data", nargs="+", metavar="SOURCE", required=True,
                   help="MIDI files or folders (searched recursively)")
    p.add_argument("--json", type=Path, metavar="FILE", help="also write the report as JSON")
    p.add_argument("--set", action="append", default=[], dest="assignments",
                   metavar="KEY=VALUE", help="a [live] setting for the engine, e.g. "
                   "temperature=0.8 (repeatable; over the config file)")
    p.add_argument("--held-out", action="store_true", dest="held_out",
                   help="only the files the model's training held out (by file name)")
    p.add_argument("--part", choices=("all", "tune", "report"), default="all",
                   help="every other file (tune: from the first, report: from the second), "
                   "to choose settings on one half and judge them on the other")
    p.add_argument("--call-onsets", type=_positive(int), dest="call_onsets",
                   help="onsets per call, and per continuation (default 16)")
    p.add_argument("--calls-per-piece", type=_positive(int), dest="calls_per_piece",
                   help="calls cut from each piece, evenly spaced (default 3)")
    p.add_argument("--max-tokens", type=_positive(int), dest="max_tokens",
                   help="next-token positions scored per piece (default 200)")
    p.add_argument("--per-call", action="store_true", dest="per_call",
                   help="put every call's pitches and figures in the JSON")
    p.add_argument("--seed", type=int, help="seed for sampling and the random baselines")
    p.add_argument("--runner", choices=RUNNERS, help="how the model is run")
    p.add_argument("--int8", action="store_true", default=None,
                   help="use the bundle's int8 graph where it has one")
    p.add_argument("--engine", choices=("python", "native"), default="python",
                   help="the Python engine, or the native (C++) one: the same answers (make native)")

    p = sub.add_parser("live", help="run the improviser on MIDI ports")
    _engine_options(p)
    p.add_argument("--in", dest="in_port", help="connect to this input port (substring)")
    p.add_argument("--out", dest="out_port", help="connect to this output port (substring)")
    p.add_argument("--api", choices=APIS)
    p.add_argument("--clock", choices=CLOCKS)
    p.add_argument("--clock-out", action="store_true", default=None, dest="clock_out")
    p.add_argument("--record", help="record the session to this MIDI file")
    p.add_argument("--stats", type=float, dest="stats_interval", metavar="SECONDS",
                   help="log statistics every SECONDS")
    p.add_argument("--duration", type=_positive(float), help="stop after this many seconds")
    p.add_argument("--engine", choices=("python", "native"), default="python",
                   help="the Python engine, or the native (C++) one: the same notes (make native)")

    p = sub.add_parser("ports", help="list MIDI ports of each API")
    p.add_argument("--api", choices=APIS)

    p = sub.add_parser("panic", help="silence a MIDI port (all notes off)")
    p.add_argument("--out", dest="out_port", required=True, help="output port (substring)")
    p.add_argument("--api", choices=APIS)

    p = sub.add_parser("plot", help="draw a duet MIDI file as a piano roll")
    p.add_argument("midi", type=Path, help="MIDI file")
    p.add_argument("-o", "--out", type=Path, required=True, help="PNG to write")
    return parser


# Options that map onto config keys, by subcommand: (section, option names).
CONFIG_OPTIONS: dict[str, list[tuple[str, tuple[str, ...]]]] = {
    "train": [
        ("data", ("min_count", "max_files")),
        ("train", ("preset", "epochs", "batch_size", "split", "strategy", "seed")),
    ],
    "tokens": [("data", ("tokenizer",))],
    "export": [("export", ("int8", "opset"))],
    "simulate": [
        ("live", ("model", "mode", "rhythm", "bpm", "grid", "runner", "int8", "channel", "seed",
                  "temperature", "top_k", "top_p", "key", "key_strength", "register")),
    ],
    "live": [
        ("live", ("model", "mode", "rhythm", "bpm", "grid", "runner", "int8", "channel", "seed",
                  "temperature", "top_k", "top_p", "key", "key_strength", "register", "in_port", "out_port", "api", "clock",
                  "clock_out", "record", "stats_interval")),
    ],
    "evaluate": [("live", ("model", "seed", "runner", "int8"))],
    "generate": [("live", ("seed", "temperature", "top_k", "top_p"))],
    "ports": [("live", ("api",))],
    "panic": [("live", ("api", "out_port"))],
}


def config_from_args(args: argparse.Namespace) -> Config:
    overrides: dict[str, dict[str, Any]] = {}
    for text in getattr(args, "assignments", None) or []:
        key, value = parse_assignment(text)  # --set: under the named options below
        overrides.setdefault("live", {})[key] = value
    for section, names in CONFIG_OPTIONS.get(args.command, []):
        for name in names:
            value = getattr(args, name, None)
            if value is not None:
                overrides.setdefault(section, {})[name] = value
    if args.command in ("train", "tokens") and args.data:
        overrides.setdefault("data", {})["sources"] = list(args.data)
    if args.command == "train" and args.out:
        overrides.setdefault("train", {})["out"] = str(args.out)
    path = args.config
    if path is None and DEFAULT_CONFIG.is_file():
        path = DEFAULT_CONFIG
    return load_config(path, overrides=overrides)


def _handler(command: str) -> Callable[[argparse.Namespace, Config], int]:
    module_name, function = HANDLERS[command].split(":")
    return getattr(importlib.import_module(module_name), function)


def _default_generate_model(args: argparse.Namespace) -> None:
    """``generate`` with no --model plays the bundled model, as live and simulate do."""
    if args.command != "generate" or args.model:
        return
    path = bundled_model_path()
    if not (path / MANIFEST).is_file():
        raise BundleError(
            f"{path}: no bundled model in this installation; pass --model (a trained "
            "model folder or a bundle), or rebuild the bundled one with `make bundle`"
        )
    args.model = str(path)


def run_live_command(args: argparse.Namespace, config: Config) -> int:
    """``cadenza live``: typed settings to the daemon, and how to read them again on SIGHUP."""
    from cadenza.live.daemon.command import run_live

    return run_live(config.live, load_settings=lambda: config_from_args(args).live,
                    duration=getattr(args, "duration", None),
                    engine_kind=getattr(args, "engine", None) or "python")


def run_ports_command(args: argparse.Namespace, config: Config) -> int:
    from cadenza.live.midi.port_commands import list_all_ports

    return list_all_ports(config.live)


def run_panic_command(args: argparse.Namespace, config: Config) -> int:
    from cadenza.live.midi.port_commands import panic

    return panic(config.live)


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    logging.basicConfig(
        level=logging.DEBUG if args.verbose else logging.INFO,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
        stream=sys.stderr,
    )
    try:
        config = config_from_args(args)
        _default_generate_model(args)
        return int(_handler(args.command)(args, config) or 0)
    except CadenzaError as err:
        log.error("%s", err)
        return err.exit_code
    except KeyboardInterrupt:
        log.warning("interrupted")
        return 130


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
