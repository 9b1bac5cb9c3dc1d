"""Benchmark the live daemon through JACK (48 kHz, 64-frame period). Not a test.

    python scripts/bench_daemon.py --model BUNDLE [--bpm 60 120 240] [--phrases 6]

It starts a private JACK server (``jackd --no-realtime -d dummy``) and measures:

1. start-up: ``python -X importtime -m cadenza live`` until ``Cadenza Out``
   appears in JACK, and which heavy libraries it imported (none, we hope);
   then, with nothing played, its CPU time over ``--idle`` seconds and its
   resident memory;
2. timing, per tempo: a daemon in a child process (the same ``Daemon`` as
   ``cadenza live``, which also hands back what its scheduler recorded) and a
   client here that plays phrases and listens.  Send lateness is when the
   scheduler sent each message minus when it was due; onset deviation is
   when the client received each answer note minus its due time (both on
   the one monotonic clock of this machine); answer delay is the first
   answer note's arrival minus the end of the call minus the musical wait
   (the pause, rounded up to the grid);
3. the same with Cadenza following a MIDI clock the client sends (``--midi-clock``).

Figures are printed as a table and, with ``--json``, written to a file.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import resource
import signal
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import _repo  # noqa: F401  (puts testing/ on the path)
import mido
import numpy as np

from cadenza.config import RUNNERS
from testing.jack_harness import (
    JackServer,
    MidiClient,
    jack_environment,
    sounding_notes,
)

REPO = Path(__file__).resolve().parents[1]
HEAVY = ("tensorflow", "keras", "music21", "matplotlib")
PHRASE = [60, 62, 64, 65, 67, 65, 64, 62]
PAUSE_BEATS = 1.0


def pct(values, q: float) -> float:
    return float(np.percentile(values, q)) if len(values) else float("nan")


# -- the child: a daemon that reports what its scheduler saw --------------------


def child(args: argparse.Namespace) -> int:
    """Run ``Daemon`` until SIGTERM, then write its timing records as JSON."""
    import logging

    from cadenza.config import load_config
    from cadenza.live.daemon.daemon import SWITCH_INTERVAL, Daemon
    from cadenza.live.daemon.supervision import install_signals
    from cadenza.runtime import load_predictor

    logging.basicConfig(level=logging.WARNING)
    overrides = {"api": "jack", "bpm": args.bpm, "pause_beats": PAUSE_BEATS,
                 "clock": args.clock, "grid": "1/8", "max_answer_notes": 64}
    settings = load_config(None, {"live": overrides}).live
    predictor = load_predictor(args.model, runner=args.runner)
    daemon = Daemon(predictor, settings)
    sys.setswitchinterval(SWITCH_INTERVAL)
    install_signals(daemon)
    daemon.start()
    Path(args.ready).write_text(json.dumps({"start_time": daemon.start_time}))
    status = daemon.run()
    stats = daemon.engine.stats()
    records = [
        {"due": due, "sent": sent, "type": message.type,
         "note": getattr(message, "note", None), "velocity": getattr(message, "velocity", None)}
        for due, sent, message in daemon.scheduler.recent
    ]
    Path(args.out).write_text(json.dumps({
        "status": status, "start_time": daemon.start_time, "records": records,
        "latencies": stats["latencies"], "dropped": daemon.scheduler.dropped,
        "skipped": stats["skipped_late"],
    }))
    return status


# -- the driver ---------------------------------------------------------------------


def wait_for_file(path: Path, process: subprocess.Popen, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while not (path.exists() and path.stat().st_size):
        if process.poll() is not None or time.monotonic() > deadline:
            raise RuntimeError(f"the daemon did not start (status {process.poll()})")
        time.sleep(0.01)


def cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def memory_mb(pid: int) -> dict[str, float]:
    """VmRSS and its parts: RssShmem is JACK's shared segment, mapped by every client."""
    out = {}
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        key = line.split(":")[0]
        if key in ("VmRSS", "RssAnon", "RssFile", "RssShmem"):
            out[key] = int(line.split()[1]) / 1024
    return out


