"""``cadenza live``: the engine on real MIDI ports, in real time.

Threads (see docs/daemon.md):

- the MIDI system's thread runs ``MidiPorts``' callback: it reads the clock,
  puts ``(time, bytes)`` into a bounded ``InputQueue`` and returns;
- one worker thread owns the engine: it takes ``Input`` and the
  supervisor's typed commands off the queue, calls ``engine.on_message``
  and, at ``engine.next_deadline()``, ``engine.advance``, and hands the
  events to the scheduler.  After performer input or an answer step, with
  nothing due and no input waiting, it calls ``engine.prepare()``: the
  model's work for the next choice runs in the idle time before the next
  deadline, not at it.  It never waits for anything but the queue, with
  a timeout at the next deadline (the release echo's among them);
- the scheduler thread sends each event at its time (``scheduler.py``),
  through the note ledger, which knows what is sounding.  It is the only
  writer to the output port, and never posts back into the queue;
- the main thread supervises: signals, the port check about once a second,
  ``--duration``, and the shutdown that silences everything.

One note's path: callback -> queue -> worker -> engine -> scheduler -> port.
Musical time is ``time.monotonic()`` throughout, passed into the engine
already corrected (a master's clock tick on its own time line: the port's
``master_time``).
"""

from __future__ import annotations

import gc
import logging
import threading
import time
from collections import deque
from collections.abc import Callable

import mido

from cadenza.config import EngineSettings, LiveConfig
from cadenza.errors import ConfigError
from cadenza.live.daemon.clock_out import ClockOut
from cadenza.live.daemon.input_queue import (
    Input,
    InputQueue,
    PortLost,
    Reload,
    Stop,
    parse_input,
)
from cadenza.live.daemon.ledger import NoteLedger
from cadenza.live.daemon.scheduler import Scheduler
from cadenza.live.daemon.supervision import Waker
from cadenza.live.engine.engine import LOOKAHEAD, Engine, Event
from cadenza.live.engine_choice import make_engine
from cadenza.live.midi.ports import MidiPorts
from cadenza.live.realtime import raise_thread_priority
from cadenza.predictor import Predictor
from cadenza.stats import percentile

log = logging.getLogger(__name__)

PORT_POLL = 1.0  # seconds between checks that the ports are still there
DROP_WARN_INTERVAL = 1.0  # at most one "input dropped" warning per second
START_DELAY = 0.05  # the first beat lies this far after start-up, so clock-out starts on time
WORKER_JOIN = 2.0
SWITCH_INTERVAL = 0.0005  # seconds a thread may hold the GIL while another waits for it
WARMUP_CALLS = 20
HEARD = 1024  # input messages remembered in Daemon.heard (the input log)


def warm_up(predictor: Predictor, calls: int = WARMUP_CALLS) -> None:
    """Run the model a few times, so the first note pays no lazy set-up."""
    predictor.reset()
    for index in range(calls):
        predictor.distribution()
        predictor.feed(index % len(predictor.vocabulary))
    predictor.reset()


