"""Write report.json and the plots of a run folder from its checkpoint and history.

For a run whose epochs all finished (model.keras and history.csv are there)
but whose process died before the report was written.  The data are parsed
again (from the cache) with the settings given, so the split is the run's
own: pass the same --preset, --split, --data and --seed as the run had.

    python scripts/finish_run.py runs/mozart-seed-windows --preset seed \
        --split windows --data ../shared/data/seed-mozart --epochs 120
"""

from __future__ import annotations

import argparse
import csv
import logging
import sys
from pathlib import Path
from types import SimpleNamespace

from cadenza.bundle import write_json_atomic
from cadenza.config import load_config
from cadenza.train import training
from cadenza.train.outputs import plot_history

log = logging.getLogger("finish_run")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("run", type=Path)
    parser.add_argument("--preset", required=True)
    parser.add_argument("--split", required=True)
    parser.add_argument("--data", nargs="+", required=True)
    parser.add_argument("--epochs", type=int, required=True)
    parser.add_argument("--seed", type=int, default=42)
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")

    import keras

    config = load_config(None, overrides={
        "data": {"sources": args.data},
        "train": {"preset": args.preset, "split": args.split, "epochs": args.epochs,
                  "seed": args.seed, "out": str(args.run)},
    })
    with (args.run / training.HISTORY_FILE).open(newline="") as handle:
        rows = list(csv.DictReader(handle))
    history = {key: [float(row[key]) for row in rows] for key in rows[0] if key != "epoch"}
    best = min(range(len(rows)), key=lambda i: history["val_loss"][i]) + 1
    data = training.prepare_data(config)
    model = keras.models.load_model(args.run / training.MODEL_FILE)
    report = training._evaluate(model, args.preset, data)
    evaluation = SimpleNamespace(epoch_seconds=history.get("seconds", []), eval_seconds=[])
    report.update(training._describe_run(
        config, data, evaluation, SimpleNamespace(best_epoch=best), history))
    report.update(interrupted=False, finished_by="scripts/finish_run.py")
    plot_history(history, args.run, f"{args.preset} preset, split by {args.split}")
    write_json_atomic(args.run / training.REPORT_FILE, report)
    log.info("wrote %s: test accuracy %.4f, loss %.4f", args.run / training.REPORT_FILE,
             report["test_accuracy"], report["test_loss"])
    return 0


if __name__ == "__main__":
    sys.exit(main())
