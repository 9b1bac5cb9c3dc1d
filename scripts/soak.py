"""Soak benchmark for the live daemon through JACK. Not a test.

    python scripts/soak.py [--minutes 30] [--model BUNDLE] [--flood-seconds 60]
                           [--realtime] [--period FRAMES] [--json out.json]

It starts a private JACK server (``jackd -d dummy``, 48 kHz, 64-frame period;
``--no-realtime`` unless ``--realtime``, which runs JACK's process threads at
SCHED_FIFO as a real installation does and needs root or an rtprio limit),
runs the daemon in a child process (the same ``Daemon`` as
``cadenza live``, with the bundled model unless ``--model``), and:

1. floods ``Cadenza In`` with 1,000 notes a second (note-on/note-off pairs on
   all 16 channels) for ``--flood-seconds``;
2. then plays call and response for ``--minutes``: a scripted performer plays
   a phrase of 3 to 8 notes, waits for Cadenza's answer to end, and plays
   the next.

It reports answers given, send lateness percentiles (when the scheduler sent
each message minus when it was due), the first answer note's delay after the
call, the daemon's resident memory (VmRSS, and its private part RssAnon;
VmRSS includes JACK's shared segment) at start, after the flood and at the
end, with RssAnon sampled every minute in between (``memory_timeline``:
a leak shows as a steady climb, the allocator settling as a plateau), the
input messages and late notes dropped, the release echoes Cadenza sent and
how many notes only an echo ended (their first note-off was lost), and stuck
notes: notes the listener heard start and never heard end, after every
answer and after the daemon stopped (must be 0).  A table on stdout, and
JSON with ``--json``.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import random
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

from testing.jack_harness import (
    PERIOD,
    JackServer,
    MidiClient,
    jack_environment,
    sounding_notes,
)

REPO = Path(__file__).resolve().parents[1]
BPM = 120.0
PAUSE_BEATS = 1.0
ANSWER_NOTES = 8
COLLECT_EVERY = 2.0  # seconds between the child's lateness collections


def pct(values, q: float) -> float:
    return float(np.percentile(values, q)) if len(values) else float("nan")


# -- the child: the daemon, reporting what it measured ------------------------------


def child(args: argparse.Namespace) -> int:
    from cadenza.config import load_config
    from cadenza.live.daemon.daemon import SWITCH_INTERVAL, Daemon
    from cadenza.live.daemon.supervision import install_signals
    from cadenza.live.model import load_live_predictor

    logging.basicConfig(level=logging.WARNING, format="daemon: %(levelname)s %(message)s")
    overrides = {"api": "jack", "bpm": BPM, "grid": "1/8", "pause_beats": PAUSE_BEATS,
                 "max_answer_notes": ANSWER_NOTES, "model": args.model or ""}
    settings = load_config(None, {"live": overrides}).live
    daemon = Daemon(load_live_predictor(settings), settings)
    sys.setswitchinterval(SWITCH_INTERVAL)
    install_signals(daemon)
    daemon.start()
    lateness: list[float] = []
    done = threading.Event()

    def collect() -> None:
        # The scheduler keeps lateness samples until asked: take them now and then.
        while not done.wait(COLLECT_EVERY):
            lateness.extend(daemon.scheduler.take_lateness())

    collector = threading.Thread(target=collect, daemon=True)
    collector.start()
    Path(args.ready).write_text("ready")
    status = daemon.run()
    done.set()
    collector.join(5)
    lateness.extend(daemon.scheduler.take_lateness())
    stats = daemon.engine.stats()
    Path(args.out).write_text(json.dumps({
        "status": status,
        "messages_sent": daemon.scheduler.sent,
        "messages_sent_note_ons": stats["notes_out"] - daemon.scheduler.dropped,
        "lateness_ms": {f"p{q}": pct(lateness, q) * 1e3 for q in (50, 90, 99, 99.9)}
        | {"max": max(lateness, default=float("nan")) * 1e3},
        "predictions": stats["predictions"],
        "late_notes_dropped": daemon.scheduler.dropped,
        "grid_steps_skipped": stats["skipped_late"],
        "input_dropped": daemon.queue.dropped,
        "input_taken": daemon.queue.taken,
        "input_queue_peak": daemon.queue.peak,
        "input_queue_size": daemon.queue.size,
        "ledger_after_stop": len(daemon.ledger),
        "release_echo_note_offs": daemon.echoes,
    }))
    return status


# -- the driver ---------------------------------------------------------------------


def memory_mb(pid: int) -> dict[str, float]:
    out = {}
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        key = line.split(":")[0]
        if key in ("VmRSS", "RssAnon"):
            out[key] = round(int(line.split()[1]) / 1024, 1)
    return out


def wait_for_file(path: Path, process: subprocess.Popen, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while not (path.exists() and path.stat().st_size):
        if process.poll() is not None or time.monotonic() > deadline:
            raise RuntimeError(f"the daemon did not start (status {process.poll()})")
        time.sleep(0.02)  # polling for a file, in a benchmark


def jack_log_trouble(log_text: str) -> dict[str, int]:
    """Lines of jackd's log that mean MIDI may have been lost: xruns (a client
    not finished in its period) and MIDI mixdown errors."""
    lines = log_text.lower().splitlines()
    return {
        "xrun_lines": sum("xrun" in line or "was not finished" in line for line in lines),
        "midi_mixdown_errors": sum("midibuffermixdown" in line for line in lines),
        "other_errors": sum("error" in line and "xrun" not in line and "mixdown" not in line
                            for line in lines),
    }


class MemorySampler:
    """Samples the daemon's RssAnon every ``every`` seconds on a thread:
    ``samples`` is a list of (minutes since the start, MB)."""

    def __init__(self, pid: int, every: float = 60.0) -> None:
        self.pid = pid
        self.every = every
        self.samples: list[tuple[float, float]] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="memory", daemon=True)

    def _run(self) -> None:
        began = time.monotonic()
        while True:
            minutes = round((time.monotonic() - began) / 60, 1)
            self.samples.append((minutes, memory_mb(self.pid).get("RssAnon", float("nan"))))
            if self._stop.wait(self.every):
                return

    def __enter__(self) -> MemorySampler:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(5)


def flood(client: MidiClient, seconds: float, per_second: int = 1000) -> int:
    """Note-on/note-off pairs at ``per_second`` notes a second, in 10 ms slices."""
    sent = 0
    began = time.monotonic()
    per_slice = per_second // 100
    k = 0
    while time.monotonic() - began < seconds:
        for _ in range(per_slice):
            channel, note = k % 16, 36 + (k * 7) % 60
            client.send(mido.Message("note_on", channel=channel, note=note, velocity=64 + k % 64))
            client.send(mido.Message("note_off", channel=channel, note=note))
            k += 1
            sent += 1
        due = began + (k // per_slice) * 0.01
        time.sleep(max(0.0, due - time.monotonic()))
    # A performer's All Notes Off, in case JACK lost a note-off in the flood.
    for channel in range(16):
        client.send(mido.Message("control_change", channel=channel, control=123))
    return sent


def count_note_offs(messages) -> dict[str, int]:
    """Note-offs that ended a sounding note, those of them that were the
    release echo's (Cadenza sends the echo at velocity 0, its other
    note-offs at 64: the echo ended a note whose first note-off was lost),
    and those that found the note silent (mostly echoes whose first
    note-off got through)."""
    sounding: dict[tuple[int, int], int] = {}
    counts = {"releasing": 0, "releasing_echo": 0, "redundant": 0}
    for _, message in messages:
        key = (getattr(message, "channel", 0), getattr(message, "note", 0))
        if message.type == "note_on" and message.velocity > 0:
            sounding[key] = sounding.get(key, 0) + 1
        elif message.type in ("note_on", "note_off"):
            if sounding.get(key, 0) > 0:
                sounding[key] -= 1
                counts["releasing"] += 1
                counts["releasing_echo"] += message.type == "note_off" and message.velocity == 0
            else:
                counts["redundant"] += 1
    return counts


def wait_quiet(client: MidiClient, first: int, quiet: float, timeout: float) -> bool:
    """Until nothing (of the messages from ``first`` on) sounds and nothing came
    for ``quiet`` seconds (False on timeout)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        messages = client.messages()[first:]
        last = messages[-1][0] if messages else 0.0
        if time.monotonic() - last >= quiet and not sounding_notes(messages):
            return True
        time.sleep(0.05)  # polling in a benchmark; the daemon's timing is not judged here
    return False


