"""Cadenza following jack_midi_clock through JACK: answer onsets against the master's ticks.

A private JACK server (real-time where allowed; dummy driver, 48 kHz, 64
frames), Cadenza in ``continue`` mode on the 1/8 grid following
``jack_midi_clock``, and one ``jack_transport_dump`` (``testing/``, built
here) hearing both, each event on JACK transport's frames: the master's own
time line, which a stall does not move (``jack_midi_dump -a`` counts only
the cycles its client ran, and under xruns its clock falls behind).  Each
note is compared with the master's own tick for its eighth (ticks numbered
by time after Start or Continue: after an xrun, jack_midi_clock itself
skips the ticks of the cycle it missed; dump-gaps counts them); "moved":
notes the scheduler sent late or a JACK stall moved on their way, read
from the dump's cycle times (``stall_moved``).

    python scripts/bench_clock_jack.py                 # every scenario
    python scripts/bench_clock_jack.py --scenario drifting --seconds 30
    python scripts/bench_clock_jack.py --storm 2 4      # on a noisy machine (xrun storm)

Scenarios: steady (-b 97 -B), drifting (-J 5: every interval jittered by
up to 5 %, accumulating), ramp (jack_transport as timebase master: a bar
at 120, down to 80 BPM over four bars, a bar at 80, back up over four, in
steps of a sixteenth), spp
(locate to bar 5 while stopped, then play: Song Position Pointer, then
Continue).
"""

from __future__ import annotations

import argparse
import contextlib
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
    RATE,
    JackServer,
    background_process,
    jack_environment,
    note_on_frames,
    running_daemon,
    transport,
    wire_clock_master,
)
from testing.transport_dump import DumpEvent, build_transport_dump, read_transport_dump, stall_moved
from testing.xrun_storm import xrun_storm

VOCAB = ["C4", "D4", "E4", "F4", "G4", "A4", "B4", "C5"]



INTERVALS = 8  # recent tick intervals whose median is the master's tick interval


