# -*- test-case-name: tests.unit.test_bench -*-
"""Throughput and latency benchmark for any ZooKeeper-protocol server.

    python -m zabd.tools.bench --start zabd --start zookeeper --duration 10
    python -m zabd.tools.bench --target zabd=127.0.0.1:2181 --target zk=127.0.0.1:2182
    python -m zabd.tools.bench --ensemble 3 --start zabd --start zookeeper --failover

See doc/benchmarks.md for the method.
"""
from __future__ import annotations

import argparse
import asyncio
import contextlib
import itertools
import math
import multiprocessing
import os
import secrets
import sys
import tempfile
import time
from array import array
from collections import Counter
from collections.abc import Iterator, Sequence
from pathlib import Path

from zabd.testing.ensembleprocs import Ensemble, start_ensemble
from zabd.testing.processes import four_letter, start_zabd, start_zookeeper
from zabd.tools._ensemble import ensemble_target, measure_failover
from zabd.tools._loadgen import WorkerResult, percentile_ms, run_batch, worker_main
from zabd.tools._report import FailoverOutcome, Outcome, Target, report, write_json
from zabd.tools._wire import OP_CREATE, OP_DELETE, create_body, delete_body
from zabd.tools._workloads import WorkerSpec, created_path

WORKLOADS = ("create", "set", "get", "mix")


def server_version(target: Target) -> str:
    try:
        text = four_letter(target.host, target.port, "srvr")
    except OSError as exc:
        return f"? ({exc})"
    for line in text.splitlines():
        if line.startswith("Zookeeper version:"):
            return line.split(":", 1)[1].strip()
    return "?"


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


def run_workload(target: Target, workload: str, args: argparse.Namespace, run_no: int) -> Outcome:
    create_parent = f"{target.root}/create-{run_no}"
    if workload == "create":
        _check(asyncio.run(run_batch(target.host, target.port, iter([(OP_CREATE, create_body(create_parent, b""))]), 1)))
    nodes = tuple(f"{target.root}/nodes/n{i}" for i in range(args.nodes))
    ctx = multiprocessing.get_context("fork")
    barrier, results = ctx.Barrier(args.processes + 1), ctx.Queue()
    specs = [
        WorkerSpec(target.host, target.port, workload, i, _share(args.connections, args.processes, i),
                   args.pipeline, args.warmup, args.duration, args.value_size, nodes, create_parent, run_no * 1000 + i,
                   addresses=target.addresses,
                   first_connection=sum(_share(args.connections, args.processes, j) for j in range(i)))
        for i in range(args.processes)
    ]
    procs = [ctx.Process(target=worker_main, args=(s, barrier, results), daemon=True) for s in specs]
    for proc in procs:
        proc.start()
    measured: tuple[float, tuple[int, int]] | None = None
    with contextlib.suppress(Exception):  # a failed worker aborts the barrier and reports below
        barrier.wait(180.0)
        time.sleep(args.warmup)
        server0, machine0 = server_seconds(target), machine_ticks()
        time.sleep(args.duration)
        server1, machine1 = server_seconds(target), machine_ticks()
        measured = (server1 - server0, (machine1[0] - machine0[0], machine1[1] - machine0[1]))
    outs: list[WorkerResult] = sorted((results.get(timeout=120.0) for _ in procs), key=lambda o: o.index)
    for proc in procs:
        proc.join(30.0)
        if proc.is_alive():
            proc.terminate()
    failures = [o.failure for o in outs if o.failure]
    if failures:
        raise RuntimeError("; ".join(failures))
    latencies = array("q")
    for o in outs:
        latencies.frombytes(o.latencies)
    ordered = sorted(latencies)
    codes: Counter[int] = Counter()
    for o in outs:
        codes.update(o.errors)
    if workload == "create" and not args.keep:
        names = (created_path(create_parent, s.index, c, n)
                 for s, o in zip(specs, outs) for c, sent in enumerate(o.created) for n in range(sent))
        _delete(target, names)
        _delete(target, iter([create_parent]))
    server_s, (busy, total) = measured if measured else (0.0, (0, 1))
    client_pct, machine_pct = 100 * sum(o.cpu_seconds for o in outs) / args.duration, 100 * busy / max(total, 1)
    server_pct = 100 * server_s / args.duration if target.pid else None
    other_pct = None if server_pct is None else max(0.0, machine_pct * (os.cpu_count() or 1) - client_pct - server_pct)
    return Outcome(
        target.name, workload, sum(o.ok for o in outs) / args.duration, percentile_ms(ordered, 50),
        percentile_ms(ordered, 99), sum(codes.values()), dict(codes), client_pct, server_pct, machine_pct, other_pct,
    )


