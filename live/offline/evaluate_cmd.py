"""``cadenza evaluate``: the measures of the musical core, as a table and JSON.

Calls are cut from whole pieces (``live.calls``), answered by the real
engine offline and scored beside the baselines (``live.evaluate``); the
model's next-token accuracy and loss on the same pieces stand beside them
(``live.nexttoken``).  ``prepare`` reads the pieces once and
``evaluate_settings`` scores one set of engine settings on them, so a
search over settings (``scripts/tune_live.py``) reads the files only once.
The same files, settings and seed give the same JSON, byte for byte.
"""

from __future__ import annotations

import argparse
import logging
import platform
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path

from cadenza import __version__
from cadenza.bundle import Bundle, bundled_model_path, read_bundle, write_json_atomic
from cadenza.config import Config, LiveConfig, as_dict
from cadenza.errors import DataError, MidiFileError
from cadenza.live.offline.calls import Call, Piece, cut_calls, find_midi_files, read_piece
from cadenza.live.offline.evaluate import (
    engine_settings,
    evaluate_calls,
    per_call,
    silence_limit,
    summarise,
)
from cadenza.live.offline.nexttoken import next_token_figures

log = logging.getLogger(__name__)

DEFAULT_CALL_ONSETS = 16
DEFAULT_CALLS_PER_PIECE = 3
DEFAULT_MAX_TOKENS = 200  # next-token positions scored per piece
CHORDS = "every note of every onset counts, onsets in order, each chord low to high"


@dataclass(frozen=True)
class Options:
    """What to evaluate on (the engine's settings come from the config)."""

    data: tuple[str, ...]
    call_onsets: int = DEFAULT_CALL_ONSETS
    calls_per_piece: int = DEFAULT_CALLS_PER_PIECE
    max_tokens: int = DEFAULT_MAX_TOKENS
    held_out: bool = False
    per_call: bool = False
    # "tune" / "report": every other file of the sorted list, from the first /
    # the second, so that settings chosen on one half are judged on the other.
    part: str = "all"


@dataclass(frozen=True)
class Prepared:
    """The pieces read once: what every set of settings is scored on."""

    bundle: Bundle
    files: tuple[dict, ...]  # {"file", "onsets", "calls"} per readable file
    skipped: tuple[dict, ...]  # {"file", "reason"} per unreadable one
    pieces: tuple[Piece, ...]
    calls: tuple[Call, ...]


def options_from_args(args: argparse.Namespace) -> Options:
    given = {
        name: getattr(args, name)
        for name in ("call_onsets", "calls_per_piece", "max_tokens")
        if getattr(args, name, None) is not None
    }
    return Options(data=tuple(args.data), held_out=bool(args.held_out),
                   per_call=bool(args.per_call), part=getattr(args, "part", None) or "all",
                   **given)


PARTS = ("all", "tune", "report")


def part_of(files: Sequence[Path], part: str) -> list[Path]:
    """``files`` (sorted), or every other one of them: see ``Options.part``."""
    if part not in PARTS:
        raise DataError(f"--part {part!r}: must be one of {', '.join(PARTS)}")
    if part == "all":
        return list(files)
    chosen = list(files)[0 if part == "tune" else 1 :: 2]
    if not chosen:
        raise DataError(f"--part {part}: {len(files)} file(s) leave no {part} half")
    return chosen


def _training_report(bundle: Bundle) -> dict:
    training = bundle.manifest.get("training")
    report = training.get("report") if isinstance(training, dict) else None
    return report if isinstance(report, dict) else {}


def held_out_files(files: Sequence[Path], bundle: Bundle) -> list[Path]:
    """The files named (by file name) among the pieces the bundle's training held out."""
    held = _training_report(bundle).get("test_pieces")
    if not held:
        raise DataError(
            f"{bundle.path}: the bundle records no held-out pieces (its training report has "
            "no test_pieces: trained with split = \"windows\"?); run without --held-out"
        )
    names = {Path(str(p)).name for p in held}
    kept = [f for f in files if f.name in names]
    if not kept:
        examples = ", ".join(sorted(names)[:3])
        raise DataError(
            f"none of the {len(files)} data files is among the {len(names)} pieces "
            f"{bundle.path} held out in training (such as {examples})"
        )
    log.info("--held-out: %d of %d files were held out in training", len(kept), len(files))
    return kept


def prepare(options: Options, settings: LiveConfig) -> Prepared:
    bundle = read_bundle(settings.model or bundled_model_path())
    paths = find_midi_files(options.data)
    if options.held_out:
        paths = held_out_files(paths, bundle)
    paths = part_of(paths, options.part)
    limit = silence_limit(engine_settings(settings))
    files, skipped, pieces, calls = [], [], [], []
    for path in paths:
        try:
            piece = read_piece(path, settings.chord_window_ms)
        except MidiFileError as err:
            log.warning("skipping %s", err)
            skipped.append({"file": str(path), "reason": str(err)})
            continue
        cut = cut_calls(piece, options.call_onsets, options.calls_per_piece, limit)
        files.append({"file": str(path), "onsets": len(piece.onsets), "calls": len(cut)})
        pieces.append(piece)
        calls.extend(cut)
    if not calls:
        raise DataError(
            f"no usable piece in {', '.join(options.data)}: a call and its continuation "
            f"need {2 * options.call_onsets} onsets ({len(skipped)} files unreadable)"
        )
    log.info("%d calls of %d onsets from %d of %d pieces", len(calls), options.call_onsets,
             sum(1 for f in files if f["calls"]), len(paths))
    return Prepared(bundle, tuple(files), tuple(skipped), tuple(pieces), tuple(calls))


