"""Handlers of ``cadenza export`` and ``cadenza bench``."""

from __future__ import annotations

import argparse
import logging
import os

from cadenza.bundle import bundled_model_path, write_json_atomic
from cadenza.config import Config
from cadenza.errors import ConfigError

log = logging.getLogger(__name__)


def _quiet_tensorflow() -> None:
    # Before TensorFlow is imported: its C++ start-up chatter is not our log.
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    # tf2onnx logs every rewrite at INFO; its warnings still come through.
    logging.getLogger("tf2onnx").setLevel(logging.WARNING)


def run_export(args: argparse.Namespace, config: Config) -> int:
    _quiet_tensorflow()
    from cadenza.export.writer import export_bundle

    manifest = export_bundle(args.model, args.out, config.export)
    decisions = manifest["int8"].get("graphs", {})
    for kind, decision in decisions.items():
        log.info("%s: %s", kind, "kept" if decision["kept"] else "not kept")
    return 0


def run_native_weights(args: argparse.Namespace, config: Config) -> int:
    from cadenza.export.native_bundle import write_native

    record = write_native(args.bundle or bundled_model_path())
    parity = record["parity"]
    log.info("native weights: max |dp| %.2e over %d comparisons (%s)",
             parity["max_abs_diff"], parity["comparisons"], parity["step"])
    return 0


def run_bench(args: argparse.Namespace, config: Config) -> int:
    _quiet_tensorflow()
    from cadenza.export.bench import format_table, run_benchmark

    if args.calls < 1:
        raise ConfigError(f"--calls must be at least 1, got {args.calls}")
    if args.calls < 1000:
        log.warning("--calls %d: fewer than 1000 calls make p99 a rough figure", args.calls)
    results = run_benchmark(args.model or bundled_model_path(), args.calls, args.keras)
    print(format_table(results))  # noqa: T201  (the table is this command's output)
    if args.json:
        write_json_atomic(args.json, results)
        log.info("wrote %s", args.json)
    return 0
