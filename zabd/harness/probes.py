"""Probes that tell whether a server on 127.0.0.1 is up, and polling with a deadline.

Kept apart from :mod:`zabd.harness.processes` because none of this needs a
server process object: sending a four-letter word, finding a free port,
checking in /proc that a given pid listens on a port, and waiting on a
condition. Tests and tools can use them on any server, started by us or not.
"""

from __future__ import annotations

import os
import random
import socket
import time
from collections.abc import Callable

from zabd.harness.commands import LOCALHOST

POLL_INTERVAL = 0.05
TCP_LISTEN = "0A"
#: Where test servers get their ports: below the kernel's ephemeral range
#: (32768-60999 here), where an outgoing connection could take a port between
#: our check and the server's bind, and clear of kazoo's harness (offset 20000
#: or the suite runner's, each cluster a few hundred ports up).
TEST_PORTS = range(10000, 20000)


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


_random = random.SystemRandom()


def free_port(host: str = LOCALHOST) -> int:
    """
    A port that was free a moment ago, from :data:`TEST_PORTS`.

    Bind to port 0 instead wherever the server can report its port; a server
    started from a zoo.cfg cannot, so it gets one of these.
    """
    for _ in range(1000):
        port = _random.choice(TEST_PORTS)
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
            try:
                sock.bind((host, port))
            except OSError:
                continue
        if _no_connection_uses(port):
            return port
    raise RuntimeError(f"no free port in {TEST_PORTS} on {host}")


def _no_connection_uses(port: int) -> bool:
    """No socket in any state (TIME_WAIT included) has ``port`` as its local port."""
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        try:
            with open(table) as rows:
                next(rows, None)
                if any(int(row.split()[1].rsplit(":", 1)[1], 16) == port for row in rows):
                    return False
        except FileNotFoundError:
            return True
    return True


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


def listening_ports(pid: int) -> set[int]:
    """Every TCP port process ``pid`` listens on (Linux /proc): what a config opened, and nothing else."""
    fd_dir = f"/proc/{pid}/fd"
    owned: set[str] = set()
    for fd in os.listdir(fd_dir):
        try:
            owned.add(os.readlink(f"{fd_dir}/{fd}"))
        except OSError:
            continue
    ports: set[int] = set()
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        with open(table) as rows:
            next(rows, None)
            for row in rows:
                fields = row.split()
                if fields[3] == TCP_LISTEN and f"socket:[{fields[9]}]" in owned:
                    ports.add(int(fields[1].rsplit(":", 1)[1], 16))
    return ports


def listens_on(pid: int, port: int) -> bool:
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
