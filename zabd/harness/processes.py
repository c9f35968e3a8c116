"""Start real zabd (twistd) and Apache ZooKeeper server processes on 127.0.0.1.

Used by the interop tests and the benchmarks. Each server lives in its own
work directory holding ``zoo.cfg``, ``data/`` and ``server.log`` (stdout and
stderr of the process). A server is ready when this very process listens on
its port (checked in /proc, so a foreign server that grabbed the port cannot
pass for ours), ``ruok`` answers ``imok`` and ``srvr`` does not say "not
currently serving". Waiting always polls a condition against a deadline.
"""

from __future__ import annotations

import atexit
import os
import shlex
import shutil
import subprocess
import threading
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from types import TracebackType
from typing import IO

# Some names are re-exported: callers have always imported them from here.
from zabd.harness.commands import (
    CFG_NAME,
    LOCALHOST,
    admin_settings,
    write_config,
    zabd_command,
    zabd_environment,
    zookeeper_command,
    zookeeper_system_properties,
)
from zabd.harness.probes import four_letter, free_port, listens_on, wait_until

LOG_NAME = "server.log"
NOT_SERVING = "not currently serving requests"
ADDRESS_IN_USE = "Address already in use"
PORT_ATTEMPTS = 3

_live: set[ServerProcess] = set()
_live_lock = threading.Lock()


@dataclass(eq=False)
class ServerProcess:
    """A running server process; stop() (or the with-block) reaps it."""

    kind: str
    host: str
    port: int
    workdir: Path
    process: subprocess.Popen[bytes]
    log_path: Path = field(default=Path())
    _log_file: IO[bytes] | None = field(default=None, repr=False)
    #: The HTTP admin server's port, when the test asked for one (``admin=True``).
    admin_port: int | None = None

    def __post_init__(self) -> None:
        if self.log_path == Path():
            self.log_path = self.workdir / LOG_NAME
        with _live_lock:
            _live.add(self)

    @property
    def pid(self) -> int:
        return self.process.pid

    @property
    def cfg_path(self) -> Path:
        return self.workdir / CFG_NAME

    @property
    def data_dir(self) -> Path:
        return self.workdir / "data"

    def address(self) -> str:
        return f"{self.host}:{self.port}"

    def is_running(self) -> bool:
        return self.process.poll() is None

    def log_text(self) -> str:
        if self._log_file is not None and not self._log_file.closed:
            self._log_file.flush()
        try:
            return self.log_path.read_text(encoding="utf-8", errors="replace")
        except FileNotFoundError:
            return ""

    def describe(self, tail_chars: int = 20000) -> str:
        """A diagnostic block (kind, address, exit status, log tail) for failure messages."""
        status = self.process.poll()
        state = "running" if status is None else f"exited with {status}"
        text = self.log_text()
        if len(text) > tail_chars:
            text = "...(truncated)...\n" + text[-tail_chars:]
        return (
            f"--- {self.kind} server at {self.address()} ({state}), "
            f"log {self.log_path} ---\n{text}\n--- end of {self.kind} log ---"
        )

    def stop(self, timeout: float = 10.0) -> None:
        """SIGTERM, wait up to ``timeout``, then SIGKILL; always reaps. Idempotent."""
        if self.process.poll() is None:
            try:
                self.process.terminate()
                self.process.wait(timeout)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        self._release()

    def kill(self) -> None:
        """SIGKILL and reap (simulates a crash)."""
        if self.process.poll() is None:
            self.process.kill()
        self.process.wait()
        self._release()

    def four_letter(self, word: str, timeout: float = 5.0) -> str:
        """Send a four-letter word and return everything until the server closes."""
        return four_letter(self.host, self.port, word, timeout)

    def __enter__(self) -> ServerProcess:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    def _release(self) -> None:
        if self._log_file is not None and not self._log_file.closed:
            self._log_file.close()
        with _live_lock:
            _live.discard(self)


class ServerStartError(RuntimeError):
    """The server process exited (or never listened) during startup; ``log`` is its output."""

    def __init__(self, message: str, log: str) -> None:
        super().__init__(message)
        self.log = log


def start_zabd(
    workdir: Path,
    extra_cfg: Mapping[str, str] | None = None,
    port: int | None = None,
    timeout: float = 30.0,
    admin: bool = False,
) -> ServerProcess:
    """Start ``twistd -n zabd --config workdir/zoo.cfg`` and wait until it serves.

    ``admin=True`` turns the HTTP admin server on, on a free port (``admin_port``).
    """
    return _start("zabd", Path(workdir), extra_cfg, port, timeout, zabd_environment(), admin)


