"""The daemon's worker drives the native engine as it drives the Python one:
clock ticks with the master's time through ``clock_tick``, stops counted
(queued note-ons cancelled), the same events submitted."""

from __future__ import annotations

import mido

from cadenza.config import EngineSettings
from cadenza.live.daemon.daemon import Daemon
from cadenza.live.daemon.input_queue import Input
from cadenza.live.engine_choice import make_engine
from testing.fake_predictor import FakePredictor
from tests.daemon.test_daemon_jack import VOCAB, settings
from tests.support.native_engine_support import require_native


class Outbox:
    def send(self, message: mido.Message) -> bool:
        return True


def _inputs() -> list[Input]:
    """Start, a master 3 ms behind on its own time line, a call, a Stop, a Continue."""
    items = [Input(0.0, [0xFA], 0.0)]
    period = 60.0 / (120.0 * 24)
    for k in range(1, 200):
        t = k * period
        items.append(Input(t, [0xF8], t - 0.003 * (k % 2)))
    for k, pitch in enumerate((60, 64, 67, 72, 71)):
        items.append(Input(0.3 + 0.25 * k, [0x90, pitch, 90], 0.3 + 0.25 * k))
        items.append(Input(0.5 + 0.25 * k, [0x80, pitch, 0], 0.5 + 0.25 * k))
    items.append(Input(3.2, [0xFC], 3.2))
    items.append(Input(3.4, [0xFB], 3.4))
    items.append(Input(3.5, [0xB0, 24, 127], 3.5))  # the panic CC: a stop too
    return sorted(items, key=lambda item: item.time)


def _run(kind: str) -> tuple[list, int, int]:
    live = settings(clock="midi", api="jack")
    daemon = Daemon(FakePredictor(VOCAB), live, clock=lambda: 0.0, ports=Outbox())
    daemon.engine = make_engine(kind, daemon.predictor, EngineSettings.of(live), start_time=0.0)
    submitted: list = []
    cancels = [0]
    daemon._submit = lambda events: submitted.extend(
        (e.time, tuple(e.message.bytes())) for e in events)
    daemon.scheduler.cancel_note_ons = lambda: cancels.__setitem__(0, cancels[0] + 1)
    engine = daemon.engine
    for item in _inputs():
        while (deadline := engine.next_deadline()) is not None and deadline < item.time:
            daemon._submit(engine.advance(deadline))
        daemon._on_input(item)
    return submitted, cancels[0], engine.stops


def test_the_worker_drives_both_engines_alike():
    require_native()
    python, native = _run("python"), _run("native")
    assert python == native
    events, cancels, stops = python
    assert any(data[0] & 0xF0 == 0x90 for _, data in events)  # Cadenza answered
    assert cancels == 4 and stops == 4  # Start, Stop, Continue and the panic CC each stop


