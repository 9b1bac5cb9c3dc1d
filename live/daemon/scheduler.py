"""The output scheduler: sends each message at its time, and measures how late.

One thread holds a heap of timestamped messages.  While nothing is due it
sleeps on a condition variable (an idle daemon uses no CPU); a message due
within ``spin`` seconds is taken off the heap, the thread spins (yielding the
GIL) until its time and sends it.  Waking from a timed wait is only accurate to
a fraction of a millisecond, so sleeping all the way would make every note
late by that much; spinning the whole time would burn a core.  The thread
runs at real-time priority where the system allows it (``SEND_RT_PRIORITY``),
so an ordinary thread that is running when a message falls due does not
delay it by a scheduler slice.

A note-on that comes out later than ``drop_late`` (a stalled machine, a
blocked port) is dropped rather than bunched with the notes after it: a burst
of overdue notes sounds worse than a missing one.  Everything else is sent
however late: a lost note-off sticks, a lost controller or clock tick
leaves the listener out of step.
"""

from __future__ import annotations

import heapq
import itertools
import logging
import threading
import time
from collections import deque
from collections.abc import Callable, Iterable
from typing import Any

import mido

from cadenza.live.engine.events import is_note_on
from cadenza.live.realtime import SEND_RT_PRIORITY, raise_thread_priority, raise_thread_to_realtime

log = logging.getLogger(__name__)

SPIN = 0.001  # seconds before a message is due when the scheduler stops sleeping
# The last stretch of the spin holds the GIL: every time.sleep(0) gives it up,
# and getting it back can cost a switch interval when another thread wants it.
HOLD = 0.0002
DROP_LATE = 0.020  # a note-on this late (seconds) is dropped instead of sent
RECENT = 4096  # sends remembered in Scheduler.recent (the send log)
def wait_until(
    due: float, clock: Callable[[], float] = time.monotonic, hold: float = HOLD
) -> float:
    """Spin until ``clock() >= due``; returns the time it saw last.

    ``time.sleep(0)`` lets other threads (the MIDI callback, the worker) run
    while we spin, instead of holding the GIL for the whole spin; the last
    ``hold`` seconds keep it, so the send does not wait to get it back.
    """
    now = clock()
    while now < due - hold:
        time.sleep(0)
        now = clock()
    while now < due:
        now = clock()
    return now


