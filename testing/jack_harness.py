"""A private JACK server and a MIDI client to play into Cadenza: the harness that the
end-to-end tests, the daemon benchmark and the soak share.

``JackServer`` runs ``jackd --no-realtime -d dummy -r 48000 -p 64`` (or
real-time, where allowed). Each server gets a unique name (so a run never
meets someone else's JACK) and clients find it through
``JACK_DEFAULT_SERVER``, which ``env`` gives; ``jack_environment`` puts it in
``os.environ`` so a daemon started as a subprocess finds the same server.  ``start`` returns once
the server accepts clients (or raises), ``kill`` stops it the hard way, as a
crash would.
"""

from __future__ import annotations

import contextlib
import itertools
import os
import shutil
import signal
import subprocess
import tempfile
import threading
import time
from pathlib import Path

RATE = 48000
PERIOD = 64
PERIOD_SECONDS = PERIOD / RATE  # JACK moves MIDI once per period: 1.33 ms

_names = itertools.count()


def jackd_available() -> bool:
    return shutil.which("jackd") is not None


@contextlib.contextmanager
def jack_environment(server: JackServer):
    """Point every JACK client started meanwhile (here or in a subprocess) at ``server``."""
    saved = {key: os.environ.get(key) for key in server.env}
    os.environ.update(server.env)
    try:
        yield server
    finally:
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value


