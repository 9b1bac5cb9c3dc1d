"""``cadenza live`` as a function of typed settings: load the model, run the daemon, restore.

No argparse here: the CLI hands in the settings and a function that reads
them again (for SIGHUP), so a test or another program can run the daemon the
same way the command does.
"""

from __future__ import annotations

import logging
import signal
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import replace

from cadenza.config import LiveConfig
from cadenza.errors import ConfigError
from cadenza.live.daemon.daemon import SWITCH_INTERVAL, Daemon
from cadenza.live.daemon.supervision import install_signals

log = logging.getLogger(__name__)

#: Settings that need the ports or the model reopened: a reload keeps them
#: until a restart.
FIXED_UNTIL_RESTART = (
    "model", "runner", "api", "in_port", "out_port", "record", "clock_out", "queue_size",
)


def reread_settings(load: Callable[[], LiveConfig], current: LiveConfig) -> LiveConfig | None:
    """The settings read again by ``load``, less what only a restart may change.

    A file that no longer loads is reported and ignored (None).
    """
    try:
        settings = load()
    except ConfigError as err:
        log.error("reload failed, keeping the current settings: %s", err)
        return None
    changed = [name for name in FIXED_UNTIL_RESTART
               if getattr(settings, name) != getattr(current, name)]
    if changed:
        log.warning("reload: %s take effect only after a restart", ", ".join(changed))
        settings = replace(settings, **{name: getattr(current, name) for name in changed})
    return settings


def run_live(
    settings: LiveConfig,
    load_settings: Callable[[], LiveConfig] | None = None,
    duration: float | None = None,
    engine_kind: str = "python",
) -> int:
    """The improviser on MIDI ports until stopped (or for ``duration`` seconds).

    ``load_settings`` reads the settings again on SIGHUP; without it a reload
    keeps the current ones.
    """
    from cadenza.live.model import load_live_predictor

    began = time.monotonic()
    predictor = load_live_predictor(settings)
    reload = load_settings or (lambda: settings)
    daemon = Daemon(
        predictor, settings, reload_settings=lambda current: reread_settings(reload, current),
        engine_kind=engine_kind,
    )
    previous_interval = sys.getswitchinterval()
    # A thread woken for a due note (or JACK's thread delivering input) waits
    # for the GIL at most this long, instead of the default 5 ms.
    sys.setswitchinterval(SWITCH_INTERVAL)
    in_main = threading.current_thread() is threading.main_thread()
    previous = install_signals(daemon) if in_main else {}
    try:
        daemon.start()
        log.info(
            "Cadenza is listening (%s mode, %g BPM, grid %s, clock %s%s); ready in %.2f s",
            settings.mode, settings.bpm, settings.grid, settings.clock,
            ", clock out" if settings.clock_out else "", time.monotonic() - began,
        )
        return daemon.run(duration=duration)
    finally:
        for signum, handler in previous.items():
            signal.signal(signum, handler)
        sys.setswitchinterval(previous_interval)
