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


ZERO = dict.fromkeys(("malloc", "calloc", "realloc", "free", "mutex_lock"), 0)


def _bench(tmp_path, vocabulary, *model: str) -> dict:
    binary, counter = BUILD / "cadenza_engine_bench", BUILD / "libcadenza_alloc_counter.so"
    if not (binary.exists() and counter.exists()):
        pytest.skip("the native bench is not built; run `make native`")
    vocab = tmp_path / "vocab.txt"
    vocab.write_text("\n".join(vocabulary) + "\n")
    env = {**os.environ, "LD_PRELOAD": str(counter)}
    done = subprocess.run([str(binary), str(vocab), "400", *model], env=env, check=True,
                          capture_output=True, text=True, timeout=120)
    return json.loads(done.stdout.strip().splitlines()[-1])


def test_no_allocation_or_lock_in_engine_calls(tmp_path):
    result = _bench(tmp_path, VOCAB)
    assert result["counter_loaded"] and result["counter_self_check"] == 2  # the counter counts
    assert result["calls_counted"] > 5000 and result["steps_with_prediction"] > 100
    assert result["steps_prepared_with_prediction"] > 100  # prepare() counted too
    assert {k: result[k] for k in ZERO} == ZERO


@pytest.mark.parametrize("step", ["fp32", "int8"])
def test_no_allocation_or_lock_on_the_lazy_native_step(tmp_path, step):
    """The bundled model's step inside the engine: the feeds it queues and the
    steps prepare() and advance run for them allocate nothing and lock nothing."""
    from cadenza.bundle import bundled_model_path, read_bundle
    from cadenza.native import native_file

    bundle = read_bundle(bundled_model_path())
    result = _bench(tmp_path, bundle.vocabulary, str(bundle.path / native_file(bundle)), step)
    assert result["model"] == f"native {step}" and result["counter_self_check"] == 2
    assert result["calls_counted"] > 5000 and result["steps_prepared_with_prediction"] > 100
    assert result["prepares_owed"] > 10  # prepare() after a key stepped the token it fed
    assert {k: result[k] for k in ZERO} == ZERO