def model_facts(bundle: Bundle, graph: str) -> dict:
    manifest = bundle.manifest
    report = _training_report(bundle)
    return {
        "path": str(bundle.path),
        "graph": graph,
        "preset": manifest.get("preset"),
        "vocab_size": bundle.vocab_size,
        "window": bundle.window,
        "data_digest": manifest.get("data_digest"),
        "trained_on": report.get("sources"),
        "split": report.get("split"),
        "metrics": manifest.get("metrics"),
    }


def _version(distribution: str) -> str | None:
    try:
        return metadata.version(distribution)
    except metadata.PackageNotFoundError:
        return None


def versions() -> dict:
    return {
        "cadenza": __version__,
        "python": platform.python_version(),
        **{name: _version(name) for name in ("numpy", "onnxruntime", "mido")},
    }


def evaluate_settings(
    predictor, settings: LiveConfig, prepared: Prepared, options: Options,
    next_token: dict | None = None, engine_kind: str = "python",
) -> dict:
    """The report of one set of settings (``next_token``: figures computed
    before, which do not depend on the engine's settings; None: compute them)."""
    settings = engine_settings(settings)
    began = time.perf_counter()
    scored = evaluate_calls(predictor, settings, prepared.calls, settings.seed, engine_kind)
    log.info("answered and scored %d calls in %.1f s", len(scored), time.perf_counter() - began)
    if next_token is None:
        began = time.perf_counter()
        next_token = next_token_figures(predictor, prepared.pieces, options.max_tokens)
        log.info("next-token figures on %d tokens in %.1f s", next_token["tokens"],
                 time.perf_counter() - began)
    graph = getattr(getattr(predictor, "spec", None), "kind", settings.runner)
    document = {
        "command": "cadenza evaluate",
        "model": model_facts(prepared.bundle, graph),
        "evaluation": {
            "data": list(options.data),
            "held_out": options.held_out,
            "part": options.part,
            "call_onsets": options.call_onsets,
            "calls_per_piece": options.calls_per_piece,
            "calls": len(prepared.calls),
            "seed": settings.seed,
            "silence_limit_s": round(silence_limit(settings), 6),
            "chords": CHORDS,
        },
        "settings": as_dict(Config(live=settings))["live"],
        "rows": summarise(scored),
        "next_token": next_token,
        "files": list(prepared.files),
        "skipped": list(prepared.skipped),
        "versions": versions(),
    }
    if options.per_call:
        document["per_call"] = per_call(scored)
    return document


COLUMNS = (("key_fit", "key fit", 3), ("pitch_class_match", "pc match", 3),
           ("register_distance", "register", 1), ("variety", "distinct/note", 3),
           ("trigram_copy", "trigram copy", 3), ("top_step", "top step", 1),
           ("leap_share", "leaps>5th", 3), ("rhythm_distance", "rhythm", 2))


def _cell(value: float | None, digits: int) -> str:
    return "-" if value is None else f"{value:.{digits}f}"


def format_table(document: dict) -> str:
    """The report as a plain-text table (what ``cadenza evaluate`` prints)."""
    ev, s = document["evaluation"], document["settings"]
    lines = [
        f"{ev['calls']} calls of {ev['call_onsets']} onsets from {len(document['files'])} "
        f"pieces; model {document['model']['path']} ({document['model']['graph']})",
        f"settings: temperature {s['temperature']:g}, top_k {s['top_k']}, top_p {s['top_p']:g}, "
        f"key {s.get('key', 'off')} at {s.get('key_strength', 0):g}, "
        f"register {s.get('register', 'follow')}, rhythm {s['rhythm']}, grid {s['grid']}, "
        f"seed {s['seed']}",
        "",
    ]
    width = max(len(row["label"]) for row in document["rows"])
    header = [f"{'who answers':<{width}}", f"{'calls':>5}", f"{'notes':>5}", f"{'onsets':>6}"]
    header += [f"{title:>{max(len(title), 6)}}" for _, title, _ in COLUMNS]
    lines.append("  ".join(header))
    for row in document["rows"]:
        cells = [f"{row['label']:<{width}}", f"{row['calls']:>5}", f"{_cell(row['notes'], 1):>5}",
                 f"{_cell(row.get('onsets'), 1):>6}"]
        cells += [f"{_cell(row[key], digits):>{max(len(title), 6)}}"
                  for key, title, digits in COLUMNS]
        lines.append("  ".join(cells))
    nt = document["next_token"]
    if nt["tokens"]:
        lines += ["", f"next token after {nt['window']} onsets: accuracy {nt['accuracy']:.3f}, "
                  f"loss {nt['loss']:.3f} on {nt['tokens']} tokens of {nt['pieces']} pieces "
                  f"({nt['in_vocabulary']:.1%} of onsets in the vocabulary)"]
    return "\n".join(lines) + "\n"


def run_evaluate(args: argparse.Namespace, config: Config) -> int:
    """The ``cadenza evaluate`` command."""
    from cadenza.live.model import load_live_predictor  # onnxruntime loads only for a run

    options = options_from_args(args)
    settings = engine_settings(config.live)
    prepared = prepare(options, settings)
    predictor = load_live_predictor(settings)
    document = evaluate_settings(predictor, settings, prepared, options,
                                 engine_kind=getattr(args, "engine", None) or "python")
    sys.stdout.write(format_table(document))
    if getattr(args, "json", None):
        write_json_atomic(args.json, document)
        log.info("wrote %s", args.json)
    return 0