def _share(total: int, parts: int, index: int) -> int:
    return total // parts + (1 if index < total % parts else 0)


def _check(errors: Counter[int], allowed: Sequence[int] = ()) -> None:
    bad = {code: n for code, n in errors.items() if code and code not in allowed}
    if bad:
        raise RuntimeError(f"setup/cleanup requests failed: {bad}")


def _delete(target: Target, paths: Iterator[str]) -> None:
    requests = ((OP_DELETE, delete_body(p)) for p in paths)
    _check(asyncio.run(run_batch(target.host, target.port, requests)), allowed=(-101,))  # NONODE


def prepare(target: Target, args: argparse.Namespace) -> None:
    target.version = server_version(target)
    if target.pid is None and target.host in ("127.0.0.1", "localhost"):
        target.pid = listening_pid(target.port)
    target.root = f"/bench-{os.getpid()}-{secrets.token_hex(3)}"
    for path in (target.root, f"{target.root}/nodes"):
        _check(asyncio.run(run_batch(target.host, target.port, iter([(OP_CREATE, create_body(path, b""))]), 1)))
    value = b"x" * args.value_size
    nodes = ((OP_CREATE, create_body(f"{target.root}/nodes/n{i}", value)) for i in range(args.nodes))
    _check(asyncio.run(run_batch(target.host, target.port, nodes)))


def cleanup(target: Target, args: argparse.Namespace) -> None:
    _delete(target, (f"{target.root}/nodes/n{i}" for i in range(args.nodes)))
    _delete(target, iter([f"{target.root}/nodes", target.root]))


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m zabd.tools.bench", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--target", action="append", default=[], metavar="NAME=HOST:PORT")
    parser.add_argument("--start", action="append", default=[], choices=("zabd", "zookeeper"),
                        help="start this server in a temporary directory on a free port")
    parser.add_argument("--server-cfg", action="append", default=[], metavar="KEY=VALUE",
                        help="extra zoo.cfg line for servers started with --start")
    parser.add_argument("--workloads", default=",".join(WORKLOADS))
    parser.add_argument("--connections", type=int, default=32, help="total, across processes")
    parser.add_argument("--pipeline", type=int, default=32, help="outstanding requests per connection")
    parser.add_argument("--duration", type=float, default=10.0, help="measured seconds per run")
    parser.add_argument("--warmup", type=float, default=2.0, help="unmeasured seconds before each run")
    parser.add_argument("--prewarm", type=float, default=2.0, help="seconds of untimed load per workload first")
    parser.add_argument("--value-size", type=int, default=100)
    parser.add_argument("--nodes", type=int, default=1000, help="nodes for set/get/mix")
    parser.add_argument("--processes", type=int, default=2, help="load generator processes")
    parser.add_argument("--keep", action="store_true", help="leave the benchmark's nodes in place")
    parser.add_argument("--json", type=Path, help="also write the results here")
    parser.add_argument("--ensemble", type=int, default=0, metavar="N",
                        help="--start N-peer ensembles (tickTime 200) instead of standalone servers")
    parser.add_argument("--failover", action="store_true",
                        help="with --ensemble: time kill -9 of the leader until a new session's write succeeds")
    parser.add_argument("--failover-runs", type=int, default=5, metavar="K")
    parser.add_argument("--zabd-python", metavar="PATH",
                        help="run zabd servers started with --start under this interpreter (zabd installed in it)")
    args = parser.parse_args(argv)
    if args.zabd_python:
        os.environ["ZABD_PYTHON"] = args.zabd_python
    args.workloads = [w for w in args.workloads.split(",") if w]
    if unknown := set(args.workloads) - set(WORKLOADS):
        parser.error(f"unknown workloads: {sorted(unknown)}")
    if not args.target and not args.start:
        parser.error("give at least one --target or --start")
    if args.connections < args.processes:
        parser.error("need at least one connection per process")
    if args.ensemble and (args.ensemble < 2 or not args.start):
        parser.error("--ensemble needs at least 2 peers and a --start")
    if args.failover and (not args.ensemble or args.failover_runs < 1):
        parser.error("--failover needs --ensemble and at least one --failover-runs")
    return args