def start_zookeeper(
    workdir: Path,
    extra_cfg: Mapping[str, str] | None = None,
    port: int | None = None,
    timeout: float = 60.0,
    admin: bool = False,
) -> ServerProcess:
    """Start a standalone Apache ZooKeeper (Debian jar) and wait until it serves (``admin`` as start_zabd)."""
    return _start("zookeeper", Path(workdir), extra_cfg, port, timeout, dict(os.environ), admin)


def _start(
    kind: str,
    workdir: Path,
    extra_cfg: Mapping[str, str] | None,
    port: int | None,
    timeout: float,
    env: dict[str, str],
    admin: bool = False,
) -> ServerProcess:
    workdir.mkdir(parents=True, exist_ok=True)
    # A port from free_port() can be taken by someone else before the server
    # binds it; then try another one.
    attempts = 1 if port is not None else PORT_ATTEMPTS
    for attempt in range(1, attempts + 1):
        chosen = free_port() if port is None else port
        admin_port = _other_free_port(chosen) if admin else None
        settings = dict(extra_cfg or {})
        if admin_port is not None:
            settings.update(admin_settings(admin_port))
        cfg = write_config(workdir, chosen, settings)
        if kind == "zabd":
            command = zabd_command(cfg)
        else:
            command = zookeeper_command(cfg, workdir, settings)
        try:
            return _launch(kind, command, env, workdir, chosen, timeout, admin_port)
        except ServerStartError as error:
            if attempt == attempts or ADDRESS_IN_USE not in error.log:
                raise
    raise AssertionError("unreachable")


def _die_with_parent(command: list[str]) -> list[str]:
    """Prefix ``command`` so the server gets SIGKILL if the test process dies uncleanly.

    Uses util-linux ``setpriv --pdeathsig`` (no preexec_fn, which is unsafe with
    threads). The death signal follows the spawning *thread*, so it is only
    used from the main thread.
    """
    setpriv = shutil.which("setpriv")
    if setpriv is None or threading.current_thread() is not threading.main_thread():
        return command
    return [setpriv, "--pdeathsig", "KILL", "--", *command]


def _other_free_port(taken: int) -> int:
    while True:
        port = free_port()
        if port != taken:
            return port


def _launch(
    kind: str, command: list[str], env: dict[str, str], workdir: Path, port: int, timeout: float,
    admin_port: int | None = None,
) -> ServerProcess:
    log_path = workdir / LOG_NAME
    log_file = open(log_path, "ab")  # noqa: SIM115 - owned by the ServerProcess
    log_file.write(f"$ {shlex.join(command)}\n".encode())
    log_file.flush()
    log_start = log_path.stat().st_size
    try:
        process = subprocess.Popen(
            _die_with_parent(command),
            cwd=workdir,
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=log_file,
            stderr=subprocess.STDOUT,
        )
    except BaseException:
        log_file.close()
        raise
    server = ServerProcess(kind, LOCALHOST, port, workdir, process, log_path, log_file, admin_port=admin_port)
    try:
        wait_until(
            lambda: _ready(server, log_start),
            timeout,
            f"{kind} to serve on {server.address()}",
            server.describe,
        )
    except BaseException:
        server.stop()
        raise
    return server


def _ready(server: ServerProcess, log_start: int) -> bool:
    if not server.is_running() or ADDRESS_IN_USE in _log_since(server, log_start):
        # (zabd may log a failed listen and keep running)
        raise ServerStartError(
            f"{server.kind} exited or could not listen during startup\n{server.describe()}",
            _log_since(server, log_start),
        )
    if not listens_on(server.process.pid, server.port):
        return False  # not bound yet; also guards against a foreign server on our port
    if server.admin_port is not None and not listens_on(server.process.pid, server.admin_port):
        return False
    try:
        if server.four_letter("ruok", timeout=2.0) != "imok":
            return False
        # ZooKeeper answers ruok before its database is loaded; srvr tells,
        # and is empty when the JVM is on its way out.
        srvr = server.four_letter("srvr", timeout=2.0)
        return NOT_SERVING not in srvr and "Zxid:" in srvr
    except OSError:
        return False


def _log_since(server: ServerProcess, offset: int) -> str:
    if server._log_file is not None and not server._log_file.closed:
        server._log_file.flush()
    with open(server.log_path, "rb") as log:
        log.seek(offset)
        return log.read().decode("utf-8", errors="replace")


@atexit.register
def _stop_leftovers() -> None:
    with _live_lock:
        leftovers = list(_live)
    for server in leftovers:
        server.kill()
