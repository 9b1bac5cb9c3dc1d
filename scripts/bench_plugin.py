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

Wall time, as a host's deadline sees it.  Hosts run their audio thread at a
real-time priority; run this the same way, or it measures the processes that
preempt it:

    chrt -f 60 python scripts/bench_plugin.py --seconds 20

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
import platform
import statistics
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))  # the headless host lives with the tests that share it

from tests.lv2_host import (  # noqa: E402
    PLUGIN_DIR,
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


def run_case(world: World, timer: C.CDLL, blocks: int, block: int, rate: float,
             rolling: bool, playing: bool) -> dict[str, float]:
    instance = Instance(world, rate=rate, block=block, counted_run=timer.timed_run)
    instance.set("pass_through", 0.0)
    instance.activate()
    transport = Transport(rate, 120.0, rolling=rolling)
    answered = 0
    for index in range(blocks):
        midi = _calls(rate, block, instance.clock) if playing else []
        out = instance.run(block, transport, midi, position=index == 0)
        answered += sum(1 for _, d in out.events if d[0] & 0xF0 == 0x90 and d[2] > 0)
    raw = (C.c_uint64 * blocks)()
    count = timer.timings_take(raw, blocks)
    instance.close()
    micros = sorted(ns / 1000.0 for ns in raw[:count])
    return {
        "blocks": count,
        "answer_notes": answered,
        "p50_us": micros[len(micros) // 2],
        "p99_us": micros[min(len(micros) - 1, int(0.99 * len(micros)))],
        "max_us": micros[-1],
        "mean_us": statistics.fmean(micros),
        "block_budget_us": 1e6 * block / rate,
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=60.0, help="audio time per case")
    parser.add_argument("--block", type=int, default=64)
    parser.add_argument("--rate", type=float, default=48000.0)
    parser.add_argument("--json", type=Path, help="also write the results here")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    timer = _timer()
    world = World()
    blocks = int(args.seconds * args.rate / args.block)
    results = {
        "engine": engine_name(),  # build/plugin/ENGINE: native, or the temporary standin
        "machine": platform.processor() or platform.machine(),
        "block": args.block,
        "rate": args.rate,
        "answering": run_case(world, timer, blocks, args.block, args.rate, True, True),
        "idle_rolling": run_case(world, timer, blocks, args.block, args.rate, True, False),
        "idle_stopped": run_case(world, timer, blocks, args.block, args.rate, False, False),
    }
    for case in ("answering", "idle_rolling", "idle_stopped"):
        r = results[case]
        log.info("%-13s %6d blocks  p50 %6.2f us  p99 %6.2f us  max %8.2f us  (%d answer notes)",
                 case, r["blocks"], r["p50_us"], r["p99_us"], r["max_us"], r["answer_notes"])
    log.info("engine: %s; budget per block %.0f us", results["engine"],
             results["answering"]["block_budget_us"])
    if args.json:
        args.json.write_text(json.dumps(results, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
