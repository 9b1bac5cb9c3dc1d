"""``cadenza ports`` and ``cadenza panic``: list the MIDI ports, silence one."""

from __future__ import annotations

import logging
import sys
import time

import mido

from cadenza.config import LiveConfig
from cadenza.errors import PortError
from cadenza.live.engine.events import silence_messages
from cadenza.live.midi.jack_time import JackLag
from cadenza.live.midi.midi_api import (
    API_LABELS,
    PortListing,
    candidate_apis,
    compiled_apis,
    list_ports,
    no_midi_error,
)
from cadenza.live.midi.ports import PANIC_PACING, PANIC_SETTLE, MidiPorts

log = logging.getLogger(__name__)

# On JACK a panic waits for a new process cycle after each message (at most
# this long): a stalled server otherwise gathers the messages sent meanwhile
# into one cycle, and a small period's MIDI buffer (256 bytes at 64 frames)
# drops what does not fit.
CYCLE_WAIT = 1.0
CYCLE_POLL = 0.0005  # seconds between readings of JACK's cycle while waiting


def format_listing(listings: list[PortListing], failures: dict[str, str]) -> str:
    lines = []
    for listing in listings:
        lines.append(f"{API_LABELS[listing.api]} ({listing.api}):")
        lines.append("  inputs (Cadenza can listen to, --in):")
        lines.extend(f"    {name}" for name in listing.inputs or ("(none)",))
        lines.append("  outputs (Cadenza can play to, --out):")
        lines.extend(f"    {name}" for name in listing.outputs or ("(none)",))
    for api, why in failures.items():
        lines.append(f"{API_LABELS[api]} ({api}): not available: {why}")
    return "\n".join(lines) + "\n"


def list_all_ports(settings: LiveConfig) -> int:
    """``cadenza ports``: the ports of each API (or of ``--api``)."""
    api = settings.api
    names = compiled_apis() if api == "auto" else candidate_apis(api)
    listings, failures = [], {}
    for name in names:
        try:
            listings.append(list_ports(name))
        except PortError as err:
            failures[name] = str(err.__cause__ or err)
    sys.stdout.write(format_listing(listings, failures))
    if not listings:
        raise no_midi_error(failures)
    return 0


def panic_messages(channel: int) -> list[mido.Message]:
    """What ``cadenza panic`` sends: a note-off for every note on the output
    channel (a synth may ignore the controllers), then CC 123 and CC 120 on
    all 16 channels."""
    offs = [mido.Message("note_off", channel=channel, note=n, velocity=0) for n in range(128)]
    return offs + silence_messages(range(16))


def _next_cycle(cycles: JackLag) -> None:
    """Wait (at most CYCLE_WAIT) until JACK begins a process cycle after this one."""
    cycles.lag(time.monotonic())
    began = cycles.last_cycle[1]
    deadline = time.monotonic() + CYCLE_WAIT
    while time.monotonic() < deadline:
        time.sleep(CYCLE_POLL)
        cycles.lag(time.monotonic())
        if cycles.last_cycle[1] != began:
            return


def panic(settings: LiveConfig) -> int:
    """``cadenza panic --out NAME``: silence a port Cadenza left sounding."""
    if not settings.out_port:
        raise PortError("cadenza panic needs --out NAME: the port to silence")
    ports = MidiPorts(settings.api, out_port=settings.out_port, want_input=False)
    messages = panic_messages(settings.channel - 1)
    cycles = JackLag()
    with ports:
        paced = ports.api == "jack" and cycles.open()
        log.debug("panic paced by JACK's cycles: %s", paced)
        try:
            time.sleep(PANIC_SETTLE)
            for message in messages:
                ports.send(message)
                time.sleep(PANIC_PACING)
                if paced:
                    _next_cycle(cycles)
            time.sleep(PANIC_SETTLE)
        finally:
            cycles.close()
    log.info("sent %d panic messages to %r", len(messages), ports.output_name)
    return 0
