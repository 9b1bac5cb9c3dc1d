"""Time the fast tokenizer against music21's, cold, on the same files, in one run.

For each file: the structure check (``midifile.check_midi``, which both
paths run first), then the tokenization proper on the checked file (read,
pair, group, quantize, split, spell): music21's ``midiStringToStream`` and
``tokens_of_score``, and ``fastmidi.fast_sequences``, each once (cold: nothing
comes from the parse cache).  What a process pays once is timed apart: the
first import of music21 and of symusic, and each path's first file (the
first call of a code path builds caches of its own, for either reader).
Garbage is collected before each timed step, so that neither path pays
for the other's (music21 leaves hundreds of thousands of objects behind).

    nice python scripts/bench_tokenizer.py --limit 30 --json docs/results/tokenizers/bench.json

``--check-only`` times the structure check alone, on every file: its own
pass over the bytes (``trackscan``) against reading every track with mido,
and whether both find the same facts.

    python scripts/bench_tokenizer.py --check-only --limit 0
"""

from __future__ import annotations

import argparse
import gc
import json
import platform
import statistics
import sys
import time
import warnings
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
DEFAULT_SOURCES = (str(REPO.parent / "shared" / "data" / "seed-mozart"),
                   str(REPO.parent / "shared" / "data" / "piano-midi"))


def _timed_import(name: str) -> float:
    started = time.perf_counter()
    __import__(name)
    return time.perf_counter() - started


def _spread(files: list[Path], limit: int) -> list[Path]:
    if limit and limit < len(files):
        step = len(files) / limit
        return [files[int(i * step)] for i in range(limit)]
    return files


def _bench_check(files: list[Path]) -> int:
    """The structure check's own pass against mido's, track by track, on ``files``."""
    import mido  # noqa: F401  (imported before timing)

    from cadenza.train.midifile import read_layout, read_track_with_mido
    from cadenza.train.trackscan import scan_track

    scan_s = mido_s = 0.0
    tracks = same = deferred = 0
    for path in files:
        layout = read_layout(path.read_bytes())
        for number, chunk in enumerate(layout.tracks, 1):
            started = time.perf_counter()
            fast = scan_track(chunk)
            scan_s += time.perf_counter() - started
            started = time.perf_counter()
            slow = read_track_with_mido(layout, number, chunk)
            mido_s += time.perf_counter() - started
            tracks += 1
            deferred += fast is None
            same += fast == slow
    print(json.dumps({"files": len(files), "tracks": tracks, "identical": same,
                      "left_to_mido": deferred, "trackscan_s": scan_s, "mido_s": mido_s,
                      "speedup": mido_s / scan_s}, indent=1))
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("sources", nargs="*", default=list(DEFAULT_SOURCES))
    parser.add_argument("--limit", type=int, default=30,
                        help="files, spread evenly over the sources (0: all)")
    parser.add_argument("--repeat", type=int, default=1,
                        help="fast-path runs per file; the best counts (music21 runs once)")
    parser.add_argument("--json", type=Path, help="also write the results here")
    parser.add_argument("--check-only", action="store_true",
                        help="time the structure check against mido's reading, nothing else")
    args = parser.parse_args(argv)

    from cadenza.train.sources import resolve_sources

    if args.check_only:
        return _bench_check(_spread([f.path for f in resolve_sources(args.sources)], args.limit))

    imports = {"symusic": _timed_import("symusic"), "music21": _timed_import("music21")}
    from music21.midi import translate

    from cadenza.train.fastmidi import Unsupported, fast_sequences
    from cadenza.train.midifile import check_midi
    from cadenza.train.parse import ParseSettings, tokens_of_score

    files = _spread([f.path for f in resolve_sources(args.sources)], args.limit)
    settings = ParseSettings(tokenizer="music21")

    def music21_tokens(layout):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            return [s for music in layout.music()
                    for s in tokens_of_score(translate.midiStringToStream(music), settings,
                                             score_rules=False)]

    first = check_midi(files[0].read_bytes())
    started = time.perf_counter()
    fast_sequences(first)
    imports["fast_first_file"] = time.perf_counter() - started
    started = time.perf_counter()
    music21_tokens(first)
    imports["music21_first_file"] = time.perf_counter() - started
    rows = []
    for path in files:
        data = path.read_bytes()
        gc.collect()
        started = time.perf_counter()
        layout = check_midi(data)
        check = time.perf_counter() - started
        fast_best = float("inf")
        try:
            for _ in range(max(1, args.repeat)):
                gc.collect()
                started = time.perf_counter()
                fast = fast_sequences(layout)
                fast_best = min(fast_best, time.perf_counter() - started)
        except Unsupported as err:
            print(f"{path.name}: left to music21 ({err}); not timed", file=sys.stderr)
            continue
        gc.collect()
        started = time.perf_counter()
        reference = music21_tokens(layout)
        m21 = time.perf_counter() - started
        rows.append({"file": str(path), "tokens": sum(map(len, reference)), "check_s": check,
                     "music21_s": m21, "fast_s": fast_best, "identical": fast == reference})
        print(f"{path.name}: music21 {m21:.2f} s, fast {fast_best * 1000:.2f} ms, "
              f"check {check * 1000:.0f} ms, x{m21 / fast_best:.0f}", file=sys.stderr)

    def total(key: str) -> float:
        return sum(r[key] for r in rows)

    result = {
        "machine": f"{platform.machine()}, {platform.python_implementation()} "
                   f"{platform.python_version()}",
        "files": len(rows),
        "identical": sum(r["identical"] for r in rows),
        "once_s": imports,
        "music21_s": total("music21_s"),
        "fast_s": total("fast_s"),
        "check_s": total("check_s"),
        "speedup_tokenization": total("music21_s") / total("fast_s"),
        "speedup_with_check": (total("music21_s") + total("check_s"))
        / (total("fast_s") + total("check_s")),
        "fast_ms_per_file_median": 1000 * statistics.median(r["fast_s"] for r in rows),
        "music21_s_per_file_median": statistics.median(r["music21_s"] for r in rows),
        "rows": rows,
    }
    print(json.dumps({k: v for k, v in result.items() if k != "rows"}, indent=2))
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(result, indent=1) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