def call_and_response(client: MidiClient, minutes: float, seed: int) -> dict:
    rng = random.Random(seed)
    beat = 60.0 / BPM
    ends = time.monotonic() + minutes * 60
    calls = answers = answer_notes = stuck = timeouts = 0
    call_end = 0.0
    delays: list[float] = []
    while time.monotonic() < ends:
        first = len(client.messages())  # this exchange's messages start here
        phrase = [rng.randint(55, 79) for _ in range(rng.randint(3, 8))]
        for note in phrase:
            client.send(mido.Message("note_on", note=note, velocity=rng.randint(60, 110)))
            time.sleep(beat / 2 * 0.8)  # the performer's rhythm: eighths, a little detached
            call_end = client.send(mido.Message("note_off", note=note))
            time.sleep(beat / 2 * 0.2)
        calls += 1
        heard = client.wait_for(
            lambda got, first=first: any(m.type == "note_on" and m.velocity for _, m in got[first:]),
            timeout=PAUSE_BEATS * beat + 3.0,
        )
        if not heard:
            timeouts += 1
            continue
        if not wait_quiet(client, first, quiet=2 * beat, timeout=ANSWER_NOTES * beat + 5.0):
            timeouts += 1
        exchange = client.messages()[first:]
        ons = [(t, m) for t, m in exchange if m.type == "note_on" and m.velocity]
        answers += 1
        answer_notes += len(ons)
        delays.append(ons[0][0] - call_end - PAUSE_BEATS * beat)
        stuck += len(sounding_notes(exchange))
    return {"calls": calls, "answers": answers, "answer_notes": answer_notes,
            "no_answer_or_unfinished": timeouts, "stuck_after_answers": stuck,
            "answer_delay_beyond_pause_ms": {f"p{q}": pct(delays, q) * 1e3 for q in (50, 99)}}


