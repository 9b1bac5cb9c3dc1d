"""The native engine's hot path allocates nothing and takes no lock.

The C++ bench drives the engine (predicting steps, performer input, answers
with chords and interruptions, CCs, reload, stop, panic) with an LD_PRELOAD
counter of malloc/calloc/realloc/free/pthread_mutex_lock armed from C around
each engine call only.  Counts, not timings: the timings are the bench's.
"""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

import pytest

from tests.support.native_engine_support import VOCAB

BUILD = Path(__file__).resolve().parents[2] / "build" / "native"


def test_no_allocation_or_lock_in_engine_calls(tmp_path):
    binary, counter = BUILD / "cadenza_engine_bench", BUILD / "libcadenza_engine_alloc_counter.so"
    if not (binary.exists() and counter.exists()):
        pytest.skip("the native bench is not built; run `make native`")
    vocab = tmp_path / "vocab.txt"
    vocab.write_text("\n".join(VOCAB) + "\n")
    env = {**os.environ, "LD_PRELOAD": str(counter)}
    done = subprocess.run([str(binary), str(vocab), "400"], env=env, check=True, capture_output=True,
                          text=True, timeout=120)
    result = json.loads(done.stdout.strip().splitlines()[-1])
    assert result["counter_loaded"] and result["counter_self_check"] == 2  # the counter counts
    assert result["calls_counted"] > 5000 and result["steps_with_prediction"] > 100
    assert {k: result[k] for k in ("malloc", "calloc", "realloc", "free", "mutex_lock")} == dict.fromkeys(
        ("malloc", "calloc", "realloc", "free", "mutex_lock"), 0)
