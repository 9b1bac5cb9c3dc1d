"""How well the call's own pitch classes predict its continuation's: a yardstick
for ``cadenza evaluate``'s pitch-class match.

    python scripts/call_histogram_match.py --data ../shared/data/piano-midi --held-out --part tune

No model plays: for each call, the cosine (``measures.pitch_class_match``)
between the continuation's 12-bin pitch-class counts and

- the call's own counts (an answer that reproduced the call's proportions
  exactly would score this);
- the call's counts as shares of the whole, with ``spread`` added to each
  class of the call's key, for each ``--spread`` (``[live] key_spread``);
- ``--draws`` notes drawn at random from the call's notes (what chance does
  with an answer of that many notes: the Markov walk is about this).

Means over the calls, as a table (``--json`` also writes them), with the
continuation's notes and how many of them a chord token could sound (one
of each pitch class an onset holds: a token has no doubled notes).
"""

from __future__ import annotations

import argparse
import json
import logging
import statistics
import sys
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from cadenza.config import LiveConfig
from cadenza.live.offline.evaluate import engine_settings
from cadenza.live.offline.evaluate_cmd import Options, prepare
from cadenza.live.offline.measures import call_key

log = logging.getLogger("call_histogram_match")


def counts(notes: Sequence[int]) -> np.ndarray:
    return np.bincount(np.asarray(notes, dtype=np.int64) % 12, minlength=12).astype(float)


def cosine(a: np.ndarray, b: np.ndarray) -> float:
    return float(a @ b / np.sqrt((a @ a) * (b @ b)))


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", nargs="+", required=True, metavar="SOURCE")
    parser.add_argument("--held-out", action="store_true", dest="held_out")
    parser.add_argument("--part", choices=("all", "tune", "report"), default="all")
    parser.add_argument("--calls-per-piece", type=int, default=6)
    parser.add_argument("--spread", type=float, nargs="*", default=[0.02, 0.05, 0.08, 0.1, 0.2])
    parser.add_argument("--draws", type=int, nargs="*", default=[16, 24, 32, 40])
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--json", type=Path)
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    options = Options(data=tuple(args.data), held_out=args.held_out, part=args.part,
                      calls_per_piece=args.calls_per_piece)
    prepared = prepare(options, engine_settings(LiveConfig()))
    rng = np.random.default_rng(args.seed)
    scores: dict[str, list[float]] = {}
    for call in prepared.calls:
        heard = [n for onset in call.onsets for n in onset.notes]
        continuation = counts([n for onset in call.continuation for n in onset.notes])
        own = counts(heard)
        scores.setdefault("continuation: notes", []).append(
            sum(len(onset.notes) for onset in call.continuation))
        scores.setdefault("continuation: distinct classes of each onset", []).append(
            sum(len({n % 12 for n in onset.notes}) for onset in call.continuation))
        scores.setdefault("the call's own counts", []).append(cosine(own, continuation))
        key = call_key(heard)
        in_key = np.zeros(12)
        if key is not None:
            in_key[sorted(key.pitch_classes)] = 1.0
        for spread in args.spread:
            spread_counts = own / own.sum() + spread * in_key
            scores.setdefault(f"the call's shares + {spread:g} per class of its key", []).append(
                cosine(spread_counts, continuation))
        for n in args.draws:
            scores.setdefault(f"{n} notes drawn from the call's", []).append(
                cosine(counts(rng.choice(heard, n)), continuation))
    means = {name: round(statistics.fmean(values), 4) for name, values in scores.items()}
    width = max(map(len, means))
    lines = [f"{len(prepared.calls)} calls ({args.part}):"]
    lines += [f"  {name:<{width}}  {value:.4g}" for name, value in means.items()]
    sys.stdout.write("\n".join(lines) + "\n")
    if args.json:
        args.json.write_text(json.dumps({"calls": len(prepared.calls), "part": args.part,
                                         "seed": args.seed, "means": means}, indent=1) + "\n",
                             encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main())
