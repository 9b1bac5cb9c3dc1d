"""MIDI systems through python-rtmidi: which APIs there are, opening and closing
clients, listing ports, and finding a port by a piece of its name.

Cadenza talks to MIDI through python-rtmidi, which wraps each system behind
one API: ALSA (Linux), CoreMIDI (macOS), Windows MM, and JACK.  ``--api auto``
tries the system's own MIDI first, then JACK.
"""

from __future__ import annotations

import logging
import re
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass

from cadenza.errors import PortError
from cadenza.live.midi.midi_backend import rtmidi

log = logging.getLogger(__name__)

CLIENT_NAME = "Cadenza"
VIRTUAL_IN = "Cadenza In"
VIRTUAL_OUT = "Cadenza Out"
API_IDS = {
    "alsa": rtmidi.API_LINUX_ALSA,
    "jack": rtmidi.API_UNIX_JACK,
    "coremidi": rtmidi.API_MACOSX_CORE,
    "windows": rtmidi.API_WINDOWS_MM,
}
API_LABELS = {"alsa": "ALSA", "jack": "JACK", "coremidi": "CoreMIDI", "windows": "Windows MM"}

#: What a user can do when an API does not work.
INSTALL_HINTS = {
    "alsa": "ALSA: needs the sequencer device /dev/snd/seq, from a kernel with snd-seq "
    "(`sudo modprobe snd-seq`)",
    "jack": "JACK: install jackd2 and start a server (`jackd -d alsa`, or "
    "`jackd -d dummy` without a sound card)",
    "coremidi": "CoreMIDI: comes with macOS",
    "windows": "Windows MM: comes with Windows; for virtual ports install loopMIDI",
}

CALLBACK_SETTLE = 0.02  # seconds for a callback under way to finish before its port closes

# rtmidi reports trouble as RtMidiError subclasses, some of them also OSError/ValueError.
RTMIDI_ERRORS = (rtmidi.RtMidiError, RuntimeError, OSError, ValueError)


def native_api(platform: str = sys.platform) -> str:
    if platform.startswith("darwin"):
        return "coremidi"
    if platform.startswith(("win32", "cygwin")):
        return "windows"
    return "alsa"


def compiled_apis() -> list[str]:
    """The APIs this python-rtmidi was built with, by our names."""
    compiled = set(rtmidi.get_compiled_api())
    return [name for name, api in API_IDS.items() if api in compiled]


def candidate_apis(api: str = "auto") -> list[str]:
    """The APIs to try, in order: ``auto`` is the system's own MIDI, then JACK."""
    compiled = compiled_apis()
    if api == "auto":
        return [name for name in dict.fromkeys([native_api(), "jack"]) if name in compiled]
    if api not in API_IDS:
        raise PortError(f"unknown MIDI API {api!r} (known: auto, {', '.join(API_IDS)})")
    if api not in compiled:
        raise PortError(
            f"MIDI API {api!r} is not built into this python-rtmidi "
            f"(it has: {', '.join(compiled) or 'none'})"
        )
    return [api]


def no_midi_error(failures: dict[str, str]) -> PortError:
    """The error for "no MIDI system works here", with what to install."""
    tried = "; ".join(f"{API_LABELS[name]}: {why}" for name, why in failures.items())
    hints = " ".join(f"{INSTALL_HINTS[name]}." for name in failures)
    return PortError(
        f"no MIDI system is available (tried {tried or 'nothing'}). {hints} "
        "To hear Cadenza without a MIDI system, run `cadenza simulate --out duet.mid`."
    )


def open_client(direction: str, api: str) -> rtmidi.MidiIn | rtmidi.MidiOut:
    """A MIDI client ("in" or "out") of ``api``, with no port open yet."""
    cls = rtmidi.MidiIn if direction == "in" else rtmidi.MidiOut
    try:
        client = cls(API_IDS[api], CLIENT_NAME)
    except RTMIDI_ERRORS as err:
        raise PortError(f"{API_LABELS[api]} MIDI is not available: {err}") from err
    if direction == "in":
        # MIDI clock must reach the engine; sysex and active sensing need not.
        client.ignore_types(sysex=True, timing=False, active_sense=True)
    return client


def close_client(client: rtmidi.MidiIn | rtmidi.MidiOut | None) -> None:
    if client is None:
        return
    if isinstance(client, rtmidi.MidiIn):
        # Remove the callback first: no call may arrive into a half-closed port.
        client.cancel_callback()
        # python-rtmidi closes a port holding the GIL, and JACK's server waits
        # for the client's cycle to end: a callback already under way, waiting
        # for the GIL, would never end.  Let it finish first.
        time.sleep(CALLBACK_SETTLE)
    try:
        client.close_port()
    finally:
        # Only deleting the C++ object closes a virtual port and its client now.
        client.delete()


def select_api(api: str = "auto") -> str:
    """The first API in ``candidate_apis(api)`` that opens a client."""
    failures: dict[str, str] = {}
    for name in candidate_apis(api):
        try:
            close_client(open_client("out", name))
        except PortError as err:
            failures[name] = str(err.__cause__ or err)
            log.debug("%s unavailable: %s", name, failures[name])
            continue
        return name
    raise no_midi_error(failures)


@dataclass(frozen=True)
class PortListing:
    api: str
    inputs: tuple[str, ...]  # ports Cadenza can listen to (other programs' outputs)
    outputs: tuple[str, ...]  # ports Cadenza can play to


def list_ports(api: str) -> PortListing:
    """The ports of one API; PortError when the API does not work here."""
    midi_in = open_client("in", api)
    try:
        midi_out = open_client("out", api)
        try:
            return PortListing(api, tuple(midi_in.get_ports()), tuple(midi_out.get_ports()))
        finally:
            close_client(midi_out)
    finally:
        close_client(midi_in)


def _bare(name: str) -> str:
    # ALSA appends "client:port" numbers that change when a device is replugged.
    return re.sub(r"\s+\d+:\d+$", "", name).casefold()


def match_port(available: Sequence[str], wanted: str, what: str) -> str:
    """The one port whose name contains ``wanted`` (case-insensitive).

    A name equal to ``wanted`` (whole, or after ``client:``) wins over longer
    ones that merely contain it.  Unknown or ambiguous: PortError listing the
    ports there are.
    """
    needle = wanted.casefold()
    hits = [name for name in available if needle in name.casefold()]
    if len(hits) == 1:
        return hits[0]
    exact = [n for n in hits if needle in (_bare(n), _bare(n).split(":", 1)[-1])]
    if len(exact) == 1:
        return exact[0]
    shown = ", ".join(repr(n) for n in available) or "none"
    if not hits:
        raise PortError(
            f"no MIDI {what} port matches {wanted!r}; {what} ports: {shown}. "
            f"`cadenza ports` lists them all; leave out --{'in' if what == 'input' else 'out'} "
            f"to get Cadenza's own virtual port instead"
        )
    raise PortError(
        f"{wanted!r} matches several MIDI {what} ports ({', '.join(repr(n) for n in hits)}); "
        f"give more of the name. {what.capitalize()} ports: {shown}"
    )
