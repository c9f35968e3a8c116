# -*- test-case-name: tests.unit.test_bench -*-
"""Where the CPU went during a measured window: the server's processes and the whole machine (Linux /proc).

Kept apart from :mod:`zabd.tools.bench`, which runs the workloads; these only
read /proc, for any local process, started by the benchmark or not.
"""
from __future__ import annotations

import contextlib
import os
from pathlib import Path

from zabd.tools._report import Target


def machine_ticks() -> tuple[int, int]:
    """(busy, total) jiffies over all cores, from /proc/stat."""
    fields = [int(v) for v in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
    idle = fields[3] + fields[4]
    return sum(fields) - idle, sum(fields)


def process_seconds(pid: int | None) -> float:
    """CPU seconds used by pid and its direct children (e.g. a wrapper script's JVM)."""
    if pid is None:
        return 0.0
    total, tick = 0.0, os.sysconf("SC_CLK_TCK")
    pids = [pid]
    with contextlib.suppress(OSError):
        for task in Path(f"/proc/{pid}/task").iterdir():
            pids += [int(c) for c in (task / "children").read_text().split()]
    for p in pids:
        with contextlib.suppress(OSError):
            stat = Path(f"/proc/{p}/stat").read_text().rsplit(")", 1)[1].split()
            total += (int(stat[11]) + int(stat[12])) / tick
    return total


def server_seconds(target: Target) -> float:
    """CPU seconds of the server, or of every peer of an ensemble."""
    return process_seconds(target.pid) + sum(process_seconds(pid) for pid in target.peer_pids)


def listening_pid(port: int) -> int | None:
    """The local process listening on port (Linux /proc; None if not visible)."""
    inodes = set()
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        with contextlib.suppress(OSError):
            for row in Path(table).read_text().splitlines()[1:]:
                cols = row.split()
                if cols[3] == "0A" and int(cols[1].rsplit(":", 1)[1], 16) == port:
                    inodes.add(f"socket:[{cols[9]}]")
    for proc in Path("/proc").iterdir():
        if proc.name.isdigit():
            with contextlib.suppress(OSError):
                if any(os.readlink(fd) in inodes for fd in (proc / "fd").iterdir()):
                    return int(proc.name)
    return None
