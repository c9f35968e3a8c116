# -*- test-case-name: tests.unit.test_portblock -*-
"""A block of ports that one test run holds for itself, across processes.

kazoo's harness starts its peers on fixed ports, ``ZOOKEEPER_PORT_OFFSET``
and up. Two runs on one machine with the same offset (two ``pytest``
sessions, or a zabd run beside a ``--zookeeper`` one) share those ports:
the peers started second find them taken and exit, and their tests talk to
the other run's ensemble, which that run stops and restarts on its own
schedule. Tests then fail at random and pass when run again alone.
:func:`claim_port_block` gives each run a block of its own: it takes an
exclusive lock file per block (``flock``, so a run that dies releases it)
and checks that every port in the block is free.
"""
from __future__ import annotations

import fcntl
import os
import socket
import tempfile
from collections.abc import Callable, Iterator
from contextlib import contextmanager

#: kazoo.testing.common gives peer i ports offset + 10 * i + 0..4: three peers use offset .. offset + 24.
KAZOO_CLUSTER_PORTS = 25


def port_free(port: int) -> bool:
    """Whether a server could listen on ``port`` (all interfaces, SO_REUSEADDR as servers set it)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind(("", port))
        except OSError:
            return False
    return True


@contextmanager
def claim_port_block(
    first: int,
    *,
    size: int = KAZOO_CLUSTER_PORTS,
    stride: int = 100,
    candidates: int = 40,
    lock_dir: str | None = None,
    is_free: Callable[[int], bool] = port_free,
) -> Iterator[int]:
    """
    Hold the first block ``first + k * stride`` (``k < candidates``) of ``size``
    ports that no other claim holds and whose ports are all free; yield its first port.

    :raises RuntimeError: every candidate block is claimed or in use.
    """
    directory = tempfile.gettempdir() if lock_dir is None else lock_dir
    for start in range(first, first + stride * candidates, stride):
        fd = os.open(os.path.join(directory, f"zabd-ports-{start}-{size}.lock"), os.O_RDWR | os.O_CREAT, 0o666)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            continue
        try:
            if all(is_free(port) for port in range(start, start + size)):
                yield start
                return
        finally:
            os.close(fd)  # closing the only descriptor releases the lock
    raise RuntimeError(f"no free block of {size} ports at {first} + k * {stride} for k < {candidates}")