def run(args: argparse.Namespace) -> dict:
    work = Path(tempfile.mkdtemp(prefix="cadenza-soak-"))
    ready, out = work / "ready", work / "out.json"
    command = [sys.executable, str(Path(__file__).resolve()), "--child",
               "--ready", str(ready), "--out", str(out)]
    if args.model:
        command += ["--model", args.model]
    began = time.monotonic()
    with JackServer(realtime=args.realtime, period=args.period) as server, jack_environment(server):
        process = subprocess.Popen(command, cwd=REPO, env=os.environ.copy())
        try:
            wait_for_file(ready, process, timeout=60)
            with MidiClient(timeout=20) as client:
                time.sleep(1.0)  # settle: the first memory figure after start-up
                memory = {"start": memory_mb(process.pid)}
                flood_started = time.monotonic()
                flooded = flood(client, args.flood_seconds) if args.flood_seconds > 0 else 0
                flood_took = time.monotonic() - flood_started
                wait_quiet(client, 0, quiet=1.0, timeout=30)
                memory["after_flood"] = memory_mb(process.pid)
                with MemorySampler(process.pid) as timeline:
                    dialogue = call_and_response(client, args.minutes, args.seed)
                memory["end"] = memory_mb(process.pid)
                process.send_signal(signal.SIGTERM)
                status = process.wait(30)
                # Over the whole run: every note the listener heard start, it heard end.
                released = client.wait_for(lambda got: not sounding_notes(got), timeout=5)
                stuck_at_end = len(sounding_notes(client.messages()))
                heard_note_ons = len([m for _, m in client.messages("note_on") if m.velocity])
                note_offs = count_note_offs(client.messages())
            jack_trouble = jack_log_trouble(server.log_tail(lines=100000))
        finally:
            if process.poll() is None:
                process.kill()
                process.wait(5)
    report = json.loads(out.read_text()) if out.exists() else {}
    return {
        "ran_minutes": round((time.monotonic() - began) / 60, 2),
        "model": args.model or "bundled (models/default)",
        "bpm": BPM, "jack": ("realtime" if args.realtime else "no-realtime") + f", -p {args.period}",
        "exit_status": status,
        "flood": {"notes": flooded, "seconds": round(flood_took, 1)},
        **dialogue,
        "stuck_at_end": stuck_at_end,
        "listener_heard_note_ons": heard_note_ons,
        "listener_note_offs": note_offs,
        "all_released_within_5_s": released,
        "memory_mb": memory,
        "memory_timeline": timeline.samples,
        "jack_log": jack_trouble,
        **report,
    }


