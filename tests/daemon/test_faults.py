"""Faults: a scheduler far behind, a synth that vanishes, SIGKILL, recording paths.

Covered elsewhere, and not repeated here: the model raising mid-answer
(tests/daemon/test_daemon_jack.py::test_engine_failure_releases_notes_and_exits_non_zero)
and the JACK server dying and coming back
(tests/daemon/test_daemon_jack.py::test_reconnects_after_the_jack_server_restarts,
tests/midi/test_ports.py::test_ports_notice_a_jack_restart_and_come_back).
"""

from __future__ import annotations

import errno
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import mido
import pytest

from cadenza.cli import main
from cadenza.errors import MidiFileError
from cadenza.live.daemon.daemon import Daemon
from cadenza.live.daemon.recorder import Recorder, check_writable
from cadenza.live.daemon.scheduler import DROP_LATE, Scheduler
from cadenza.live.engine.engine import Event
from testing.fake_predictor import FakePredictor
from tests.daemon.test_daemon_jack import CALL, VOCAB, eventually, note_ons, play, running, settings
from tests.support.jack_server import MidiClient, sounding_notes

REPO = Path(__file__).resolve().parents[2]


# -- the scheduler far behind (a fake clock: no waiting) ------------------------


def test_a_scheduler_far_behind_drops_late_note_ons_instead_of_bunching_them():
    sent: list[tuple[float, mido.Message]] = []
    now = [0.0]
    scheduler = Scheduler(lambda m: sent.append((now[0], m)), clock=lambda: now[0])
    step = 0.125
    events = []
    for k in range(16):  # two bars of eighths, each note held for most of its step
        events.append(Event(k * step, mido.Message("note_on", note=60 + k, velocity=90)))
        events.append(Event(k * step + 0.1, mido.Message("note_off", note=60 + k)))
    scheduler.submit(events)
    # The machine stalls for a second, then the scheduler catches up at once
    # (just before the ninth note is due).
    now[0] = 0.99
    scheduler.run_due(now[0])
    late_ons = [m for t, m in sent if m.type == "note_on"]
    assert late_ons == []  # not a burst of eight notes at t = 0.99
    assert scheduler.dropped == 8
    # Every note-off went out (harmless for a note never started; a lost one sticks).
    assert [m.note for _, m in sent if m.type == "note_off"] == list(range(60, 68))
    # From then on it is on time again: each later note at its own time.
    for k in range(8, 16):
        now[0] = k * step + DROP_LATE / 2  # a little late, within the limit
        scheduler.run_due(now[0])
    ons = [(t, m.note) for t, m in sent if m.type == "note_on"]
    assert [n for _, n in ons] == list(range(68, 76))
    assert all(b - a >= step - 1e-9 for (a, _), (b, _) in zip(ons, ons[1:], strict=False))
    assert scheduler.dropped == 8


def test_a_note_on_just_within_the_limit_is_still_sent():
    sent = []
    scheduler = Scheduler(sent.append, clock=lambda: 0.0)
    scheduler.submit([Event(0.0, mido.Message("note_on", note=60, velocity=90))])
    scheduler.run_due(DROP_LATE * 0.99)
    assert len(sent) == 1 and scheduler.dropped == 0


# -- recording ---------------------------------------------------------------------


def test_an_unwritable_record_path_fails_before_any_port_opens(tmp_path):
    blocker = tmp_path / "not-a-folder"
    blocker.write_text("a file where a folder should be")
    target = blocker / "session.mid"
    daemon = Daemon(FakePredictor(VOCAB), settings(record=str(target)))
    with pytest.raises(MidiFileError, match="session.mid"):
        daemon.start()
    assert not daemon.started.is_set()
    assert not daemon.ports.output_open and not daemon.ports.connected


def test_a_folder_is_no_record_path(tmp_path):
    with pytest.raises(MidiFileError, match="is a folder"):
        check_writable(tmp_path)
    assert check_writable(tmp_path / "new" / "take.mid") == tmp_path / "new" / "take.mid"


def test_a_failed_save_keeps_the_earlier_recording_and_leaves_no_temporary(tmp_path, monkeypatch):
    path = tmp_path / "take.mid"
    first = Recorder(120.0)
    first.add(0.0, mido.Message("note_on", note=60, velocity=90))
    first.add(0.5, mido.Message("note_off", note=60))
    first.save(path)
    before = path.read_bytes()

    def disk_full(self, filename=None, file=None):
        Path(filename).write_bytes(b"MThd\0\0")  # part of a file, then the disk is full
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(mido.MidiFile, "save", disk_full)
    second = Recorder(120.0)
    second.add(0.0, mido.Message("note_on", note=62, velocity=90))
    with pytest.raises(MidiFileError, match="take.mid.*No space left"):
        second.save(path)
    assert path.read_bytes() == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["take.mid"]


