"""Cadenza following a third-party master through JACK: Debian's jack_midi_clock.

jack_midi_clock (package jack-midi-clock) sends ticks at exact frames from
JACK transport; Cadenza follows them in ``continue`` mode on the 1/8 grid,
and one ``jack_midi_dump -a`` hears both the master's ticks and Cadenza's
notes, timestamped on the same JACK frame clock.  The test asserts that
every note lands on the master's eighth (the issue: a follower that counted
ticks drifted a whole tick, or five, off it when JACK lost or bunched them)
and that the median note is within a millisecond or so.

The server is real-time where that is allowed (root, or an rtprio limit):
far fewer xruns lose MIDI.  Every wait is on a condition with a timeout.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import subprocess
import threading
import time
import warnings
from pathlib import Path

import numpy as np
import pytest

from cadenza.config import LiveConfig
from cadenza.live.daemon import Daemon
from cadenza.live.predictor import FakePredictor
from tests.jack_server import JackServer, jack_environment, require_jackd

VOCAB = ["C4", "D4", "E4", "F4", "G4", "A4", "B4", "C5"]
MASTER_BPM = 97.0
RATE = 48000
TICK_FRAMES = RATE * 60.0 / (MASTER_BPM * 24)
NOTES = 40  # answer notes to judge (20 beats of 1/8 at 97 BPM: about 12 s)
SETTLE_BEATS = 2


def _require_tools() -> None:
    missing = [t for t in ("jack_midi_clock", "jack_midi_dump", "jack_transport", "jack_connect",
                           "jack_lsp") if shutil.which(t) is None]
    if not missing:
        return
    message = f"not found: {', '.join(missing)} (apt-get install jack-midi-clock jackd2)"
    if os.environ.get("CI"):
        pytest.fail(message)
    pytest.skip(message)


@pytest.fixture(scope="module")
def rt_jack():
    """A private JACK server, real-time where allowed, else not (dummy driver, 64 frames)."""
    require_jackd()
    _require_tools()
    server = None
    for realtime in (True, False):
        candidate = JackServer(realtime=realtime)
        try:
            candidate.start()
        except (RuntimeError, TimeoutError):
            continue
        server = candidate
        break
    if server is None:
        pytest.fail("no JACK server would start")
    try:
        with jack_environment(server):
            yield server
    finally:
        server.stop()
        server.log_path.unlink(missing_ok=True)


def _ports(env: dict[str, str]) -> list[str]:
    out = subprocess.run(["jack_lsp"], env=env, capture_output=True, text=True, timeout=10)
    return out.stdout.splitlines()


def _wait_port(env: dict[str, str], part: str, timeout: float = 10.0) -> str:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        hits = [p for p in _ports(env) if part in p]
        if hits:
            return hits[0]
        time.sleep(0.05)  # polling interval while a client starts
    raise TimeoutError(f"no JACK port containing {part!r}: {_ports(env)}")


def _connect(env: dict[str, str], source: str, sink: str) -> None:
    subprocess.run(["jack_connect", source, sink], env=env, check=True, timeout=10)


def _transport(env: dict[str, str], command: str) -> None:
    subprocess.run(["jack_transport"], input=f"{command}\nquit\n", env=env, text=True,
                   capture_output=True, timeout=10, check=False)


def read_dump(path: Path) -> list[tuple[int, list[int]]]:
    """(frame, bytes) of each event jack_midi_dump -a printed
    ("  58304: 90 3c 50 note on  (channel  0): ...": the bytes, then words)."""
    events = []
    for line in path.read_text(errors="replace").splitlines():
        frame, _, rest = line.partition(":")
        data = []
        for word in rest.split():
            if len(word) != 2 or any(c not in "0123456789abcdef" for c in word):
                break
            data.append(int(word, 16))
        with contextlib.suppress(ValueError):
            events.append((int(frame), data))
    return events


def note_ons(events) -> list[int]:
    return [f for f, d in events if d and d[0] & 0xF0 == 0x90 and len(d) > 2 and d[2] > 0]


def master_grid(events) -> tuple[float, float]:
    """Frame of the master's tick 0 after Start, and its frames per tick.

    The master is steady: a line through the ticks the dump heard, each
    numbered by time (the dump may lose some too), gives every tick's frame.
    """
    start = next(f for f, d in events if d == [0xFA])
    ticks = [f for f, d in events if d == [0xF8] and f >= start]
    first = ticks[1]  # tick 0 goes out with Start; tick 1 on is on the tempo's line
    numbers = [1 + round((f - first) / TICK_FRAMES) for f in ticks[1:]]
    slope, intercept = np.polyfit(numbers, ticks[1:], 1)
    return intercept, slope


@contextlib.contextmanager
def process(command: list[str], env: dict[str, str], log: Path):
    with log.open("wb") as out:
        proc = subprocess.Popen(command, env=env, stdout=out, stderr=subprocess.STDOUT,
                                stdin=subprocess.DEVNULL)
    try:
        yield proc
    finally:
        proc.terminate()
        try:
            proc.wait(5)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(5)


@contextlib.contextmanager
def cadenza(live: LiveConfig):
    daemon = Daemon(FakePredictor(VOCAB), live)
    daemon.start()
    supervisor = threading.Thread(target=daemon.run, name="supervisor")
    supervisor.start()
    try:
        yield daemon
    finally:
        daemon.request_stop("test over")
        supervisor.join(10)
        assert not supervisor.is_alive(), "the daemon did not stop"


def wait_for(predicate, timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            return False
        time.sleep(0.05)  # polling a file another process writes
    return True


@pytest.mark.jack
def test_answers_land_on_jack_midi_clocks_eighths(rt_jack, tmp_path):
    env = {**os.environ, **rt_jack.env}
    dump = tmp_path / "dump.txt"
    live = LiveConfig(api="jack", clock="midi", mode="continue", grid="1/8", bpm=120.0,
                      channel=1)
    with process(["jack_midi_dump", "-a", "cadenza-dump"], env, dump), \
         process(["jack_midi_clock", "-b", str(MASTER_BPM), "-B"], env, tmp_path / "mclk.log"), \
         cadenza(live) as daemon:
        monitor = _wait_port(env, "cadenza-dump:")
        clock_out = _wait_port(env, "jack_midi_clock:mclk_out")
        _connect(env, clock_out, _wait_port(env, ":Cadenza In"))
        _connect(env, clock_out, monitor)
        _connect(env, _wait_port(env, ":Cadenza Out"), monitor)
        _transport(env, "locate 0")
        _transport(env, "play")  # the master starts after Cadenza is up, as in the issue
        heard = wait_for(lambda: len(note_ons(read_dump(dump))) >= NOTES, timeout=40)
        _transport(env, "stop")
        stats = daemon.engine.clock.tracker
        lost, bunched = stats.lost, stats.bunched
        kinds = (sorted({m.type for _, m in daemon.heard}), daemon.engine.stats()["predictions"],
                 stats.count, stats.period, stats.lost, stats.bunched, stats.reseeds)
        ports = _ports(env)
    events = read_dump(dump)
    assert heard, (f"only {len(note_ons(events))} notes heard; Cadenza heard {kinds}; "
                   f"ports {ports}; dump tail: {events[-10:]}")
    origin, frames_per_tick = master_grid(events)
    assert frames_per_tick == pytest.approx(TICK_FRAMES, rel=1e-3)
    errors_ms = []
    for frame in note_ons(events):
        tick = (frame - origin) / frames_per_tick
        if tick < SETTLE_BEATS * 24:
            continue
        eighth = round(tick / 12) * 12
        errors_ms.append((frame - (origin + eighth * frames_per_tick)) / RATE * 1e3)
    assert len(errors_ms) >= NOTES - 2 * SETTLE_BEATS - 4
    worst = max(abs(e) for e in errors_ms)
    median = float(np.median(np.abs(errors_ms)))
    if lost or bunched:
        warnings.warn(f"JACK lost {lost} ticks and bunched {bunched} on the way to Cadenza",
                      stacklevel=1)
    # Never a tick (25.8 ms) off the master's grid: the failure the issue saw.
    # The bound leaves room for a note chosen during a stall on a busy machine.
    assert worst < 0.3 * TICK_FRAMES / RATE * 1e3, errors_ms
    # Typically: within a JACK period (1.33 ms) and the scheduler's own lateness.
    assert median <= 1.5, errors_ms