def table(result: dict) -> str:
    lateness = result.get("lateness_ms", {})
    memory = result["memory_mb"]
    rows = [
        ("ran", f"{result['ran_minutes']} min ({result['model']}, {result['bpm']:g} BPM, "
                f"JACK {result['jack']})"),
        ("flood", f"{result['flood']['notes']} notes in {result['flood']['seconds']} s"),
        ("calls / answers", f"{result['calls']} / {result['answers']} "
                            f"({result['answer_notes']} answer notes)"),
        ("no answer or unfinished", str(result["no_answer_or_unfinished"])),
        ("send lateness ms", "  ".join(f"{k} {v:.3f}" for k, v in lateness.items()) or "n/a"),
        ("answer delay beyond pause ms", "p50 {p50:.1f}  p99 {p99:.1f}".format(
            **result["answer_delay_beyond_pause_ms"])),
        ("memory MB (VmRSS / RssAnon)", "  ".join(
            f"{when} {m.get('VmRSS')}/{m.get('RssAnon')}" for when, m in memory.items())),
        ("RssAnon MB each minute", " ".join(f"{mb:g}" for _, mb in result["memory_timeline"])),
        ("input taken / dropped / queue peak",
         f"{result.get('input_taken')} / {result.get('input_dropped')} / "
         f"{result.get('input_queue_peak')} of {result.get('input_queue_size')}"),
        ("late notes dropped / steps skipped",
         f"{result.get('late_notes_dropped')} / {result.get('grid_steps_skipped')}"),
        ("answer notes sent / heard", f"{result.get('messages_sent_note_ons')} / "
                                      f"{result['listener_heard_note_ons']}"),
        ("note-offs heard: releasing (by the echo) / redundant; echoes sent",
         "{releasing} ({releasing_echo}) / {redundant}; ".format(
             **{"releasing_echo": "?"} | result["listener_note_offs"])
         + str(result.get("release_echo_note_offs"))),
        ("stuck notes (unfinished answers / whole run at end)",
         f"{result['stuck_after_answers']} / {result['stuck_at_end']}"),
        ("jackd log: xrun lines / MIDI mixdown errors / other errors",
         "{xrun_lines} / {midi_mixdown_errors} / {other_errors}".format(**result["jack_log"])),
        ("exit status", str(result["exit_status"])),
    ]
    width = max(len(name) for name, _ in rows)
    return "\n".join(f"{name:<{width}}  {value}" for name, value in rows)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--minutes", type=float, default=30.0)
    parser.add_argument("--flood-seconds", type=float, default=60.0)
    parser.add_argument("--model", default="", help="a bundle (default: the bundled model)")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--period", type=int, default=PERIOD,
                        help=f"JACK period in frames at 48 kHz (default {PERIOD})")
    parser.add_argument("--realtime", action="store_true",
                        help="run jackd with SCHED_FIFO (root or an rtprio limit)")
    parser.add_argument("--json", type=Path, help="also write the figures here")
    parser.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--ready", help=argparse.SUPPRESS)
    parser.add_argument("--out", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child:
        return child(args)
    result = run(args)
    sys.stdout.write(table(result) + "\n")
    if args.json:
        args.json.write_text(json.dumps(result, indent=2) + "\n")
    stuck = result["stuck_after_answers"] + result["stuck_at_end"]
    return 0 if stuck == 0 and result["exit_status"] == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
