"""The output scheduler: order, lateness, dropping, waking and idling."""

from __future__ import annotations

import os
import threading
import time
from dataclasses import dataclass, field

import mido

from cadenza.live.daemon import scheduler as scheduler_module
from cadenza.live.daemon.scheduler import Scheduler, wait_until
from cadenza.live.realtime import raise_thread_to_realtime


@dataclass(order=True)
class Ev:
    time: float
    message: mido.Message = field(compare=False)


def on(note: int, t: float) -> Ev:
    return Ev(t, mido.Message("note_on", note=note, velocity=80))


def off(note: int, t: float) -> Ev:
    return Ev(t, mido.Message("note_off", note=note))


class Sink:
    """Collects sent messages; ``wait(n)`` blocks until n have arrived."""

    def __init__(self) -> None:
        self.messages: list[tuple[float, mido.Message]] = []
        self._cond = threading.Condition()

    def __call__(self, message: mido.Message) -> None:
        with self._cond:
            self.messages.append((time.monotonic(), message))
            self._cond.notify_all()

    def wait(self, count: int, timeout: float = 5.0) -> bool:
        with self._cond:
            return self._cond.wait_for(lambda: len(self.messages) >= count, timeout)


def test_run_due_sends_in_time_order_and_only_what_is_due():
    sink = Sink()
    scheduler = Scheduler(sink, drop_late=10.0)
    scheduler.submit([on(62, 2.0), on(60, 1.0), off(60, 1.5)])
    assert scheduler.run_due(0.5) == 0
    assert scheduler.run_due(1.6) == 2
    assert [(m.type, m.note) for _, m in sink.messages] == [("note_on", 60), ("note_off", 60)]
    assert scheduler.pending() == 1


def test_equal_times_keep_the_order_of_submission():
    sink = Sink()
    scheduler = Scheduler(sink)
    scheduler.submit([off(60, 1.0), on(60, 1.0)])  # a retrigger, as the engine orders it
    scheduler.submit([off(60, 1.0)])  # a Stop's note-off for the pending note-on
    scheduler.run_due(1.0)
    assert [m.type for _, m in sink.messages] == ["note_off", "note_on", "note_off"]


def test_late_note_on_is_dropped_but_late_note_off_is_sent():
    sink = Sink()
    scheduler = Scheduler(sink, drop_late=0.02)
    scheduler.submit([on(60, 1.0), off(61, 1.0), on(62, 1.09)])
    scheduler.run_due(1.1)  # 100 ms late for the first two, 10 ms for the last
    sent = [(m.type, m.note) for _, m in sink.messages]
    assert sent == [("note_off", 61), ("note_on", 62)]
    assert scheduler.dropped == 1
    lateness = scheduler.take_lateness()
    assert sorted(round(x, 3) for x in lateness) == [0.01, 0.1]
    assert scheduler.take_lateness() == []


def test_cancel_note_ons_keeps_note_offs():
    sink = Sink()
    scheduler = Scheduler(sink)
    scheduler.submit([on(60, 1.0), off(60, 2.0), on(64, 3.0)])
    assert scheduler.cancel_note_ons() == 2
    scheduler.run_due(10.0)
    assert [m.type for _, m in sink.messages] == ["note_off"]


def test_a_failing_port_does_not_stop_the_scheduler():
    calls = []

    def send(message: mido.Message) -> None:
        calls.append(message)
        if len(calls) == 1:
            raise OSError("port vanished")

    scheduler = Scheduler(send)
    scheduler.submit([on(60, 1.0), on(61, 1.0)])
    assert scheduler.run_due(1.0) == 2
    assert scheduler.send_errors == 1
    assert scheduler.sent == 1


def test_thread_sends_on_time_and_records_lateness():
    sink = Sink()
    scheduler = Scheduler(sink, drop_late=10.0)  # a busy machine must not drop any here
    scheduler.start()
    try:
        start = time.monotonic() + 0.05
        events = [on(60 + k, start + 0.01 * k) for k in range(5)]
        scheduler.submit(events)
        assert sink.wait(5)
    finally:
        scheduler.stop()
    assert [m.note for _, m in sink.messages] == [60, 61, 62, 63, 64]
    for (sent_at, _), event in zip(sink.messages, events, strict=True):
        assert sent_at >= event.time  # never early: the spin waits for the due time
    lateness = scheduler.take_lateness()
    assert len(lateness) == 5 and min(lateness) >= 0


