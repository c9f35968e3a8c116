# -*- test-case-name: tests.unit.test_bench -*-
"""Throughput and latency benchmark for any ZooKeeper-protocol server.

    python -m zabd.tools.bench --start zabd --start zookeeper --duration 10
    python -m zabd.tools.bench --target zabd=127.0.0.1:2181 --target zk=127.0.0.1:2182
    python -m zabd.tools.bench --ensemble 3 --start zabd --start zookeeper --failover
    python -m zabd.tools.bench --tls --start zabd --start zookeeper --workloads set,get --rounds 3

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

from zabd.harness.ensembleprocs import Ensemble, start_ensemble
from zabd.harness.processes import four_letter, start_zabd, start_zookeeper
from zabd.tools._cpu import listening_pid, machine_ticks, server_seconds
from zabd.tools._ensemble import ensemble_target, measure_failover
from zabd.tools._loadgen import WorkerResult, percentile_ms, run_batch, worker_main
from zabd.tools._options import WORKLOADS, parse_args, parse_target
from zabd.tools._report import FailoverOutcome, Outcome, Target, report, write_json
from zabd.tools._tls import BenchPki, TlsFiles, make_bench_pki, start_secure_server, tls_ask
from zabd.harness.wire import OP_CREATE, OP_DELETE, create_body, delete_body
from zabd.tools._workloads import WorkerSpec, created_path

__all__ = ["WORKLOADS", "main", "parse_args", "parse_target", "run_order", "server_settings"]


def server_version(target: Target) -> str:
    try:
        if target.tls is not None:
            text, target.tls_session = tls_ask(target.host, target.port, target.tls)
        else:
            text = four_letter(target.host, target.port, "srvr")
    except OSError as exc:
        return f"? ({exc})"
    for line in text.splitlines():
        if line.startswith("Zookeeper version:"):
            return line.split(":", 1)[1].strip()
    return "?"


def run_workload(target: Target, workload: str, args: argparse.Namespace, run_no: int, round_no: int = 0) -> Outcome:
    create_parent = f"{target.root}/create-{run_no}"
    if workload == "create":
        _check(asyncio.run(run_batch(target.host, target.port, iter([(OP_CREATE, create_body(create_parent, b""))]), 1,
                                     tls=target.tls)))
    nodes = tuple(f"{target.root}/nodes/n{i}" for i in range(args.nodes))
    ctx = multiprocessing.get_context("fork")
    barrier, results = ctx.Barrier(args.processes + 1), ctx.Queue()
    specs = [
        WorkerSpec(target.host, target.port, workload, i, _share(args.connections, args.processes, i),
                   args.pipeline, args.warmup, args.duration, args.value_size, nodes, create_parent, run_no * 1000 + i,
                   addresses=target.addresses, tls=target.tls,
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
        round=round_no,
    )


def _share(total: int, parts: int, index: int) -> int:
    return total // parts + (1 if index < total % parts else 0)


def _check(errors: Counter[int], allowed: Sequence[int] = ()) -> None:
    bad = {code: n for code, n in errors.items() if code and code not in allowed}
    if bad:
        raise RuntimeError(f"setup/cleanup requests failed: {bad}")


def _delete(target: Target, paths: Iterator[str]) -> None:
    requests = ((OP_DELETE, delete_body(p)) for p in paths)
    _check(asyncio.run(run_batch(target.host, target.port, requests, tls=target.tls)), allowed=(-101,))  # NONODE


def prepare(target: Target, args: argparse.Namespace) -> None:
    target.version = server_version(target)
    if target.pid is None and target.host in ("127.0.0.1", "localhost"):
        target.pid = listening_pid(target.port)
    target.root = f"/bench-{os.getpid()}-{secrets.token_hex(3)}"
    for path in (target.root, f"{target.root}/nodes"):
        _check(asyncio.run(run_batch(target.host, target.port, iter([(OP_CREATE, create_body(path, b""))]), 1,
                                     tls=target.tls)))
    value = b"x" * args.value_size
    nodes = ((OP_CREATE, create_body(f"{target.root}/nodes/n{i}", value)) for i in range(args.nodes))
    _check(asyncio.run(run_batch(target.host, target.port, nodes, tls=target.tls)))


def cleanup(target: Target, args: argparse.Namespace) -> None:
    _delete(target, (f"{target.root}/nodes/n{i}" for i in range(args.nodes)))
    _delete(target, iter([f"{target.root}/nodes", target.root]))


def server_settings(args: argparse.Namespace) -> dict[str, str]:
    """The zoo.cfg lines every --start server gets besides its own (and, with --tls, its secure port's)."""
    extra = dict(kv.split("=", 1) for kv in args.server_cfg)
    if args.connections + 16 > 60:  # ZooKeeper's default limit per client address is 60
        extra.setdefault("maxClientCnxns", "0")
    if args.ensemble:
        # zabd leaks a per-address slot for each connection a peer takes between roles
        # (test_ensemble_processes.py, xfail), and a failover run makes hundreds.
        extra.setdefault("maxClientCnxns", "0")
    if args.tls:
        # The same protocol and cipher suite on both: ZooKeeper 3.8.0's own choice with this
        # loader and an EC certificate (zabd would offer TLS 1.3 too, and OpenSSL would follow
        # the loader's preference for AES-256). --server-cfg overrides either.
        extra.setdefault("ssl.protocol", "TLSv1.2")
        extra.setdefault("ssl.ciphersuites", "TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256")
    return extra


def start_targets(stack: contextlib.ExitStack, args: argparse.Namespace) -> tuple[list[Target], dict[str, Ensemble]]:
    """The --target servers, and those --start starts (stopped when ``stack`` closes)."""
    given = TlsFiles(args.tls_ca, args.tls_cert, args.tls_key) if args.tls and args.tls_ca else None
    targets = [parse_target(t, given) for t in args.target]
    ensembles: dict[str, Ensemble] = {}
    extra = server_settings(args)
    pki: BenchPki | None = None
    if args.tls and args.start:
        pki = make_bench_pki(Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="bench-pki-"))))
    for kind in args.start:
        workdir = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix=f"bench-{kind}-")))
        if args.ensemble:
            print(f"starting a {args.ensemble}-peer {kind} ensemble ...", file=sys.stderr, flush=True)
            ensembles[kind] = stack.enter_context(
                start_ensemble(kind, workdir, voters=args.ensemble, extra_cfg=extra, timeout=120.0))
            targets.append(ensemble_target(kind, ensembles[kind]))
        elif pki is not None:
            server, port = start_secure_server(kind, workdir, extra, pki)
            stack.enter_context(server)
            targets.append(Target(kind, server.host, port, server.process.pid, tls=pki.client))
        else:
            starter = start_zabd if kind == "zabd" else start_zookeeper
            server = stack.enter_context(starter(workdir, extra_cfg=extra))
            targets.append(Target(kind, server.host, server.port, server.process.pid))
    return targets, ensembles


