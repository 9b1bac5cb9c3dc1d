"""Search engine settings with ``cadenza evaluate``'s measures: one report per point of a grid.

Every point of the grid (the product of each ``--grid`` list) is scored on
the same calls, cut once from the same pieces, with the model loaded once:

    python scripts/tune_live.py --data ~/midi/held-out --out runs/tune \\
        --grid temperature=0,0.7,1.0 --grid top_p=0.9,1.0 --grid rhythm=grid,mirror

Each point's report goes to ``OUT/<point>.json`` (the JSON ``cadenza
evaluate --json`` writes); a point whose report is there already, with the
same settings and data, is read back instead of run again, so a stopped
search goes on where it stopped.  ``OUT/summary.json`` and the table printed
last list Cadenza's row of every point, with the pitch-class match of the
same settings answering another piece's call (how much of it is about the
call), over the baselines that do not depend on the settings.

The objective: pitch-class match first, among the points that meet every
bound (``misses``): the top line's mean step within ``STEP_WITHIN``
semitones of the real continuation's, its share of leaps beyond a fifth
within ``LEAP_WITHIN`` of the continuation's, trigram copy at most
``MAX_COPY``, distinct pitches per note at least ``MIN_DISTINCT``.  The
points come best first: fewest bounds missed, then highest match; the
first point that misses none is ``chosen`` in the summary.

Keys that change the model or how calls are cut (model, runner, int8,
chord_window_ms, bpm, pause_beats) are fixed for a search: give them with
``--set`` or the config file, and run one search per value.
"""

from __future__ import annotations

import argparse
import itertools
import json
import logging
import re
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from cadenza.bundle import write_json_atomic
from cadenza.config import Config, LiveConfig, as_dict, load_config, parse_assignment
from cadenza.errors import CadenzaError, ConfigError
from cadenza.live.offline.evaluate import engine_settings
from cadenza.live.offline.evaluate_cmd import (
    COLUMNS,
    DEFAULT_CALL_ONSETS,
    DEFAULT_CALLS_PER_PIECE,
    DEFAULT_MAX_TOKENS,
    Options,
    evaluate_settings,
    prepare,
)

log = logging.getLogger("tune_live")

FIXED = ("model", "runner", "int8", "chord_window_ms", "bpm", "pause_beats")
# The bounds of the objective (see the docstring).
STEP_WITHIN = 1.0  # semitones
LEAP_WITHIN = 0.05
MAX_COPY = 0.30
MIN_DISTINCT = 0.35
OTHER = "pc match, another call"
BASELINES = ("continuation", "markov", "random")  # the rows that do not depend on the settings


def parse_grid(texts: Sequence[str]) -> dict[str, list[Any]]:
    """``["temperature=0,0.7", "top_p=0.9"]`` -> {"temperature": [0, 0.7], "top_p": [0.9]}."""
    grid: dict[str, list[Any]] = {}
    for text in texts:
        key, sep, values = text.partition("=")
        key = key.strip()
        if not sep or not key or not values.strip():
            raise ConfigError(f"--grid {text!r}: expected KEY=V1,V2,..., like temperature=0,0.7")
        if key in FIXED:
            raise ConfigError(f"--grid {key}: fixed for a search (it changes the model or the "
                              "calls); give it with --set and run one search per value")
        if key in grid:
            raise ConfigError(f"--grid {key}: given twice")
        grid[key] = [parse_assignment(f"{key}={v}")[1] for v in values.split(",")]
    return grid


def points(grid: dict[str, list[Any]]) -> list[dict[str, Any]]:
    keys = list(grid)
    return [dict(zip(keys, combo, strict=True)) for combo in itertools.product(*grid.values())]


def point_name(point: dict[str, Any]) -> str:
    """A file name for a point: ``temperature-0.7__top_p-0.9`` (``/`` and the like as ``_``)."""
    text = "__".join(f"{k}-{json.dumps(v) if isinstance(v, bool) else v}" for k, v in point.items())
    return re.sub(r"[^A-Za-z0-9._-]", "_", text) or "defaults"


def _done(path: Path, settings: LiveConfig, options: Options) -> dict | None:
    """The report at ``path`` if it was made with these settings and data."""
    try:
        report = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    evaluation = report.get("evaluation", {})
    same = (
        report.get("settings") == json.loads(json.dumps(as_dict_live(settings)))
        and evaluation.get("data") == list(options.data)
        and evaluation.get("call_onsets") == options.call_onsets
        and evaluation.get("calls_per_piece") == options.calls_per_piece
        and evaluation.get("held_out") == options.held_out
        and evaluation.get("part", "all") == options.part
    )
    return report if same else None


def as_dict_live(settings: LiveConfig) -> dict:
    return as_dict(Config(live=settings))["live"]


def _off_by(value: float | None, target: float | None, within: float) -> bool:
    return value is None or target is None or abs(value - target) > within


def misses(row: dict, continuation: dict) -> list[str]:
    """The bounds of the objective that Cadenza's ``row`` misses (empty: it meets them all)."""
    out = []
    if _off_by(row.get("top_step"), continuation.get("top_step"), STEP_WITHIN):
        out.append("step")
    if _off_by(row.get("leap_share"), continuation.get("leap_share"), LEAP_WITHIN):
        out.append("leaps")
    if row.get("trigram_copy") is None or row["trigram_copy"] > MAX_COPY:
        out.append("copy")
    if row.get("variety") is None or row["variety"] < MIN_DISTINCT:
        out.append("distinct")
    return out


