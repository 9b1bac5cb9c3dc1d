"""The clock tests' ears: ``jack_transport_dump`` (``jack_transport_dump.c``),
built on demand, and what it heard, on JACK transport's time line."""

from __future__ import annotations

import bisect
import shutil
import subprocess
from pathlib import Path
from typing import NamedTuple

from testing.jack_harness import PERIOD_SECONDS, RATE

TRANSPORT_DUMP_SOURCE = Path(__file__).with_name("jack_transport_dump.c")


def build_transport_dump(directory: Path) -> Path:
    """``jack_transport_dump`` (``testing/jack_transport_dump.c``) compiled into ``directory``.

    RuntimeError, naming what is missing, without a C compiler or libjack's
    headers (Debian: gcc, libjack-jackd2-dev).
    """
    compiler = shutil.which("cc") or shutil.which("gcc")
    if compiler is None:
        raise RuntimeError("no C compiler (cc) to build jack_transport_dump (apt-get install gcc)")
    binary = Path(directory) / "jack_transport_dump"
    result = subprocess.run([compiler, "-O2", "-std=c11", "-Wall", "-Wextra", "-Werror",
                             str(TRANSPORT_DUMP_SOURCE), "-ljack", "-o", str(binary)],
                            capture_output=True, text=True, timeout=120, check=False)
    if result.returncode != 0:
        raise RuntimeError(f"cannot build {TRANSPORT_DUMP_SOURCE.name} (libjack's headers: "
                           f"apt-get install libjack-jackd2-dev): {result.stderr.strip()[-400:]}")
    return binary


class DumpEvent(NamedTuple):
    """One event jack_transport_dump heard."""

    frame: int  # on JACK transport's time line
    offset: int  # frames into the cycle that delivered it
    data: list[int]
    rolling: bool  # the transport rolled
    cycle_time: float  # when the cycle that delivered it began (time.monotonic()'s clock)

    @property
    def lag(self) -> float:
        """How far JACK's transport was behind the wall clock in that cycle
        (less an arbitrary base: only differences mean something)."""
        return self.cycle_time - (self.frame - self.offset) / RATE


def read_transport_dump(path: Path) -> list[DumpEvent]:
    """The events jack_transport_dump printed ("TRANSPORT OFFSET ROLLING USECS: f8");
    a line cut short by the end of the run is skipped."""
    events = []
    for line in path.read_text(errors="replace").splitlines():
        head, sep, rest = line.partition(":")
        fields = head.split()
        if not sep or len(fields) != 4:
            continue
        try:
            events.append(DumpEvent(int(fields[0]), int(fields[1]),
                                    [int(word, 16) for word in rest.split()],
                                    fields[2] == "1", int(fields[3]) * 1e-6))
        except ValueError:
            continue
    return events


def stall_moved(note: DumpEvent, sends, master_heard: list[DumpEvent],
                late_ms: float = 2.0, stall_ms: float = 2.0) -> bool:
    """Whether the machine itself moved ``note`` (heard by jack_transport_dump)
    on the master's time line.  ``sends``: (due, sent) of each note-on the
    scheduler sent; ``master_heard``: the master's ticks the dump heard, in
    order.

    Its send is the latest one at or before the cycle that delivered it
    (notes are an eighth apart).  Moved: the scheduler sent it more than
    ``late_ms`` late (its thread waited for a CPU), or JACK stalled on its
    way: the transport's lag behind the wall clock grew by more than
    ``stall_ms`` between the master's last tick before the send (the lag
    Cadenza scheduled it with) and the cycle that delivered it.
    """
    times = [sent for _, sent in sends]
    index = bisect.bisect_right(times, note.cycle_time + PERIOD_SECONDS) - 1
    if index < 0:
        return False
    due, sent = sends[index]
    cycles = [tick.cycle_time for tick in master_heard]
    before = bisect.bisect_right(cycles, sent) - 1
    reference = master_heard[before].lag if before >= 0 else note.lag
    return (sent - due) * 1e3 > late_ms or (note.lag - reference) * 1e3 > stall_ms
