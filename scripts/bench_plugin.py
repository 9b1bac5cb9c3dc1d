"""Time the plugin's process callback (LV2 run()) block by block.

The headless LV2 host of the tests (tests/lv2_host.py) runs the built plugin
at 64-frame blocks and 48 kHz, each run() timed from C on CLOCK_MONOTONIC
(build/plugin/tools/run_timer.so), so that what is measured is the callback
and nothing of the Python around it.  Three cases, each over the same number
of blocks:

- answering: the transport rolls and a four-note call every four seconds is
  answered (the numbers to hold: p99 <= 0.1 ms, max <= 0.5 ms);
- idle, rolling: the transport rolls and nobody plays;
- idle, stopped: the transport is stopped.

Blocks are paced as a host paces them: each run() is called at its block's
deadline (64 frames at 48 kHz: every 1.333 ms of wall time), sleeping in
between, so that the prediction worker (plugin/predict_worker.hpp) has the
head start it has in a host; `--fast` drives blocks back to back instead, as
an offline render does (the worker then mostly falls behind and the audio
thread predicts inline).  The report gives, per case, how the engine's asks
for a distribution were served (ready from the worker, or tokens stepped
inline), the load average (/proc/loadavg) before and after, and, with
`--idle-cost`, the CPU time 16 loaded, activated and unused instances take
(their idle workers' polling).

Wall time, as a host's deadline sees it.  Hosts run their audio thread at a
real-time priority; run this the same way, or it measures the processes that
preempt it:

    chrt -f 60 python scripts/bench_plugin.py --seconds 40 --json out.json

    python scripts/bench_plugin.py --seconds 120 --json bench_plugin.json

What the engine behind the plugin is (the native engine, or the temporary
stand-in where the checkout has no native/) decides the answering figure: the
report names it (build/plugin/ENGINE).
"""

from __future__ import annotations

import argparse
import ctypes as C
import json
import logging
import os
import platform
import statistics
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))  # the headless host lives with the tests that share it

from tests.plugin.lv2_host import (  # noqa: E402
    ATOM,
    PLUGIN_DIR,
    PRECISION_KEY,
    Instance,
    Transport,
    World,
    engine_name,
    note_off,
    note_on,
)

log = logging.getLogger(__name__)

TIMER = PLUGIN_DIR / "tools" / "run_timer.so"


def _timer() -> C.CDLL:
    if not TIMER.is_file():
        raise FileNotFoundError(f"{TIMER} not found: run `make plugin` first")
    lib = C.CDLL(str(TIMER))
    lib.timed_run.argtypes = [C.c_void_p, C.c_void_p, C.c_uint32]
    lib.timings_take.argtypes = [C.POINTER(C.c_uint64), C.c_size_t]
    lib.timings_take.restype = C.c_size_t
    return lib


def _calls(rate: float, block: int, clock: int) -> list[tuple[int, bytes]]:
    """The MIDI of a four-note call every four seconds that falls in this block."""
    period = int(4 * rate)
    midi = []
    for offset in range(block):
        phase = (clock + offset) % period
        for note in range(4):
            if phase == int(note * 0.25 * rate):
                midi.append((offset, note_on(60 + 2 * note)))
            if phase == int((note * 0.25 + 0.2) * rate):
                midi.append((offset, note_off(60 + 2 * note)))
    return midi


def load_average() -> str:
    return Path("/proc/loadavg").read_text().split(" (")[0].strip()


def close_with_stats(instance: Instance) -> dict[str, int]:
    """Frees the instance, reading the prediction stats its engine prints then
    (CADENZA_PLUGIN_PREDICT_STATS, set in main) from the C stderr."""
    sys.stderr.flush()
    saved = os.dup(2)
    with tempfile.TemporaryFile() as capture:
        os.dup2(capture.fileno(), 2)
        try:
            instance.close()
        finally:
            os.dup2(saved, 2)
            os.close(saved)
        capture.seek(0)
        text = capture.read().decode(errors="replace")
    stats: dict[str, int] = {}
    for line in text.splitlines():
        if line.startswith("cadenza-predict:"):
            words = line.split()[1:]
            stats = {words[i]: int(words[i + 1]) for i in range(0, len(words) - 1, 2)}
        elif line.strip():
            sys.stderr.write(line + "\n")
    return stats


