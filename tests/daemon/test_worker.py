"""The daemon's parts without JACK: the queue, the waker, the worker's echo, stops.

The end-to-end tests on a real JACK server are ``test_daemon_jack.py``.
"""

from __future__ import annotations

import threading

import mido
import pytest

from cadenza.errors import ConfigError
from cadenza.live.daemon.daemon import Daemon
from cadenza.live.daemon.input_queue import Input, InputQueue, Reload
from cadenza.live.daemon.scheduler import Scheduler
from cadenza.live.daemon.supervision import Waker
from cadenza.live.engine.events import Event
from cadenza.stats import percentile
from testing.fake_predictor import FakePredictor
from tests.daemon.test_daemon_jack import VOCAB, settings


def test_input_queue_drops_the_newest_beyond_its_bound_and_puts_control_first():
    queue = InputQueue(16)
    for k in range(20):
        queue.put([0x90, k, 1], float(k))
    assert queue.dropped == 4
    queue.put_command(Reload("new settings"))
    assert queue.get(0) == Reload("new settings")
    kept = [queue.get(0).data[1] for _ in range(16)]
    assert kept == list(range(16))  # the oldest kept, in order
    assert queue.get(0.01) is None


def test_waker_wakes_a_waiting_thread():
    waker = Waker()
    try:
        woke = threading.Event()
        thread = threading.Thread(target=lambda: (waker.wait(30), woke.set()))
        thread.start()
        waker.wake()
        assert woke.wait(5)
        thread.join(5)
    finally:
        waker.close()
    waker.wake()  # after close: harmless


def test_percentile_by_nearest_rank():
    assert percentile([], 0.99) == 0.0
    assert percentile([3.0, 1.0, 2.0], 0.5) == 2.0
    assert percentile(list(range(100)), 0.99) == 99


def test_clock_out_and_clock_in_together_is_refused():
    with pytest.raises(ConfigError, match="clock master"):
        Daemon(FakePredictor(VOCAB), settings(clock="midi", clock_out=True))


class Outbox:
    """Stands in for the ports: keeps what the daemon sends."""

    def __init__(self) -> None:
        self.sent: list[mido.Message] = []

    def send(self, message: mido.Message) -> bool:
        self.sent.append(message)
        return True


def test_release_echo_waits_while_cadenza_has_notes_on_their_way():
    from cadenza.live.engine.engine import Event

    outbox = Outbox()
    now = 10.0
    daemon = Daemon(FakePredictor(VOCAB), settings(), clock=lambda: now, ports=outbox)
    daemon._send(mido.Message("note_on", note=67, velocity=90))
    daemon._send(mido.Message("note_off", note=67))
    assert daemon.ledger.echo_due() == pytest.approx(10.1)
    # The next answer's first note is already in the scheduler: the echo,
    # a note-off of the same pitch, could cut it.
    daemon.scheduler.submit([Event(10.2, mido.Message("note_on", note=67, velocity=90))])
    now = 10.15
    daemon._echo_releases()
    assert daemon.echoes == 0
    assert daemon.ledger.echo_due() == pytest.approx(10.25)  # tried again later
    now = 10.2
    daemon.scheduler.run_due(now)  # the note-on goes out: no echo while it sounds
    assert daemon.ledger.echo_due() is None
    daemon._send(mido.Message("note_off", note=67))
    sent = len(outbox.sent)
    daemon._echo_releases()
    assert daemon.echoes == 1
    assert [(m.type, m.note) for m in outbox.sent[sent:]] == [("note_off", 67)]


def test_input_carries_the_ports_corrected_time_of_a_clock_tick():
    queue = InputQueue(16)
    queue.put([0xF8], 5.0, 4.97)  # JACK's frame clock 30 ms behind
    queue.put([0x90, 60, 100], 5.1)
    assert queue.get(0) == Input(5.0, [0xF8], 4.97)
    assert queue.get(0) == Input(5.1, [0x90, 60, 100], 5.1)  # arrival, where nothing corrects it


def test_the_worker_wakes_for_the_echo_without_the_sender_posting_back():
    outbox = Outbox()
    now = 10.0
    daemon = Daemon(FakePredictor(VOCAB), settings(), clock=lambda: now, ports=outbox)
    assert daemon._echo_wake(now) is None  # nothing sounds, nothing waits
    daemon._send(mido.Message("note_on", note=67, velocity=90))
    assert daemon._echo_wake(now) == pytest.approx(10.1)  # sounding, nothing waiting
    daemon.scheduler.submit([Event(10.5, mido.Message("note_off", note=67))])
    assert daemon._echo_wake(now) == pytest.approx(10.6)  # a delay after the last to go out
    now = 10.5
    daemon.scheduler.run_due(now)  # the sender arms the echo; the queue stays empty
    assert daemon.queue.get(0) is None
    assert daemon._echo_wake(now) == daemon.ledger.echo_due() == pytest.approx(10.6)


