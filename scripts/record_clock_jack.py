"""Record what the clock follower sees on a JACK run: for replaying a failure.

Runs Cadenza after ``jack_midi_clock -b 97 -B`` (as tests/daemon/test_clock_jack.py
does) and writes one JSON file with

- ``arrivals``: each tick as the daemon got it: its monotonic time, the
  JACK lag then (``JackLag``), the count it moved the tracker on, and the
  tracker's grid after it (count, phase on the master's time line, interval);
- ``sends``: each note-on Cadenza handed to JACK (monotonic time);
- ``dump``: every event ``jack_midi_dump -a`` heard (JACK frames): the
  master's ticks and Cadenza's notes on the frame clock;
- ``xruns``: how many xruns jackd logged.

``--load N`` runs N busy loops at nice 5 meanwhile; ``--storm BURST EVERY``
an xrun storm (``testing/xrun_storm.py``: the noisy machine, as CI's can be).

    python scripts/record_clock_jack.py --seconds 20 --load 3 --out run.json
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import subprocess
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from tempfile import TemporaryDirectory

import _repo  # noqa: F401  (puts testing/ on the path)

from cadenza.config import LiveConfig
from testing.fake_predictor import FakePredictor
from testing.jack_harness import (
    JackServer,
    background_process,
    jack_environment,
    read_midi_dump,
    running_daemon,
    transport,
    wire_clock_master,
)
from testing.xrun_storm import xrun_storm

VOCAB = ["C4", "D4", "E4", "F4", "G4", "A4", "B4", "C5"]
SPIN = "import os; os.nice(5)\nwhile True: pass"


def record(seconds: float, env: dict[str, str], folder: Path, bpm: float) -> dict:
    dump = folder / "dump.txt"
    live = LiveConfig(api="jack", clock="midi", mode="continue", grid="1/8", bpm=120.0, channel=1)
    arrivals: list[list[float]] = []
    sends: list[float] = []
    cycles: list[list[float]] = []  # every JackLag reading: (monotonic, lag, frame, JACK us)
    with background_process(["jack_midi_dump", "-a", "record-dump"], env, dump), \
         background_process(["jack_midi_clock", "-b", str(bpm), "-B"], env, folder / "mclk.log"), \
         running_daemon(FakePredictor(VOCAB), live) as daemon:
        follower = daemon.engine.clock
        tracker = follower.tracker
        tick, send = follower.tick, daemon.ports.send

        def ticked(now: float, master_time: float | None = None) -> None:
            before = tracker.count
            lag = 0.0 if master_time is None else now - master_time
            tick(now, master_time)
            arrivals.append([now, lag, tracker.count - before, tracker.count, tracker.phase,
                             tracker.period])

        def sent(message) -> bool:
            if message.type == "note_on" and message.velocity > 0:
                sends.append(time.monotonic())
            return send(message)

        follower.tick, daemon.ports.send = ticked, sent
        jack_lag = daemon.ports._backend.lag  # the JACK backend's (see live/midi/backends.py)
        read_lag = jack_lag.lag

        def lag_read(now: float) -> float:
            value = read_lag(now)
            cycles.append([now, value, *jack_lag.last_cycle])
            return value

        jack_lag.lag = lag_read
        wire_clock_master(env, "record-dump")
        transport(env, "locate 0")
        transport(env, "play")
        began = time.monotonic()
        while time.monotonic() - began < seconds:
            time.sleep(0.1)  # the master plays on; nothing here is timed
        transport(env, "stop")
        counts = {"lost": tracker.lost, "bunched": tracker.bunched, "reseeds": tracker.reseeds}
    return {"bpm": bpm, "arrivals": arrivals, "sends": sends, "counts": counts, "cycles": cycles,
            "dump": read_midi_dump(dump)}


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=20.0)
    parser.add_argument("--bpm", type=float, default=97.0)
    parser.add_argument("--load", type=int, default=0, help="busy loops at nice 5 meanwhile")
    parser.add_argument("--storm", type=float, nargs=2, metavar=("BURST_MS", "EVERY_MS"),
                        help="an xrun storm meanwhile, e.g. --storm 2 4")
    parser.add_argument("--no-realtime", action="store_true")
    parser.add_argument("--out", type=Path, required=True)
    args = parser.parse_args(argv)
    spinners = [subprocess.Popen([sys.executable, "-c", SPIN]) for _ in range(args.load)]
    server = JackServer(realtime=not args.no_realtime)
    try:
        try:
            server.start()
        except (RuntimeError, TimeoutError):
            server = JackServer(realtime=False).start()
        env = {**os.environ, **server.env}
        load_before = os.getloadavg()[0]
        storm = xrun_storm(*args.storm, seconds=3600.0) if args.storm else contextlib.nullcontext()
        with jack_environment(server), TemporaryDirectory() as folder, storm:
            result = record(args.seconds, env, Path(folder), args.bpm)
        log = server.log_path.read_text(errors="replace") if server.log_path.exists() else ""
        result.update(realtime=server.realtime, xruns=log.count("XRun"),
                      load=[load_before, os.getloadavg()[0]])
    finally:
        server.stop()
        server.log_path.unlink(missing_ok=True)
        for spinner in spinners:
            spinner.kill()
            spinner.wait()
    args.out.write_text(json.dumps(result))
    print(f"{len(result['arrivals'])} arrivals, {len(result['sends'])} notes, {result['counts']}, "
          f"xruns {result['xruns']}, load {result['load']}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