def idle_cpu(pid: int, seconds: float) -> tuple[float, float]:
    """(CPU seconds, wall seconds) the process used while left alone."""
    cpu_before, wall_before = cpu_seconds(pid), time.monotonic()
    time.sleep(seconds)
    return cpu_seconds(pid) - cpu_before, time.monotonic() - wall_before


def bench_bare_jack(idle: float) -> dict:
    """The same measure for a bare pair of python-rtmidi JACK ports: JACK runs
    every client's process callback each period, whatever the client does."""
    code = ("import rtmidi, time\n"
            "a = rtmidi.MidiIn(rtmidi.API_UNIX_JACK, 'bare'); a.open_virtual_port('in')\n"
            "b = rtmidi.MidiOut(rtmidi.API_UNIX_JACK, 'bare'); b.open_virtual_port('out')\n"
            "time.sleep(3600)\n")
    process = subprocess.Popen([sys.executable, "-c", code], stderr=subprocess.DEVNULL)
    try:
        time.sleep(1.5)
        cpu, wall = idle_cpu(process.pid, idle)
        memory = memory_mb(process.pid)
    finally:
        process.kill()
        process.wait(5)
    return {"idle_cpu_s": cpu, "idle_seconds": wall, "idle_cpu_percent": 100 * cpu / wall,
            "memory_mb": memory}


def bench_startup(model: str, idle: float) -> dict:
    """Start-up to ports open, heavy imports, idle CPU and memory of ``cadenza live``."""
    import rtmidi

    command = [sys.executable, "-X", "importtime", "-m", "cadenza", "live",
               "--model", model, "--api", "jack"]
    probe = rtmidi.MidiIn(rtmidi.API_UNIX_JACK, "bench-probe")
    with tempfile.TemporaryDirectory() as folder:
        log_path = Path(folder) / "imports.log"
        with log_path.open("w") as log:
            began = time.monotonic()
            process = subprocess.Popen(command, cwd=folder, stdout=subprocess.DEVNULL, stderr=log)
        try:
            while not any("Cadenza Out" in name for name in probe.get_ports()):
                if process.poll() is not None or time.monotonic() - began > 30:
                    raise RuntimeError(f"cadenza live did not open its ports:\n{log_path.read_text()[-2000:]}")
                time.sleep(0.002)
            startup = time.monotonic() - began
            time.sleep(1.0)  # let start-up work finish before measuring idle
            cpu, wall = idle_cpu(process.pid, idle)
            memory = memory_mb(process.pid)
        finally:
            process.send_signal(signal.SIGTERM)
            process.wait(15)
        imported = log_path.read_text()
    probe.delete()
    modules = {line.rsplit("|", 1)[-1].strip().split(".")[0]
               for line in imported.splitlines() if line.startswith("import time:")}
    heavy = sorted(modules & set(HEAVY))
    return {
        "startup_s": startup, "heavy_imports": heavy, "idle_cpu_s": cpu,
        "idle_seconds": wall, "idle_cpu_percent": 100 * cpu / wall, "memory_mb": memory,
    }


def play_phrase(client: MidiClient, step: float) -> float:
    """The phrase in eighth notes at the tempo; returns the time of the last release."""
    end = 0.0
    began = time.monotonic() + 0.01
    for k, note in enumerate(PHRASE):
        on = began + k * step
        time.sleep(max(0.0, on - time.monotonic()))
        client.send(mido.Message("note_on", note=note, velocity=80))
        time.sleep(max(0.0, on + 0.6 * step - time.monotonic()))
        end = client.send(mido.Message("note_off", note=note))
    return end


def wait_for_answer(client: MidiClient, end: float, step: float) -> bool:
    """Until an answer has come and gone (silence for four grid steps after it);
    False if none came."""
    deadline = time.monotonic() + 40 * step + 5
    while time.monotonic() < deadline:
        got = client.messages()
        answered = any(t > end and m.type == "note_on" for t, m in got)
        if answered and time.monotonic() - got[-1][0] > 4 * step:
            return True
        time.sleep(0.01)
    return False


