"""Cadenza following a third-party master through JACK: Debian's jack_midi_clock.

jack_midi_clock (package jack-midi-clock) sends tick k at JACK transport
frame k x interval; Cadenza follows it in ``continue`` mode on the 1/8
grid, and ``jack_transport_dump`` (``testing/jack_transport_dump.c``) hears
both the master's ticks and Cadenza's notes, each stamped with the
transport's frame: the master's own time line, on which every tick's number
and every eighth's frame are known exactly.  The test asserts that every
note lands on the master's eighth (the issue: a follower that counted ticks
drifted a whole tick, or five, off it when JACK lost or bunched them; on a
noisy machine the time-counting follower did the same, reading each JACK
stall as lost ticks, and one that counted its first few ticks one each lost
the count for good when the master skipped one at Start), and that the
median note is within a millisecond or so.  A count gone wrong anywhere
moves every later note by a whole tick (25.8 ms), four times the bound.

Why not ``jack_midi_dump -a``: it stamps events with the frames its own
client processed, and a cycle it misses is never counted, so under xruns
its clock falls behind the transport a period at a time.  A judge that
numbered the master's ticks by their gaps on that clock numbered them
wrong on the noisy Intel Xeon machines CI runs on: in 2 of 10 runs with
both dumps listening (no storm; JACK's lag grew to 271 and 73 ms) it put the
notes one and two ticks off eighths that, on the transport, they had hit
within 7.2 and 0.9 ms.

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
next tick).  Where the machine moved so many that too few are left to
judge, the run listens on for more notes (up to three times as many):
JACK's transport once fell 4.4 s behind the wall clock in a 15 s run.

Not asserted, only reported: where the ticks Cadenza got sit against the
transport's, on the master's time line as ``JackLag`` reconstructs it.
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
    recording_ticks,
    running_daemon,
    transport,
    wait_for,
    wire_clock_master,
)
from testing.transport_dump import DumpEvent, build_transport_dump, read_transport_dump, stall_moved
from testing.xrun_storm import xrun_storm
from tests.support.jack_server import JackServer, jack_environment, require_jackd

VOCAB = ["C4", "D4", "E4", "F4", "G4", "A4", "B4", "C5"]
MASTER_BPM = 97.0
TICK_FRAMES = RATE * 60.0 / (MASTER_BPM * 24)
NOTES = 40  # answer notes to judge (20 beats of 1/8 at 97 BPM: about 12 s)
SETTLE_BEATS = 2
MIN_JUDGED = 8  # notes no stall moved: fewer, and the run says nothing
# Where stalls moved so many notes that fewer were left to judge, the run
# listens on, up to this many notes (about 37 s at 97 BPM), rather than fail
# on a machine that said nothing.
MAX_NOTES = 3 * NOTES


def _require_tools() -> None:
    missing = [t for t in ("jack_midi_clock", "jack_transport", "jack_connect",
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


@pytest.fixture(scope="module")
def transport_dump(tmp_path_factory):
    """The judge's ears: jack_transport_dump, built for this run."""
    try:
        return build_transport_dump(tmp_path_factory.mktemp("transport-dump"))
    except RuntimeError as err:
        if os.environ.get("CI"):
            pytest.fail(str(err))
        pytest.skip(str(err))


def master_ticks(events: list[DumpEvent]) -> dict[int, DumpEvent]:
    """Each master tick the dump heard, by its number: the master (located to
    0) sends tick k at transport frame k x interval."""
    return {round(e.frame / TICK_FRAMES): e for e in events if e.data == [0xF8] and e.rolling}


def note_ons(events: list[DumpEvent]) -> list[DumpEvent]:
    return [e for e in events if len(e.data) > 2 and e.data[0] & 0xF0 == 0x90 and e.data[2] > 0]


def note_sends(daemon) -> list[tuple[float, float]]:
    """(due, sent) of each note-on the daemon's scheduler sent."""
    return [(due, sent) for due, sent, m in list(daemon.scheduler.recent)
            if m.type == "note_on" and m.velocity > 0]


def judge(events: list[DumpEvent], sends) -> tuple[list[float | None], list[bool]]:
    """Each note's distance in ms from the master's eighth on the transport
    (None: before the judged part, or after the master stopped), and whether
    the machine moved it (``stall_moved``)."""
    eighth = 12 * TICK_FRAMES
    master_heard = sorted(master_ticks(events).values(), key=lambda tick: tick.cycle_time)
    errors_ms, moved = [], []
    for note in note_ons(events):
        number = round(note.frame / eighth)
        if note.rolling and number * 12 >= SETTLE_BEATS * 24:
            errors_ms.append((note.frame - number * eighth) / RATE * 1e3)
        else:
            errors_ms.append(None)
        moved.append(stall_moved(note, sends, master_heard))
    return errors_ms, moved


