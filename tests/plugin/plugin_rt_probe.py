"""Counts allocations and mutex locks inside the plugin's run(), block by block,
while calls are answered, parameters are automated, a CC arrives now and then
and the model is changed once.

Run in a process started with LD_PRELOAD=build/plugin/tools/alloc_counter.so
(tests/plugin/test_plugin_rt.py does); prints one JSON object: the counts inside
run() over every block, and how many answer notes played meanwhile.
"""

from __future__ import annotations

import argparse
import ctypes as C
import json
import sys

from tests.plugin.lv2_host import (
    BUNDLED_MODEL,
    PLUGIN_DIR,
    Instance,
    Transport,
    World,
    note_off,
    note_on,
)

COUNTER = PLUGIN_DIR / "tools" / "alloc_counter.so"
KINDS = ("malloc", "calloc", "realloc", "free", "mutex_lock")


def counter() -> C.CDLL:
    lib = C.CDLL(str(COUNTER))
    lib.cadenza_alloc_counted_run.argtypes = [C.c_void_p, C.c_void_p, C.c_uint32]
    lib.cadenza_alloc_counts.argtypes = [C.POINTER(C.c_long)]
    return lib


def read_counts(lib: C.CDLL) -> dict[str, int]:
    raw = (C.c_long * len(KINDS))()
    lib.cadenza_alloc_counts(raw)
    return dict(zip(KINDS, raw, strict=True))


def self_check(lib: C.CDLL) -> dict[str, int]:
    """The counter must see an allocation made inside counted_run: strdup mallocs."""
    libc = C.CDLL(None)
    before = read_counts(lib)
    text = C.create_string_buffer(b"counted")
    lib.cadenza_alloc_counted_run(C.cast(libc.strdup, C.c_void_p), C.cast(text, C.c_void_p), 0)
    after = read_counts(lib)
    return {kind: after[kind] - before[kind] for kind in KINDS}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--blocks", type=int, default=12000)
    parser.add_argument("--block", type=int, default=64)
    parser.add_argument("--rate", type=float, default=48000.0)
    args = parser.parse_args(argv)
    lib = counter()
    check = self_check(lib)
    world = World()
    instance = Instance(world, rate=args.rate, block=args.block, counted_run=lib.cadenza_alloc_counted_run)
    instance.set("pass_through", 0.0)
    instance.activate()
    transport = Transport(args.rate, 120.0)
    # A four-note call every four seconds (8 beats at 120 BPM), answered after it.
    period = int(4 * args.rate)
    start = read_counts(lib)
    answers = 0
    for index in range(args.blocks):
        base = instance.clock
        midi = []
        for offset in range(args.block):
            phase = (base + offset) % period
            for note in range(4):
                if phase == int(note * 0.25 * args.rate):
                    midi.append((offset, note_on(60 + 2 * note)))
                if phase == int((note * 0.25 + 0.2) * args.rate):
                    midi.append((offset, note_off(60 + 2 * note)))
        if index % 997 == 500:
            # Automation and a CC on the way: settings reach the engine inside run().
            instance.set("temperature", 1.0 if index % 2 else 1.4)
            midi.append((0, bytes([0xB0, 26, index % 128])))  # CC 26: key strength
        if index == args.blocks // 2:
            # A change of model: the host's worker (Python here, so not counted) loads
            # it; the swap and the release happen inside the next, counted, run().
            model = [instance.set_model(str(BUNDLED_MODEL))]
            block = instance.run(args.block, transport, midi, extra_atoms=model, counted=False)
        else:
            block = instance.run(args.block, transport, midi, position=index == 0)
        answers += sum(1 for _, d in block.events if d[0] & 0xF0 == 0x90 and d[2] > 0)
    end = read_counts(lib)
    instance.close()
    json.dump({"self_check": check, "answers": answers, "blocks": args.blocks,
               "inside_run": {kind: end[kind] - start[kind] for kind in KINDS}}, sys.stdout)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
