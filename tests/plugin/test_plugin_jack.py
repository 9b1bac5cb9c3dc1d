"""The LV2 plugin in a real host: jalv on a private JACK server (dummy driver).

jack_transport is the timebase master (120 BPM, from bar 1), jack_midi_clock
follows the transport and ticks 24 times a beat, and one ``jack_midi_dump -a``
hears both the ticks and the plugin's output on JACK's frame clock.  A call
played in is answered, and every answer onset falls on one of the
transport's eighths, to the frame: at 120 BPM and 48 kHz an eighth is 12000
frames, every twelfth tick.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import time

import pytest

from testing.jack_harness import (
    JackServer,
    MidiClient,
    background_process,
    connect,
    jack_environment,
    note_on_frames,
    read_midi_dump,
    wait_for,
    wait_port,
)
from tests.plugin.lv2_host import BUNDLE, PLUGIN_DIR, URI, require_built, sounding
from tests.support.jack_server import require_jackd

pytestmark = [pytest.mark.jack, pytest.mark.plugin]

EIGHTH_FRAMES = 12000  # 120 BPM at 48 kHz
CLOCK_TICK = 0xF8
TOOLS = ("jalv", "jack_transport", "jack_midi_dump", "jack_midi_clock", "jack_connect")


@pytest.fixture(scope="module")
def rt_jack():
    """A private JACK server, real-time where allowed (fewer lost cycles), else not."""
    require_jackd()
    for realtime in (True, False):
        server = JackServer(realtime=realtime)
        try:
            server.start()
        except (RuntimeError, TimeoutError):
            continue
        try:
            with jack_environment(server):
                yield server
        finally:
            server.stop()
        return
    pytest.fail("no JACK server would start")


def _feed(process: subprocess.Popen, command: str) -> None:
    process.stdin.write(command + "\n")
    process.stdin.flush()


# Known gap (issue 27, open): on this machine kind the dummy-driver JACK server
# loses cycles even when idle, and then this test fails in about half its runs:
# either no answer comes (the call's phrase dropped, probably a transport frame
# the plugin's TransportTracker reads as a jump rather than a skip), or an
# answer lands a few hundred frames off jack_midi_clock's eighths after lost
# cycles.  It runs on every CI pass and reports XPASS/XFAIL; every other plugin
# test (LV2, CLAP, VST3 hosts without JACK) stays strict.
@pytest.mark.xfail(strict=False, reason="jalv on a lossy JACK dummy server: phrase "
                   "dropped or answer off the master's eighths after lost cycles (issue 27)")
def test_jalv_answers_a_call_on_the_transports_grid(rt_jack, tmp_path):
    require_built(BUNDLE / "manifest.ttl")
    missing = [tool for tool in TOOLS if shutil.which(tool) is None]
    if missing:
        pytest.skip(f"not installed: {', '.join(missing)} (apt-get install jalv jack-tools "
                    "jack-midi-clock)")
    env = {**os.environ, **rt_jack.env, "LV2_PATH": str(PLUGIN_DIR)}
    dump = tmp_path / "dump.txt"
    # jalv and jack_transport read commands from stdin: both stay up while it is open.
    jalv = subprocess.Popen(["jalv", "-n", "cadenza-plugin", "-c", "pass_through=0", URI],
                            env=env, stdin=subprocess.PIPE, stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL, text=True)
    master = subprocess.Popen(["jack_transport"], env=env, stdin=subprocess.PIPE,
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, text=True)
    try:
        with background_process(["jack_midi_dump", "-a", "plugin-dump"], env, dump), \
             background_process(["jack_midi_clock"], env, tmp_path / "mclk.log"):
            monitor = wait_port(env, "plugin-dump:")
            connect(env, wait_port(env, "cadenza-plugin:lv2_events_out"), monitor)
            connect(env, wait_port(env, "jack_midi_clock:mclk_out"), monitor)
            for command in ("master", "tempo 120", "locate 0", "play"):
                _feed(master, command)
            assert wait_for(lambda: any(d == [CLOCK_TICK] for _, d in read_midi_dump(dump)),
                            timeout=10), "the transport never rolled (no clock ticks)"
            with MidiClient(play_to="cadenza-plugin:lv2_events_in", listen_to=None,
                            name="performer") as performer:
                for pitch in (60, 64, 67, 72):
                    performer.send_bytes([0x90, pitch, 90])
                    time.sleep(0.2)  # a performer's quarter-second notes, played in real time
                    # Twice: a starved JACK can drop a message between clients, and a
                    # lost release leaves the call unfinished (a second is harmless).
                    performer.send_bytes([0x80, pitch, 0])
                    performer.send_bytes([0x80, pitch, 0])
                    time.sleep(0.05)
                answered = wait_for(lambda: len(note_on_frames(read_midi_dump(dump))) >= 4,
                                    timeout=20)
            _feed(master, "stop")
            time.sleep(0.2)  # let the dump write the stop's releases out
    finally:
        for process in (master, jalv):
            process.stdin.close()
            process.terminate()
            process.wait(10)
    events = read_midi_dump(dump)
    assert answered, f"no answer heard; dump tail {events[-10:]}"
    ticks = [f for f, d in events if d == [CLOCK_TICK]]
    onsets = note_on_frames(events)
    eighths = set(ticks[::12])  # jack_midi_clock's first tick is the transport's beat 0
    assert all(f in eighths for f in onsets), (
        onsets, [min(ticks, key=lambda t, f=f: abs(t - f)) for f in onsets], ticks[:3])
    assert all((f - ticks[0]) % EIGHTH_FRAMES == 0 for f in onsets)
    notes = [(f, bytes(d)) for f, d in events if d and d[0] & 0xE0 == 0x80 and len(d) == 3]
    assert not sounding(notes), "notes left sounding after the transport stopped"