class Scheduler:
    """Sends ``(time, message)`` events through ``send`` at their times.

    The only writer to the output: whatever else must go out at once (the
    silence at shutdown, the note-offs for a port that came back, the
    release echo) goes through ``send_now``, which takes the same lock as
    the sending thread, so two messages never leave at once.

    ``submit`` may be called from any thread.  ``clock`` must be the clock the
    event times are on.  Events due at the same time go out in the order
    they were submitted: the engine already orders each batch (a retriggered
    note's note-off before its note-on), and a note-off submitted later for a
    note-on still pending (a Stop) must follow it.  Drive it with ``start()``/``stop()`` (its own thread)
    or, in tests, with ``run_due(now)`` which sends whatever is due at ``now``
    without waiting.
    """

    def __init__(
        self,
        send: Callable[[mido.Message], Any],
        *,
        clock: Callable[[], float] = time.monotonic,
        spin: float = SPIN,
        drop_late: float = DROP_LATE,
        on_sent: Callable[[float, mido.Message], Any] | None = None,
    ) -> None:
        self._send = send
        self._on_sent = on_sent  # (due time, message) after each successful send
        self._clock = clock
        self.spin = spin
        self.drop_late = drop_late
        self._heap: list[tuple[float, int, mido.Message]] = []
        self._order = itertools.count()
        self._cond = threading.Condition()
        self._stopping = False
        self._thread: threading.Thread | None = None
        self._lateness: list[float] = []
        self._in_flight: mido.Message | None = None  # taken off the heap, not yet sent
        self._send_lock = threading.Lock()  # one message leaves at a time, whoever sends it
        #: The send log: (due, sent at, message) of the latest ``RECENT`` sends
        #: from the heap, oldest first.  The daemon's timing benchmarks read it
        #: (docs/daemon.md); ``take_lateness`` is the summary ``--stats`` logs.
        self.recent: deque[tuple[float, float, mido.Message]] = deque(maxlen=RECENT)
        self.sent = 0
        self.dropped = 0
        self.send_errors = 0

    # -- feeding ---------------------------------------------------------

    def submit(self, events: Iterable[Any]) -> None:
        """Queue events (anything with ``.time`` and ``.message``)."""
        with self._cond:
            earliest = self._heap[0][0] if self._heap else None
            for event in events:
                entry = (event.time, next(self._order), event.message)
                heapq.heappush(self._heap, entry)
            # Wake the thread only when its current wait is now too long.
            if self._heap and (earliest is None or self._heap[0][0] < earliest):
                self._cond.notify()

    def cancel_note_ons(self) -> int:
        """Forget pending note-ons (after a Stop or a panic); keep everything else."""
        with self._cond:
            kept = [entry for entry in self._heap if not is_note_on(entry[2])]
            cancelled = len(self._heap) - len(kept)
            heapq.heapify(kept)
            self._heap = kept
            self._cond.notify()
        return cancelled

    def note_on_pending(self) -> bool:
        """A note-on is waiting to be sent (in the heap, or taken off it and
        about to go out)."""
        with self._cond:
            if self._in_flight is not None and is_note_on(self._in_flight):
                return True
            return any(is_note_on(entry[2]) for entry in self._heap)

    def pending(self) -> int:
        with self._cond:
            return len(self._heap)

    def latest_due(self) -> float | None:
        """The due time of the last event waiting (None: nothing waits)."""
        with self._cond:
            if not self._heap:
                return None
            return max(entry[0] for entry in self._heap)

    def send_now(self, messages: Iterable[mido.Message]) -> None:
        """Send at once on the calling thread, not through the heap (shutdown, a
        port back, the release echo).  A message ``send`` reports as not sent
        (returns False: the port is gone) is not passed to ``on_sent``."""
        now = self._clock()
        for message in messages:
            with self._send_lock:
                sent = self._send(message)
            if sent is not False and self._on_sent is not None:
                self._on_sent(now, message)

    def take_lateness(self) -> list[float]:
        """Lateness samples (seconds) of the messages sent since the last call."""
        with self._cond:
            samples, self._lateness = self._lateness, []
        return samples

    # -- sending ---------------------------------------------------------

    def _deliver(self, due: float, message: mido.Message, now: float) -> None:
        late = now - due
        if late > self.drop_late and is_note_on(message):
            self.dropped += 1
            log.debug("dropped %s: %.1f ms late", message, late * 1e3)
            return
        try:
            with self._send_lock:
                self._send(message)
        except Exception as err:  # a vanished port must not stop the scheduler
            self.send_errors += 1
            log.debug("send failed: %s", err)
            return
        self.sent += 1
        with self._cond:
            self._lateness.append(late)
            self.recent.append((due, now, message))
        if self._on_sent is not None:
            self._on_sent(due, message)

    def run_due(self, now: float) -> int:
        """Send every event due at or before ``now``; returns how many were handled."""
        handled = 0
        while True:
            with self._cond:
                if not self._heap or self._heap[0][0] > now:
                    return handled
                due, _, message = heapq.heappop(self._heap)
            self._deliver(due, message, now)
            handled += 1

    def _next(self) -> tuple[float, mido.Message] | None:
        """Block until an event is within the spin window (then pop it) or stop."""
        with self._cond:
            while not self._stopping:
                if not self._heap:
                    self._cond.wait()
                    continue
                due = self._heap[0][0]
                wait = due - self.spin - self._clock()
                if wait > 0:
                    self._cond.wait(wait)  # woken early by an earlier event or stop()
                    continue
                due, _, message = heapq.heappop(self._heap)
                self._in_flight = message
                return due, message
        return None

    def _run(self) -> None:
        if raise_thread_to_realtime():
            log.debug("the sending thread runs at real-time priority %d", SEND_RT_PRIORITY)
        else:
            raise_thread_priority()
        while (item := self._next()) is not None:
            due, message = item
            now = wait_until(due, self._clock)
            try:
                self._deliver(due, message, now)
            finally:
                with self._cond:
                    self._in_flight = None

    def start(self) -> None:
        if self._thread is not None:
            raise RuntimeError("scheduler already started")
        self._thread = threading.Thread(target=self._run, name="cadenza-scheduler", daemon=True)
        self._thread.start()

    def stop(self, timeout: float = 2.0) -> list[tuple[float, mido.Message]]:
        """Stop the thread; returns the events that were still pending (not sent)."""
        with self._cond:
            self._stopping = True
            self._cond.notify_all()
        if self._thread is not None:
            self._thread.join(timeout)
            if self._thread.is_alive():
                log.warning("scheduler thread did not stop within %.1f s", timeout)
        with self._cond:
            pending = [(due, message) for due, _, message in sorted(self._heap)]
            self._heap.clear()
        return pending