class JackServer:
    def __init__(
        self, name: str | None = None, rate: int = RATE, period: int = PERIOD,
        realtime: bool = False,
    ) -> None:
        self.name = name or f"cadenza-test-{os.getpid()}-{next(_names)}"
        self.rate = rate
        self.period = period
        # realtime: SCHED_FIFO for the server and its clients' process threads,
        # as a real installation runs it (needs root or an rtprio limit).
        self.realtime = realtime
        self.process: subprocess.Popen | None = None
        self.log_path = Path(tempfile.gettempdir()) / f"jackd-{self.name}.log"

    @property
    def env(self) -> dict[str, str]:
        # JACK_NO_START_SERVER: a client must never start a default server of its own.
        return {"JACK_DEFAULT_SERVER": self.name, "JACK_NO_START_SERVER": "1"}

    def _client_env(self) -> dict[str, str]:
        return {**os.environ, **self.env}

    def start(self, timeout: float = 10.0) -> JackServer:
        if self.process is not None and self.process.poll() is None:
            raise RuntimeError(f"JACK server {self.name} is already running")
        scheduling = ["--realtime", "-P", "70"] if self.realtime else ["--no-realtime"]
        command = [
            "jackd", "-n", self.name, *scheduling,
            "-d", "dummy", "-r", str(self.rate), "-p", str(self.period),
        ]
        with self.log_path.open("ab") as log:
            self.process = subprocess.Popen(
                command, stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT,
                env=self._client_env(), start_new_session=True, preexec_fn=_favour,
            )
        self.wait_ready(timeout)
        return self

    def wait_ready(self, timeout: float) -> None:
        """Poll until the server accepts a client; fail early if jackd died."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process is not None and self.process.poll() is not None:
                raise RuntimeError(
                    f"jackd exited with status {self.process.returncode}; "
                    f"its log:\n{self.log_tail()}"
                )
            check = subprocess.run(
                ["jack_wait", "-s", self.name, "-c"], env=self._client_env(),
                stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True,
            ) if shutil.which("jack_wait") else None
            if check is None:
                if _rtmidi_client_opens():
                    return
            elif check.stdout.strip() == "running":
                return
            time.sleep(0.05)  # polling interval of a readiness check, not a timing bet
        self.stop()
        raise TimeoutError(f"JACK server {self.name} not ready after {timeout} s")

    def log_tail(self, lines: int = 20) -> str:
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return "(no log)"

    def kill(self) -> None:
        """Stop the server as a crash would (SIGKILL), and reap it."""
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(signal.SIGKILL)
            self.process.wait(10)

    def stop(self) -> None:
        if self.process is None or self.process.poll() is not None:
            return
        self.process.terminate()
        try:
            self.process.wait(5)
        except subprocess.TimeoutExpired:
            self.kill()

    def restart(self, timeout: float = 10.0) -> None:
        self.stop()
        self.start(timeout)

    def __enter__(self) -> JackServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
        self.log_path.unlink(missing_ok=True)


def _favour() -> None:
    # --no-realtime leaves jackd at normal priority: on a busy machine, favour
    # it where allowed (as a real-time server would be), else carry on.
    with contextlib.suppress(OSError):
        os.nice(-10)
    # And let it die with the process that started it, even one that crashed
    # before its fixture could stop it (Linux: PR_SET_PDEATHSIG).
    with contextlib.suppress(OSError, AttributeError):
        import ctypes

        ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGTERM)


def _rtmidi_client_opens() -> bool:
    import rtmidi

    try:
        client = rtmidi.MidiOut(rtmidi.API_UNIX_JACK, "jack-probe")
    except rtmidi.RtMidiError:
        return False
    client.delete()
    return True


class MidiClient:
    """A test performer and listener on JACK.

    It plays into the port whose name contains ``play_to`` and records, with
    ``time.monotonic()`` at arrival, what comes out of the port whose name
    contains ``listen_to``; with ``virtual`` it creates ports of those names
    instead, for Cadenza to connect to with --in/--out.  Its input callback runs on JACK's process thread,
    so it only appends the raw bytes (a slow callback overruns the JACK cycle
    and garbles a burst); messages are parsed when asked for.  ``wait_for``
    blocks until the messages satisfy a predicate, with a timeout.
    """

    def __init__(self, play_to: str | None = "Cadenza In", listen_to: str | None = "Cadenza Out",
                 timeout: float = 10.0, name: str = "Tester", virtual: bool = False) -> None:
        import threading

        import rtmidi

        from cadenza.live.realtime import favoured

        self._rtmidi = rtmidi
        # rtmidi's JACK output is a one-writer ring buffer: threads take turns.
        self._send_lock = threading.Lock()
        self._raw: list[tuple[float, list[int]]] = []
        self._arrived = threading.Event()
        self._parsed: list[tuple[float, object]] = []
        self.input = self.output = None
        try:
            with favoured():  # JACK's threads for these clients inherit it, as in Cadenza
                self.input = rtmidi.MidiIn(rtmidi.API_UNIX_JACK, name) if listen_to else None
                self.output = rtmidi.MidiOut(rtmidi.API_UNIX_JACK, name) if play_to else None
            if listen_to:
                self.input.ignore_types(sysex=True, timing=False, active_sense=True)
                self.input.set_callback(self._on_message)
                if virtual:
                    self.input.open_virtual_port(listen_to)
                else:
                    self._connect(self.input, listen_to, timeout, "listen")
            if play_to:
                if virtual:
                    self.output.open_virtual_port(play_to)
                else:
                    self._connect(self.output, play_to, timeout, "play")
        except BaseException:
            self.close()
            raise
        # A JACK connection takes effect a cycle or two after it is made (more
        # on a busy machine, where the server waits for the CPU too).
        time.sleep(0.1)

    @staticmethod
    def _connect(client, part: str, timeout: float, own: str) -> None:
        deadline = time.monotonic() + timeout
        while True:
            names = client.get_ports()
            hits = [i for i, n in enumerate(names) if part in n]
            if hits:
                client.open_port(hits[0], own)
                return
            if time.monotonic() > deadline:
                raise TimeoutError(f"no JACK port containing {part!r} (have {names})")
            time.sleep(0.02)  # polling interval while the daemon starts

    def _on_message(self, event, _data=None) -> None:
        self._raw.append((time.monotonic(), event[0]))
        self._arrived.set()

    def send(self, message) -> float:
        """Send a mido message now; returns the time it was handed to JACK."""
        return self.send_bytes(message.bytes())

    def send_bytes(self, data: list[int]) -> float:
        """Send raw bytes now, well-formed or not (python-rtmidi may refuse
        some with ValueError or TypeError); returns the time handed to JACK."""
        with self._send_lock:
            now = time.monotonic()
            self.output.send_message(data)
        return now

    def messages(self, *types: str) -> list[tuple[float, object]]:
        """(arrival time, mido message) received so far, optionally of these types."""
        import mido

        raw = self._raw
        while len(self._parsed) < len(raw):
            stamp, data = raw[len(self._parsed)]
            self._parsed.append((stamp, mido.Message.from_bytes(data)))
        return [(t, m) for t, m in self._parsed if not types or m.type in types]

    def wait_for(self, predicate, timeout: float = 10.0) -> bool:
        """Wait until ``predicate(messages())`` is true, or the timeout."""
        deadline = time.monotonic() + timeout
        while True:
            self._arrived.clear()
            if predicate(self.messages()):
                return True
            left = deadline - time.monotonic()
            if left <= 0:
                return False
            self._arrived.wait(left)

    def clear(self) -> None:
        self.messages()
        self._raw.clear()
        self._parsed.clear()

    def close(self) -> None:
        if self.input is not None:
            self.input.cancel_callback()
            # A callback under way (waiting for the GIL) must finish before the
            # port closes, or JACK waits for it while the GIL waits for JACK.
            time.sleep(0.02)
        for client in (self.input, self.output):
            if client is not None:
                client.close_port()
                client.delete()
        self.input = self.output = None

    def __enter__(self) -> MidiClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def sounding_notes(messages) -> set[tuple[int, int]]:
    """(channel, note) left on by note-ons and note-offs (controllers do not count:
    a test wants every note-on answered by its own note-off)."""
    on: dict[tuple[int, int], int] = {}
    for _, message in messages:
        kind = message.type
        if kind == "note_on" and message.velocity > 0:
            key = (message.channel, message.note)
            on[key] = on.get(key, 0) + 1
        elif kind in ("note_on", "note_off"):
            key = (message.channel, message.note)
            if on.get(key, 0) > 1:
                on[key] -= 1
            else:
                on.pop(key, None)
    return set(on)


# -- third-party JACK clients: jack_lsp, jack_connect, jack_transport, jack_midi_dump --


def jack_ports(env: dict[str, str]) -> list[str]:
    """Every port of the JACK server ``env`` points at (``jack_lsp``)."""
    out = subprocess.run(["jack_lsp"], env=env, capture_output=True, text=True, timeout=10)
    return out.stdout.splitlines()


def wait_port(env: dict[str, str], part: str, timeout: float = 10.0) -> str:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        hits = [p for p in jack_ports(env) if part in p]
        if hits:
            return hits[0]
        time.sleep(0.05)  # polling interval while a client starts
    raise TimeoutError(f"no JACK port containing {part!r}: {jack_ports(env)}")


def connect(env: dict[str, str], source: str, sink: str) -> None:
    subprocess.run(["jack_connect", source, sink], env=env, check=True, timeout=10)


def wire_clock_master(env: dict[str, str], dump_client: str) -> None:
    """jack_midi_clock's output into Cadenza and into the dump, and Cadenza's
    output into the dump too: one ``jack_midi_dump -a`` timestamps the
    master's ticks and Cadenza's notes on the same JACK clock."""
    monitor = wait_port(env, f"{dump_client}:")
    clock_out = wait_port(env, "jack_midi_clock:mclk_out")
    connect(env, clock_out, wait_port(env, ":Cadenza In"))
    connect(env, clock_out, monitor)
    connect(env, wait_port(env, ":Cadenza Out"), monitor)


def transport(env: dict[str, str], command: str) -> None:
    subprocess.run(["jack_transport"], input=f"{command}\nquit\n", env=env, text=True,
                   capture_output=True, timeout=10, check=False)


def read_midi_dump(path: Path) -> list[tuple[int, list[int]]]:
    """(frame, bytes) of each event jack_midi_dump -a printed
    ("  58304: 90 3c 50 note on  (channel  0): ...": the bytes, then words)."""
    events = []
    for line in path.read_text(errors="replace").splitlines():
        frame, _, rest = line.partition(":")
        data = []
        for word in rest.split():
            if len(word) != 2 or any(c not in "0123456789abcdef" for c in word):
                break
            data.append(int(word, 16))
        with contextlib.suppress(ValueError):
            events.append((int(frame), data))
    return events


def note_on_frames(events) -> list[int]:
    return [f for f, d in events if d and d[0] & 0xF0 == 0x90 and len(d) > 2 and d[2] > 0]


@contextlib.contextmanager
def background_process(command: list[str], env: dict[str, str], log: Path):
    with log.open("wb") as out:
        proc = subprocess.Popen(command, env=env, stdout=out, stderr=subprocess.STDOUT,
                                stdin=subprocess.DEVNULL)
    try:
        yield proc
    finally:
        proc.terminate()
        try:
            proc.wait(5)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(5)


@contextlib.contextmanager
def running_daemon(predictor, live):
    """A Daemon on ``predictor`` with ``live`` settings, supervised in a thread until the block ends."""
    from cadenza.live.daemon.daemon import Daemon

    daemon = Daemon(predictor, live)
    daemon.start()
    supervisor = threading.Thread(target=daemon.run, name="supervisor")
    supervisor.start()
    try:
        yield daemon
    finally:
        daemon.request_stop("test over")
        supervisor.join(10)
        assert not supervisor.is_alive(), "the daemon did not stop"


def wait_for(predicate, timeout: float) -> bool:
    """Poll ``predicate`` until true (True) or ``timeout`` seconds pass (False)."""
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            return False
        time.sleep(0.05)  # polling a file another process writes
    return True


@contextlib.contextmanager
def recording_ticks(follower):
    """Record (arrival, JACK lag, count after) of each tick ``follower`` gets."""
    ticks: list[tuple[float, float, int]] = []
    tick = follower.tick

    def recorded(now: float, master_time: float | None = None) -> None:
        tick(now, master_time)
        lag = 0.0 if master_time is None else now - master_time
        ticks.append((now, lag, follower.tracker.count))

    follower.tick = recorded  # the engine looks it up at each tick
    try:
        yield ticks
    finally:
        follower.tick = tick

