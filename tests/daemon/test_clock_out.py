"""``--clock-out``: the plan of outgoing ticks never drifts, and the benchmark's
arithmetic (scripts/bench_clock_out.py) reads jitter and drift right.

No JACK, no threads: a fake clock, fake ports, the scheduler driven by
``run_due``.  The timing itself is measured by the benchmark, not here.
"""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

import numpy as np
import pytest

from cadenza.config import LiveConfig
from cadenza.live.daemon.clock_out import CLOCK_PLAN
from cadenza.live.daemon.daemon import Daemon
from cadenza.live.engine.clock import TICKS_PER_BEAT
from cadenza.live.engine.engine import Engine
from testing.fake_predictor import FakePredictor

REPO = Path(__file__).resolve().parents[2]
VOCAB = ["C4", "D4", "E4", "F4", "G4", "A4", "B4", "C5"]


class Outbox:
    """MidiPorts' send, and nothing else."""

    def __init__(self) -> None:
        self.sent = 0

    def send(self, message) -> bool:
        self.sent += 1
        return True


@pytest.fixture(scope="module")
def bench():
    spec = importlib.util.spec_from_file_location("bench_clock_out", REPO / "scripts" / "bench_clock_out.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    sys.path.insert(0, str(REPO / "scripts"))  # as when run: its helper ``_repo`` beside it
    try:
        spec.loader.exec_module(module)
    finally:
        sys.path.remove(str(REPO / "scripts"))
    yield module
    del sys.modules[spec.name]


@pytest.mark.parametrize("bpm", [40.0, 120.0, 240.0])
def test_ten_minutes_of_planned_ticks_lie_on_the_nominal_grid(bpm):
    # The worker plans 0.1 s of ticks at a time, whenever it wakes; here it
    # wakes at irregular times, sometimes late, as on a busy machine.
    now = 1000.0
    settings = LiveConfig(api="jack", clock="internal", clock_out=True, bpm=bpm)
    daemon = Daemon(FakePredictor(VOCAB), settings, clock=lambda: now, ports=Outbox())
    start = now + 0.05
    daemon.engine = Engine(daemon.predictor, settings, start_time=start, lookahead=daemon.lookahead)
    rng = np.random.default_rng(13)
    dues: list[float] = []
    daemon._plan_clock(now)
    while now < start + 600.0:
        now += float(rng.uniform(0.001, CLOCK_PLAN / 2 + 0.01))
        if now >= daemon.clock_out.until - CLOCK_PLAN / 2:
            daemon._plan_clock(now)
        daemon.scheduler.run_due(now)
        dues.extend(due for due, _, m in daemon.scheduler.recent if m.type == "clock")
        daemon.scheduler.recent.clear()
    period = 60.0 / (bpm * TICKS_PER_BEAT)
    dues_a = np.asarray(dues)
    k = np.arange(len(dues_a))
    # Every tick, none skipped or doubled, each at start + k * T: the grid is
    # computed from the start, not accumulated interval by interval.
    assert len(dues_a) == int(np.floor((now - start) / period)) + 1
    assert np.max(np.abs(dues_a - (start + k * period))) < 1e-9
    assert np.all(np.diff(dues_a) > 0)


def test_the_bench_reads_jitter_and_drift(bench):
    period = 60.0 / (120 * TICKS_PER_BEAT)
    k = np.arange(28_800)  # ten minutes at 120 BPM
    rng = np.random.default_rng(1)
    jitter = rng.uniform(-20e-6, 20e-6, len(k))
    steady = bench.timing(5000.0 + k * period + jitter, period, dues=5000.0 + k * period,
                          start=5000.0)
    assert steady["ticks"] == len(k)
    assert steady["interval_p99_ms"] <= 0.04 + 1e-9  # two ticks' jitter at most
    assert abs(steady["drift_ppm"]) < 0.01
    assert abs(steady["drift_over_run_ms"]) < 0.01
    assert steady["grid_max_error_us"] < 1e-3 and steady["first_tick"] == 0
    assert steady["skipped"] == 0 and abs(steady["grid_drift_ppm"]) < 0.01
    assert steady["lateness_max_ms"] <= 0.02 + 1e-9
    # A clock 10 ppm slow: 6 ms behind after ten minutes, the tempo 10 ppm low.
    slow = bench.timing(5000.0 + k * period * (1 + 10e-6), period)
    assert slow["drift_ppm"] == pytest.approx(-10.0, abs=1e-3)
    assert slow["end_error_ms"] == pytest.approx(6.0, abs=1e-3)
    assert slow["drift_over_run_ms"] == pytest.approx(6.0, abs=1e-3)
    assert not bench.verdicts({"sent": slow})["no_drift"]
    assert bench.verdicts({"sent": steady})["jitter_p99"]
    # Two ticks never sent: on time by tick number, two intervals behind as counted.
    kept = np.delete(k, [100, 20_000])
    gappy = bench.timing(5000.0 + kept * period, period, dues=5000.0 + kept * period, start=5000.0)
    assert gappy["skipped"] == 2 and abs(gappy["end_vs_grid_ms"]) < 1e-6
    assert gappy["end_error_ms"] == pytest.approx(2 * period * 1e3)
    verdict = bench.verdicts({"sent": gappy})
    assert verdict["no_drift_on_grid"] and not verdict["no_drift"]


def test_the_bench_numbers_received_ticks_from_the_start(bench):
    # (frame, bytes) as jack_midi_dump -a prints them: a tick every 1000
    # frames, one lost, a tick before the Start ignored.
    events = [(0, [0xF8]), (500, [0xFA])] + [(1000 * i, [0xF8]) for i in range(1, 12) if i != 6]
    heard = bench.received(events, 1000 / 48000, 48000)
    assert heard["heard_start"] and heard["ticks"] == 10 and heard["gaps"] == 1


def _clock_out_daemon(start: float) -> Daemon:
    """A daemon sending clock at 120 BPM from ``start``, on fake ports and a fixed clock."""
    settings = LiveConfig(api="jack", clock="internal", clock_out=True, bpm=120.0)
    daemon = Daemon(FakePredictor(VOCAB), settings, clock=lambda: start, ports=Outbox())
    daemon.engine = Engine(daemon.predictor, settings, start_time=start,
                           lookahead=daemon.lookahead)
    return daemon


def _clock_dues(daemon, now: float) -> list[float]:
    daemon._plan_clock(now)
    daemon.scheduler.run_due(now + CLOCK_PLAN)
    dues = [due for due, _, m in daemon.scheduler.recent if m.type == "clock"]
    daemon.scheduler.recent.clear()
    return dues


def test_a_stalled_worker_still_sends_every_tick_late(caplog):
    # A device that counts ticks must hear every one: a stall of 0.3 s
    # (14 ticks at 120 BPM) sends them late, not never.
    now = 1000.0
    daemon = _clock_out_daemon(now)
    period = 60.0 / (120.0 * TICKS_PER_BEAT)
    dues = _clock_dues(daemon, now)
    dues += _clock_dues(daemon, daemon.clock_out.until + 0.3)
    assert np.allclose(np.diff(dues), period) and dues[0] == pytest.approx(now)
    assert "skipping" not in caplog.text


def test_a_clock_far_behind_resumes_on_the_grid_with_a_warning(caplog):
    now = 1000.0
    daemon = _clock_out_daemon(now)
    period = 60.0 / (120.0 * TICKS_PER_BEAT)
    later = now + 5.0
    dues = _clock_dues(daemon, later)
    assert "ticks behind after a stall; skipping them" in caplog.text
    # What is sent lies on the same grid, from about now on.
    assert all(abs(((d - now) / period) - round((d - now) / period)) < 1e-6 for d in dues)
    assert dues and dues[0] >= later - 0.5
