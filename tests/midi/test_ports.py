"""Ports: API choice, name matching, errors that help, and real JACK ports."""

from __future__ import annotations

import os
import threading
import time

import mido
import pytest

from cadenza.cli import main
from cadenza.errors import PortError
from cadenza.live.midi.midi_api import (
    PortListing,
    candidate_apis,
    compiled_apis,
    match_port,
    native_api,
    select_api,
)
from cadenza.live.midi.port_commands import format_listing, panic_messages
from cadenza.live.midi.ports import MidiPorts
from tests.support.jack_server import (
    JackServer,
    MidiClient,
    jack_environment,
    require_jackd,
    require_quiet_machine,
)

# -- no MIDI system needed ---------------------------------------------------


def test_match_port_is_a_case_insensitive_substring():
    names = ["Keystation 49:Keystation 49 MIDI 1 20:0", "Midi Through:Midi Through Port-0 14:0"]
    assert match_port(names, "keystation", "input") == names[0]


def test_match_port_unknown_lists_the_ports_there_are():
    with pytest.raises(PortError) as err:
        match_port(["a:Piano", "b:Drums"], "synth", "output")
    message = str(err.value)
    assert "'synth'" in message and "'a:Piano'" in message and "'b:Drums'" in message


def test_match_port_ambiguous_names_both():
    with pytest.raises(PortError, match="several") as err:
        match_port(["x:Piano 1", "x:Piano 2"], "piano", "input")
    assert "'x:Piano 1'" in str(err.value) and "'x:Piano 2'" in str(err.value)


def test_match_port_prefers_an_exact_name_over_longer_ones():
    names = ["Synth:Synth 12:0", "Synth:Synth Extra 12:1"]
    assert match_port(names, "synth", "output") == names[0]


def test_auto_tries_the_system_midi_first_then_jack():
    assert native_api("linux") == "alsa"
    assert native_api("darwin") == "coremidi"
    assert native_api("win32") == "windows"
    order = candidate_apis("auto")
    assert order[-1] == "jack" or "jack" not in compiled_apis()
    if native_api() in compiled_apis():
        assert order[0] == native_api()


def test_an_api_that_is_not_built_in_is_a_clear_error():
    missing = [api for api in ("alsa", "jack", "coremidi", "windows") if api not in compiled_apis()]
    if not missing:
        pytest.skip("every API is compiled in")
    with pytest.raises(PortError, match="not built into"):
        candidate_apis(missing[0])


def test_no_jack_server_says_what_to_install_and_points_to_simulate(monkeypatch):
    monkeypatch.setenv("JACK_DEFAULT_SERVER", f"cadenza-absent-{os.getpid()}")
    monkeypatch.setenv("JACK_NO_START_SERVER", "1")
    with pytest.raises(PortError) as err:
        select_api("jack")
    message = str(err.value)
    assert "jackd2" in message and "cadenza simulate" in message


def test_listing_format_and_panic_messages():
    text = format_listing([PortListing("jack", ("k:Keys",), ())], {"alsa": "no /dev/snd/seq"})
    assert "k:Keys" in text and "(none)" in text and "ALSA (alsa): not available" in text
    messages = panic_messages(2)
    offs = [m for m in messages if m.type == "note_off"]
    assert len(offs) == 128 and {m.channel for m in offs} == {2}
    controls = [(m.channel, m.control) for m in messages if m.type == "control_change"]
    assert len(controls) == 32 and (15, 123) in controls and (15, 120) in controls
    # Note-offs come before the controllers.
    assert messages.index(offs[-1]) < len(offs)


# -- on a real JACK server ------------------------------------------------------

class Inbox:
    def __init__(self) -> None:
        self.items: list[tuple[list[int], float]] = []
        self.cond = threading.Condition()

    def __call__(self, data: list[int], timestamp: float, lag: float = 0.0) -> None:
        with self.cond:
            self.items.append((data, timestamp))
            self.cond.notify_all()

    def wait(self, count: int, timeout: float = 5.0) -> bool:
        with self.cond:
            return self.cond.wait_for(lambda: len(self.items) >= count, timeout)


@pytest.mark.jack
def test_auto_falls_back_to_jack_without_alsa(jack_server):
    expected = "alsa" if os.path.exists("/dev/snd/seq") else "jack"
    assert select_api("auto") == expected


@pytest.mark.jack
def test_virtual_ports_carry_messages_both_ways(jack_server):
    inbox = Inbox()
    with MidiPorts("jack", on_input=inbox) as ports, MidiClient() as client:
        sent_at = client.send(mido.Message("note_on", note=60, velocity=99))
        client.send(mido.Message("clock"))  # MIDI clock must not be filtered out
        assert inbox.wait(2)
        (data, stamp), (clock, _) = inbox.items[:2]
        assert data == [0x90, 60, 99] and clock == [0xF8]
        assert stamp >= sent_at
        assert ports.send(mido.Message("note_on", note=64, velocity=80))
        assert client.wait_for(lambda got: len(got) >= 1)
        assert client.messages()[0][1].note == 64


@pytest.mark.jack
def test_a_broken_sysex_deafens_the_jack_input_only_until_the_next_poll(jack_server):
    # RtMidi's JACK input swallows everything after a sysex start until an
    # event ends in 0xF7; each poll() ends it through Cadenza's sysex guard.
    inbox = Inbox()
    with MidiPorts("jack", on_input=inbox) as ports, MidiClient() as client:
        client.send_bytes([0xF0, 0x42, 0x42])  # a sysex start with no end
        deadline = time.monotonic() + 5.0
        probe = 40
        while not inbox.items and time.monotonic() < deadline:
            client.send_bytes([0x90, probe, 64])
            ports.poll()
            inbox.wait(1, timeout=0.2)
            probe += 1
        assert inbox.items, "the input stayed deaf after the broken sysex"
        assert inbox.items[0][0][0] == 0x90