def test_send_now_passes_what_was_sent_and_only_that_to_on_sent():
    sent, recorded = [], []
    open_port = [True]

    def send(message):
        if open_port[0]:
            sent.append(message)
        return open_port[0]

    scheduler = Scheduler(send, clock=lambda: 3.0, on_sent=lambda due, m: recorded.append((due, m)))
    first, second = mido.Message("note_off", note=60), mido.Message("note_off", note=62)
    scheduler.send_now([first])
    open_port[0] = False
    scheduler.send_now([second])
    assert sent == [first] and recorded == [(3.0, first)]
    assert scheduler.pending() == 0  # at once, not through the heap


class ScriptedQueue:
    """Stands in for the input queue on a simulated clock: ``get`` moves the
    clock to the next input when it arrives within the timeout, else by the
    timeout (the deadline the worker waits for); after ``end``, a Stop."""

    def __init__(self, clock: list[float], items: list[Input], end: float) -> None:
        self.clock, self.items, self.end = clock, sorted(items, key=lambda i: i.time), end
        self.dropped = 0

    def waiting(self) -> int:
        return sum(1 for item in self.items if item.time <= self.clock[0])

    def get(self, timeout: float | None):
        from cadenza.live.daemon.input_queue import Stop

        until = self.end if timeout is None else min(self.clock[0] + timeout, self.end)
        if self.items and self.items[0].time <= until:
            self.clock[0] = max(self.clock[0], self.items[0].time)
            return self.items.pop(0)
        if self.clock[0] >= self.end:
            return Stop()
        self.clock[0] = until
        return None


def _input(time: float, data: list[int]) -> Input:
    return Input(time, data, time)


def _run_worker(items: list[Input], end: float, *, prepare: bool = True):
    """The worker's loop over ``items`` on a simulated clock: the engine's calls
    (name, clock, next deadline after the call) and the events it submitted."""
    from cadenza.config import EngineSettings
    from cadenza.live.engine.engine import Engine

    clock = [0.0]
    live = settings(stats_interval=0.0)
    daemon = Daemon(FakePredictor(VOCAB), live, clock=lambda: clock[0], ports=Outbox())
    daemon.queue = ScriptedQueue(clock, items, end)
    calls: list[tuple[str, float, float | None]] = []

    class Spy(Engine):
        def on_message(self, message, now):
            out = super().on_message(message, now)
            calls.append(("on_message", clock[0], self.next_deadline()))
            return out

        def advance(self, now):
            out = super().advance(now)
            calls.append(("advance", clock[0], self.next_deadline()))
            return out

        def prepare(self):
            if prepare:
                super().prepare()
            calls.append(("prepare", clock[0], self.next_deadline()))

    daemon.engine = Spy(daemon.predictor, EngineSettings.of(live), start_time=0.0)
    submitted: list = []
    daemon._submit = lambda events: submitted.extend((e.time, tuple(e.message.bytes())) for e in events)
    daemon._loop()
    return calls, submitted


def test_the_worker_prepares_the_model_when_idle_after_input_and_answer_steps():
    call = [_input(0.1 + 0.25 * k, [0x90, 60 + 2 * k, 90]) for k in range(4)]
    call += [_input(0.3 + 0.25 * k, [0x80, 60 + 2 * k, 0]) for k in range(4)]
    call.append(_input(0.2, [0xF8]))  # a clock tick: no work for the model
    call += [_input(4.0, [0x90, 67, 90]), _input(4.0, [0x90, 71, 90])]  # two at once
    calls, submitted = _run_worker(call, end=6.0)
    names = [name for name, *_ in calls]
    assert any(t for t, data in submitted if data[0] & 0xF0 == 0x90)  # it answered
    answered = [k for k, name in enumerate(names) if name == "advance"]
    heard = [k for k, name in enumerate(names) if name == "on_message"]
    assert len(answered) > 3 and len(heard) == 10
    # Right after each answer step, and after each input but the first of the
    # two that arrived together (the second was waiting), the model's work is
    # done before the worker waits again.
    for k in answered + heard:
        if calls[k][1] == 4.0 and k == heard[-2]:
            assert names[k + 1] == "on_message"
        else:
            assert names[k + 1] == "prepare", (k, calls[k])
    # Never at a deadline that was due: each prepare came before the next one.
    for name, when, deadline in calls:
        if name == "prepare":
            assert deadline is None or when < deadline
    assert names.count("prepare") == len(answered) + len(heard) - 1


def test_the_workers_prepare_changes_no_event():
    call = [_input(0.1 + 0.25 * k, [0x90, 60 + 2 * k, 90]) for k in range(4)]
    call += [_input(0.3 + 0.25 * k, [0x80, 60 + 2 * k, 0]) for k in range(4)]
    prepared = _run_worker(call, end=5.0)[1]
    assert prepared == _run_worker(call, end=5.0, prepare=False)[1]
    assert prepared