def parse_target(text: str) -> Target:
    name, _, address = text.rpartition("=")
    host, _, port = address.rpartition(":")
    return Target(name or address, host or "127.0.0.1", int(port))


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    targets = [parse_target(t) for t in args.target]
    ensembles: dict[str, Ensemble] = {}
    with contextlib.ExitStack() as stack:
        if args.start:
            extra = dict(kv.split("=", 1) for kv in args.server_cfg)
            if args.connections + 16 > 60:  # ZooKeeper's default limit per client address is 60
                extra.setdefault("maxClientCnxns", "0")
            if args.ensemble:
                # zabd leaks a per-address slot for each connection a peer takes between roles
                # (test_ensemble_processes.py, xfail), and a failover run makes hundreds.
                extra.setdefault("maxClientCnxns", "0")
            for kind in args.start:
                workdir = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix=f"bench-{kind}-")))
                if args.ensemble:
                    print(f"starting a {args.ensemble}-peer {kind} ensemble ...", file=sys.stderr, flush=True)
                    ensembles[kind] = stack.enter_context(
                        start_ensemble(kind, workdir, voters=args.ensemble, extra_cfg=extra, timeout=120.0))
                    targets.append(ensemble_target(kind, ensembles[kind]))
                    continue
                starter = start_zabd if kind == "zabd" else start_zookeeper
                server = stack.enter_context(starter(workdir, extra_cfg=extra))
                targets.append(Target(kind, server.host, server.port, server.process.pid))
        for target in targets:
            prepare(target, args)
        if args.prewarm > 0:  # untimed pass of every workload, so a JIT (ZooKeeper's JVM) is warm
            short = argparse.Namespace(**{**vars(args), "warmup": 0.0, "duration": args.prewarm, "keep": False})
            for run_no, (workload, target) in enumerate(itertools.product(args.workloads, targets)):
                print(f"prewarming {target.name} with {workload} ...", file=sys.stderr, flush=True)
                with contextlib.suppress(Exception):
                    run_workload(target, workload, short, 1000 + run_no)
        outcomes: list[Outcome] = []
        for run_no, workload in enumerate(args.workloads):
            # Alternate which target goes first so neither always runs on a "cooler" machine.
            for target in targets if run_no % 2 == 0 else targets[::-1]:
                print(f"running {workload} against {target.name} ...", file=sys.stderr, flush=True)
                try:
                    outcomes.append(run_workload(target, workload, args, run_no))
                except Exception as exc:  # one broken server must not lose the other's figures
                    print(f"  failed: {exc}", file=sys.stderr, flush=True)
                    outcomes.append(Outcome(target.name, workload, 0.0, math.nan, math.nan, -1, {}, 0.0, None, 0.0, None))
        for target in [] if args.keep else targets:
            try:
                cleanup(target, args)
            except Exception as exc:
                print(f"cleanup of {target.name} failed: {exc}", file=sys.stderr)
        outcomes.sort(key=lambda o: (args.workloads.index(o.workload), targets.index(_by_name(targets, o.target))))
        failovers = measure_failovers(targets, ensembles, args)
        print(report(targets, outcomes, args, failovers))
        if args.json:
            write_json(args.json, targets, outcomes, args, failovers)
    return 0


def measure_failovers(targets: Sequence[Target], ensembles: dict[str, Ensemble],
                      args: argparse.Namespace) -> list[FailoverOutcome]:
    """Leader failover times of every started ensemble (after the workloads, which need a stable ensemble)."""
    failovers = []
    for target in targets if args.failover else []:
        try:
            failovers.append(measure_failover(target.name, ensembles[target.name], args.failover_runs))
        except Exception as exc:  # one broken ensemble must not lose the other's figures
            print(f"failover of {target.name} failed: {exc}", file=sys.stderr, flush=True)
    return failovers


def _by_name(targets: Sequence[Target], name: str) -> Target:
    return next(t for t in targets if t.name == name)


if __name__ == "__main__":
    sys.exit(main())
