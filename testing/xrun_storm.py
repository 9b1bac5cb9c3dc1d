"""A noisy machine on demand: bursts of CPU taken from everything, JACK included.

Some machines (shared virtual ones, CI's among them) now and then take a
core away for milliseconds at a time, whatever priority its threads run
at: a real-time JACK server there logs xruns by the thousand a minute,
misses cycles, and its clients skip and bunch MIDI clock ticks.  Busy loops
at an ordinary priority cannot make that happen (JACK's real-time threads
preempt them).  ``xrun_storm`` does: one process per CPU, pinned to it, at
the highest real-time priority, busy for ``burst_ms`` (0.2x to 1.8x, seeded)
then asleep for about ``every_ms``, so the tests and benchmarks of the
clock follower can run on the noisy machine at will, not only when the
machine happens to be one.  The kernel's real-time throttling (5 % of
each second left to the rest) still holds, and every process ends by
itself after ``seconds`` even if its parent dies.

Needs root or CAP_SYS_NICE (``PermissionError`` otherwise); Linux only.
"""

from __future__ import annotations

import contextlib
import os
import subprocess
import sys
from collections.abc import Iterator

_STEALER = """
import os, random, sys, time
cpu, burst, every, seconds = int(sys.argv[1]), float(sys.argv[2]), float(sys.argv[3]), float(sys.argv[4])
os.sched_setaffinity(0, {cpu})
try:
    os.sched_setscheduler(0, os.SCHED_FIFO, os.sched_param(os.sched_get_priority_max(os.SCHED_FIFO)))
except PermissionError:
    sys.exit(3)
print("ready", flush=True)
rng = random.Random(cpu)
end = time.monotonic() + seconds
while time.monotonic() < end:
    busy_until = time.monotonic() + burst * rng.uniform(0.2, 1.8) / 1e3
    while time.monotonic() < busy_until:
        pass
    time.sleep(every * rng.uniform(0.5, 1.5) / 1e3)
"""


@contextlib.contextmanager
def xrun_storm(burst_ms: float = 2.0, every_ms: float = 4.0,
               seconds: float = 120.0) -> Iterator[list[int]]:
    """Steal CPU in bursts on every core for the block (at most ``seconds``); yields their pids."""
    if not hasattr(os, "sched_setaffinity"):
        raise OSError("an xrun storm needs Linux's per-CPU real-time scheduling")
    cpus = sorted(os.sched_getaffinity(0))
    stealers: list[subprocess.Popen] = []
    try:
        for cpu in cpus:
            stealers.append(subprocess.Popen(
                [sys.executable, "-c", _STEALER, str(cpu), str(burst_ms), str(every_ms),
                 str(seconds)], stdout=subprocess.PIPE, text=True))
        for stealer in stealers:
            if stealer.stdout.readline().strip() != "ready":
                stealer.wait(5)
                raise PermissionError(
                    "an xrun storm needs real-time scheduling (root or CAP_SYS_NICE); "
                    f"its process ended with {stealer.returncode}")
        yield [stealer.pid for stealer in stealers]
    finally:
        for stealer in stealers:
            stealer.terminate()
        for stealer in stealers:
            try:
                stealer.wait(5)
            except subprocess.TimeoutExpired:
                stealer.kill()
                stealer.wait()
            stealer.stdout.close()
