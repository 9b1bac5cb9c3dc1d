"""Does the native model step choose what onnxruntime's stream runner chooses?

Every call ``cadenza evaluate`` cuts (held-out pieces with ``--held-out``) is
answered twice by the Python engine with the same settings and seed: once on
onnxruntime's stream graph, once on the native step (``--runner native``).
The two steps agree to about 1e-7 in probability, so a choice may differ only
where a draw lands within that much of a boundary of the cumulative
distribution.  This counts the calls whose answers differ in any note, and
the notes compared; the target is 0 differing calls.

    python scripts/count_runner_differences.py --data ../shared/data/piano-midi \\
        --held-out --out docs/results/evaluate/native-vs-onnx.json
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import sys
import time
from dataclasses import replace

from cadenza.config import LiveConfig
from cadenza.live.offline.evaluate import answer_call, engine_settings
from cadenza.live.offline.evaluate_cmd import Options, prepare
from cadenza.runtime import load_predictor

log = logging.getLogger("count_runner_differences")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", nargs="+", required=True, help="MIDI files or folders")
    parser.add_argument("--held-out", action="store_true", help="only the bundle's held-out pieces")
    parser.add_argument("--model", default="", help="bundle (default: the bundled model)")
    parser.add_argument("--seeds", type=int, nargs="+", default=[0], help="engine seeds")
    parser.add_argument("--out", help="write the counts as JSON here")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s")

    settings = LiveConfig(model=args.model)
    prepared = prepare(Options(data=tuple(args.data), held_out=args.held_out), settings)
    runners = {name: load_predictor(args.model or None, runner=name)
               for name in ("stream", "native")}
    began = time.perf_counter()
    differing: list[dict] = []
    notes = answers = 0
    for seed in args.seeds:
        base = engine_settings(replace(settings, seed=seed))
        for k, call in enumerate(prepared.calls):
            # The seed of call k as `cadenza evaluate` gives it.
            call_settings = replace(base, seed=seed + k)
            onnx, native = (answer_call(runners[name], call_settings, call)
                            for name in ("stream", "native"))
            answers += 1
            notes += sum(len(onset) for onset in onnx)
            if onnx != native:
                first = next((i for i, (a, b) in enumerate(zip(onnx, native, strict=False))
                              if a != b), min(len(onnx), len(native)))
                differing.append({"seed": seed, "call": k, "first_differing_onset": first})
    result = {
        "bundle": os.path.relpath(prepared.bundle.path),
        "held_out": args.held_out,
        "calls": len(prepared.calls),
        "seeds": args.seeds,
        "answers_compared": answers,
        "answer_notes_compared": notes,
        "differing_answers": len(differing),
        "differences": differing,
        "seconds": round(time.perf_counter() - began, 1),
    }
    log.info("%d of %d answers differ (%d notes compared)", len(differing), answers, notes)
    if args.out:
        with open(args.out, "w") as out:
            json.dump(result, out, indent=2)
            out.write("\n")
    return 0 if not differing else 1


if __name__ == "__main__":
    sys.exit(main())
