"""The native engine's hot path: how long a step takes, and that it allocates nothing.

Runs ``build/native/cadenza_engine_bench`` (``make native`` builds it) on a
bundle's vocabulary with the fake model, in ``continue`` mode (every step
predicts, key "call" weighing a heard call, the shipped sampling), then
performer key presses (events that need no prediction).  With ``--step fp32``
or ``--step int8`` the model is the bundle's own, on the native model step
inside the engine: the whole step a plugin runs, prediction included.

``step_*``: the whole step at a deadline, the model's forward inside it (no
``prepare`` before it).  ``step_prepared_*``: the same steps with
``engine.prepare()`` called after each, as the daemon calls it in the idle
time before the next deadline (``prepare_after_step_*``: what those prepares
took, where the model had steps owed).
``noise_*``: how often the machine itself stopped a spinning thread for
more than 15 and 40 us, a second after the run (the p99s are read against it).
``input_event_*``: a key pressed or released; ``prepare_*``: the
``prepare()`` after each (``prepare_owed_*``: those that had model steps
owed, the native step only: it is lazy, so a key press only queues its token).

Twice: once plain for the timings, once under the LD_PRELOAD counter of
malloc, calloc, realloc, free and pthread_mutex_lock, armed from C around
each engine call only (also over a session of answers, chords, CCs, stop
and panic).

    python scripts/bench_native_engine.py                # the bundled model's vocabulary
    python scripts/bench_native_engine.py --notes 50000 --json out.json
    chrt -f 50 python scripts/bench_native_engine.py --step fake int8 fp32 --rounds 3 --json out.json
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
from collections.abc import Sequence
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
BUILD = REPO / "build" / "native"


def run_bench(vocabulary: Sequence[str], notes: int, *, counter: bool,
              model: Sequence[str] = ()) -> dict:
    """One run of the C++ bench; its JSON line as a dict."""
    binary = BUILD / "cadenza_engine_bench"
    preload = BUILD / "libcadenza_alloc_counter.so"
    for needed in (binary, preload):
        if not needed.exists():
            raise SystemExit(f"{needed}: not built; run `make native`")
    with tempfile.NamedTemporaryFile("w", suffix=".txt", delete=False) as handle:
        handle.write("\n".join(vocabulary) + "\n")
        vocab_file = handle.name
    env = dict(os.environ)
    if counter:
        env["LD_PRELOAD"] = str(preload)
    try:
        done = subprocess.run([str(binary), vocab_file, str(notes), *model], env=env, check=True,
                              capture_output=True, text=True)
    finally:
        os.unlink(vocab_file)
    return json.loads(done.stdout.strip().splitlines()[-1])


def bundle_vocabulary(model: str | None) -> list[str]:
    from cadenza.bundle import read_bundle
    from cadenza.runtime import bundled_model_path

    return list(read_bundle(model or bundled_model_path()).vocabulary)


def bundle_weights(model: str | None) -> Path:
    from cadenza.bundle import read_bundle
    from cadenza.native import native_file
    from cadenza.runtime import bundled_model_path

    bundle = read_bundle(model or bundled_model_path())
    return bundle.path / native_file(bundle)


def _cpu() -> str:
    """The CPU's model name (timings differ by machine; the int8 rule too)."""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return "unknown"


def _scheduler() -> str:
    names = {os.SCHED_OTHER: "SCHED_OTHER", os.SCHED_FIFO: "SCHED_FIFO", os.SCHED_RR: "SCHED_RR"}
    policy = os.sched_getscheduler(0)
    return f"{names.get(policy, policy)} {os.sched_getparam(0).sched_priority}"


def measure(step: str, model: str | None, notes: int) -> dict:
    """One timed run and one counted run of the C++ bench on one model step."""
    load_before = os.getloadavg()
    vocabulary = bundle_vocabulary(model)
    model_args = [] if step == "fake" else [str(bundle_weights(model)), step]
    timed = run_bench(vocabulary, notes, counter=False, model=model_args)
    counted = run_bench(vocabulary, min(notes, 5000), counter=True, model=model_args)
    return {
        "vocab": timed["vocab"],
        "steps_with_prediction": timed["steps_with_prediction"],
        "step_p50_ms": timed["step_p50_us"] / 1000.0,
        "step_p99_ms": timed["step_p99_us"] / 1000.0,
        "step_prepared_p50_ms": timed["step_prepared_p50_us"] / 1000.0,
        "step_prepared_p99_ms": timed["step_prepared_p99_us"] / 1000.0,
        "prepare_after_step_p50_us": timed["prepare_after_step_p50_us"],
        "prepare_after_step_p99_us": timed["prepare_after_step_p99_us"],
        "input_event_p50_us": timed["input_p50_us"],
        "input_event_p99_us": timed["input_p99_us"],
        "input_event_max_us": timed["input_max_us"],
        "prepare_p50_us": timed["prepare_p50_us"],
        "prepare_p99_us": timed["prepare_p99_us"],
        "prepares_owed": timed["prepares_owed"],
        "prepare_owed_p50_us": timed["prepare_owed_p50_us"],
        "prepare_owed_p99_us": timed["prepare_owed_p99_us"],
        "engine_calls_counted": counted["calls_counted"],
        "malloc": counted["malloc"], "calloc": counted["calloc"], "realloc": counted["realloc"],
        "free": counted["free"], "mutex_lock": counted["mutex_lock"],
        "counter_self_check": counted["counter_self_check"],
        "model": ("fake (the engine's own cost; add the model step's)" if step == "fake"
                  else f"the bundle's native step, {step}, inside the engine"),
        # The machine's own interruptions of a spinning thread, for one second
        # after the timed run: where they are frequent they set the p99s.
        "noise_gaps_over_15us_per_s": timed["noise_gaps_over_15us_per_s"],
        "noise_gaps_over_40us_per_s": timed["noise_gaps_over_40us_per_s"],
        "noise_share_lost": timed["noise_share_lost"],
        "scheduler": _scheduler(),
        "cpu": _cpu(),
        "load_average_before": [round(x, 2) for x in load_before],
        "load_average_after": [round(x, 2) for x in os.getloadavg()],
    }


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", help="bundle whose vocabulary to use (default: the bundled model)")
    parser.add_argument("--notes", type=int, default=20000, help="engine steps to time")
    parser.add_argument("--json", type=Path, help="also write the results here")
    parser.add_argument("--step", choices=("fake", "fp32", "int8"), nargs="+", default=["fake"],
                        help="the model: the fake, or the bundle's native step (fp32 or int8); "
                             "several are run in turn")
    parser.add_argument("--rounds", type=int, default=1,
                        help="run the steps in turn this many times (each round meets the machine anew)")
    args = parser.parse_args(argv)
    runs = []
    for number in range(args.rounds):
        for step in args.step:
            result = measure(step, args.model, args.notes)
            if args.rounds > 1 or len(args.step) > 1:
                result = {"round": number + 1, "step": step, **result}
            runs.append(result)
    output = runs[0] if len(runs) == 1 else {"runs": runs}
    text = json.dumps(output, indent=2)
    print(text)
    if args.json:
        args.json.write_text(text + "\n")
    return 0 if all(run["counter_self_check"] == 2 for run in runs) else 1


if __name__ == "__main__":
    sys.exit(main())
