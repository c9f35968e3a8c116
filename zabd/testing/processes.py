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
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from types import TracebackType
from typing import IO

import zabd

LOCALHOST = "127.0.0.1"
LOG_NAME = "server.log"
CFG_NAME = "zoo.cfg"
POLL_INTERVAL = 0.05
NOT_SERVING = "not currently serving requests"
ADDRESS_IN_USE = "Address already in use"
TCP_LISTEN = "0A"
PORT_ATTEMPTS = 3

# Debian's zookeeper.jar names its dependencies in its manifest Class-Path
# (slf4j-api included, but no slf4j binding); slf4j-simple makes the server log
# to stderr, which we capture.
ZOOKEEPER_JAR = Path("/usr/share/java/zookeeper.jar")
SLF4J_BINDING_JAR = Path("/usr/share/java/slf4j-simple.jar")
ZOOKEEPER_MAIN = "org.apache.zookeeper.server.ZooKeeperServerMain"

# zoo.cfg keys that ZooKeeper honours only as JVM system properties, mapped to
# the property name. Any extra_cfg key starting with "zookeeper." is passed
# through as a property of the same name. The cfg line is written as well, so
# zabd sees exactly the same zoo.cfg.
ZOOKEEPER_SYSTEM_PROPERTIES: Mapping[str, str] = {
    "extendedTypesEnabled": "zookeeper.extendedTypesEnabled",
    "DigestAuthenticationProvider.superDigest": "zookeeper.DigestAuthenticationProvider.superDigest",
    "znode.container.checkIntervalMs": "znode.container.checkIntervalMs",
    "znode.container.maxPerMinute": "znode.container.maxPerMinute",
    "znode.container.maxNeverUsedIntervalMs": "znode.container.maxNeverUsedIntervalMs",
    "jute.maxbuffer": "jute.maxbuffer",
}

_TWISTD_BOOTSTRAP = "from twisted.scripts.twistd import run; run()"

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


def four_letter(host: str, port: int, word: str, timeout: float = 5.0) -> str:
    """Send ``word`` on a fresh connection and read until the peer closes."""
    if len(word) != 4:
        raise ValueError(f"four-letter word must be 4 characters: {word!r}")
    chunks: list[bytes] = []
    with socket.create_connection((host, port), timeout=timeout) as sock:
        sock.sendall(word.encode("ascii"))
        deadline = time.monotonic() + timeout
        while True:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise TimeoutError(f"{word} to {host}:{port}: no EOF within {timeout}s")
            sock.settimeout(remaining)
            try:
                chunk = sock.recv(65536)
            except ConnectionResetError:
                break
            if not chunk:
                break
            chunks.append(chunk)
    return b"".join(chunks).decode("utf-8", errors="replace")