def summary_rows(reports: dict[str, tuple[dict, dict]]) -> list[dict]:
    """Cadenza's row of every point, best first: fewest bounds missed, then pitch-class match."""
    rows = []
    for name, (point, report) in reports.items():
        by_row = {r["row"]: r for r in report["rows"]}
        cadenza = {k: v for k, v in by_row["cadenza"].items() if k not in ("row", "label")}
        # The same settings answering another piece's call: what is left of the
        # pitch-class match when the answer is not about this call.
        other = by_row.get("other_call", {}).get("pitch_class_match")
        rows.append({"point": point, "name": name, **cadenza, "other_call_pitch_class_match": other,
                     "misses": misses(cadenza, by_row["continuation"])})
    rows.sort(key=lambda r: (len(r["misses"]), -(r["pitch_class_match"] or 0.0)))
    return rows


def format_summary(rows: list[dict], baselines: list[dict]) -> str:
    width = max([len(r["name"]) for r in rows] + [len(b["label"]) for b in baselines])
    head = [f"{'settings':<{width}}", f"{'calls':>5}", f"{'notes':>5}", f"{'onsets':>6}"]
    head += [f"{title:>{max(len(title), 6)}}" for _, title, _ in COLUMNS]
    lines = ["  ".join([*head, OTHER, "misses"])]

    def cell(value: float | None, digits: int, width: int) -> str:
        return f"{'-' if value is None else format(value, f'.{digits}f'):>{width}}"

    def line(label: str, row: dict) -> str:
        cells = [f"{label:<{width}}", f"{row['calls']:>5}", cell(row["notes"], 1, 5),
                 cell(row.get("onsets"), 1, 6)]
        cells += [cell(row.get(k), d, max(len(t), 6)) for k, t, d in COLUMNS]
        return "  ".join(cells)

    lines += [f"{line(r['name'], r)}  {cell(r['other_call_pitch_class_match'], 3, len(OTHER))}"
              f"  {','.join(r['misses']) or '-'}" for r in rows]
    lines.append("")
    lines += [line(b["label"], b) for b in baselines]
    return "\n".join(lines) + "\n"


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", nargs="+", required=True, metavar="SOURCE")
    parser.add_argument("--out", type=Path, required=True, help="folder for the reports")
    parser.add_argument("--grid", action="append", default=[], metavar="KEY=V1,V2,...")
    parser.add_argument("--set", action="append", default=[], dest="assignments",
                        metavar="KEY=VALUE", help="a [live] setting held fixed")
    parser.add_argument("--config", type=Path, help="config file (its [live] section)")
    parser.add_argument("--model", help="model bundle (default: the bundled model)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--held-out", action="store_true", dest="held_out")
    parser.add_argument("--part", choices=("all", "tune", "report"), default="all")
    parser.add_argument("--call-onsets", type=int, default=DEFAULT_CALL_ONSETS)
    parser.add_argument("--calls-per-piece", type=int, default=DEFAULT_CALLS_PER_PIECE)
    parser.add_argument("--max-tokens", type=int, default=DEFAULT_MAX_TOKENS)
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    try:
        return _run(args)
    except CadenzaError as err:
        log.error("%s", err)
        return err.exit_code


def _run(args: argparse.Namespace) -> int:
    fixed = dict(parse_assignment(text) for text in args.assignments)
    fixed["seed"] = args.seed
    if args.model:
        fixed["model"] = args.model
    grid = parse_grid(args.grid)
    options = Options(data=tuple(args.data), call_onsets=args.call_onsets,
                      calls_per_piece=args.calls_per_piece, max_tokens=args.max_tokens,
                      held_out=args.held_out, part=args.part)
    todo: dict[str, tuple[dict, LiveConfig]] = {}
    for point in points(grid):  # every point checked before any work starts
        config = load_config(args.config, overrides={"live": {**fixed, **point}})
        todo[point_name(point)] = (point, engine_settings(config.live))
    reports: dict[str, tuple[dict, dict]] = {}
    prepared = predictor = next_token = None
    for name, (point, settings) in todo.items():
        path = args.out / f"{name}.json"
        report = _done(path, settings, options)
        if report is None:
            if prepared is None:
                from cadenza.live.model import load_live_predictor

                prepared = prepare(options, settings)
                predictor = load_live_predictor(settings)
            log.info("point %s", name)
            report = evaluate_settings(predictor, settings, prepared, options, next_token)
            next_token = report["next_token"]  # the same for every point: computed once
            write_json_atomic(path, report)
        else:
            log.info("point %s: done before (%s)", name, path)
        reports[name] = (point, report)
    first = next(iter(reports.values()))[1]
    baselines = [r for r in first["rows"] if r["row"] in BASELINES]
    rows = summary_rows(reports)
    chosen = next((r["name"] for r in rows if not r["misses"]), None)
    write_json_atomic(args.out / "summary.json", {
        "grid": grid, "fixed": fixed, "data": list(options.data),
        "objective": {"step_within": STEP_WITHIN, "leap_within": LEAP_WITHIN,
                      "max_copy": MAX_COPY, "min_distinct": MIN_DISTINCT},
        "chosen": chosen, "points": rows,
        "baselines": baselines, "next_token": first["next_token"], "model": first["model"],
    })
    print(format_summary(rows, baselines), end="")
    print(f"chosen: {chosen or 'none meets every bound; the first row misses fewest'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
