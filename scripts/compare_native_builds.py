"""Two builds of the native model library, timed in alternation.

Each round runs, for each library in turn, one process that times the
native fp32 step alone and then taking turns with onnxruntime's stream step
(as ``cadenza bench`` does).  Alternating the builds round by round lets
both meet the same minutes of a busy machine.  A change that must keep the
bits (a kernel, a prefetch) is measured this way: build each into its own
folder and name both libraries.

    python scripts/compare_native_builds.py A/libcadenza_model.so B/libcadenza_model.so \\
        --rounds 3 --json out.json
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]

# Run in a child process, so that each library is the one cadenza.native loads.
CHILD = """
import json, sys
from cadenza.bundle import bundled_model_path, read_bundle
from cadenza.export.bench import _full_window, _runner_step, time_calls, time_pair
from cadenza.native import NativeStreamRunner
from cadenza.runtime import StreamRunner
calls = int(sys.argv[1])
bundle = read_bundle(bundled_model_path())
native, onnx, primer = NativeStreamRunner(bundle), StreamRunner(bundle), _full_window(bundle)
native.reset(primer)
alone = time_calls(_runner_step(native), primer[-1], calls)
native.reset(primer)
onnx.reset(primer)
onnx_paired, native_paired = time_pair(_runner_step(onnx), _runner_step(native), primer[-1], calls)
print(json.dumps({"native_alone": alone, "native_paired": native_paired, "onnx_paired": onnx_paired}))
"""


def time_library(library: Path, calls: int) -> dict:
    env = dict(os.environ, CADENZA_NATIVE_LIB=str(library))
    done = subprocess.run([sys.executable, "-c", CHILD, str(calls)], env=env, cwd=REPO,
                          check=True, capture_output=True, text=True)
    return json.loads(done.stdout.strip().splitlines()[-1])


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("libraries", nargs=2, type=Path, help="two builds of libcadenza_model.so")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--calls", type=int, default=5000)
    parser.add_argument("--json", type=Path, help="also write the results here")
    args = parser.parse_args(argv)
    for library in args.libraries:
        if not library.is_file():
            parser.error(f"{library}: no such library")
    rounds = []
    for n in range(args.rounds):
        results = {str(library): time_library(library, args.calls) for library in args.libraries}
        rounds.append(results)
        for library, r in results.items():
            line = ", ".join(f"{name} p50 {t['p50_ms'] * 1000:.1f} us p99 {t['p99_ms'] * 1000:.1f} us"
                             for name, t in r.items())
            print(f"round {n + 1} {library}: {line}")
    if args.json:
        args.json.write_text(json.dumps({"calls": args.calls, "rounds": rounds}, indent=1) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