class Master:
    """A MIDI clock master in a thread: Start, then 24 ticks per beat."""

    def __init__(self, client: MidiClient, bpm: float) -> None:
        self.client, self.period = client, 60.0 / (bpm * 24)
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        from cadenza.live.daemon.scheduler import wait_until

        self.client.send(mido.Message("start"))
        began = time.monotonic() + 0.01
        k = 0
        while not self.stop.is_set():
            due = began + k * self.period
            self.stop.wait(max(0.0, due - time.monotonic() - 0.001))
            wait_until(due)
            self.client.send(mido.Message("clock"))
            k += 1

    def __enter__(self) -> Master:
        self.thread.start()
        time.sleep(48 * self.period)  # two beats for the follower to lock on
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop.set()
        self.thread.join(2)


def bench_timing(model: str, runner: str, bpm: float, phrases: int, clock: str) -> dict:
    """Play ``phrases`` calls at ``bpm``; collect the daemon's and the client's view."""
    step = 60.0 / bpm / 2
    with tempfile.TemporaryDirectory() as folder:
        ready, out = Path(folder) / "ready.json", Path(folder) / "out.json"
        command = [sys.executable, __file__, "--child", "--model", model, "--runner", runner,
                   "--bpm", str(bpm), "--clock", clock, "--ready", str(ready), "--out", str(out)]
        process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        try:
            wait_for_file(ready, process, 30)
            start_time = json.loads(ready.read_text())["start_time"]
            ends = []
            with MidiClient(timeout=10) as client:
                master = Master(client, bpm) if clock == "midi" else None
                if master is not None:
                    master.__enter__()
                try:
                    unanswered = 0
                    for _ in range(phrases):
                        ends.append(play_phrase(client, step))
                        unanswered += not wait_for_answer(client, ends[-1], step)
                finally:
                    if master is not None:
                        master.__exit__()
                received = client.messages("note_on")
                stuck = len(sounding_notes(client.messages()))
        finally:
            process.send_signal(signal.SIGTERM)
            process.wait(20)
        result = json.loads(out.read_text())
    sent = [r for r in result["records"] if r["type"] == "note_on" and r["velocity"]]
    lateness = [r["sent"] - r["due"] for r in result["records"]]
    # Pair each note heard with the latest note-on of that pitch sent before it
    # arrived (a loaded JACK server may lose one: pairing by order would slip).
    arrivals = [t for t, m in received if m.velocity]
    pool = list(sent)
    deviation, unmatched = [], 0
    for at, message in received:
        if not message.velocity:
            continue
        candidates = [r for r in pool if r["note"] == message.note and r["sent"] <= at]
        if not candidates:
            unmatched += 1
            continue
        match = max(candidates, key=lambda r: r["sent"])
        pool.remove(match)
        deviation.append(at - match["due"])
    delays = []
    for end in ends:
        firsts = [r["due"] for r in sent if r["due"] > end]
        heard_first = [a for a in arrivals if a > end]
        if not firsts or not heard_first:
            continue
        if clock == "internal":
            beat = (end - start_time) / (2 * step) + PAUSE_BEATS
            expected = start_time + math.ceil(beat * 2 - 1e-9) * step
        else:
            expected = firsts[0]  # the master's grid: take the daemon's due time
        delays.append(heard_first[0] - expected)
    return {
        "bpm": bpm, "clock": clock, "answer_notes": len(sent), "messages": len(lateness),
        "unanswered_calls": unanswered, "notes_left_sounding": stuck,
        "notes_not_heard": len(pool), "notes_heard_unmatched": unmatched,
        "late_dropped": result["dropped"], "late_skipped": result["skipped"],
        "lateness_p50_ms": 1e3 * pct(lateness, 50), "lateness_p99_ms": 1e3 * pct(lateness, 99),
        "lateness_max_ms": 1e3 * max(lateness, default=float("nan")),
        "onset_p50_ms": 1e3 * pct(deviation, 50), "onset_p99_ms": 1e3 * pct(deviation, 99),
        "onset_max_ms": 1e3 * max(deviation, default=float("nan")),
        "answer_delay_p50_ms": 1e3 * pct(delays, 50), "answer_delay_max_ms":
            1e3 * max(delays, default=float("nan")),
        "prediction_p50_ms": 1e3 * pct(result["latencies"], 50),
        "prediction_p99_ms": 1e3 * pct(result["latencies"], 99),
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--model", required=True, help="model bundle folder")
    parser.add_argument("--runner", default="stream", choices=RUNNERS)
    parser.add_argument("--bpm", type=float, nargs="+", default=[60.0, 120.0, 240.0])
    parser.add_argument("--phrases", type=int, default=6, help="calls played per tempo")
    parser.add_argument("--idle", type=float, default=10.0, help="seconds of idle CPU measurement")
    parser.add_argument("--midi-clock", action="store_true", help="also follow a MIDI clock")
    parser.add_argument("--json", type=Path, help="write the figures here too")
    parser.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--clock", default="internal", help=argparse.SUPPRESS)
    parser.add_argument("--ready", help=argparse.SUPPRESS)
    parser.add_argument("--out", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child:
        args.bpm = args.bpm[0]
        return child(args)

    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    results: dict = {"machine": {"cpus": os.cpu_count(), "load_1min": os.getloadavg()[0]}}
    with JackServer() as server, jack_environment(server):
        results["startup"] = bench_startup(args.model, args.idle)
        results["bare_jack"] = bench_bare_jack(args.idle)
        runs = [(bpm, "internal") for bpm in args.bpm]
        if args.midi_clock:
            runs.append((120.0, "midi"))
        results["timing"] = [bench_timing(args.model, args.runner, bpm, args.phrases, clock)
                             for bpm, clock in runs]
    results["bench_rusage_max_rss_mb"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024

    s = results["startup"]
    print(f"start-up to ports open: {s['startup_s']:.2f} s   heavy imports: "
          f"{', '.join(s['heavy_imports']) or 'none'}")
    b = results["bare_jack"]
    m = s["memory_mb"]
    print(f"idle CPU: {s['idle_cpu_s']:.3f} s over {s['idle_seconds']:.1f} s "
          f"({s['idle_cpu_percent']:.2f} %); a bare pair of JACK ports: {b['idle_cpu_s']:.3f} s "
          f"({b['idle_cpu_percent']:.2f} %)")
    print(f"memory: RSS {m['VmRSS']:.0f} MB = private {m['RssAnon'] + m['RssFile']:.0f} MB "
          f"(anon {m['RssAnon']:.0f}, file {m['RssFile']:.0f}) + JACK shared segment "
          f"{m['RssShmem']:.0f} MB; a bare pair of JACK ports: RSS {b['memory_mb']['VmRSS']:.0f} MB")
    print(f"{'tempo':>10} {'notes':>6} {'late p50/p99/max ms':>22} {'onset p50/p99/max ms':>22} "
          f"{'answer delay p50/max ms':>24} {'predict p50/p99 ms':>19} {'dropped':>8} "
          f"{'stuck':>6} {'lost':>5}")
    for r in results["timing"]:
        print(f"{r['bpm']:>6.0f} {r['clock'][:3]:>3} {r['answer_notes']:>6} "
              f"{r['lateness_p50_ms']:>7.3f}/{r['lateness_p99_ms']:.3f}/{r['lateness_max_ms']:.2f} "
              f"{r['onset_p50_ms']:>9.3f}/{r['onset_p99_ms']:.3f}/{r['onset_max_ms']:.2f} "
              f"{r['answer_delay_p50_ms']:>13.2f}/{r['answer_delay_max_ms']:.2f} "
              f"{r['prediction_p50_ms']:>10.3f}/{r['prediction_p99_ms']:.3f} "
              f"{r['late_dropped'] + r['late_skipped']:>8} {r['notes_left_sounding']:>6} "
              f"{r['notes_not_heard']:>5}")
    print(f"(load average at start: {results['machine']['load_1min']:.2f} on "
          f"{results['machine']['cpus']} CPUs)")
    if args.json:
        args.json.write_text(json.dumps(results, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