def test_an_earlier_event_wakes_a_long_wait():
    sink = Sink()
    scheduler = Scheduler(sink, drop_late=10.0)
    scheduler.start()
    try:
        scheduler.submit([on(60, time.monotonic() + 3600)])
        scheduler.submit([on(61, time.monotonic() + 0.01)])
        assert sink.wait(1, timeout=5)
    finally:
        pending = scheduler.stop()
    assert sink.messages[0][1].note == 61
    assert [m.note for _, m in pending] == [60]


def test_idle_scheduler_does_not_poll_the_clock():
    calls = 0

    def clock() -> float:
        nonlocal calls
        calls += 1
        return time.monotonic()

    sink = Sink()
    scheduler = Scheduler(sink, clock=clock, drop_late=10.0)
    scheduler.start()
    try:
        scheduler.submit([on(60, clock() + 0.005)])
        assert sink.wait(1)
        settled = calls
        # Idle for a while: a polling loop would read the clock thousands of times.
        threading.Event().wait(0.2)
        assert calls - settled <= 2
    finally:
        scheduler.stop()


def test_stop_returns_without_waiting_for_far_events():
    scheduler = Scheduler(Sink())
    scheduler.start()
    scheduler.submit([on(60, time.monotonic() + 3600)])
    started = time.monotonic()
    assert len(scheduler.stop()) == 1
    assert time.monotonic() - started < 1.0


def test_wait_until_returns_at_or_after_the_due_time():
    due = time.monotonic() + 0.002
    assert wait_until(due) >= due


def test_wait_until_gives_the_gil_away_only_before_the_last_stretch(monkeypatch):
    # A virtual clock stepping 0.05 ms a read; due at 1.0 ms, holding 0.2 ms.
    readings = iter(index * 0.00005 for index in range(1000))
    seen: list[float] = []

    def clock() -> float:
        seen.append(next(readings))
        return seen[-1]

    yields: list[float] = []
    monkeypatch.setattr(scheduler_module.time, "sleep", lambda s: yields.append(seen[-1]))
    now = wait_until(0.001, clock, hold=0.0002)
    assert now >= 0.001
    assert yields and max(yields) < 0.0008  # yielded while more than `hold` away...
    assert seen[-1] - max(yields) >= 0.0002  # ...then spun without yielding


def _policy_in_a_new_thread(action) -> tuple[bool, int]:
    result: list[tuple[bool, int]] = []

    def run() -> None:
        result.append((action(), os.sched_getscheduler(0)))

    thread = threading.Thread(target=run)
    thread.start()
    thread.join(5)
    return result[0]


def test_real_time_priority_is_taken_where_allowed_and_left_alone_where_not():
    raised, policy = _policy_in_a_new_thread(raise_thread_to_realtime)
    assert policy == (os.SCHED_FIFO if raised else os.SCHED_OTHER)
    # A priority no system grants is refused without raising.
    refused, policy = _policy_in_a_new_thread(lambda: raise_thread_to_realtime(10_000))
    assert not refused and policy == os.SCHED_OTHER


def test_the_sending_thread_runs_real_time_where_the_system_allows_it():
    allowed, _ = _policy_in_a_new_thread(raise_thread_to_realtime)
    sink = Sink()
    scheduler = Scheduler(sink)
    scheduler.start()
    try:
        scheduler.submit([on(60, time.monotonic())])
        assert sink.wait(1)
        assert scheduler._thread is not None
        policy = os.sched_getscheduler(scheduler._thread.native_id)
    finally:
        scheduler.stop()
    assert policy == (os.SCHED_FIFO if allowed else os.SCHED_OTHER)


def test_a_note_on_taken_off_the_heap_still_counts_as_pending_until_sent():
    sending, release = threading.Event(), threading.Event()

    def slow_port(message: mido.Message) -> None:
        sending.set()
        assert release.wait(5)

    scheduler = Scheduler(slow_port)
    assert not scheduler.note_on_pending()
    scheduler.submit([on(60, time.monotonic())])
    scheduler.start()
    try:
        assert sending.wait(5)
        # Off the heap and on its way out: a release echo now could follow it.
        assert scheduler.pending() == 0 and scheduler.note_on_pending()
        release.set()
        deadline = time.monotonic() + 5
        while scheduler.note_on_pending():
            assert time.monotonic() < deadline, "the sent note-on still counts as pending"
            time.sleep(0.001)  # polling a flag the scheduler thread clears
    finally:
        release.set()
        scheduler.stop()
    assert scheduler.sent == 1