def run_order(targets: Sequence[Target], workloads: Sequence[str], rounds: int) -> list[tuple[int, str, Target]]:
    """(round, workload, target) in running order: who goes first alternates between workloads and rounds,
    so that neither target always runs on a "cooler" machine."""
    order = []
    for round_no in range(rounds):
        for w_no, workload in enumerate(workloads):
            order += [(round_no, workload, t) for t in (targets if (round_no + w_no) % 2 == 0 else targets[::-1])]
    return order


def timed_runs(targets: Sequence[Target], args: argparse.Namespace) -> list[Outcome]:
    outcomes: list[Outcome] = []
    for run_no, (round_no, workload, target) in enumerate(run_order(targets, args.workloads, args.rounds)):
        rounds = f" (round {round_no + 1} of {args.rounds})" if args.rounds > 1 else ""
        print(f"running {workload} against {target.name}{rounds} ...", file=sys.stderr, flush=True)
        try:
            outcomes.append(run_workload(target, workload, args, run_no, round_no))
        except Exception as exc:  # one broken server must not lose the other's figures
            print(f"  failed: {exc}", file=sys.stderr, flush=True)
            outcomes.append(Outcome(target.name, workload, 0.0, math.nan, math.nan, -1, {}, 0.0, None, 0.0, None,
                                    round=round_no))
    outcomes.sort(key=lambda o: (args.workloads.index(o.workload), o.round,
                                 targets.index(_by_name(targets, o.target))))
    return outcomes


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    with contextlib.ExitStack() as stack:
        targets, ensembles = start_targets(stack, args)
        for target in targets:
            prepare(target, args)
        if args.prewarm > 0:  # untimed pass of every workload, so a JIT (ZooKeeper's JVM) is warm
            short = argparse.Namespace(**{**vars(args), "warmup": 0.0, "duration": args.prewarm, "keep": False})
            for run_no, (workload, target) in enumerate(itertools.product(args.workloads, targets)):
                print(f"prewarming {target.name} with {workload} ...", file=sys.stderr, flush=True)
                with contextlib.suppress(Exception):
                    run_workload(target, workload, short, 1000 + run_no)
        outcomes = timed_runs(targets, args)
        for target in [] if args.keep else targets:
            try:
                cleanup(target, args)
            except Exception as exc:
                print(f"cleanup of {target.name} failed: {exc}", file=sys.stderr)
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
