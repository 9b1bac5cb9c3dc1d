"""The noisy machine on demand: a real-time stealer on every CPU while asked, none after."""

from __future__ import annotations

import os
import time

import pytest

from testing.xrun_storm import xrun_storm


def _exited(pid: int) -> bool:
    """Whether ``pid`` has ended (a zombie until its parent reaps it)."""
    with open(f"/proc/{pid}/stat") as stat:
        return stat.read().rsplit(")", 1)[1].split()[0] == "Z"


def test_a_storm_runs_a_top_priority_stealer_on_each_cpu_and_ends_with_the_block():
    try:
        with xrun_storm(burst_ms=1.0, every_ms=4.0, seconds=30.0) as pids:
            cpus = sorted(os.sched_getaffinity(0))
            assert len(pids) == len(cpus)
            for pid, cpu in zip(pids, cpus, strict=True):
                assert os.sched_getscheduler(pid) == os.SCHED_FIFO
                assert os.sched_getparam(pid).sched_priority == os.sched_get_priority_max(
                    os.SCHED_FIFO)
                assert os.sched_getaffinity(pid) == {cpu}
    except PermissionError as err:
        pytest.skip(str(err))
    for pid in pids:
        with pytest.raises(ProcessLookupError):
            os.kill(pid, 0)  # ended and reaped


def test_a_stealer_ends_by_itself_after_its_time_even_if_nobody_stops_it():
    try:
        with xrun_storm(burst_ms=0.5, every_ms=2.0, seconds=0.3) as pids:
            deadline = time.monotonic() + 10.0
            while not all(_exited(pid) for pid in pids) and time.monotonic() < deadline:
                time.sleep(0.05)
            assert all(_exited(pid) for pid in pids)
    except PermissionError as err:
        pytest.skip(str(err))