# -- on JACK ---------------------------------------------------------------------------


@pytest.mark.jack
def test_the_synth_vanishing_mid_phrase_and_coming_back(jack_server):
    """The synth's port goes away while Cadenza answers: Cadenza keeps running,
    reconnects when it is back, silences it (CC 123, CC 120) and answers again."""
    keys = MidiClient(play_to="Vanish Keys", listen_to=None, virtual=True, name="Keys")
    try:
        synth = MidiClient(play_to=None, listen_to="Vanish Synth", virtual=True, name="Synth")
        live = settings(in_port="vanish keys", out_port="vanish synth", max_answer_notes=16)
        with running(live) as (daemon, result):
            play(keys, CALL)
            assert synth.wait_for(lambda _: len(note_ons(synth)) >= 1, timeout=10)
            synth.close()  # unplugged mid-phrase
            assert eventually(lambda: not daemon.ports.output_open, timeout=5)
            # The answer goes on being chosen with nowhere to go; nothing fails.
            synth = MidiClient(play_to=None, listen_to="Vanish Synth", virtual=True, name="Synth")
            assert eventually(lambda: daemon.ports.output_open, timeout=5)
            controls = lambda: {m.control for _, m in synth.messages("control_change")}  # noqa: E731
            assert synth.wait_for(lambda _: {120, 123} <= controls(), timeout=5)
            assert daemon.failure is None
            synth.clear()
            play(keys, CALL)
            assert synth.wait_for(lambda _: len(note_ons(synth)) >= 2, timeout=10)
        assert result["status"] == 0
        assert synth.wait_for(lambda got: sounding_notes(got) == set(), timeout=5)
        assert len(daemon.ledger) == 0
    finally:
        keys.close()
        synth.close()


DAEMON = textwrap.dedent("""
    import sys
    from cadenza.config import LiveConfig
    from cadenza.live.daemon.daemon import Daemon
    from testing.fake_predictor import FakePredictor

    live = LiveConfig(api="jack", in_port="kill keys", out_port="kill synth", bpm=40.0,
                      grid="1/4", pause_beats=0.5, mode="call-response", max_answer_notes=16)
    daemon = Daemon(FakePredictor({vocab!r}), live)
    daemon.start()
    print("ready", flush=True)
    sys.exit(daemon.run())
""")


@pytest.mark.jack
def test_sigkill_leaves_notes_hanging_until_cadenza_panic(jack_server):
    """SIGKILL cannot be caught: the note sounding at that moment hangs at the
    listener; ``cadenza panic --out NAME`` ends it (and everything else)."""
    keys = MidiClient(play_to="Kill Keys", listen_to=None, virtual=True, name="Keys")
    synth = MidiClient(play_to=None, listen_to="Kill Synth", virtual=True, name="Synth")
    daemon = subprocess.Popen(
        [sys.executable, "-c", DAEMON.format(vocab=VOCAB)], cwd=REPO,
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=os.environ.copy(),
    )
    try:
        assert daemon.stdout.readline().strip() == "ready", daemon.stdout.read()
        # At 40 BPM each answer note lasts most of a 1.5 s beat: kill inside one.
        play(keys, CALL, length=0.05, gap=0.02)
        assert synth.wait_for(lambda got: sounding_notes(got), timeout=10), \
            "no answer note before the kill"
        daemon.kill()
        assert daemon.wait(10) == -9
        hanging = sounding_notes(synth.messages())
        assert hanging, "the note ended before the kill; nothing to prove"
        # Nothing more comes: JACK sends no note-off for a client that vanished.
        assert not synth.wait_for(lambda got: sounding_notes(got) != hanging, timeout=0.5)
        assert main(["panic", "--out", "kill synth", "--api", "jack"]) == 0
        assert synth.wait_for(
            lambda got: sounding_notes(got) == set()
            and {(m.channel, m.control) for _, m in synth.messages("control_change")}
            >= {(ch, cc) for ch in range(16) for cc in (120, 123)},
            timeout=5,
        ), synth.messages("control_change")[-6:]
        offs = {m.note for _, m in synth.messages("note_off") if m.channel == 0}
        assert offs >= set(range(128))
    finally:
        if daemon.poll() is None:
            daemon.kill()
            daemon.wait(5)
        keys.close()
        synth.close()

