"""Summarise ``scripts/judge_live.sh``: each set's mean over its seeds, against the targets.

    python scripts/judge_summary.py OUT [--json summary.json]

For each set (the report half, the music21 corpus): the mean over the seeds
of the piece's own row, Cadenza's (rhythm grid; mirror draws the same
pitches), the Markov walk's, and Cadenza's rhythm distance under grid and
mirror; then every target, met or not:

- pitch-class match at least the Markov walk's + 0.04;
- key fit at least the Markov walk's;
- the top line's mean step within 1.0 semitone of the continuation's;
- its share of leaps beyond a fifth within 0.05 of the continuation's;
- trigram copy at most 0.30; distinct pitches per note at least 0.35.

Only the standard library is used.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
from pathlib import Path

SETS = ("report-half", "music21-corpus-piano")
FIGURES = ("notes", "onsets", "key_fit", "pitch_class_match", "register_distance", "variety",
           "trigram_copy", "top_step", "leap_share", "rhythm_distance")
MATCH_LEAD = 0.04
STEP_WITHIN, LEAP_WITHIN, MAX_COPY, MIN_DISTINCT = 1.0, 0.05, 0.30, 0.35


def _rows(path: Path) -> dict[str, dict]:
    return {r["row"]: r for r in json.loads(path.read_text(encoding="utf-8"))["rows"]}


def _mean(values: list) -> float | None:
    defined = [v for v in values if v is not None]
    return statistics.fmean(defined) if defined else None


def summarise_set(out: Path, name: str) -> dict | None:
    folders = sorted(out.glob(f"{name}-seed*"))
    grids = [f / "rhythm-grid.json" for f in folders if (f / "rhythm-grid.json").is_file()]
    mirrors = [f / "rhythm-mirror.json" for f in folders if (f / "rhythm-mirror.json").is_file()]
    if not grids:
        return None
    per_seed = [_rows(p) for p in grids]
    means = {who: {k: _mean([s[who].get(k) for s in per_seed]) for k in FIGURES}
             for who in ("continuation", "cadenza", "markov")}
    mirror_rhythm = _mean([_rows(p)["cadenza"]["rhythm_distance"] for p in mirrors])
    c, m, piece = means["cadenza"], means["markov"], means["continuation"]
    targets = {
        "pc match >= Markov + 0.04": c["pitch_class_match"] >= m["pitch_class_match"] + MATCH_LEAD,
        "key fit >= Markov": c["key_fit"] >= m["key_fit"],
        "step within 1.0": abs(c["top_step"] - piece["top_step"]) <= STEP_WITHIN,
        "leaps within 0.05": abs(c["leap_share"] - piece["leap_share"]) <= LEAP_WITHIN,
        "copy <= 0.30": c["trigram_copy"] <= MAX_COPY,
        "distinct >= 0.35": c["variety"] >= MIN_DISTINCT,
    }
    settings = json.loads(grids[0].read_text(encoding="utf-8"))["settings"]
    return {"seeds": len(grids), "mirror_seeds": len(mirrors), "means": means,
            "rhythm_grid": c["rhythm_distance"], "rhythm_mirror": mirror_rhythm,
            "targets": targets, "settings": settings,
            "per_seed_pc_match": [s["cadenza"]["pitch_class_match"] for s in per_seed],
            "per_seed_markov_pc_match": [s["markov"]["pitch_class_match"] for s in per_seed]}


def _fmt(value: float | None, digits: int) -> str:
    return "-" if value is None else f"{value:.{digits}f}"


def format_set(name: str, result: dict) -> str:
    lines = [f"## {name}: mean of {result['seeds']} seeds", "",
             "| who answers | notes | onsets | key fit | pc match | register | distinct/note "
             "| trigram copy | top step | leaps>5th | rhythm |", "|---|---|---|---|---|---|---|---|---|---|---|"]
    labels = {"continuation": "the piece itself", "cadenza": "Cadenza (grid)", "markov": "Markov walk"}
    for who, label in labels.items():
        f = result["means"][who]
        lines.append(f"| {label} | {_fmt(f['notes'], 1)} | {_fmt(f['onsets'], 1)} | "
                     f"{_fmt(f['key_fit'], 3)} | {_fmt(f['pitch_class_match'], 3)} | "
                     f"{_fmt(f['register_distance'], 1)} | {_fmt(f['variety'], 3)} | "
                     f"{_fmt(f['trigram_copy'], 3)} | {_fmt(f['top_step'], 2)} | "
                     f"{_fmt(f['leap_share'], 3)} | {_fmt(f['rhythm_distance'], 2)} |")
    lines += ["", f"rhythm distance: grid {_fmt(result['rhythm_grid'], 3)}, "
              f"mirror {_fmt(result['rhythm_mirror'], 3)}", ""]
    lines += [f"- {'met' if ok else 'MISSED'}: {target}" for target, ok in result["targets"].items()]
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("out", type=Path)
    parser.add_argument("--json", type=Path, help="also write the summary as JSON")
    args = parser.parse_args(argv)
    results = {name: summarise_set(args.out, name) for name in SETS}
    for name, result in results.items():
        print(format_set(name, result) if result else f"## {name}: no reports yet\n")
    if args.json:
        args.json.write_text(json.dumps(results, indent=1) + "\n", encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main())
