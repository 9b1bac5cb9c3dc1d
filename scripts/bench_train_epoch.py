"""How long one training epoch takes: piano-midi in all 12 keys, the default preset.

Prepares the data exactly as ``cadenza train`` does (parse cache, held-out
pieces, transposition, strided windows), builds the default preset's model
at the trainer's own size (LSTM 256 unless ``--lstm-units``), and times
``--batches`` training steps after two warm-up steps (``--full``: one whole
epoch).  Prints and writes the tokens a second and the epoch time they give:
predictions per epoch / tokens per second.

    nice python scripts/bench_train_epoch.py --json docs/results/train-epoch.json
    nice python scripts/bench_train_epoch.py --full --lstm-units 128
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--config", default=str(REPO / "models" / "default.toml"))
    parser.add_argument("--lstm-units", type=int, default=256)
    parser.add_argument("--batches", type=int, default=60)
    parser.add_argument("--full", action="store_true", help="time one whole epoch")
    parser.add_argument("--json", help="write the figures here")
    args = parser.parse_args(argv)
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

    import numpy as np

    from cadenza.config import load_config
    from cadenza.train.model import build_model
    from cadenza.train.prepared import predictions_per_epoch, prepare_data
    from cadenza.train.prepared import training_arrays as _training_arrays

    config = load_config(Path(args.config))
    config = config.replace("train", lstm_units=args.lstm_units)
    started = time.perf_counter()
    data = prepare_data(config)
    prepare_seconds = time.perf_counter() - started
    settings = config.train
    x, y = _training_arrays(settings.preset, data)
    model = build_model(settings.preset, len(data.vocab), data.windows.window,
                        lstm_units=settings.lstm_units, dropout=settings.dropout,
                        embedding_dim=settings.embedding_dim,
                        learning_rate=settings.learning_rate)
    batch = settings.batch_size
    rng = np.random.default_rng(0)
    order = rng.permutation(len(x))
    model.fit(x[order[:2 * batch]], y[order[:2 * batch]], batch_size=batch, epochs=1, verbose=0)
    rows = order if args.full else order[: args.batches * batch]
    began = time.perf_counter()
    model.fit(x[rows], y[rows], batch_size=batch, epochs=1, verbose=0, shuffle=False)
    seconds = time.perf_counter() - began
    per_row = y.shape[1] if y.ndim == 2 else 1
    tokens_per_second = rows.size * per_row / seconds
    epoch_predictions = predictions_per_epoch(settings.preset, data)
    result = {
        "config": str(Path(args.config).relative_to(REPO) if Path(args.config).is_relative_to(REPO)
                      else args.config),
        "lstm_units": settings.lstm_units,
        "batch_size": batch,
        "transpose": settings.transpose,
        "stride": settings.window_stride(data.windows.window),
        "vocab_size": len(data.vocab),
        "predictions_per_epoch": epoch_predictions,
        "timed_rows": int(rows.size),
        "whole_epoch_timed": bool(args.full),
        "timed_seconds": round(seconds, 2),
        "tokens_per_second": round(tokens_per_second, 1),
        "epoch_minutes": round(epoch_predictions / tokens_per_second / 60, 2),
        "prepare_seconds": round(prepare_seconds, 2),
        "cores": os.cpu_count(),
        "load_average_at_end": [round(v, 2) for v in os.getloadavg()],
        "machine": platform.machine(),
        "python": sys.version.split()[0],
    }
    print(json.dumps(result, indent=2))
    if args.json:
        Path(args.json).parent.mkdir(parents=True, exist_ok=True)
        Path(args.json).write_text(json.dumps(result, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
