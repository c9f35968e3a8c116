# -*- test-case-name: tests.unit.test_bench -*-
"""The benchmark's command line: options, their checks, and ``NAME=HOST:PORT`` targets.

Kept apart from :mod:`zabd.tools.bench`, which runs what the options ask for.
"""
from __future__ import annotations

import argparse
import os
from collections.abc import Sequence
from pathlib import Path

from zabd.tools._report import Target
from zabd.tools._tls import TlsFiles

WORKLOADS = ("create", "set", "get", "mix")

USAGE = """Throughput and latency benchmark for any ZooKeeper-protocol server.

    python -m zabd.tools.bench --start zabd --start zookeeper --duration 10
    python -m zabd.tools.bench --target zabd=127.0.0.1:2181 --target zk=127.0.0.1:2182
    python -m zabd.tools.bench --ensemble 3 --start zabd --start zookeeper --failover
    python -m zabd.tools.bench --tls --start zabd --start zookeeper --workloads set,get --rounds 3

See doc/benchmarks.md for the method.
"""


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m zabd.tools.bench", description=USAGE,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--target", action="append", default=[], metavar="NAME=HOST:PORT")
    parser.add_argument("--start", action="append", default=[], choices=("zabd", "zookeeper"),
                        help="start this server in a temporary directory on a free port")
    parser.add_argument("--server-cfg", action="append", default=[], metavar="KEY=VALUE",
                        help="extra zoo.cfg line for servers started with --start")
    parser.add_argument("--workloads", default=",".join(WORKLOADS))
    parser.add_argument("--rounds", type=int, default=1,
                        help="run every workload against every target this many times, alternating who goes first")
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
    parser.add_argument("--tls", action="store_true",
                        help="every connection over TLS: --start servers get a secure client port with the same "
                             "throwaway certificates (client certificate needed); --target ports must be secure ones")
    parser.add_argument("--tls-ca", metavar="PEM", help="with --tls and --target: the CA of the servers' certificates")
    parser.add_argument("--tls-cert", metavar="PEM", help="with --tls-ca: the loader's certificate (and chain)")
    parser.add_argument("--tls-key", metavar="PEM", help="with --tls-cert: its key, if not in the same file")
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
    if args.rounds < 1:
        parser.error("--rounds must be at least 1")
    if args.ensemble and (args.ensemble < 2 or not args.start):
        parser.error("--ensemble needs at least 2 peers and a --start")
    if args.failover and (not args.ensemble or args.failover_runs < 1):
        parser.error("--failover needs --ensemble and at least one --failover-runs")
    if args.tls and args.ensemble:
        parser.error("--tls runs standalone servers only")
    if args.tls and args.target and not args.tls_ca:
        parser.error("--tls with --target needs --tls-ca (and --tls-cert if the servers need client certificates)")
    if (args.tls_ca or args.tls_cert or args.tls_key) and not args.tls:
        parser.error("--tls-ca, --tls-cert and --tls-key go with --tls")
    if args.tls_key and not args.tls_cert:
        parser.error("--tls-key needs --tls-cert")
    return args


def parse_target(text: str, tls: TlsFiles | None = None) -> Target:
    name, _, address = text.rpartition("=")
    host, _, port = address.rpartition(":")
    return Target(name or address, host or "127.0.0.1", int(port), tls=tls)


