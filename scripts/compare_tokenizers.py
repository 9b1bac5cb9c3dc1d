"""Compare the fast tokenizer with music21's, token for token, on every file of the sources.

Each file goes through ``cadenza tokens`` twice: ``--tokenizer music21``
through the parse cache (the reference is slow, and a rerun should not pay
for it again) and ``--tokenizer fast --no-cache``.  The result is written
after every file, so the run can be stopped and taken up again with
``--resume`` (files already in the output are skipped).

    nice python scripts/compare_tokenizers.py --resume \\
        --out docs/results/tokenizers/compare.json

The summary at the end counts identical files and, for each other file,
says how it differs: the same tokens in another order, or other tokens.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
# fixtures: files kept for one regression each (their SOURCE.md says which)
DEFAULT_SOURCES = (str(REPO.parent / "shared" / "data" / "seed-mozart"),
                   str(REPO.parent / "shared" / "data" / "piano-midi"),
                   str(REPO.parent / "shared" / "data" / "fixtures"))


def _tokens(path: Path, tokenizer: str, config: Path, out: Path, cache: bool) -> tuple[object, float]:
    from cadenza import cli

    options = [] if cache else ["--no-cache"]
    started = time.perf_counter()
    code = cli.main(["--config", str(config), "tokens", "--data", str(path), "--tokenizer",
                     tokenizer, *options, "--json", str(out)])
    seconds = time.perf_counter() - started
    if code != 0:
        return {"error": f"cadenza tokens exited with {code}"}, seconds
    return json.loads(out.read_text())[str(path)], seconds


def _fast_route(path: Path) -> str:
    """Whether the fast path read the file itself, or left it to music21 (and why)."""
    from cadenza.train.fastmidi import Unsupported, fast_sequences
    from cadenza.train.midifile import ParseFailure, check_midi

    try:
        fast_sequences(check_midi(path.read_bytes()))
    except Unsupported as err:
        return f"music21: {err}"
    except ParseFailure:
        return "refused by the checker"
    return "fast"


def _flat(entry: object) -> list[str] | None:
    if isinstance(entry, list):
        return entry
    if isinstance(entry, dict) and "sequences" in entry:
        return [t for s in entry["sequences"] for t in s]
    return None


def compare(path: Path, config: Path, scratch: Path) -> dict:
    reference, m21_seconds = _tokens(path, "music21", config, scratch / "m21.json", cache=True)
    fast, fast_seconds = _tokens(path, "fast", config, scratch / "fast.json", cache=False)
    result = {"identical": fast == reference, "route": _fast_route(path),
              "music21_seconds": round(m21_seconds, 3), "fast_seconds": round(fast_seconds, 4)}
    a, b = _flat(reference), _flat(fast)
    if a is None or b is None:
        result["music21"] = reference if a is None else f"{len(a)} tokens"
        result["fast"] = fast if b is None else f"{len(b)} tokens"
        return result
    result.update(music21_tokens=len(a), fast_tokens=len(b))
    if not result["identical"]:
        result["same_tokens_other_order"] = Counter(a) == Counter(b)
        result["first_difference"] = next(
            (i for i, (x, y) in enumerate(zip(a, b, strict=False)) if x != y), min(len(a), len(b)))
    return result


def summary(results: dict[str, dict]) -> dict:
    differing = {p: r for p, r in results.items() if not r["identical"]}
    return {
        "files": len(results),
        "identical": len(results) - len(differing),
        "identical_fraction": round((len(results) - len(differing)) / max(1, len(results)), 4),
        "read_by_fast_path": sum(r["route"] == "fast" for r in results.values()),
        "differing_same_tokens_other_order": sum(
            bool(r.get("same_tokens_other_order")) for r in differing.values()),
        "differing": sorted(differing),
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("sources", nargs="*", default=list(DEFAULT_SOURCES))
    parser.add_argument("--out", type=Path, default=Path("compare_tokenizers.json"))
    parser.add_argument("--resume", action="store_true", help="skip files already in --out")
    parser.add_argument("--cache-dir", default=os.environ.get("CADENZA_CACHE_DIR", "~/.cache/cadenza"),
                        help="parse cache for music21's tokens")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.WARNING, stream=sys.stderr)

    from cadenza.bundle import write_json_atomic
    from cadenza.train.sources import resolve_sources

    document = json.loads(args.out.read_text()) if args.resume and args.out.is_file() else {}
    results: dict[str, dict] = document.get("files", {})
    files = [f.path for f in resolve_sources(args.sources)]
    with tempfile.TemporaryDirectory() as scratch:
        config = Path(scratch) / "config.toml"
        config.write_text(f"[data]\ncache_dir = {json.dumps(args.cache_dir)}\nworkers = 1\n")
        for number, path in enumerate(files, 1):
            if str(path) in results:
                continue
            results[str(path)] = compare(path, config, Path(scratch))
            outcome = "identical" if results[str(path)]["identical"] else "DIFFERS"
            print(f"[{number}/{len(files)}] {path.name}: {outcome}", flush=True)
            write_json_atomic(args.out, {"summary": summary(results), "files": results})
    final = summary(results)
    write_json_atomic(args.out, {"summary": final, "files": results})
    print(json.dumps({k: v for k, v in final.items() if k != "differing"}, indent=2))
    for path in final["differing"]:
        r = results[path]
        how = "same tokens, other order" if r.get("same_tokens_other_order") else "other tokens"
        print(f"  {path}: {how} (from token {r.get('first_difference')}; {r['route']})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
