"""How long one engine call takes: the cost the daemon's worker pays per note.

Plays the engine alone in ``continue`` mode on the virtual clock (every
step calls the model) and times each ``advance`` with perf_counter, plus the
model's share (``stats()["latencies"]``).  With no --model a fake model
isolates the engine's own cost.

    python scripts/bench_engine.py                      # the engine alone
    python scripts/bench_engine.py --model BUNDLE --runner stream
    python scripts/bench_engine.py --model BUNDLE --key off   # without key awareness
    python scripts/bench_engine.py --model BUNDLE --call      # key "call" with a call heard

``--call`` plays a 16-note call into the engine first, so that ``key =
"call"`` has the performer's pitch classes to weigh and every answer note
is balanced against them (without a call that mode weighs nothing).
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from collections.abc import Sequence

import _repo  # noqa: F401  (puts testing/ on the path)

from cadenza.config import RUNNERS, LiveConfig
from cadenza.live.engine.engine import Engine
from cadenza.stats import percentile
from cadenza.tokens import midi_to_name
from testing.fake_predictor import FakePredictor


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", help="bundle folder (default: a fake model)")
    parser.add_argument("--runner", choices=RUNNERS, default="stream")
    parser.add_argument("--notes", type=int, default=5000)
    parser.add_argument("--temperature", type=float, default=0.0)
    parser.add_argument("--key", default=LiveConfig.key, help="auto, off or a key ('D major')")
    parser.add_argument("--key-strength", type=float, default=LiveConfig.key_strength)
    parser.add_argument("--key-balance", type=float, default=LiveConfig.key_balance)
    parser.add_argument("--call", action="store_true", help="play a call into the engine first")
    args = parser.parse_args(argv)
    if args.model:
        from cadenza.runtime import load_predictor

        predictor = load_predictor(args.model, runner=args.runner)
    else:
        predictor = FakePredictor([midi_to_name(m) for m in range(36, 96)] + ["0.4.7", "2.7.11"])
    settings = LiveConfig(mode="continue", grid="1/16", bpm=240.0, temperature=args.temperature,
                          key=args.key, key_strength=args.key_strength, key_balance=args.key_balance)
    engine = Engine(predictor, settings)
    if args.call:
        _play_call(engine)
    calls = []
    while engine.stats()["predictions"] < args.notes:
        deadline = engine.next_deadline()
        began = time.perf_counter()
        engine.advance(deadline)
        calls.append(time.perf_counter() - began)
    model = engine.stats()["latencies"]
    name = f"{args.model or 'fake model'} (key {args.key}{', after a call' if args.call else ''})"
    print(f"{name}: {args.notes} notes, advance() p50 {statistics.median(calls) * 1e3:.3f} ms, "
          f"p99 {percentile(calls, 0.99) * 1e3:.3f} ms, max {max(calls) * 1e3:.3f} ms; "
          f"prediction+sampling p50 {statistics.median(model) * 1e3:.3f} ms, "
          f"p99 {percentile(model, 0.99) * 1e3:.3f} ms")
    return 0


def _play_call(engine: Engine) -> None:
    """Sixteen single notes of a C major call, a quarter of a beat apart, through
    the offline duet's own loop (its answers are discarded, not timed)."""
    import mido

    from cadenza.live.offline.simulate import drive

    notes = [60, 62, 64, 65, 67, 69, 71, 72, 71, 69, 67, 65, 64, 62, 60, 67]
    timed = []
    for i, note in enumerate(notes):
        timed.append((i * 0.0625, mido.Message("note_on", note=note, velocity=80)))
        timed.append((i * 0.0625 + 0.05, mido.Message("note_off", note=note)))
    for _ in drive(engine, timed, end=timed[-1][0]):
        pass


if __name__ == "__main__":
    sys.exit(main())
