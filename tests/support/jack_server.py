"""The JACK harness for tests (``testing.jack_harness``), and pytest's rules for it.

The server and client helpers live in ``testing/`` (never installed) so that the benchmarks and
the soak import the same code; what only pytest needs (skip or fail when
jackd is missing or the machine is too busy) stays here.
"""

from __future__ import annotations

import os

from testing.jack_harness import (  # noqa: F401  (the tests import them from here)
    PERIOD,
    PERIOD_SECONDS,
    RATE,
    JackServer,
    MidiClient,
    jack_environment,
    jackd_available,
    sounding_notes,
)


def require_jackd() -> None:
    """Skip without jackd, except in CI (env CI set), which installs it: there, fail."""
    import pytest

    if jackd_available():
        return
    message = "jackd not found: install jackd2 (apt-get install jackd2)"
    if os.environ.get("CI"):
        pytest.fail(message)
    pytest.skip(message)


BUSY_FACTOR = 2  # load average per CPU beyond which real-time tests are not judged


def require_quiet_machine() -> None:
    """Skip, outside CI, on a machine with far more runnable work than cores.

    A JACK server that is not real-time, on a machine running (say) model
    training on every core, holds MIDI back by hundreds of milliseconds: what
    such a run measures is the machine, not Cadenza.  CI (env CI set) always
    runs the tests; so does CADENZA_JACK_TESTS=force.
    """
    import pytest

    if os.environ.get("CI") or os.environ.get("CADENZA_JACK_TESTS") == "force":
        return
    load, cpus = os.getloadavg()[0], os.cpu_count() or 1
    if load > BUSY_FACTOR * cpus:
        pytest.skip(
            f"machine too busy for real-time tests (load average {load:.1f} on {cpus} CPUs); "
            "run them when it is quieter, or set CADENZA_JACK_TESTS=force"
        )
