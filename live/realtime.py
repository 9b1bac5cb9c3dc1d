"""Priority for the threads that keep time, where the system allows it.

The MIDI system's threads (started by the ports, ``cadenza.live.midi``), the
daemon's worker and its sending thread (``cadenza.live.daemon``) do little
work but must run the moment they wake; both layers ask for it here.
"""

from __future__ import annotations

import contextlib
import logging
import os
import sys
import threading
from collections.abc import Iterator

log = logging.getLogger(__name__)

TIMING_NICE = -10  # niceness asked for the threads that keep time, where allowed
# Real-time priority asked for the sending thread, where allowed (root, or an
# rtprio limit as audio users get): below JACK's own threads (its server runs
# at 10 by default, its clients' process threads at 5 and up), so Cadenza
# never delays the audio it plays with.
SEND_RT_PRIORITY = 4
# Only Linux gives each thread its own niceness (setpriority on a thread id).
PER_THREAD_NICE = sys.platform.startswith("linux")


def raise_thread_priority(nice: int = TIMING_NICE) -> bool:
    """Ask the OS to favour the calling thread (Linux: per-thread niceness).

    The timing threads do little work but must run the moment they wake; on
    a busy board a synth or a compile would otherwise delay them by whole
    scheduler slices.  Needs root or CAP_SYS_NICE (the systemd unit grants
    it); without, Cadenza runs at normal priority and says so once.
    """
    if not PER_THREAD_NICE:
        return False
    try:
        os.setpriority(os.PRIO_PROCESS, threading.get_native_id(), nice)
    except OSError as err:
        log.debug("cannot raise the priority of %s: %s", threading.current_thread().name, err)
        return False
    return True


@contextlib.contextmanager
def favoured(nice: int = TIMING_NICE) -> Iterator[None]:
    """Raise the calling thread's priority for the duration of the block.

    Threads started inside the block inherit it (Linux): python-rtmidi's
    clients start the MIDI system's threads (JACK's process thread, which
    delivers input and moves output) when they are created.
    """
    if not PER_THREAD_NICE:
        yield
        return
    tid = threading.get_native_id()
    before = os.getpriority(os.PRIO_PROCESS, tid)
    raised = raise_thread_priority(nice)
    try:
        yield
    finally:
        if raised:
            with contextlib.suppress(OSError):
                os.setpriority(os.PRIO_PROCESS, tid, before)


def raise_thread_to_realtime(priority: int = SEND_RT_PRIORITY) -> bool:
    """Put the calling thread under SCHED_FIFO at ``priority``, where allowed.

    A real-time thread runs the moment it wakes, ahead of every ordinary
    one: what a clock master's ticks need.  It only ever sleeps or spins
    for a bounded time, so it cannot take a core for good.  Without the
    right (no root, no rtprio limit) it stays as it was and says False.
    """
    if not hasattr(os, "sched_setscheduler"):
        return False
    try:
        os.sched_setscheduler(0, os.SCHED_FIFO, os.sched_param(priority))
    except (OSError, ValueError) as err:
        log.debug("no real-time priority for %s: %s", threading.current_thread().name, err)
        return False
    return True