def free_port(host: str = LOCALHOST) -> int:
    """A port that was free a moment ago (bind to port 0 and release it)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((host, 0))
        port: int = sock.getsockname()[1]
        return port


def wait_until(
    predicate: Callable[[], bool],
    timeout: float,
    what: str,
    describe: Callable[[], str] | None = None,
) -> None:
    """Poll ``predicate`` until it is true; raise TimeoutError(what [+ describe()]) at the deadline.

    Exceptions raised by ``predicate`` propagate (use that to fail fast).
    """
    deadline = time.monotonic() + timeout
    while True:
        if predicate():
            return
        if time.monotonic() >= deadline:
            detail = f"\n{describe()}" if describe is not None else ""
            raise TimeoutError(f"timed out after {timeout}s waiting for {what}{detail}")
        time.sleep(POLL_INTERVAL)


def repository_root() -> Path:
    """The directory holding the ``zabd`` package (and ``twisted/plugins``)."""
    return Path(zabd.__file__).resolve().parent.parent


def write_config(
    workdir: Path, port: int, extra_cfg: Mapping[str, str] | None = None
) -> Path:
    """Write ``workdir/zoo.cfg`` for a standalone server on 127.0.0.1:port."""
    data_dir = workdir / "data"
    data_dir.mkdir(parents=True, exist_ok=True)
    settings: dict[str, str] = {
        "tickTime": "2000",
        "dataDir": str(data_dir),
        "clientPort": str(port),
        "clientPortAddress": LOCALHOST,
        "4lw.commands.whitelist": "*",
        "admin.enableServer": "false",
    }
    settings.update(extra_cfg or {})
    cfg = workdir / CFG_NAME
    cfg.write_text("".join(f"{key}={value}\n" for key, value in settings.items()))
    return cfg


def zookeeper_classpath() -> str:
    for jar in (ZOOKEEPER_JAR, SLF4J_BINDING_JAR):
        if not jar.exists():
            raise FileNotFoundError(f"ZooKeeper needs {jar} (Debian packages zookeeper, libslf4j-java)")
    return f"{ZOOKEEPER_JAR}:{SLF4J_BINDING_JAR}"


def zookeeper_system_properties(extra_cfg: Mapping[str, str] | None) -> list[str]:
    """``-D`` flags for the settings ZooKeeper takes only as system properties."""
    flags = []
    for key, value in (extra_cfg or {}).items():
        if key.startswith("zookeeper."):
            flags.append(f"-D{key}={value}")
        elif key in ZOOKEEPER_SYSTEM_PROPERTIES:
            flags.append(f"-D{ZOOKEEPER_SYSTEM_PROPERTIES[key]}={value}")
    return flags


def zookeeper_command(cfg: Path, workdir: Path, extra_cfg: Mapping[str, str] | None) -> list[str]:
    java = shutil.which("java")
    if java is None:
        raise FileNotFoundError("java not found on PATH (needed to run Apache ZooKeeper)")
    return [
        java,
        "-Xmx512m",
        "-Djava.net.preferIPv4Stack=true",
        f"-Dzookeeper.log.dir={workdir}",
        "-Dzookeeper.admin.enableServer=false",
        "-Dorg.slf4j.simpleLogger.defaultLogLevel=info",
        "-Dorg.slf4j.simpleLogger.showDateTime=true",
        "-Dorg.slf4j.simpleLogger.dateTimeFormat=HH:mm:ss.SSS",
        *zookeeper_system_properties(extra_cfg),
        "-cp",
        zookeeper_classpath(),
        ZOOKEEPER_MAIN,
        str(cfg),
    ]


def zabd_command(cfg: Path) -> list[str]:
    return [sys.executable, "-c", _TWISTD_BOOTSTRAP, "-n", "--pidfile=", "zabd", "--config", str(cfg)]


def zabd_environment() -> dict[str, str]:
    env = dict(os.environ)
    root = str(repository_root())
    previous = env.get("PYTHONPATH")
    env["PYTHONPATH"] = root if not previous else f"{root}{os.pathsep}{previous}"
    env["PYTHONUNBUFFERED"] = "1"
    return env


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
) -> ServerProcess:
    """Start ``twistd -n zabd --config workdir/zoo.cfg`` and wait until it serves."""
    return _start("zabd", Path(workdir), extra_cfg, port, timeout, zabd_environment())


def start_zookeeper(
    workdir: Path,
    extra_cfg: Mapping[str, str] | None = None,
    port: int | None = None,
    timeout: float = 60.0,
) -> ServerProcess:
    """Start a standalone Apache ZooKeeper (Debian jar) and wait until it serves."""
    return _start("zookeeper", Path(workdir), extra_cfg, port, timeout, dict(os.environ))


def _start(
    kind: str,
    workdir: Path,
    extra_cfg: Mapping[str, str] | None,
    port: int | None,
    timeout: float,
    env: dict[str, str],
) -> ServerProcess:
    workdir.mkdir(parents=True, exist_ok=True)
    # A port from free_port() can be taken by someone else before the server
    # binds it; then try another one.
    attempts = 1 if port is not None else PORT_ATTEMPTS
    for attempt in range(1, attempts + 1):
        chosen = free_port() if port is None else port
        cfg = write_config(workdir, chosen, extra_cfg)
        if kind == "zabd":
            command = zabd_command(cfg)
        else:
            command = zookeeper_command(cfg, workdir, extra_cfg)
        try:
            return _launch(kind, command, env, workdir, chosen, timeout)
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


def _launch(
    kind: str, command: list[str], env: dict[str, str], workdir: Path, port: int, timeout: float
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
    server = ServerProcess(kind, LOCALHOST, port, workdir, process, log_path, log_file)
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
    if not _listens(server.process.pid, server.port):
        return False  # not bound yet; also guards against a foreign server on our port
    try:
        if server.four_letter("ruok", timeout=2.0) != "imok":
            return False
        # ZooKeeper answers ruok before its request pipeline is up; srvr tells.
        return NOT_SERVING not in server.four_letter("srvr", timeout=2.0)
    except OSError:
        return False


def _log_since(server: ServerProcess, offset: int) -> str:
    if server._log_file is not None and not server._log_file.closed:
        server._log_file.flush()
    with open(server.log_path, "rb") as log:
        log.seek(offset)
        return log.read().decode("utf-8", errors="replace")


def _listens(pid: int, port: int) -> bool:
    """Whether process ``pid`` holds a TCP socket listening on ``port`` (Linux /proc).

    Where /proc is not available this answers True and readiness relies on ruok.
    """
    inodes: set[str] = set()
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        try:
            with open(table) as rows:
                next(rows, None)
                for row in rows:
                    fields = row.split()
                    local, state, inode = fields[1], fields[3], fields[9]
                    if state == TCP_LISTEN and int(local.rsplit(":", 1)[1], 16) == port:
                        inodes.add(f"socket:[{inode}]")
        except FileNotFoundError:
            return True
    if not inodes:
        return False
    fd_dir = f"/proc/{pid}/fd"
    try:
        for fd in os.listdir(fd_dir):
            try:
                if os.readlink(f"{fd_dir}/{fd}") in inodes:
                    return True
            except OSError:
                continue
    except OSError:
        return False
    return False


@atexit.register
def _stop_leftovers() -> None:
    with _live_lock:
        leftovers = list(_live)
    for server in leftovers:
        server.kill()