def number_ticks(events) -> tuple[dict[int, int], list[int]]:
    """The master's ticks by number (24 a beat from Start, 6 a sixteenth
    from a Song Position Pointer): ``{tick number: frame}``, and the frames
    of the ticks that came after the master skipped some.

    Counted by time, as a slave must: after an xrun jack_midi_clock skips
    the ticks that fell in the missed cycle, so a tick that comes n
    intervals after the last is n ticks on.  The interval is the median of
    the last few since the Start or Continue: a single one is no measure,
    since JACK bunches ticks into one period after a stall, and a
    near-zero interval would make every later gap read as hundreds of
    ticks.  Ticks before the first Start, or sent while stopped (the
    master's pre-roll before Continue), carry no position and are left out.
    """
    ticks: dict[int, int] = {}
    skipped_at: list[int] = []
    position = 0  # the SPP's tick number, for the next Continue
    running = False
    pending: int | None = None  # the number the first tick after Start/Continue carries
    last: tuple[int, int] | None = None  # (number, frame) of the latest tick
    intervals: list[float] = []
    for frame, data in events:
        if data[:1] == [0xF2] and len(data) == 3:
            position = (data[1] | data[2] << 7) * 6
        elif data in ([0xFA], [0xFB]):
            pending = 0 if data == [0xFA] else position
            running, last, intervals = True, None, []
        elif data == [0xFC]:
            running = False
        elif data == [0xF8] and running:
            if pending is not None:
                number, pending = pending, None
            else:
                assert last is not None
                gap = frame - last[1]
                if intervals:
                    interval = sorted(intervals)[len(intervals) // 2]
                    steps = max(1, round(gap / interval))
                else:
                    steps = 1
                number = last[0] + steps
                if steps > 1:
                    skipped_at.append(frame)
                intervals = [*intervals, gap / steps][-INTERVALS:]
            ticks[number] = frame
            last = (number, frame)
    return ticks, skipped_at


def moved_notes(events: list[DumpEvent], sends) -> list[bool]:
    """For each note-on the dump heard, whether the machine moved it (``stall_moved``)."""
    heard = [e for e in events if e.data == [0xF8] and e.rolling]
    return [stall_moved(e, sends, heard) for e in events
            if len(e.data) > 2 and e.data[0] & 0xF0 == 0x90 and e.data[2] > 0]


def judge(events, bpm: float, moved: list[bool] | None = None) -> dict[str, float]:
    """|note onset - the master's tick for its eighth| in ms, after two beats.

    ``moved`` (one per note-on, in order): notes the machine itself moved
    (``moved_notes``); the figures of the others are the follower's own
    error ("own"), and the notes after a beat in which the master skipped a
    tick (an xrun: 'dump-gaps') are counted apart ("gap-hit").
    """
    ticks, gap_ends = number_ticks(events)
    gaps = len(gap_ends)
    first = min(ticks)
    interval = RATE * 60 / (bpm * 24)
    notes = note_on_frames(events)
    moved = moved if moved is not None and len(moved) == len(notes) else [False] * len(notes)
    errors, own, gap_hit = [], [], 0
    for frame, was_moved in zip(notes, moved, strict=True):
        nearest = min((k for k in ticks if k % 12 == 0 and k >= first + 48),
                      key=lambda k: abs(ticks[k] - frame), default=None)
        if nearest is not None and abs(ticks[nearest] - frame) < RATE * 60 / bpm / 4:
            error = abs(frame - ticks[nearest]) / RATE * 1e3
            errors.append(error)
            hit = any(0 <= frame - end < 24 * interval for end in gap_ends)
            gap_hit += hit
            if not was_moved and not hit:
                own.append(error)
    result = {"notes": len(errors), "dump_gaps": gaps, "moved": sum(moved), "gap_hit": gap_hit}
    for name, values in (("", errors), ("own_", own)):
        values.sort()
        pick = lambda q, v=values: v[min(len(v) - 1, int(q * len(v)))] if v else float("nan")  # noqa: E731
        result.update({f"{name}p50": pick(0.5), f"{name}p99": pick(0.99),
                       f"{name}max": values[-1] if values else float("nan")})
    result["own_notes"] = len(own)
    return result


def scenario(name: str, seconds: float, env: dict[str, str], folder: Path,
             dump_binary: Path) -> dict[str, float]:
    dump = folder / f"{name}.txt"
    bpm = 120.0 if name in ("ramp", "spp") else 97.0
    master = ["jack_midi_clock", "-b", str(bpm)]
    if name in ("steady", "drifting"):
        master.append("-B")
    if name == "drifting":
        master += ["-J", "5"]
    if name == "spp":
        master += ["-d", "1"]
    live = LiveConfig(api="jack", clock="midi", mode="continue", grid="1/8", bpm=100.0, channel=1)
    timebase = None
    with background_process([str(dump_binary), "bench-dump"], env, dump), \
         background_process(master, env, folder / f"{name}-mclk.log"), \
         running_daemon(FakePredictor(VOCAB), live) as daemon:
        if name in ("ramp", "spp"):
            timebase = subprocess.Popen(["jack_transport"], stdin=subprocess.PIPE, text=True, env=env,
                                        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            timebase.stdin.write(f"master\ntempo {bpm}\n")
            timebase.stdin.flush()
        wire_clock_master(env, "bench-dump")
        transport(env, "locate 0")
        if name == "spp":
            transport(env, "play")
            time.sleep(4.0)  # a few bars from the top (the master's own pace)
            transport(env, "stop")
            time.sleep(0.5)
            transport(env, f"locate {16 * RATE // 2}")  # beat 16 at 120 BPM (bar 5)
            time.sleep(0.5)
        transport(env, "play")
        began = time.monotonic()
        if name == "ramp":
            # Four bars at 120, 120 -> 80 over four bars, four at 80, back over four.
            plan = [120.0] * 16 + [120.0 - 40.0 * i / 64 for i in range(64)] + [80.0] * 16 \
                + [80.0 + 40.0 * i / 64 for i in range(65)]
            for value in plan:
                timebase.stdin.write(f"tempo {value:.3f}\n")
                timebase.stdin.flush()
                time.sleep(60.0 / value / 4)  # a sixteenth at that tempo
        while time.monotonic() - began < seconds:
            time.sleep(0.1)  # the master plays on; nothing here is timed
        transport(env, "stop")
        tracker = daemon.engine.clock.tracker
        counts = {"lost": tracker.lost, "bunched": tracker.bunched, "reseeds": tracker.reseeds}
        sends = [(due, sent) for due, sent, m in daemon.scheduler.recent
                 if m.type == "note_on" and m.velocity > 0]
        if timebase is not None:
            timebase.stdin.write("quit\n")
            timebase.stdin.flush()
            timebase.wait(5)
    events = read_transport_dump(dump)
    result = judge([(e.frame, e.data) for e in events], bpm if name != "ramp" else 100.0,
                   moved_notes(events, sends))
    result.update(counts)
    return result


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--scenario", action="append",
                        choices=["steady", "drifting", "ramp", "spp"])
    parser.add_argument("--seconds", type=float, default=20.0)
    parser.add_argument("--no-realtime", action="store_true")
    parser.add_argument("--storm", type=float, nargs=2, metavar=("BURST_MS", "EVERY_MS"),
                        help="run in an xrun storm (testing/xrun_storm.py), e.g. --storm 2 4")
    parser.add_argument("--keep", type=Path, metavar="DIR",
                        help="keep each scenario's jack_transport_dump output (NAME.txt) in DIR")
    args = parser.parse_args(argv)
    server = JackServer(realtime=not args.no_realtime)
    try:
        server.start()
    except (RuntimeError, TimeoutError):
        server = JackServer(realtime=False).start()
    env = {**os.environ, **server.env}
    print(f"JACK {'real-time' if server.realtime else 'not real-time'}; load average "
          f"{os.getloadavg()[0]:.1f} on {os.cpu_count()} CPUs")
    print(f"{'scenario':<9} {'notes':>5} {'p50 ms':>7} {'p99 ms':>7} {'max ms':>7}  lost bunched "
          f"reseeds dump-gaps gap-hit moved | own: notes p50 p99 max")
    try:
        storm = xrun_storm(*args.storm, seconds=3600.0) if args.storm else contextlib.nullcontext()
        with jack_environment(server), TemporaryDirectory() as scratch, storm:
            folder = args.keep or scratch
            Path(folder).mkdir(parents=True, exist_ok=True)
            dump_binary = build_transport_dump(Path(scratch))
            for name in args.scenario or ["steady", "drifting", "ramp", "spp"]:
                r = scenario(name, args.seconds, env, Path(folder), dump_binary)
                print(f"{name:<9} {r['notes']:>5} {r['p50']:7.2f} {r['p99']:7.2f} {r['max']:7.2f}"
                      f"  {r['lost']:>4} {r['bunched']:>7} {r['reseeds']:>7} {r['dump_gaps']:>9}"
                      f" {r['gap_hit']:>7} {r['moved']:>5} | {r['own_notes']:>9} {r['own_p50']:5.2f}"
                      f" {r['own_p99']:5.2f} {r['own_max']:5.2f}")
                sys.stdout.flush()
        log = server.log_path.read_text(errors="replace") if server.log_path.exists() else ""
        print(f"jackd logged {log.count('XRun')} xruns"
              + (f" (storm: {args.storm[0]:g} ms bursts every {args.storm[1]:g} ms on each CPU)"
                 if args.storm else ""))
    finally:
        server.stop()
        server.log_path.unlink(missing_ok=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
