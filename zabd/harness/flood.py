# -*- test-case-name: tests.interop.test_flood -*-
"""Flood a ZooKeeper server with connections that pipeline near-jute.maxbuffer requests.

Two ways to run it::

    # start each server itself, alternate them, and print a table of the rounds
    python -m zabd.harness.flood --target zabd --target zookeeper --rounds 3

    # flood a server that is already running (what each round does, in a child process)
    python -m zabd.harness.flood --address 127.0.0.1:2181 --pid 1234

One flood (defaults in brackets): ``--connections`` [1000] sessions are
opened first; then each writes ``--requests`` [4] requests with a value of
``--value-size`` [1,000,000] bytes, back to back, without waiting for a
reply. The requests alternate ``--kinds`` [setData,create], all on one node
that exists, so setData is answered OK and create NODEEXISTS, and the tree
never grows. A probe session pings every 50 ms, and the server's RSS is
sampled from /proc. The report counts the replies per error code and how
each connection ended (every reply, closed by the server, refused, or hung
at ``--deadline``), and says whether the server is alive and a fresh client
is served afterwards.

The flooding connections come from 127.0.0.10, 127.0.0.11, ..., 50 on each
(``--per-address``), under ZooKeeper's default ``maxClientCnxns`` of 60 per
address, so neither server's config has to change. Both servers are started
with the same ``zoo.cfg`` (``--cfg key=value`` adds lines; zabd reads
``jute.maxbuffer`` from it and ZooKeeper gets it as a system property).
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
from collections.abc import Sequence
from pathlib import Path

from twisted.internet.defer import Deferred
from twisted.internet.task import react
from twisted.logger import globalLogBeginner, textFileLogObserver

from zabd.harness.commands import zabd_environment
from zabd.harness.flood_conn import KINDS
from zabd.harness.flood_report import FloodReport, fd_limit_raise, summary_table
from zabd.harness.flood_run import flood
from zabd.harness.flood_settings import FloodSettings
from zabd.harness.processes import ServerProcess, start_zabd, start_zookeeper

#: Files the flooder and the server need beyond the connections themselves.
FD_HEADROOM = 1000
#: How much longer than its --deadline a flooding process may take (connecting, the fresh client).
PROCESS_MARGIN = 180.0
#: The JVM heap of the ZooKeeper processes the harness starts (zabd.harness.commands).
HEAP_VARIABLE = "ZABD_ZOOKEEPER_HEAP"


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m zabd.harness.flood", description=__doc__.split("\n\n")[0])
    where = parser.add_argument_group("what to flood")
    where.add_argument("--target", action="append", type=_target,
                       help="start this server for each round: zabd, zookeeper, or zookeeper@HEAP for a JVM "
                       "heap other than the harness's (zookeeper@1000m); repeat to alternate servers")
    where.add_argument("--rounds", type=int, default=1, help="rounds per target (default 1)")
    where.add_argument("--cfg", action="append", default=[], metavar="KEY=VALUE",
                       help="a zoo.cfg line for every started server")
    where.add_argument("--workdir", type=Path, help="where the servers' directories go (default: a temporary one)")
    where.add_argument("--address", help="flood the server already at HOST:PORT")
    where.add_argument("--pid", type=int, help="that server's process id (for its memory)")
    where.add_argument("--name", default="server", help="what to call that server in the report")
    how = parser.add_argument_group("the flood")
    how.add_argument("--connections", type=int, default=1000)
    how.add_argument("--requests", type=int, default=4, help="requests per connection")
    how.add_argument("--value-size", type=int, default=1_000_000, help="bytes in each request's value")
    how.add_argument("--kinds", default="setData,create", help="request kinds, in turn (setData, create)")
    how.add_argument("--duration", type=float, default=0.0,
                     help="stop starting requests after this many seconds (0: send them all)")
    how.add_argument("--deadline", type=float, default=300.0,
                     help="seconds after which a connection still waiting counts as hung")
    how.add_argument("--per-address", type=int, default=50, help="connections per 127.0.0.x source address")
    parser.add_argument("--json", action="store_true", help="print the report as one JSON line")
    return parser


def flood_arguments(args: argparse.Namespace) -> list[str]:
    """The flood options of ``args``, as command-line arguments for a flooding process."""
    return ["--connections", str(args.connections), "--requests", str(args.requests),
            "--value-size", str(args.value_size), "--kinds", args.kinds, "--duration", str(args.duration),
            "--deadline", str(args.deadline), "--per-address", str(args.per_address)]


def _target(spec: str) -> str:
    kind, _, heap = spec.partition("@")
    if kind not in ("zabd", "zookeeper") or (heap and kind != "zookeeper"):
        raise argparse.ArgumentTypeError(f"not a target: {spec!r} (zabd, zookeeper or zookeeper@HEAP)")
    return spec


def _kinds(text: str) -> tuple[str, ...]:
    kinds = tuple(kind.strip() for kind in text.split(",") if kind.strip())
    if not kinds or set(kinds) - set(KINDS):
        raise SystemExit(f"--kinds: a comma-separated list of {', '.join(KINDS)}, not {text!r}")
    return kinds


def run_against(server: ServerProcess, flood_args: Sequence[str], deadline: float,
                name: str | None = None) -> FloodReport:
    """Flood ``server`` from a child process (a reactor of its own) and return its report."""
    command = [sys.executable, "-m", "zabd.harness.flood", "--address", server.address(),
               "--pid", str(server.pid), "--name", name or server.kind, "--json", *flood_args]
    done = subprocess.run(command, env=zabd_environment(), capture_output=True, text=True,
                          timeout=deadline + PROCESS_MARGIN, check=False)
    lines = done.stdout.strip().splitlines()
    if done.returncode != 0 or not lines:
        raise RuntimeError(f"the flooder exited {done.returncode}\n{done.stdout[-4000:]}\n{done.stderr[-8000:]}")
    return FloodReport.from_json(lines[-1])


def _start(target: str, workdir: Path, cfg: dict[str, str]) -> ServerProcess:
    kind, _, heap = target.partition("@")
    if kind == "zabd":
        return start_zabd(workdir, cfg)
    previous = os.environ.get(HEAP_VARIABLE)
    if heap:
        os.environ[HEAP_VARIABLE] = heap
    try:
        return start_zookeeper(workdir, cfg)
    finally:
        if previous is None:
            os.environ.pop(HEAP_VARIABLE, None)
        else:
            os.environ[HEAP_VARIABLE] = previous


def _rounds(args: argparse.Namespace) -> list[FloodReport]:
    cfg = dict(line.split("=", 1) for line in args.cfg)
    base = args.workdir or Path(tempfile.mkdtemp(prefix="zabd-flood-"))
    reports = []
    for round_number in range(1, args.rounds + 1):
        for target in args.target:
            workdir = base / f"{target}-{round_number}"
            with _start(target, workdir, cfg) as server:
                report = run_against(server, flood_arguments(args), args.deadline, target)
                if not server.is_running():
                    print(server.describe(), file=sys.stderr)
            print(f"round {round_number}: {report.text()}", flush=True)
            reports.append(report)
    print(f"(servers' directories and logs in {base})")
    return reports


def _flood_here(args: argparse.Namespace) -> None:
    host, _, port = args.address.rpartition(":")
    settings = FloodSettings(host or "127.0.0.1", int(port), args.pid, args.name, args.connections, args.requests,
                             args.value_size, _kinds(args.kinds), args.duration, args.deadline, args.per_address)
    globalLogBeginner.beginLoggingTo([textFileLogObserver(sys.stderr)], redirectStandardIO=False)

    async def main(reactor: object) -> None:
        report = await flood(reactor, settings)
        print(report.to_json() if args.json else report.text(), flush=True)

    react(lambda reactor: Deferred.fromCoroutine(main(reactor)))


def main(argv: Sequence[str] | None = None) -> None:
    args = _parser().parse_args(argv)
    fd_limit_raise(args.connections * 2 + FD_HEADROOM)
    if args.address:
        if args.pid is None:
            raise SystemExit("--address needs --pid (the server's process id)")
        _flood_here(args)
        return
    if not args.target:
        raise SystemExit("name a --target (zabd or zookeeper), or an --address and --pid")
    reports = _rounds(args)
    print(summary_table(reports))
    if args.json:
        print(json.dumps([json.loads(report.to_json()) for report in reports]))


if __name__ == "__main__":
    main()