class Daemon:
    """The live improviser on MIDI ports.

    ``start()`` opens the ports and starts the threads; ``run()`` supervises
    (on the caller's thread) until ``request_stop()``, ``duration`` or a
    worker failure, then shuts down, and returns the exit status.  Tests
    pass a predictor of their own and drive it from another thread.
    """

    def __init__(
        self,
        predictor: Predictor,
        settings: LiveConfig,
        *,
        clock: Callable[[], float] = time.monotonic,
        lookahead: float = LOOKAHEAD,
        ports: MidiPorts | None = None,
        reload_settings: Callable[[LiveConfig], LiveConfig | None] | None = None,
        engine_kind: str = "python",
    ) -> None:
        if settings.clock_out and settings.clock == "midi":
            raise ConfigError(
                "--clock-out makes Cadenza the clock master; it cannot also follow "
                "--clock midi"
            )
        self.predictor = predictor
        self.engine_kind = engine_kind  # "python" or "native" (the same notes)
        self.settings = settings
        self.clock = clock
        self.lookahead = lookahead
        self.queue = InputQueue(settings.queue_size)
        self.waker = Waker()
        self.ports = ports or MidiPorts(
            settings.api, settings.in_port, settings.out_port, self.queue.put,
            clock=clock, on_change=self.waker.wake,
        )
        self.ledger = NoteLedger(
            settings.channel - 1, clock=clock, echo_delay=settings.release_echo_ms / 1e3
        )
        self.scheduler = Scheduler(self._send, clock=clock, on_sent=self._sent)
        self.engine: Engine | None = None
        self.recorder = None
        self.started = threading.Event()  # the ports are open and the threads run
        self.start_time = 0.0
        self._worker: threading.Thread | None = None
        self._stop_reason: str | None = None
        self._reload_requested = False
        self._reload_settings = reload_settings  # current -> new settings (None: keep)
        self.failure: BaseException | None = None
        self._record_lock = threading.Lock()
        #: The input log: (arrival time, message) of the latest ``HEARD`` input
        #: messages, oldest first.  The timing benchmarks read it (docs/daemon.md).
        self.heard: deque[tuple[float, mido.Message]] = deque(maxlen=HEARD)
        self.echoes = 0  # note-offs sent again by the release echo
        self.clock_out = ClockOut()  # used with --clock-out only

    # -- output side (scheduler thread) ----------------------------------

    def _send(self, message: mido.Message) -> bool:
        """The scheduler's way out (on whichever thread it sends): the port,
        then the ledger.  False: the output is gone, nothing was sent."""
        if not self.ports.send(message):
            return False
        # This may arm the release echo; the worker's wakes include it.
        self.ledger.sent(message)
        return True

    def _sent(self, due: float, message: mido.Message) -> None:
        self._record(due, message, "cadenza")

    def _record(self, when: float, message: mido.Message, track: str) -> None:
        if self.recorder is not None:
            with self._record_lock:
                self.recorder.add(when, message, track)


    # -- lifecycle -------------------------------------------------------

    def start(self) -> None:
        """Warm the model, freeze the heap, open the ports, start the threads.

        On failure everything already opened is closed again.
        """
        try:
            self._start()
        except BaseException:
            self.shutdown()
            raise

    def _start(self) -> None:
        if self.settings.record:
            from cadenza.live.daemon.recorder import check_writable

            # Before any port opens: a path found unwritable only at the end
            # would lose the whole session.
            check_writable(self.settings.record)
        warm_up(self.predictor)
        # Everything alive now lives for the whole run: keep the collector
        # from scanning it again and again while notes are due.
        gc.collect()
        gc.freeze()
        self.ports.open()
        self.start_time = self.clock() + START_DELAY
        self.engine = make_engine(
            self.engine_kind, self.predictor, EngineSettings.of(self.settings), start_time=self.start_time,
            lookahead=self.lookahead,
        )
        if self.settings.record:
            from cadenza.live.daemon.recorder import Recorder

            self.recorder = Recorder(self.engine.bpm, start_time=self.start_time)
        self.scheduler.start()
        if self.settings.clock_out:
            self.scheduler.submit([Event(self.start_time, mido.Message("start"))])
            self._plan_clock(self.clock())
        self._worker = threading.Thread(target=self._work, name="cadenza-worker", daemon=True)
        self._worker.start()
        self.started.set()

    def request_stop(self, reason: str = "stop requested") -> None:
        if self._stop_reason is None:
            self._stop_reason = reason
        self.waker.wake()

    def request_reload(self) -> None:
        """Reload the settings (SIGHUP).  Safe in a signal handler: a flag and a wake."""
        self._reload_requested = True
        self.waker.wake()

    def _reload(self) -> None:
        self._reload_requested = False
        if self._reload_settings is None:
            return
        settings = self._reload_settings(self.settings)
        if settings is not None:
            self.settings = settings
            self.queue.put_command(Reload(settings))

    def run(self, duration: float | None = None) -> int:
        """Supervise until stopped; then shut down.  Returns the exit status."""
        ends = None if duration is None else self.clock() + duration
        next_poll = self.clock() + PORT_POLL
        try:
            while self._stop_reason is None:
                now = self.clock()
                wait = next_poll - now
                if ends is not None:
                    if now >= ends:
                        self._stop_reason = f"--duration {duration:g} s is over"
                        break
                    wait = min(wait, ends - now)
                self.waker.wait(max(0.0, wait))
                if self._reload_requested:
                    self._reload()
                if self.clock() >= next_poll or self.ports.server_gone():
                    self._check_ports()
                    next_poll = self.clock() + PORT_POLL
        finally:
            self.shutdown()
        return 1 if self.failure is not None else 0

    def _check_ports(self) -> None:
        lost, restored = self.ports.poll()
        for direction in lost:
            self.queue.put_command(PortLost(direction))
        if "out" in restored:
            # Note-offs that could not be sent while the output was gone:
            # the notes may still sound on the other side.
            self.scheduler.send_now(self.ledger.release_all())

    def shutdown(self) -> None:
        """Stop the threads, release every sounding note, close the ports."""
        if self.started.is_set():
            log.info("stopping: %s", self._stop_reason or "shutdown")
        if self._worker is not None:
            self.queue.put_command(Stop())
            self._worker.join(WORKER_JOIN)
            if self._worker.is_alive():
                log.warning("worker did not stop within %.0f s", WORKER_JOIN)
        self.scheduler.stop()
        if self.ports.output_open:
            self.scheduler.send_now(self.ledger.release_all())
            if self.settings.clock_out:
                self.scheduler.send_now([mido.Message("stop")])
        self.ports.close()
        gc.unfreeze()
        if self.recorder is not None:
            with self._record_lock:
                path = self.recorder.save(self.settings.record)
            log.info("recorded the session to %s", path)
        self.waker.close()

    # -- the worker ------------------------------------------------------

    def _work(self) -> None:
        if not raise_thread_priority():
            log.info("running at normal priority (give Cadenza CAP_SYS_NICE for steadier timing)")
        try:
            self._loop()
        except Exception as err:
            self.failure = err
            log.error("the engine failed, stopping: %s: %s", type(err).__name__, err)
            log.debug("engine failure", exc_info=True)
            self.request_stop("engine failure")

    def _loop(self) -> None:
        engine = self.engine
        assert engine is not None
        interval = self.settings.stats_interval
        next_stats = self.clock() + interval if interval > 0 else None
        stats_mark = (engine.stats()["predictions"], self.clock())
        warned_drops, next_warn = 0, 0.0
        while True:
            now = self.clock()
            wakes = [engine.next_deadline(), next_stats, self._echo_wake(now)]
            if self.settings.clock_out:
                wakes.append(self.clock_out.next_plan)
            if self.queue.dropped > warned_drops:
                wakes.append(next_warn)
            due = min((w for w in wakes if w is not None), default=None)
            item = self.queue.get(None if due is None else max(0.0, due - now))
            now = self.clock()
            if isinstance(item, Stop):
                return
            # Performer input or an answer step: the model has work to do for
            # the next choice (prepare, below).
            moved = False
            if isinstance(item, Input):
                moved = self._on_input(item)
            elif isinstance(item, Reload):
                settings = item.settings
                engine.reload(EngineSettings.of(settings))
                self.ledger.echo_delay = settings.release_echo_ms / 1e3
                log.info("settings reloaded")
                if settings.stats_interval != interval:
                    interval = settings.stats_interval
                    next_stats = now + interval if interval > 0 else None
            elif isinstance(item, PortLost):
                self._on_lost(item.direction, now)
            deadline = engine.next_deadline()
            if deadline is not None and now >= deadline:
                self._submit(engine.advance(now))
                moved = True
                if self.recorder is not None:
                    with self._record_lock:
                        self.recorder.add_tempo(now, engine.bpm)
            echo = self.ledger.echo_due()
            if echo is not None and now >= echo:
                self._echo_releases()
            if self.settings.clock_out and now >= self.clock_out.next_plan:
                self._plan_clock(now)
            if self.queue.dropped > warned_drops and now >= next_warn:
                log.warning(
                    "MIDI input queue full (%d messages): dropped %d newest messages",
                    self.queue.size, self.queue.dropped - warned_drops,
                )
                warned_drops, next_warn = self.queue.dropped, now + DROP_WARN_INTERVAL
            if next_stats is not None and now >= next_stats:
                stats_mark = self._log_stats(stats_mark, now)
                next_stats = now + interval
            if moved:
                self._prepare_when_idle()

    def _prepare_when_idle(self) -> bool:
        """The model's work for the next choice, now (``engine.prepare``), so
        the step at the next deadline has only the engine's own work: unless a
        step is due or input waits, which come first.  Changes no event."""
        engine = self.engine
        deadline = engine.next_deadline()
        if (deadline is not None and self.clock() >= deadline) or self.queue.waiting():
            return False
        engine.prepare()
        return True

    def _echo_wake(self, now: float) -> float | None:
        """When the worker must look at the release echo next.

        The echo is armed on the sending thread, when the last sounding note's
        note-off leaves; that thread never posts back into the queue, so the
        worker wakes one echo delay after the last event waiting to go out
        (or, with notes sounding and nothing waiting, one delay from now) and
        then waits for the echo's own time.
        """
        due = self.ledger.echo_due()
        if due is not None or self.ledger.echo_delay <= 0:
            return due
        last = self.scheduler.latest_due()
        if last is None and not len(self.ledger):
            return None
        return max(now, last or now) + self.ledger.echo_delay

    def _echo_releases(self) -> None:
        """Cadenza fell silent: its released notes get a second note-off (see
        ``NoteLedger``), unless notes of its own are already on their way,
        which the echo could cut; then it is tried again one delay later.

        Sent at once (``Scheduler.send_now``) rather than at a time: only this
        thread plans notes, so none can be sent before the echo and cut by it."""
        if self.scheduler.note_on_pending():
            self.ledger.defer_echo()
            return
        echoes = self.ledger.take_echo()
        self.echoes += len(echoes)
        self.scheduler.send_now(echoes)

    def _on_input(self, item: Input) -> bool:
        """One input message into the engine; True when it went to ``on_message``
        (a clock tick or a malformed message gives the model nothing to do)."""
        message = parse_input(item.data)
        if message is None:
            log.debug("ignored malformed MIDI input %s", item.data)
            return False
        engine = self.engine
        self.heard.append((item.time, message))
        self._record(item.time, message, "performer")
        if message.type == "clock":
            engine.clock_tick(item.time, item.master_time)
            return False
        stops = engine.stops
        events = engine.on_message(message, item.time)
        if engine.stops != stops:
            # A stop (Stop, Start, a panic or mode CC): notes chosen in the
            # lookahead but not yet sent must not sound.
            self.scheduler.cancel_note_ons()
        self._submit(events)
        return True

    def _on_lost(self, direction: str, now: float) -> None:
        """A port went away: the answer stops; a lost keyboard lets go of its keys."""
        engine = self.engine
        if direction == "in":
            engine.release_performer(now)
        self.scheduler.cancel_note_ons()
        self._submit(engine.stop(now))

    def _submit(self, events: list[Event]) -> None:
        if events:
            self.scheduler.submit(events)

    def _plan_clock(self, now: float) -> None:
        """Hand the scheduler the next stretch of outgoing MIDI clock."""
        self._submit(self.clock_out.plan(self.engine.clock, now))

    def _log_stats(self, mark: tuple[int, float], now: float) -> tuple[int, float]:
        stats = self.engine.stats()
        predictions, since = mark
        made = stats["predictions"] - predictions
        latencies = stats["latencies"][-made:] if made else []
        lateness = self.scheduler.take_lateness()
        log.info(
            "stats: %.1f predictions/s, prediction p50 %.2f ms p99 %.2f ms, "
            "send lateness p50 %.2f ms p99 %.2f ms, %d notes sounding, "
            "%d late notes dropped, %d input messages dropped, key %s (strength %.2f)",
            made / max(now - since, 1e-9),
            percentile(latencies, 0.5) * 1e3, percentile(latencies, 0.99) * 1e3,
            percentile(lateness, 0.5) * 1e3, percentile(lateness, 0.99) * 1e3,
            len(self.ledger), self.scheduler.dropped, self.queue.dropped,
            stats["key"] or "none", stats["key_strength"],
        )
        return stats["predictions"], now
