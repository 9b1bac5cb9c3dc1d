"""A headless LV2 host for Cadenza's plugin tests: ctypes over liblilv.

It instantiates the plugin with the features DPF requires (URID map, options,
worker), feeds MIDI and ``time:Position`` atoms block by block with no audio
system, and reads the MIDI the plugin writes.  The transport is a small model
of a host's: a frame counter and a tempo, with play, stop, locate and loops.
DPF leaves the output atom untouched in a block where it writes nothing, so a
non-Sequence output reads as empty (as jalv does).
"""

from __future__ import annotations

import ctypes as C
import math
import os
import struct
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

from tests.plugin.lv2_abi import (
    MAP_FN,
    RETRIEVE_FN,
    STORE_FN,
    WORK_RESPOND_FN,
    WORK_SCHEDULE_FN,
    Feature,
    HostError,
    Option,
    StateInterface,
    UridMap,
    WorkerInterface,
    WorkerSchedule,
    lilv,
)

REPO = Path(__file__).resolve().parents[2]
PLUGIN_DIR = REPO / "build" / "plugin"
BUNDLE = PLUGIN_DIR / "cadenza.lv2"
CLAP_FILE = PLUGIN_DIR / "cadenza.clap"
BUNDLED_MODEL = BUNDLE / "resources" / "cadenza.model"
URI = "urn:cadenza:improviser"
MODEL_KEY = URI + "#model"
PRECISION_KEY = URI + "#precision"

ATOM = "http://lv2plug.in/ns/ext/atom#"
TIME = "http://lv2plug.in/ns/ext/time#"
PATCH = "http://lv2plug.in/ns/ext/patch#"
MIDI_EVENT = "http://lv2plug.in/ns/ext/midi#MidiEvent"
BUF_SIZE = "http://lv2plug.in/ns/ext/buf-size#"
ATOM_CAPACITY = 1 << 16
MAX_BLOCK = 4096


def engine_name() -> str:
    """Which engine the build plays: "native" or the temporary "standin" (plugin/Makefile)."""
    marker = PLUGIN_DIR / "ENGINE"
    return marker.read_text().strip() if marker.is_file() else "standin"


def require_built(*paths: Path) -> None:
    """Skip when the plugin is not built, saying so; in CI (env CI set), which
    builds it before the tests, fail instead."""
    import pytest

    missing = [str(p) for p in paths if not p.exists()]
    if not missing:
        return
    message = f"plugin not built: no {', '.join(missing)} (run `make plugin`)"
    if os.environ.get("CI"):
        pytest.fail(message)
    pytest.skip(message)


class World:
    """liblilv's world with Cadenza's bundle loaded, and one URID map for all instances."""

    def __init__(self, bundle: Path = BUNDLE) -> None:
        if not (bundle / "manifest.ttl").is_file():
            raise HostError(f"no LV2 bundle at {bundle} (run `make plugin`)")
        self.lib = lilv()
        self.world = self.lib.lilv_world_new()
        node = self.lib.lilv_new_file_uri(self.world, None, (str(bundle) + "/").encode())
        self.lib.lilv_world_load_bundle(self.world, node)
        plugins = self.lib.lilv_world_get_all_plugins(self.world)
        uri = self.lib.lilv_new_uri(self.world, URI.encode())
        self.plugin = self.lib.lilv_plugins_get_by_uri(plugins, uri)
        if not self.plugin:
            raise HostError(f"{bundle} does not describe {URI}")
        self.urids: dict[str, int] = {}
        self._map_fn = MAP_FN(lambda _handle, uri: self.urid(uri.decode()))
        self.urid_map = UridMap(None, self._map_fn)

    def urid(self, uri: str) -> int:
        return self.urids.setdefault(uri, len(self.urids) + 1)

    def ports(self) -> list[str]:
        count = self.lib.lilv_plugin_get_num_ports(self.plugin)
        symbols = []
        for index in range(count):
            port = self.lib.lilv_plugin_get_port_by_index(self.plugin, index)
            node = self.lib.lilv_port_get_symbol(self.plugin, port)
            symbols.append(self.lib.lilv_node_as_string(node).decode())
        return symbols

    def defaults(self) -> list[float]:
        count = self.lib.lilv_plugin_get_num_ports(self.plugin)
        mins, maxs, defs = (C.c_float * count)(), (C.c_float * count)(), (C.c_float * count)()
        self.lib.lilv_plugin_get_port_ranges_float(self.plugin, mins, maxs, defs)
        return list(defs)