@pytest.mark.jack
def test_the_sysex_guard_is_never_heard(jack_server):
    inbox = Inbox()
    with MidiPorts("jack", on_input=inbox) as ports, MidiClient() as client:
        for _ in range(5):
            ports.poll()  # five empty sysexes into our own input
        client.send(mido.Message("note_on", note=60, velocity=99))
        assert inbox.wait(1, timeout=2)
        assert [data for data, _ in inbox.items] == [[0x90, 60, 99]]
        guard = [name for name in client.input.get_ports() if "Cadenza Sysex Guard" in name]
        assert len(guard) == 1, client.input.get_ports()


@pytest.mark.jack
def test_cadenza_ports_listed(jack_server, capsys):
    with MidiPorts("jack", on_input=Inbox()):
        assert main(["ports", "--api", "jack"]) == 0
    out = capsys.readouterr().out
    assert "JACK (jack):" in out
    assert ":Cadenza In" in out and ":Cadenza Out" in out


@pytest.mark.jack
def test_connect_to_existing_ports_by_substring(jack_server):
    backend = mido.Backend("mido.backends.rtmidi/UNIX_JACK")
    keys = backend.open_output("Tester Keys", client_name="Tester")
    synth_inbox: list[mido.Message] = []
    got = threading.Event()
    synth = backend.open_input(
        "Tester Synth", client_name="Tester",
        callback=lambda m: (synth_inbox.append(m), got.set()),
    )
    inbox = Inbox()
    try:
        with MidiPorts("jack", in_port="tester keys", out_port="SYNTH", on_input=inbox) as ports:
            assert ports.input_name.endswith("Tester Keys")
            assert ports.output_name.endswith("Tester Synth")
            keys.send(mido.Message("note_on", note=50, velocity=70))
            assert inbox.wait(1)
            assert inbox.items[0][0] == [0x90, 50, 70]
            ports.send(mido.Message("note_off", note=50))
            assert got.wait(5)
            assert synth_inbox[0].type == "note_off"

        with pytest.raises(PortError) as err:
            MidiPorts("jack", in_port="no such keyboard").open()
        assert "no such keyboard" in str(err.value) and "Tester Keys" in str(err.value)
    finally:
        keys.close()
        synth.close()


@pytest.mark.jack
def test_ambiguous_port_name_is_refused(jack_server):
    backend = mido.Backend("mido.backends.rtmidi/UNIX_JACK")
    first = backend.open_output("Pad A", client_name="Pads")
    second = backend.open_output("Pad B", client_name="Pads")
    try:
        with pytest.raises(PortError, match="several") as err:
            MidiPorts("jack", in_port="pad").open()
        assert "Pad A" in str(err.value) and "Pad B" in str(err.value)
    finally:
        first.close()
        second.close()


@pytest.mark.jack
def test_panic_command_silences_a_port(jack_server):
    import rtmidi

    raw: list[list[int]] = []
    arrived = threading.Event()
    synth = rtmidi.MidiIn(rtmidi.API_UNIX_JACK, "Listener")
    synth.open_virtual_port("Panic Synth")
    # Runs on JACK's thread: append and return (parse later).
    synth.set_callback(lambda event, _: (raw.append(event[0]), arrived.set()))
    try:
        assert main(["panic", "--out", "panic synth", "--api", "jack"]) == 0
        while len(raw) < 160:
            arrived.clear()
            if len(raw) < 160:
                assert arrived.wait(5), f"only {len(raw)} panic messages arrived"
    finally:
        synth.cancel_callback()
        synth.close_port()
        synth.delete()
    received = [mido.Message.from_bytes(data) for data in raw]
    assert [(m.type, m.note) for m in received[:128]] == [("note_off", n) for n in range(128)]
    assert {(m.channel, m.control) for m in received[128:]} == {
        (ch, cc) for ch in range(16) for cc in (120, 123)
    }


@pytest.mark.jack
def test_panic_on_an_unknown_port_is_an_error(jack_server):
    assert main(["panic", "--out", "nowhere at all", "--api", "jack"]) == 1


@pytest.mark.jack
def test_ports_notice_a_jack_restart_and_come_back():
    require_jackd()
    require_quiet_machine()
    woken = threading.Event()
    with JackServer() as server, jack_environment(server):
        ports = MidiPorts("jack", on_input=Inbox(), on_change=woken.set).open()
        try:
            assert ports.poll() == ([], [])
            server.kill()
            assert woken.wait(5), "the JACK shutdown was not noticed"
            assert ports.server_gone()
            assert ports.poll() == (["in", "out"], [])
            assert not ports.send(mido.Message("note_on", note=60))
            assert ports.poll() == ([], [])  # still down
            server.start()
            assert ports.poll() == ([], ["in", "out"])
            with MidiClient() as client:
                # A new JACK connection carries messages from a cycle or two
                # later (later still on a busy machine): send until one arrives.
                deadline = time.monotonic() + 5
                while not client.wait_for(lambda got: len(got) >= 1, 0.2):
                    assert time.monotonic() < deadline, "nothing arrived through the reopened port"
                    ports.send(mido.Message("note_on", note=61, velocity=1))
        finally:
            ports.close()
