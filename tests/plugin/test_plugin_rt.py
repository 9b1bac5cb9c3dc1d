"""Real-time safety: nothing allocated, freed or locked inside the plugin's run().

An LD_PRELOAD counter (native/tests/alloc_counter.c) is armed from C around
each run() call only, in a subprocess, over thousands of 64-frame blocks
while calls are answered and the model is changed once.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from tests.plugin.lv2_host import BUNDLE, REPO, require_built
from tests.plugin.plugin_rt_probe import COUNTER

pytestmark = pytest.mark.plugin


def test_run_neither_allocates_nor_locks_while_answering():
    require_built(BUNDLE / "manifest.ttl", COUNTER)
    env = dict(os.environ, LD_PRELOAD=str(COUNTER))
    done = subprocess.run([sys.executable, "-m", "tests.plugin.plugin_rt_probe", "--blocks", "12000"],
                          cwd=REPO, env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    result = json.loads(done.stdout)
    assert result["self_check"]["malloc"] == 1, "the counter does not see allocations"
    assert result["answers"] >= 12, "too few answers played to say anything"
    assert result["inside_run"] == {
        "malloc": 0, "calloc": 0, "realloc": 0, "free": 0, "mutex_lock": 0}