@dataclass
class Transport:
    """A host transport: frames, tempo and position, and whether it rolls."""

    rate: float = 48000.0
    bpm: float = 120.0
    beats_per_bar: int = 4
    rolling: bool = True
    frame: int = 0
    beat: float = 0.0  # at `frame`

    def advance(self, frames: int) -> None:
        if self.rolling:
            self.frame += frames
            self.beat += frames * self.bpm / (60.0 * self.rate)

    def locate(self, beat: float) -> None:
        """Jump to `beat`, its frame being where that beat lies at this tempo from beat 0."""
        self.beat = beat
        self.frame = round(beat * 60.0 * self.rate / self.bpm)


@dataclass
class Block:
    start: int  # the plugin's running frame count at the block's start
    host_frame: int
    events: list[tuple[int, bytes]] = field(default_factory=list)  # (frame in block, MIDI)


def _pad8(size: int) -> int:
    return (size + 7) & ~7


class Instance:
    """One plugin instance, run block by block."""

    def __init__(self, world: World, rate: float = 48000.0, block: int = 64,
                 counted_run=None) -> None:
        self.world, self.rate = world, rate
        lib = world.lib
        self._int_values = [C.c_int32(MAX_BLOCK), C.c_int32(block)]
        self._rate_value = C.c_float(rate)
        opts = [
            Option(0, 0, world.urid(BUF_SIZE + "maxBlockLength"), 4, world.urid(ATOM + "Int"),
                   C.cast(C.pointer(self._int_values[0]), C.c_void_p)),
            Option(0, 0, world.urid(BUF_SIZE + "nominalBlockLength"), 4,
                   world.urid(ATOM + "Int"), C.cast(C.pointer(self._int_values[1]), C.c_void_p)),
            Option(0, 0, world.urid("http://lv2plug.in/ns/ext/parameters#sampleRate"), 4,
                   world.urid(ATOM + "Float"), C.cast(C.pointer(self._rate_value), C.c_void_p)),
            Option(0, 0, 0, 0, 0, None),
        ]
        self._options = (Option * len(opts))(*opts)
        self.pending_work: list[bytes] = []
        self._schedule_fn = WORK_SCHEDULE_FN(self._schedule)
        self._worker = WorkerSchedule(None, self._schedule_fn)
        self._features_keep = [
            Feature(b"http://lv2plug.in/ns/ext/urid#map", C.cast(C.pointer(world.urid_map),
                                                                  C.c_void_p)),
            Feature(b"http://lv2plug.in/ns/ext/options#options", C.cast(self._options,
                                                                         C.c_void_p)),
            Feature(b"http://lv2plug.in/ns/ext/worker#schedule", C.cast(C.pointer(self._worker),
                                                                         C.c_void_p)),
        ]
        pointers = [C.pointer(f) for f in self._features_keep] + [None]
        self._features = (C.POINTER(Feature) * len(pointers))(*pointers)
        self.instance = lib.lilv_plugin_instantiate(world.plugin, rate, self._features)
        if not self.instance:
            raise HostError("lilv_plugin_instantiate failed")
        self.descriptor = self.instance.contents.descriptor.contents
        self.handle = self.instance.contents.handle
        self._counted_run = counted_run
        self.symbols = world.ports()
        self.controls: dict[str, C.c_float] = {}
        defaults = world.defaults()
        self.atom_in = C.create_string_buffer(ATOM_CAPACITY)
        self.atom_out = C.create_string_buffer(ATOM_CAPACITY)
        for index, symbol in enumerate(self.symbols):
            if symbol == "lv2_events_in":
                self.descriptor.connect_port(self.handle, index, C.cast(self.atom_in, C.c_void_p))
            elif symbol == "lv2_events_out":
                self.descriptor.connect_port(self.handle, index, C.cast(self.atom_out, C.c_void_p))
            else:
                value = C.c_float(defaults[index] if not math.isnan(defaults[index]) else 0.0)
                self.controls[symbol] = value
                self.descriptor.connect_port(self.handle, index, C.byref(value))
        self.clock = 0
        self.active = False

    # -- life cycle ---------------------------------------------------------

    def activate(self) -> None:
        self.descriptor.activate(self.handle)
        self.active = True

    def deactivate(self) -> None:
        self.descriptor.deactivate(self.handle)
        self.active = False

    def close(self) -> None:
        if self.active:
            self.deactivate()
        if self.instance:
            self.world.lib.lilv_instance_free(self.instance)
            self.instance = None

    def set(self, symbol: str, value: float) -> None:
        if symbol == "bypass":
            symbol, value = "lv2_enabled", 1.0 - value  # LV2's enabled is the inverse of bypass
        self.controls[symbol].value = value

    def get(self, symbol: str) -> float:
        return self.controls[symbol].value

    # -- one block ------------------------------------------------------------

    def run(self, frames: int, transport: Transport | None, midi: Iterable[tuple[int, bytes]] = (),
            position: bool = True, extra_atoms: Iterable[bytes] = (), counted: bool = True,
            ) -> Block:
        """One block: position (when asked) and MIDI in, MIDI out; then the worker's jobs.

        `counted`: through the allocation counter, when the instance has one.
        """
        body = bytearray(struct.pack("<II", 0, 0))  # sequence body: unit, pad
        if transport is not None and position:
            body += self._event(0, self._position(transport))
        for atom in extra_atoms:
            body += self._event(0, atom)
        for frame, data in sorted(midi, key=lambda item: item[0]):
            body += self._event(frame, self._atom(self.world.urid(MIDI_EVENT), bytes(data)))
        header = struct.pack("<II", len(body), self.world.urid(ATOM + "Sequence"))
        C.memmove(self.atom_in, header + bytes(body), 8 + len(body))
        C.memmove(self.atom_out, struct.pack("<II", ATOM_CAPACITY - 8,
                                             self.world.urid(ATOM + "Chunk")), 8)
        if self._counted_run is not None and counted:
            self._counted_run(C.cast(self.descriptor.run, C.c_void_p), self.handle, frames)
        else:
            self.descriptor.run(self.handle, frames)
        block = Block(self.clock, transport.frame if transport else 0, self._read_output())
        self.clock += frames
        if transport is not None:
            transport.advance(frames)
        self.do_work()
        return block

    def do_work(self) -> None:
        """The worker's jobs, after run() as a real host's worker thread would."""
        if not self.pending_work:
            return
        ext = self.descriptor.extension_data(b"http://lv2plug.in/ns/ext/worker#interface")
        interface = C.cast(ext, C.POINTER(WorkerInterface)).contents
        respond = WORK_RESPOND_FN(lambda *_: 0)
        jobs, self.pending_work = self.pending_work, []
        for job in jobs:
            buffer = C.create_string_buffer(job, len(job))
            interface.work(self.handle, respond, None, len(job), C.cast(buffer, C.c_void_p))

    def _schedule(self, _handle, size: int, data) -> int:
        self.pending_work.append(C.string_at(data, size))
        return 0

    # -- state ------------------------------------------------------------------

    def save_state(self) -> dict[str, tuple[bytes, int]]:
        saved: dict[str, tuple[bytes, int]] = {}
        names = {v: k for k, v in self.world.urids.items()}

        def store(_handle, key, value, size, type_, _flags):
            saved[names[key]] = (C.string_at(value, size), type_)
            return 0

        self._state().save(self.handle, STORE_FN(store), None, 0, None)
        return saved

    def restore_state(self, saved: dict[str, tuple[bytes, int]]) -> None:
        keep = []
        names = {v: k for k, v in self.world.urids.items()}

        def retrieve(_handle, key, size, type_, flags):
            entry = saved.get(names.get(key, ""))
            if entry is None:
                return None
            buffer = C.create_string_buffer(entry[0], len(entry[0]))
            keep.append(buffer)
            size[0], type_[0], flags[0] = len(entry[0]), entry[1], 0
            return C.cast(buffer, C.c_void_p).value

        self._state().restore(self.handle, RETRIEVE_FN(retrieve), None, 0, None)

    def set_model(self, path: str) -> bytes:
        """A patch:Set of the model path, as an atom for run(extra_atoms=...)."""
        return self._patch_set(MODEL_KEY, "Path", path)

    def set_precision(self, value: str) -> bytes:
        """A patch:Set of the model step's precision ("fp32", "int8"), as an atom."""
        return self._patch_set(PRECISION_KEY, "String", value)

    def _patch_set(self, key: str, atom_type: str, text: str) -> bytes:
        world = self.world
        value = self._atom(world.urid(ATOM + atom_type), text.encode() + b"\0")
        props = struct.pack("<II", world.urid(PATCH + "property"), 0)
        props += self._atom(world.urid(ATOM + "URID"), struct.pack("<I", world.urid(key)))
        props += struct.pack("<II", world.urid(PATCH + "value"), 0) + value
        body = struct.pack("<II", 0, world.urid(PATCH + "Set")) + props
        return struct.pack("<II", len(body), world.urid(ATOM + "Object")) + body

    def _state(self) -> StateInterface:
        ext = self.descriptor.extension_data(b"http://lv2plug.in/ns/ext/state#interface")
        return C.cast(ext, C.POINTER(StateInterface)).contents

    # -- atoms --------------------------------------------------------------------

    @staticmethod
    def _atom(type_: int, body: bytes) -> bytes:
        raw = struct.pack("<II", len(body), type_) + body
        return raw + b"\0" * (_pad8(len(raw)) - len(raw))

    @staticmethod
    def _event(frame: int, atom: bytes) -> bytes:
        return struct.pack("<q", frame) + atom

    def _position(self, t: Transport) -> bytes:
        w = self.world
        bar = math.floor(t.beat / t.beats_per_bar + 1e-12)
        props = [
            (TIME + "frame", ATOM + "Long", struct.pack("<q", t.frame)),
            (TIME + "speed", ATOM + "Float", struct.pack("<f", 1.0 if t.rolling else 0.0)),
            (TIME + "bar", ATOM + "Long", struct.pack("<q", bar)),
            (TIME + "barBeat", ATOM + "Double", struct.pack("<d", t.beat - bar * t.beats_per_bar)),
            (TIME + "beatUnit", ATOM + "Int", struct.pack("<i", 4)),
            (TIME + "beatsPerBar", ATOM + "Float", struct.pack("<f", t.beats_per_bar)),
            (TIME + "beatsPerMinute", ATOM + "Double", struct.pack("<d", t.bpm)),
        ]
        body = bytearray(struct.pack("<II", 0, w.urid(TIME + "Position")))
        for key, type_, value in props:
            body += struct.pack("<II", w.urid(key), 0) + self._atom(w.urid(type_), value)
        return struct.pack("<II", len(body), w.urid(ATOM + "Object")) + bytes(body)

    def _read_output(self) -> list[tuple[int, bytes]]:
        size, type_ = struct.unpack_from("<II", self.atom_out, 0)
        if type_ != self.world.urid(ATOM + "Sequence"):
            return []  # DPF wrote nothing this block
        raw = self.atom_out.raw[8:8 + size]
        events, offset = [], 8  # past the sequence body's unit and pad
        midi = self.world.urid(MIDI_EVENT)
        while offset + 16 <= len(raw):
            frame, = struct.unpack_from("<q", raw, offset)
            atom_size, atom_type = struct.unpack_from("<II", raw, offset + 8)
            if atom_type == midi:
                events.append((frame, raw[offset + 16:offset + 16 + atom_size]))
            offset += 16 + _pad8(atom_size)
        return events