def run_case(world: World, timer: C.CDLL, blocks: int, block: int, rate: float,
             rolling: bool, playing: bool, paced: bool, precision: str = "fp32") -> dict[str, object]:
    instance = Instance(world, rate=rate, block=block, counted_run=timer.timed_run)
    if precision != "fp32":  # as a host restoring a project that chose it
        instance.restore_state({PRECISION_KEY: (precision.encode() + b"\0", world.urid(ATOM + "String"))})
    instance.set("pass_through", 0.0)
    instance.activate()
    transport = Transport(rate, 120.0, rolling=rolling)
    answered = 0
    answer_blocks: list[int] = []  # blocks in which an answer note began
    late = 0
    period = block / rate
    load_before = load_average()
    start = time.monotonic()
    for index in range(blocks):
        if paced:
            # The host's audio thread: this block's deadline, then run().
            wait = start + index * period - time.monotonic()
            if wait > 0:
                time.sleep(wait)
            else:
                late += wait < -period  # more than a block behind: the caller was preempted
        midi = _calls(rate, block, instance.clock) if playing else []
        out = instance.run(block, transport, midi, position=index == 0)
        onsets = sum(1 for _, d in out.events if d[0] & 0xF0 == 0x90 and d[2] > 0)
        answered += onsets
        if onsets:
            answer_blocks.append(index)
    wall = time.monotonic() - start
    raw = (C.c_uint64 * blocks)()
    count = timer.timings_take(raw, blocks)
    predictions = close_with_stats(instance)
    timed = [ns / 1000.0 for ns in raw[:count]]
    in_answer_blocks = [timed[i] for i in answer_blocks if i < count]
    micros = sorted(timed)
    return {
        # The blocks that chose and played an answer note (the model's ask), apart:
        # the overall max can be a block with nothing to do, preempted.
        "answer_blocks": len(in_answer_blocks),
        "answer_block_max_us": max(in_answer_blocks, default=0.0),
        "answer_block_p50_us": statistics.median(in_answer_blocks) if in_answer_blocks else 0.0,
        "slowest_blocks": [{"block": i, "us": round(timed[i], 2), "answer": i in answer_blocks}
                           for i in sorted(range(count), key=lambda k: -timed[k])[:5]],
        "blocks": count,
        "wall_s": round(wall, 3),
        "blocks_over_a_block_late": late,
        "load_before": load_before,
        "load_after": load_average(),
        "predictions": predictions,
        "answer_notes": answered,
        "p50_us": micros[len(micros) // 2],
        "p99_us": micros[min(len(micros) - 1, int(0.99 * len(micros)))],
        "max_us": micros[-1],
        "mean_us": statistics.fmean(micros),
        "block_budget_us": 1e6 * block / rate,
    }


def idle_cost(world: World, rate: float, block: int, seconds: float,
              count: int = 16) -> dict[str, object]:
    """CPU time of `count` activated instances nobody runs: the workers' polling."""
    instances = [Instance(world, rate=rate, block=block) for _ in range(count)]
    for instance in instances:
        instance.activate()
    time.sleep(0.5)  # past the workers' first, fast polls
    cpu, wall = time.process_time(), time.monotonic()
    time.sleep(seconds)
    cpu, wall = time.process_time() - cpu, time.monotonic() - wall
    for instance in instances:
        instance.close()
    return {"instances": count, "seconds": round(wall, 3), "cpu_s": round(cpu, 4),
            "cpu_percent_of_one_core": round(100.0 * cpu / wall, 3)}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=60.0, help="audio time per case")
    parser.add_argument("--block", type=int, default=64)
    parser.add_argument("--rate", type=float, default=48000.0)
    parser.add_argument("--json", type=Path, help="also write the results here")
    parser.add_argument("--fast", action="store_true",
                        help="blocks back to back (an offline render), not paced in real time")
    parser.add_argument("--inline", action="store_true",
                        help="predict inline on the audio thread (no worker), for comparison")
    parser.add_argument("--precision", choices=("fp32", "int8"), default="fp32",
                        help="the model step (the plugin's `precision` state)")
    parser.add_argument("--idle-cost", type=float, default=0.0, metavar="SECONDS",
                        help="also measure the CPU time of 16 idle instances over SECONDS")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    # Read by the plugin at each model load (plugin/engine_adapter_native.cpp).
    os.environ["CADENZA_PLUGIN_PREDICT_STATS"] = "1"
    if args.inline:
        os.environ["CADENZA_PLUGIN_INLINE_PREDICT"] = "1"
    timer = _timer()
    world = World()
    blocks = int(args.seconds * args.rate / args.block)
    paced = not args.fast
    try:
        policy = f"fifo {os.sched_getparam(0).sched_priority}" \
            if os.sched_getscheduler(0) == os.SCHED_FIFO else "other"
    except OSError:
        policy = "unknown"
    results: dict[str, object] = {
        "engine": engine_name(),  # build/plugin/ENGINE: native, or the temporary standin
        "machine": platform.processor() or platform.machine(),
        "cpus": os.cpu_count(),
        "scheduling": policy,
        "prediction": "inline" if args.inline else "worker",
        "precision": args.precision,
        "paced": paced,
        "block": args.block,
        "rate": args.rate,
        "answering": run_case(world, timer, blocks, args.block, args.rate, True, True, paced,
                           args.precision),
        "idle_rolling": run_case(world, timer, blocks, args.block, args.rate, True, False, paced,
                           args.precision),
        "idle_stopped": run_case(world, timer, blocks, args.block, args.rate, False, False, paced,
                           args.precision),
    }
    for case in ("answering", "idle_rolling", "idle_stopped"):
        r = results[case]
        log.info("%-13s %6d blocks  p50 %6.2f us  p99 %6.2f us  max %8.2f us  (%d answer notes;"
                 " answer blocks max %.2f us)  load %s  predictions %s",
                 case, r["blocks"], r["p50_us"], r["p99_us"], r["max_us"], r["answer_notes"],
                 r["answer_block_max_us"], r["load_before"], r["predictions"])
    if args.idle_cost > 0:
        results["idle_cost"] = idle_cost(world, args.rate, args.block, args.idle_cost)
        log.info("idle cost: %s", results["idle_cost"])
    log.info("engine: %s (%s step), prediction %s, %s; budget per block %.0f us", results["engine"],
             results["precision"], results["prediction"], "paced" if paced else "fast",
             results["answering"]["block_budget_us"])
    if args.json:
        args.json.write_text(json.dumps(results, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
