"""Restart time and resident memory with a large tree, zabd against ZooKeeper.

    python -m zabd.tools.restartbench --start zabd --start zookeeper --nodes 1000000

For each server: start it on an empty dataDir, create ``--nodes`` znodes of
``--value-size`` bytes with pipelined requests, stop it (SIGTERM), start it
again and time the restart from launch until it serves (srvr no longer says
"not currently serving"), then read its resident memory from /proc.
See doc/benchmarks.md for the figures.
"""
from __future__ import annotations

import argparse
import asyncio
import os
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from zabd.harness.processes import ServerProcess, start_zabd, start_zookeeper
from zabd.tools._loadgen import run_batch
from zabd.harness.wire import OP_CREATE, create_body
from zabd.tools._cpu import listening_pid

PARENT = "/restart"


@dataclass
class Figures:
    """One restart measurement: populating, restarting, memory and the size of the data on disk."""

    name: str
    populate_s: float
    restart_s: float
    rss_mb: float
    snapshot_mb: float
    log_mb: float


def rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return 0.0


def disk_mb(server: ServerProcess, prefix: str) -> float:
    files = (server.data_dir / "version-2").glob(prefix + ".*")
    # Logs are preallocated sparse files: count the blocks in use.
    return sum(f.stat().st_blocks * 512 for f in files) / 2**20


def creates(nodes: int, value: bytes) -> Iterator[tuple[int, bytes]]:
    for i in range(nodes):
        yield OP_CREATE, create_body(f"{PARENT}/n{i:07d}", value)


def measure(kind: str, workdir: Path, nodes: int, value_size: int) -> Figures:
    start = {"zabd": start_zabd, "zookeeper": start_zookeeper}[kind]
    server = start(workdir)
    port = server.port
    try:
        # The parent first: the children are spread over several connections.
        asyncio.run(run_batch(server.host, port, iter([(OP_CREATE, create_body(PARENT, b""))]), 1))
        began = time.monotonic()
        errors = asyncio.run(run_batch(server.host, port, creates(nodes, b"v" * value_size), 8, 64))
        populate_s = time.monotonic() - began
        if set(errors) != {0} or errors[0] != nodes:
            raise RuntimeError(f"{kind}: populating failed: {dict(errors)}")
    finally:
        server.stop(timeout=120)
    began = time.monotonic()
    server = start(workdir, port=port, timeout=600)
    try:
        restart_s = time.monotonic() - began
        pid = listening_pid(port) or server.pid
        return Figures(kind, populate_s, restart_s, rss_mb(pid), disk_mb(server, "snapshot"), disk_mb(server, "log"))
    finally:
        server.stop(timeout=120)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--start", action="append", choices=("zabd", "zookeeper"), required=True)
    parser.add_argument("--nodes", type=int, default=1_000_000)
    parser.add_argument("--value-size", type=int, default=100)
    parser.add_argument("--zookeeper-heap", default="2g",
                        help="ZooKeeper's -Xmx (its zkServer.sh default is 1000m; 1M znodes need more)")
    args = parser.parse_args(argv)
    os.environ["ZABD_ZOOKEEPER_HEAP"] = args.zookeeper_heap
    results = []
    for kind in args.start:
        with tempfile.TemporaryDirectory(prefix=f"restartbench-{kind}-") as tmp:
            print(f"{kind}: creating {args.nodes} znodes of {args.value_size} bytes, then restarting ...", flush=True)
            results.append(measure(kind, Path(tmp), args.nodes, args.value_size))
    print(f"{'target':<10} {'populate s':>10} {'restart s':>10} {'RSS MB':>8} {'snapshots MB':>13} {'logs MB':>8}")
    for r in results:
        print(f"{r.name:<10} {r.populate_s:>10.1f} {r.restart_s:>10.1f} {r.rss_mb:>8.0f} "
              f"{r.snapshot_mb:>13.1f} {r.log_mb:>8.1f}")


if __name__ == "__main__":
    main()
