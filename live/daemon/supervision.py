"""The supervisor's wake-up: a self-pipe any thread or signal handler may write to, and signals."""

from __future__ import annotations

import contextlib
import os
import select
import signal
from typing import Any, Protocol


class Stoppable(Protocol):
    def request_stop(self, reason: str = ...) -> None: ...

    def request_reload(self) -> None: ...


class Waker:
    """Wakes the supervisor from any thread or a signal handler: a self-pipe.

    A signal handler may interrupt a thread inside a lock, so it must not
    take one; writing a byte to a pipe is safe anywhere.
    """

    def __init__(self) -> None:
        self._read, self._write = os.pipe()
        os.set_blocking(self._read, False)
        os.set_blocking(self._write, False)

    def wake(self) -> None:
        # OSError: the pipe is full (the supervisor is awake anyway) or closed.
        with contextlib.suppress(OSError):
            if self._write >= 0:
                os.write(self._write, b"\0")

    def wait(self, timeout: float | None) -> None:
        try:
            ready, _, _ = select.select([self._read], [], [], timeout)
        except InterruptedError:
            return
        if ready:
            try:
                while os.read(self._read, 512):
                    pass
            except BlockingIOError:
                pass

    def close(self) -> None:
        # A late wake (a JACK thread) must not write into a reused descriptor.
        write, self._write = self._write, -1
        if write >= 0:
            os.close(self._read)
            os.close(write)


def install_signals(daemon: Stoppable) -> dict[int, Any]:
    """SIGINT/SIGTERM stop, SIGHUP reloads; the handlers only set a flag and wake."""

    def stop(signum: int, _frame: object) -> None:
        daemon.request_stop(f"{signal.Signals(signum).name} received")

    def hup(_signum: int, _frame: object) -> None:
        daemon.request_reload()

    previous = {
        signal.SIGINT: signal.signal(signal.SIGINT, stop),
        signal.SIGTERM: signal.signal(signal.SIGTERM, stop),
    }
    if hasattr(signal, "SIGHUP"):
        previous[signal.SIGHUP] = signal.signal(signal.SIGHUP, hup)
    return previous
