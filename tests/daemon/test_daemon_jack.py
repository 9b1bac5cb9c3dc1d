"""The daemon end to end on a real JACK server (dummy driver, 48 kHz, 64 frames).

A test client plays into ``Cadenza In`` and listens on ``Cadenza Out``.  The
daemon runs in this process with the real engine and a fake model (so the
expected notes are known), except the SIGTERM test, which runs
``python -m cadenza live`` on a tiny real bundle as a subprocess.  Every wait
is on a condition with a timeout; times are compared on time.monotonic(),
which the daemon and the client share.
"""

from __future__ import annotations

import contextlib
import logging
import os
import signal
import subprocess
import sys
import threading
import time
import warnings
from dataclasses import replace
from pathlib import Path

import mido
import numpy as np
import pytest

from cadenza.config import LiveConfig
from cadenza.live.daemon.daemon import Daemon
from testing.fake_predictor import FakePredictor
from tests.support.jack_server import (
    PERIOD_SECONDS,
    JackServer,
    MidiClient,
    jack_environment,
    require_jackd,
    require_quiet_machine,
    sounding_notes,
)
from tests.support.live_settings import mechanical

REPO = Path(__file__).resolve().parents[2]
VOCAB = ["C4", "D4", "E4", "F4", "G4", "A4", "B4", "C5"]
BPM = 200.0
BEAT = 60.0 / BPM
STEP = BEAT / 2  # grid 1/8
# Two beats of silence make a pause: long enough that a busy machine holding
# the performer's notes back for a moment does not make Cadenza answer early.
PAUSE_BEATS = 2.0
# JACK moves MIDI once per period, at both ends; the rest is scheduling noise.
TOLERANCE = 3 * PERIOD_SECONDS + 0.003
# A busy machine (CPU-bound jobs beside a JACK server that is not real-time)
# now and then holds a message for a scheduler slice or two: single messages
# may take stall() longer, the median must stay within tolerance().
STALL = 0.05
# With more runnable work than cores, no timing below a few scheduler slices
# can be promised: messages are judged by these instead.
BUSY_TOLERANCE = 0.05
BUSY_STALL = 0.25


def busy() -> bool:
    """More runnable work than cores (say, other jobs training models beside
    the tests).  Timing is then judged loosely, with a warning; the musical
    assertions (which notes, due on which grid step) stay exact."""
    load, cpus = os.getloadavg()[0], os.cpu_count() or 1
    if load < cpus:
        return False
    warnings.warn(f"load average {load:.1f} on {cpus} CPUs: timing judged loosely", stacklevel=3)
    return True


def tolerance() -> float:
    return BUSY_TOLERANCE if busy() else TOLERANCE


def stall() -> float:
    return BUSY_STALL if busy() else STALL


CALL = [60, 62, 64, 65]  # C4 D4 E4 F4: the fake model answers G4 A4 B4 C5


def settings(**changes) -> LiveConfig:
    base = mechanical(
        api="jack", bpm=BPM, grid="1/8", pause_beats=PAUSE_BEATS, mode="call-response",
        channel=1,
    )
    return replace(base, **changes)


@contextlib.contextmanager
def running(live: LiveConfig, predictor=None, **kwargs):
    """A daemon on the JACK server, supervised on a thread; stopped on exit."""
    daemon = Daemon(predictor or FakePredictor(VOCAB), live, **kwargs)
    daemon.start()
    result: dict[str, int] = {}
    supervisor = threading.Thread(
        target=lambda: result.setdefault("status", daemon.run()), name="supervisor"
    )
    supervisor.start()
    try:
        yield daemon, result
    finally:
        daemon.request_stop("test over")
        supervisor.join(10)
        assert not supervisor.is_alive(), "the daemon did not stop"


def play(client: MidiClient, notes, length: float = 0.08, gap: float = 0.04,
         sent: list[float] | None = None) -> float:
    """Play ``notes`` one after another; returns when the last key was released.
    ``sent`` collects the send time of every message."""
    sent = [] if sent is None else sent
    for note in notes:
        sent.append(client.send(mido.Message("note_on", note=note, velocity=90)))
        time.sleep(length)  # the performer's own rhythm, not a wait for a result
        sent.append(client.send(mido.Message("note_off", note=note)))
        time.sleep(gap)
    return sent[-1]


def note_ons(client: MidiClient, after: float = 0.0) -> list[tuple[float, mido.Message]]:
    return [(t, m) for t, m in client.messages("note_on") if m.velocity > 0 and t >= after]


def timeline(client: MidiClient, origin: float) -> str:
    """What the client heard, in ms from ``origin`` (for failure messages)."""
    return "\n".join(f"{(t - origin) * 1e3:9.1f} ms {m}" for t, m in client.messages())