def enough_to_judge(errors_ms: list[float | None], moved: list[bool]) -> bool:
    """Notes no stall moved: at least MIN_JUDGED, and a quarter of the timed ones."""
    timed = sum(e is not None for e in errors_ms)
    judged = sum(e is not None and not m for e, m in zip(errors_ms, moved, strict=True))
    return judged >= max(MIN_JUDGED, timed // 4)


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
def test_answers_land_on_jack_midi_clocks_eighths(rt_jack, transport_dump, tmp_path, noise):
    env = {**os.environ, **rt_jack.env}
    dump = tmp_path / "dump.txt"
    live = LiveConfig(api="jack", clock="midi", mode="continue", grid="1/8", bpm=120.0,
                      channel=1)
    with background_process([str(transport_dump), "cadenza-dump"], env, dump), \
         background_process(["jack_midi_clock", "-b", str(MASTER_BPM), "-B"], env, tmp_path / "mclk.log"), \
         running_daemon(FakePredictor(VOCAB), live) as daemon, contextlib.ExitStack() as stack, \
         _machine(noise):
        stats = daemon.engine.clock.tracker
        ticks = stack.enter_context(recording_ticks(daemon.engine.clock))
        wire_clock_master(env, "cadenza-dump")
        transport(env, "locate 0")
        transport(env, "play")  # the master starts after Cadenza is up, as in the issue
        seen = [0]

        def listened_enough() -> bool:
            events = read_transport_dump(dump)
            count = len(note_ons(events))
            if count < NOTES or count == seen[0]:
                return False
            seen[0] = count
            return count >= MAX_NOTES or enough_to_judge(*judge(events, note_sends(daemon)))

        heard = wait_for(listened_enough, timeout=70)
        transport(env, "stop")
        lost, bunched = stats.lost, stats.bunched
        kinds = (sorted({m.type for _, m in daemon.heard}), daemon.engine.stats()["predictions"],
                 stats.count, stats.period, stats.lost, stats.bunched, stats.reseeds)
        sends = note_sends(daemon)
        ports = jack_ports(env)
    events = read_transport_dump(dump)
    assert heard, (f"only {len(note_ons(events))} notes heard; Cadenza heard {kinds}; "
                   f"ports {ports}; dump tail: {events[-10:]}")
    master = master_ticks(events)
    # Reported, not asserted (see the module's docstring): each tick Cadenza
    # got, on the master's time line as JackLag reconstructs it, against the
    # transport's frame for the master's tick of the same number, beat by beat.
    offsets = [(now - lag) - master[count].frame / RATE for now, lag, count in ticks
               if count >= SETTLE_BEATS * 24 and count in master]
    # Most of Cadenza's ticks find the dump's tick of the same number (the
    # dump misses a tick now and then in a storm), so the report means
    # something; the share is reported.
    judged_ticks = len(ticks) - SETTLE_BEATS * 24
    assert len(offsets) > 0.5 * judged_ticks, (len(offsets), len(ticks))
    beats = [float(np.median(offsets[i:i + 24])) for i in range(0, len(offsets) - 23, 24)]
    interval = TICK_FRAMES / RATE
    steps = [abs(b - a) for a, b in zip(beats, beats[1:], strict=False)]
    timeline = (f"{len(offsets)} of {judged_ticks} ticks found the dump's of their number; "
                f"ticks on the master's time line: largest step between beats "
                f"{max(steps, default=0.0) * 1e3:.1f} ms, JACK lag {ticks[0][1] * 1e3:.1f} -> "
                f"{ticks[-1][1] * 1e3:.1f} ms")
    if noise != "quiet":
        # The storm took hold: JACK's frame clock fell behind, or ticks were lost.
        assert ticks[-1][1] > 0.005 or lost > 0, timeline
    # Each note against the master's eighth on the transport, from the second
    # beat after Start while the transport rolled.
    errors_ms, moved = judge(events, sends)
    judged = [abs(e) for e, m in zip(errors_ms, moved, strict=True) if e is not None and not m]
    excused = [round(e, 1) for e, m in zip(errors_ms, moved, strict=True) if e is not None and m]
    if lost or bunched or excused:
        warnings.warn(f"JACK lost {lost} ticks and bunched {bunched} on the way to Cadenza; "
                      f"{len(excused)} notes moved by the machine: {excused} ms; {timeline}",
                      stacklevel=1)
    bound = 0.3 * interval * 1e3
    # Never a tick (25.8 ms) off the master's grid; the bound leaves room for
    # a note chosen during a stall.  A count gone wrong moves every later
    # note, moved by the machine or not, so a few judged notes catch it: on
    # an Intel Xeon virtual machine JACK stalled under the storm so often
    # (its lag grew by a second in the run) that up to two notes in three
    # were moved on their way.
    timed = sum(e is not None for e in errors_ms)
    assert timed >= NOTES - 2 * SETTLE_BEATS - 4
    assert enough_to_judge(errors_ms, moved) and max(judged) < bound, (errors_ms, moved, timeline)
    # Typically: within a JACK period (1.33 ms) and the scheduler's own lateness.
    late_ms = [(sent - due) * 1e3 for due, sent in sends]
    assert float(np.median(judged)) <= 1.5 + max(0.0, float(np.median(late_ms))), (errors_ms, late_ms)