def perform(instance: Instance, transport: Transport, total: int, block: int,
            midi: dict[int, list[bytes]] | None = None, position: bool = True,
            ) -> list[tuple[int, bytes]]:
    """Run `total` frames in blocks of `block`, MIDI given by absolute host frame.

    `position`: send time:Position every block, as Ardour does; False: only in
    the first block, as jalv does while nothing changes (DPF carries it on).
    Returns what came out as (absolute plugin frame, MIDI bytes).
    """
    midi = midi or {}
    out = []
    done = 0
    while done < total:
        frames = min(block, total - done)
        base = instance.clock
        ins = block_inputs(midi, base, frames)
        result = instance.run(frames, transport, ins, position=position or done == 0)
        out += [(result.start + f, bytes(d)) for f, d in result.events]
        done += frames
    return out


def block_inputs(midi: dict[int, list[bytes]], base: int, frames: int) -> list[tuple[int, bytes]]:
    """The MIDI of ``midi`` (by absolute frame) that falls in the block of
    ``frames`` starting at ``base``, as (frame in the block, bytes)."""
    return [(f - base, d) for f in range(base, base + frames) for d in midi.get(f, [])]


def note_on(pitch: int, velocity: int = 100, channel: int = 1) -> bytes:
    return bytes([0x90 | (channel - 1), pitch, velocity])


def note_off(pitch: int, channel: int = 1) -> bytes:
    return bytes([0x80 | (channel - 1), pitch, 0])


def sounding(events: Iterable[tuple[int, bytes]]) -> set[tuple[int, int]]:
    """(channel, pitch) of the notes left on after `events`."""
    on: set[tuple[int, int]] = set()
    for _frame, data in events:
        kind, key = data[0] & 0xF0, (data[0] & 0x0F, data[1])
        if kind == 0x90 and data[2] > 0:
            on.add(key)
        elif kind in (0x80, 0x90):
            on.discard(key)
    return on