def grid_error(at: float, origin: float, step: float) -> float:
    steps = (at - origin) / step
    return abs(steps - round(steps)) * step


def test_the_daemon_path_imports_no_training_libraries():
    code = (
        "import sys, cadenza.cli, cadenza.live.daemon.daemon, cadenza.runtime, cadenza.live.midi.ports\n"
        "import cadenza.live.daemon.command, cadenza.live.offline.simulate\n"
        "heavy = [m for m in ('tensorflow', 'keras', 'music21', 'matplotlib') if m in sys.modules]\n"
        "assert not heavy, heavy\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True, cwd=REPO, timeout=60)


# -- on JACK, in process --------------------------------------------------------


def eventually(predicate, timeout: float = 5.0) -> bool:
    """Poll ``predicate`` (a log line, a counter) until true or the timeout."""
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            return False
        threading.Event().wait(0.02)
    return True


def sent_note_ons(daemon: Daemon) -> list[tuple[float, float, mido.Message]]:
    """(due, sent at, message) of the note-ons the scheduler sent."""
    return [r for r in list(daemon.scheduler.recent) if r[2].type == "note_on" and r[2].velocity]


def missing_notes(daemon: Daemon) -> int:
    """Notes a stalled machine made Cadenza skip or drop (0 on a healthy run)."""
    return daemon.scheduler.dropped + daemon.engine.stats()["skipped_late"]


def answer_done(daemon: Daemon, client: MidiClient, notes: int, before: int = 0) -> bool:
    """Cadenza has sent (or had to skip) ``notes`` answer notes since ``before``
    were sent, released them all, and the client heard every note-off."""
    sent = len(sent_note_ons(daemon)) + missing_notes(daemon) - before
    return sent >= notes and len(daemon.ledger) == 0 and sounding_notes(client.messages()) == set()


def check_delivery(daemon: Daemon, client: MidiClient, after: float = 0.0) -> list[float]:
    """Each note-on the client heard left on its due time and crossed JACK in time;
    returns their due times.

    The median delay from due time to arrival is within JACK's period at both
    ends plus scheduling noise; a single note may take up to ``stall()`` more
    than the lateness the scheduler measured for it (a busy machine).  The
    grid itself is checked on the due times.  (A JACK server starved of CPU
    may lose a message: a note not heard is skipped.)
    """
    sent = [r for r in sent_note_ons(daemon) if r[0] >= after]
    heard = note_ons(client, after)
    assert heard, "the client heard no note"
    due_times, delays = [], []
    k = 0
    for arrived, message in heard:
        while k < len(sent) and sent[k][2].note != message.note:
            k += 1
        assert k < len(sent), f"heard {message} that Cadenza did not send"
        due, sent_at, _ = sent[k]
        k += 1
        assert due <= arrived <= due + stall() + max(0.0, sent_at - due), (arrived - due, sent_at - due)
        due_times.append(due)
        delays.append(arrived - due)
    assert np.median(delays) <= tolerance(), delays
    return due_times


@pytest.mark.jack
def test_answers_in_the_pause_on_the_beat_grid(jack_server, tmp_path, caplog):
    record = tmp_path / "session.mid"
    caplog.set_level(logging.INFO, logger="cadenza.live.daemon.daemon")
    live = settings(record=str(record), stats_interval=0.25)
    with running(live) as (daemon, _), MidiClient() as client:
        played: list[float] = []
        call_end = play(client, CALL, sent=played)
        assert client.wait_for(lambda _: answer_done(daemon, client, 4), timeout=5), \
            timeline(client, call_end)
        # Cadenza timestamped the call as it arrived, a JACK period or so after it was sent.
        arrived = [t for t, m in daemon.heard]
        assert len(arrived) == len(played)
        assert np.median(np.subtract(arrived, played)) <= tolerance()
        release = arrived[-1]
        check_delivery(daemon, client)
        due = [d for d, _, _ in sent_note_ons(daemon)]
        heard = [m.note for _, m in note_ons(client)]
        if not missing_notes(daemon) and len(heard) == 4:
            assert heard == [67, 69, 71, 72]
        else:  # a stalled machine: what was played is still the right notes, in order
            assert heard == [n for n in [67, 69, 71, 72] if n in heard]
        # The answer starts on the first grid step a pause (pause_beats) after
        # the last release, and every onset is on the 1/8 grid.
        first_step = np.ceil((release + PAUSE_BEATS * BEAT - daemon.start_time) / STEP - 1e-9)
        # (A note a stalled machine skipped or dropped moves the first one heard on.)
        assert any(abs(due[0] - (daemon.start_time + (first_step + k) * STEP)) < 1e-6
                   for k in range(missing_notes(daemon) + 1)), (due[0], first_step)
        for at in due:
            assert grid_error(at, daemon.start_time, STEP) < 1e-6
        assert eventually(lambda: any(
            "predictions/s" in r.getMessage() and "send lateness" in r.getMessage()
            and not r.getMessage().startswith("stats: 0.0") for r in caplog.records
        ))
    recorded = mido.MidiFile(record)
    onsets = {}
    for track in recorded.tracks:
        name = next((m.name for m in track if m.type == "track_name"), "")
        onsets[name] = sum(1 for m in track if m.type == "note_on" and m.velocity)
    assert onsets["Performer"] == 4 and onsets["Cadenza"] == len(sent_note_ons(daemon))


def master_beat(ticks: list[float], at: float, window: int) -> tuple[float, float]:
    """The master's beat at ``at`` and its seconds per beat, as a follower sees
    ``ticks`` (arrival times, the first one after Start is beat 0): a straight
    line through the last ``window`` ticks before the note was chosen."""
    chosen = at - 0.02  # the engine's lookahead
    numbers = [k for k, t in enumerate(ticks) if t <= chosen][-window:]
    slope, intercept = np.polyfit([ticks[k] for k in numbers], numbers, 1)
    return (slope * at + intercept) / 24.0, 1.0 / (slope / 24.0)


@pytest.mark.jack
def test_follows_a_midi_clock_and_stop_releases_everything(jack_server):
    bpm = 150.0
    tick = 60.0 / (bpm * 24)
    window = 24
    live = settings(clock="midi", bpm=120.0, clock_window=window)
    with running(live) as (daemon, _), MidiClient() as client:
        stop_ticking = threading.Event()
        ticks: list[float] = []

        def master() -> None:
            # A clock master: Start, then 24 ticks per beat on a steady schedule
            # (to a millisecond or so: no spinning here, the GIL is shared).
            client.send(mido.Message("start"))
            began = time.monotonic() + 0.01
            k = 0
            while not stop_ticking.is_set():
                due = began + k * tick
                stop_ticking.wait(max(0.0, due - time.monotonic()))
                if stop_ticking.is_set():
                    break
                ticks.append(client.send(mido.Message("clock")))
                k += 1

        ticker = threading.Thread(target=master, name="master")
        ticker.start()
        try:
            # Let the follower lock on (a beat of ticks), then play a phrase.
            assert eventually(lambda: len(ticks) >= 30)
            call_end = play(client, CALL + [67, 69, 71, 72], length=0.06, gap=0.03)
            assert client.wait_for(
                lambda _: len(sent_note_ons(daemon)) + missing_notes(daemon) >= 3
                and len(note_ons(client)) >= 1, timeout=5,
            ), (timeline(client, call_end), [(t - call_end, m) for t, m in daemon.heard
                                             if m.type != "clock"], missing_notes(daemon))
            stop_ticking.set()
            ticker.join(5)
            stopped_at = client.send(mido.Message("stop"))
            # Stop: every sounding note gets its note-off, and nothing new starts.
            assert client.wait_for(lambda got: sounding_notes(got) == set(), timeout=5), (
                timeline(client, stopped_at), len(daemon.ledger),
                [(d - stopped_at, a - stopped_at, m) for d, a, m in daemon.scheduler.recent
                 if m.type.startswith("note")][-12:])
            assert not client.wait_for(
                lambda _: note_ons(client, after=stopped_at + stall()), timeout=0.5
            ), note_ons(client, after=stopped_at)
            # Answer notes spaced by the master's tempo, not Cadenza's own 120
            # BPM, and on the 1/8 grid of its beat (a line through its ticks as
            # sent).  A JACK server starved of CPU delivers ticks in a burst (no
            # follower can then know the beat closely: one note of three may be
            # off by up to stall()) or loses some (MIDI clock counts ticks: the
            # beat itself moves, and only the tempo can be judged).
            check_delivery(daemon, client)
            due = [d for d, _, _ in sent_note_ons(daemon)[:3]]
            assert abs(np.median(np.diff(due)) - 60.0 / bpm / 2) <= 2 * tolerance(), np.diff(due)
            heard = [t for t, m in daemon.heard if m.type == "clock"]
            assert np.median([h - s for h, s in zip(heard[:30], ticks[:30], strict=True)]) \
                <= tolerance()
            if len(heard) == len(ticks):
                off_grid = []
                for at in due:
                    beat, seconds_per_beat = master_beat(ticks, at, window)
                    off_grid.append(abs(beat * 2 - round(beat * 2)) / 2 * seconds_per_beat)
                assert max(off_grid) <= stall() and np.median(off_grid) <= 2 * tolerance(), off_grid
            else:
                warnings.warn(f"JACK lost {len(ticks) - len(heard)} clock ticks", stacklevel=1)
        finally:
            stop_ticking.set()
            ticker.join(5)


@pytest.mark.jack
def test_clock_out_sends_start_ticks_and_stop(jack_server):
    # The listener's port exists first and Cadenza connects to it (--out), so
    # it hears the Start that opens the session.
    with MidiClient(play_to=None, listen_to="Clock Sink", virtual=True) as client:
        live = settings(clock_out=True, bpm=125.0, out_port="clock sink")
        with running(live) as (daemon, _):
            assert client.wait_for(lambda got: len(client.messages("clock")) >= 48, timeout=5)
        assert client.wait_for(lambda got: client.messages("stop") != [], timeout=5)
    kinds = [m.type for _, m in client.messages()]
    assert kinds[0] == "start" and kinds[-1] == "stop"
    period = 60.0 / (125.0 * 24)
    sent = [(due, at) for due, at, m in daemon.scheduler.recent if m.type == "clock"]
    heard = [at for at, _ in client.messages("clock")]
    assert len(sent) >= 48 and len(heard) >= 0.9 * len(sent)
    # Tick k is due k/24 beats after the first beat, and reaches the listener
    # within JACK's period (plus whatever lateness the scheduler measured).
    for k, (due, _) in enumerate(sent):
        assert abs(due - (daemon.start_time + k * period)) < 1e-6
    delays = []
    for arrived in heard:
        due, sent_at = max((d, a) for d, a in sent if a <= arrived)  # the latest sent before
        assert arrived - due <= stall() + max(0.0, sent_at - due)
        delays.append(arrived - due)
    assert np.median(delays) <= tolerance()
    assert abs(np.median(np.diff(heard)) - period) < PERIOD_SECONDS


@pytest.mark.jack
def test_duration_ends_a_scripted_run(jack_server):
    daemon = Daemon(FakePredictor(VOCAB), settings())
    daemon.start()
    started = time.monotonic()
    assert daemon.run(duration=0.3) == 0
    assert 0.3 <= time.monotonic() - started < 3.0
    assert not daemon.ports.connected


@pytest.mark.jack
def test_engine_failure_releases_notes_and_exits_non_zero(jack_server, caplog):
    class Failing(FakePredictor):
        fail = False

        def distribution(self):
            # Fails once an answer note has sounded: at the next choice, or
            # at the daemon's prepare() for it in the idle time before.
            if self.fail:
                raise RuntimeError("model exploded")
            return super().distribution()

    predictor = Failing(VOCAB)
    with running(settings(), predictor) as (daemon, result), MidiClient() as client:
        play(client, CALL)
        assert client.wait_for(lambda got: len(note_ons(client)) >= 1, timeout=5)
        predictor.fail = True
        assert client.wait_for(
            lambda got: sounding_notes(got) == set()
            and any(m.type == "control_change" and m.control == 120 for _, m in got),
            timeout=5,
        ), client.messages()
        assert daemon.started.is_set()
    assert result["status"] == 1
    errors = [r for r in caplog.records if r.levelno >= logging.ERROR]
    assert len(errors) == 1 and "model exploded" in errors[0].getMessage()


@pytest.mark.jack
def test_reload_changes_the_tempo_of_the_next_answer(jack_server):
    faster = settings(bpm=BPM * 1.5)
    with running(settings(), reload_settings=lambda current: faster) as (daemon, _), \
            MidiClient() as client:
        daemon.request_reload()
        assert eventually(lambda: daemon.engine.bpm == BPM * 1.5)
        call_end = play(client, CALL)
        assert client.wait_for(lambda _: answer_done(daemon, client, 4), timeout=5), (
            timeline(client, call_end), list(daemon.heard), missing_notes(daemon),
            sent_note_ons(daemon), len(daemon.ledger))
        check_delivery(daemon, client)
        due = [d for d, _, _ in sent_note_ons(daemon)]
        step = 60.0 / (BPM * 1.5) / 2
        for at in due:
            assert abs((at - due[0]) / step - round((at - due[0]) / step)) < 1e-6
        assert round((due[-1] - due[0]) / step) == len(due) - 1 + missing_notes(daemon)


@pytest.mark.jack
def test_release_echo_repeats_each_note_off_once_cadenza_is_silent(jack_server):
    echo_ms = 150.0
    with running(settings(release_echo_ms=echo_ms)) as (daemon, _), MidiClient() as client:
        call_end = play(client, CALL)

        def call_length() -> int:
            # A JACK server that is not real-time may lose a note of the call:
            # the answer is as long as the call Cadenza heard.
            return sum(1 for _, m in daemon.heard if m.type == "note_on" and m.velocity)

        assert client.wait_for(
            lambda _: answer_done(daemon, client, call_length()), timeout=5
        ), (timeline(client, call_end), list(daemon.heard))
        answered = {m.note for _, m in note_ons(client, after=call_end)}

        def offs(got):
            return [(t, m.note) for t, m in got
                    if m.type == "note_off" or (m.type == "note_on" and not m.velocity)]

        assert client.wait_for(lambda got: len(offs(got)) >= 2 * len(answered), timeout=5), \
            timeline(client, call_end)
        heard = offs(client.messages())
        first, echo = heard[:len(answered)], heard[len(answered):]
        assert sorted(note for _, note in echo) == sorted(answered)
        # All at once, the echo delay after the last note-off (JACK moves
        # both a period or so late).
        gap = min(t for t, _ in echo) - max(t for t, _ in first)
        assert echo_ms / 1e3 - tolerance() <= gap <= echo_ms / 1e3 + stall() + tolerance()
        assert daemon.echoes == len(answered)


@pytest.mark.jack
def test_reconnects_after_the_jack_server_restarts():
    require_jackd()
    require_quiet_machine()
    with JackServer() as server, jack_environment(server), \
            running(settings()) as (daemon, _):
        with MidiClient() as client:
            call_end = play(client, CALL)
            assert client.wait_for(lambda _: answer_done(daemon, client, 4), timeout=5), (
                timeline(client, call_end), list(daemon.heard), missing_notes(daemon),
                sent_note_ons(daemon), len(daemon.ledger))
        before = len(sent_note_ons(daemon)) + missing_notes(daemon)
        server.kill()
        # This process is about to open a JACK client of its own: libjack
        # crashes closing a dead server's clients once a new one has opened,
        # so the daemon must have closed its own first.  (A daemon alone
        # closes before it reopens.)
        assert eventually(lambda: daemon.ports.server_losses == 1, timeout=10), \
            "the daemon did not close its ports after the JACK server died"
        server.start()
        # The daemon notices, reopens its ports; a new client finds them.
        with MidiClient(timeout=10) as client:
            play(client, CALL)
            assert client.wait_for(lambda _: answer_done(daemon, client, 4, before), timeout=5)
            heard = [m.note for _, m in note_ons(client)]
            assert heard and heard == [n for n in [67, 69, 71, 72] if n in heard]


# -- the real command, as a subprocess ------------------------------------------


@pytest.mark.jack
@pytest.mark.slow
def test_sigterm_mid_answer_leaves_no_note_sounding(jack_server, tiny_bundles, tmp_path):
    config = tmp_path / "config.toml"
    config.write_text("[live]\npause_beats = 1\nbpm = 200\ngrid = \"1/8\"\nmax_answer_notes = 32\n")
    command = [
        sys.executable, "-m", "cadenza", "--config", str(config), "live",
        "--model", str(tiny_bundles["default"]), "--api", "jack",
    ]
    log_path = tmp_path / "daemon.log"
    with log_path.open("w") as log_file:
        daemon = subprocess.Popen(command, cwd=tmp_path, stdout=log_file, stderr=subprocess.STDOUT)

    def output() -> str:
        return log_path.read_text(errors="replace")

    try:
        try:
            client = MidiClient(timeout=20)
        except TimeoutError as err:
            raise AssertionError(f"the daemon opened no ports:\n{output()}") from err
        with client:
            # SIGHUP re-reads the file (the ports are open, so the handlers are in place).
            config.write_text(config.read_text().replace("bpm = 200", "bpm = 210"))
            daemon.send_signal(signal.SIGHUP)
            play(client, [60, 62, 64, 65, 67, 65, 64, 62, 60, 62, 64, 65], length=0.05, gap=0.02)
            assert client.wait_for(lambda got: len(note_ons(client)) >= 2, timeout=10), output()
            daemon.send_signal(signal.SIGTERM)
            assert daemon.wait(15) == 0, output()
            assert client.wait_for(lambda got: sounding_notes(got) == set(), timeout=5), output()
            controls = [m.control for _, m in client.messages("control_change")]
            assert controls[-2:] == [123, 120]
        assert "SIGTERM received" in output() and "settings reloaded" in output()
    finally:
        if daemon.poll() is None:
            daemon.kill()
            daemon.wait(5)
