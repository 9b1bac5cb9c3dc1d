"""Cadenza following a third-party master through JACK: Debian's jack_midi_clock.

jack_midi_clock (package jack-midi-clock) sends ticks at exact frames from
JACK transport; Cadenza follows them in ``continue`` mode on the 1/8 grid,
and one ``jack_midi_dump -a`` hears both the master's ticks and Cadenza's
notes, timestamped on the same JACK frame clock.  The test asserts that
every note lands on the master's own tick for its eighth (the issue: a
follower that counted ticks drifted a whole tick, or five, off it when JACK
lost or bunched them; on a noisy machine the time-counting follower did the
same, reading each JACK stall as lost ticks, and one that counted its first
few ticks one each lost the count for good when the master skipped one at
Start), and that the median note is within a millisecond or so.  A count
gone wrong anywhere moves every later note by a whole tick (25.8 ms), four
times the bound.

It runs twice: on the machine as it is, and in an xrun storm
(``testing/xrun_storm.py``: bursts of CPU taken from every core at the highest
real-time priority, thousands of xruns a minute, as on the noisy machines
CI runs on), so the noisy case is tested every run, not only when the
machine happens to be noisy.

The server is real-time where that is allowed (root, or an rtprio limit):
far fewer xruns lose MIDI.  Every wait is on a condition with a timeout.
Only notes that the machine itself moved are left out of the worst-note
bound, and counted: one the scheduler sent late (its thread waited for a
CPU), or one that a stall caught on its way (JACK's lag grew before the
next tick).

Not asserted, only reported: where the ticks Cadenza got sit against the
dump's, on the master's time line as ``JackLag`` reconstructs it.  In an
xrun storm the dump's frame clock and JACK transport part by a period at
many xruns, so that line creeps against the dump's frames by a few ms a
beat, and steps, while every note still lands on its eighth: measured, 13
of 13 storm runs, steps of 12-56 ms and every note within 6.1 ms (1.9 ms
once the count at Start was mended).  An earlier version of this test
failed such runs (xfail), though the answers were right.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import warnings

import numpy as np
import pytest

from cadenza.config import LiveConfig
from testing.fake_predictor import FakePredictor
from testing.jack_harness import (
    RATE,
    background_process,
    jack_ports,
    machine_moved,
    note_on_frames,
    read_midi_dump,
    recording_ticks,
    running_daemon,
    transport,
    wait_for,
    wire_clock_master,
)
from testing.xrun_storm import xrun_storm
from tests.support.jack_server import JackServer, jack_environment, require_jackd

VOCAB = ["C4", "D4", "E4", "F4", "G4", "A4", "B4", "C5"]
MASTER_BPM = 97.0
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


def master_ticks(events) -> dict[int, int]:
    """The frame of each master tick the dump heard, numbered from Start by time:
    after an xrun jack_midi_clock skips the tick of the cycle it missed, and the
    dump may miss one too."""
    start = next(f for f, d in events if d == [0xFA])
    frames = [f for f, d in events if d == [0xF8] and f >= start]
    numbered = {0: frames[0]}
    number = 0
    for before, frame in zip(frames, frames[1:], strict=False):
        number += max(1, round((frame - before) / TICK_FRAMES))
        numbered[number] = frame
    return numbered


@contextlib.contextmanager
def _machine(noise: str):
    if noise == "quiet":
        yield
        return
    try:
        with xrun_storm(seconds=60.0):
            yield
    except PermissionError as err:
        pytest.skip(str(err))


@pytest.mark.jack
@pytest.mark.parametrize("noise", ["quiet", "xrun storm"])
def test_answers_land_on_jack_midi_clocks_eighths(rt_jack, tmp_path, noise):
    env = {**os.environ, **rt_jack.env}
    dump = tmp_path / "dump.txt"
    live = LiveConfig(api="jack", clock="midi", mode="continue", grid="1/8", bpm=120.0,
                      channel=1)
    with background_process(["jack_midi_dump", "-a", "cadenza-dump"], env, dump), \
         background_process(["jack_midi_clock", "-b", str(MASTER_BPM), "-B"], env, tmp_path / "mclk.log"), \
         running_daemon(FakePredictor(VOCAB), live) as daemon, contextlib.ExitStack() as stack, \
         _machine(noise):
        stats = daemon.engine.clock.tracker
        ticks = stack.enter_context(recording_ticks(daemon.engine.clock))
        wire_clock_master(env, "cadenza-dump")
        transport(env, "locate 0")
        transport(env, "play")  # the master starts after Cadenza is up, as in the issue
        heard = wait_for(lambda: len(note_on_frames(read_midi_dump(dump))) >= NOTES, timeout=40)
        transport(env, "stop")
        lost, bunched = stats.lost, stats.bunched
        kinds = (sorted({m.type for _, m in daemon.heard}), daemon.engine.stats()["predictions"],
                 stats.count, stats.period, stats.lost, stats.bunched, stats.reseeds)
        sends = [(due, sent) for due, sent, m in daemon.scheduler.recent
                 if m.type == "note_on" and m.velocity > 0]
        ports = jack_ports(env)
    events = read_midi_dump(dump)
    assert heard, (f"only {len(note_on_frames(events))} notes heard; Cadenza heard {kinds}; "
                   f"ports {ports}; dump tail: {events[-10:]}")
    master = master_ticks(events)
    # Reported, not asserted (see the module's docstring): each tick Cadenza
    # got, on the master's time line as JackLag reconstructs it, against the
    # dump's frame for the master's tick of the same number, beat by beat.
    offsets = [(now - lag) - master[count] / RATE for now, lag, count in ticks
               if count >= SETTLE_BEATS * 24 and count in master]
    # Most of Cadenza's ticks find the dump's tick of the same number: the two
    # numberings agree, so the report means something.  In a storm the dump's
    # own numbering (by time) parts from Cadenza's at its gaps: 85-100% of the
    # ticks matched in storm runs on an Intel Xeon, so the floor is a half,
    # and the share is reported.
    judged_ticks = len(ticks) - SETTLE_BEATS * 24
    assert len(offsets) > 0.5 * judged_ticks, (len(offsets), len(ticks))
    beats = [float(np.median(offsets[i:i + 24])) for i in range(0, len(offsets) - 23, 24)]
    interval = TICK_FRAMES / RATE
    steps = [abs(b - a) for a, b in zip(beats, beats[1:], strict=False)]
    timeline = (f"{len(offsets)} of {judged_ticks} ticks matched the dump's; "
                f"ticks on the master's time line: largest step between beats "
                f"{max(steps, default=0.0) * 1e3:.1f} ms, JACK lag {ticks[0][1] * 1e3:.1f} -> "
                f"{ticks[-1][1] * 1e3:.1f} ms")
    if noise != "quiet":
        # The storm took hold: JACK's frame clock fell behind, or ticks were lost.
        assert ticks[-1][1] > 0.005 or lost > 0, timeline
    # Each note against the master's own tick for its eighth.
    eighths = {k: f for k, f in master.items() if k % 12 == 0 and k >= SETTLE_BEATS * 24}
    notes = note_on_frames(events)
    errors_ms = []
    for frame in notes:
        nearest = min(eighths, key=lambda k: abs(eighths[k] - frame))
        if abs(eighths[nearest] - frame) < 6 * TICK_FRAMES:
            errors_ms.append((frame - eighths[nearest]) / RATE * 1e3)
        else:
            errors_ms.append(None)  # before the judged part, or after the master stopped
    # The sends and the dump's notes are the same notes in the same order when
    # none was lost on the way; otherwise no note is excused.
    moved = machine_moved(sends, ticks) if len(sends) == len(notes) else [False] * len(notes)
    judged = [abs(e) for e, m in zip(errors_ms, moved, strict=True) if e is not None and not m]
    excused = [round(e, 1) for e, m in zip(errors_ms, moved, strict=True) if e is not None and m]
    if lost or bunched or excused:
        warnings.warn(f"JACK lost {lost} ticks and bunched {bunched} on the way to Cadenza; "
                      f"{len(excused)} notes moved by the machine: {excused} ms; {timeline}",
                      stacklevel=1)
    bound = 0.3 * interval * 1e3
    # Never a tick (25.8 ms) off the master's grid; the bound leaves room for
    # a note chosen during a stall.
    timed = sum(e is not None for e in errors_ms)
    assert timed >= NOTES - 2 * SETTLE_BEATS - 4
    assert len(judged) >= timed // 2 and max(judged) < bound, (errors_ms, moved, timeline)
    # Typically: within a JACK period (1.33 ms) and the scheduler's own lateness.
    late_ms = [(sent - due) * 1e3 for due, sent in sends] if len(sends) == len(notes) else [0.0]
    assert float(np.median(judged)) <= 1.5 + max(0.0, float(np.median(late_ms))), (errors_ms, late_ms)
