# -*- test-case-name: tests.unit.test_bench -*-
"""The records a benchmark run produces and how they are presented.

Kept apart from :mod:`zabd.tools.bench`, which drives servers and load
generators: this module only describes the servers under test and the
measured outcomes, and turns them into the text table (with throughput ratios
and the machine description) and the JSON file, so the presentation can change
without touching the measuring.
"""
from __future__ import annotations

import argparse
import contextlib
import json
import os
import platform
import statistics
import sys
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path

from zabd.tools._tls import TlsFiles


@dataclass
class Target:
    """A server (or an ensemble) under load: where it listens, its processes, and how to connect."""

    name: str
    host: str
    port: int
    pid: int | None = None  # known when this tool started the server
    version: str = "?"
    root: str = ""
    addresses: tuple[tuple[str, int], ...] = ()  # an ensemble's client ports; the load is spread over them
    peer_pids: tuple[int, ...] = ()  # an ensemble's other peers, counted in server%
    tls: TlsFiles | None = None  # connect over TLS (port is then a secure client port)
    tls_session: str = ""  # the protocol and cipher negotiated, e.g. "TLSv1.2 ECDHE-ECDSA-AES128-GCM-SHA256"


@dataclass
class Outcome:
    """One workload's figures against one target: throughput, latencies, errors, CPU."""

    target: str
    workload: str
    ops_per_s: float
    p50_ms: float
    p99_ms: float
    errors: int
    error_codes: dict[int, int]
    client_cpu_pct: float  # sum over worker processes, % of one core
    server_cpu_pct: float | None  # % of one core, when the server pid is known
    machine_busy_pct: float  # all cores, % of the whole machine
    other_cpu_pct: float | None  # everything else on the machine, % of one core
    round: int = 0  # which of --rounds, from 0


@dataclass(frozen=True, slots=True)
class FailoverOutcome:
    """kill -9 of an ensemble's leader until a new session's write is acknowledged, per run."""

    target: str
    runs_ms: tuple[float, ...]
    median_ms: float
    max_ms: float


def machine_info() -> dict[str, str]:
    model = "?"
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    return {
        "cores": str(os.cpu_count()),
        "cpu": model,
        "python": f"{platform.python_implementation()} {platform.python_version()}",
        "platform": platform.platform(),
        # The interpreter build matters: pyenv's default has no PGO/LTO.
        "zabd-python": os.environ.get("ZABD_PYTHON") or sys.executable,
    }


def report(targets: Sequence[Target], outcomes: Sequence[Outcome], args: argparse.Namespace,
           failovers: Sequence[FailoverOutcome] = ()) -> str:
    rounds = getattr(args, "rounds", 1)
    lines = ["machine: " + ", ".join(f"{k}={v}" for k, v in machine_info().items())]
    lines += [f"server {t.name} at {t.host}:{t.port}: version {t.version}{_ensemble_note(t)}{_tls_note(t)}"
              for t in targets]
    lines.append(f"settings: connections={args.connections} pipeline={args.pipeline} processes={args.processes} "
                 f"duration={args.duration}s warmup={args.warmup}s prewarm={args.prewarm}s value-size={args.value_size} nodes={args.nodes}"
                 + (f" rounds={rounds}" if rounds > 1 else ""))
    lines.append(("round " if rounds > 1 else "") + f"{'target':<12}{'workload':<9}{'ops/s':>10}{'p50 ms':>9}"
                 f"{'p99 ms':>9}{'errors':>8}{'client%':>9}{'server%':>9}{'other%':>8}{'machine%':>10}")
    for o in outcomes:
        server, other = (f"{v:.0f}" if v is not None else "-" for v in (o.server_cpu_pct, o.other_cpu_pct))
        errors = "FAILED" if o.errors < 0 else str(o.errors)
        lines.append((f"{o.round + 1:<6}" if rounds > 1 else "") +
                     f"{o.target:<12}{o.workload:<9}{o.ops_per_s:>10.0f}{o.p50_ms:>9.2f}{o.p99_ms:>9.2f}"
                     f"{errors:>8}{o.client_cpu_pct:>9.0f}{server:>9}{other:>8}{o.machine_busy_pct:>10.0f}")
    if rounds > 1:
        lines += round_summary(targets, outcomes, args.workloads)
    if len(targets) == 2:
        lines += ratio_lines(targets, outcomes, args.workloads)
    lines.append("CPU during the measured window: client% (load generator), server% and other% (everything else)"
                 " in % of one core; machine% = all cores busy, in % of the machine")
    if any(t.addresses for t in targets):
        lines.append("ensembles: connections go round-robin over every peer's client port; server% sums all peers")
    lines += failover_lines(failovers)
    return "\n".join(lines)


def _spread(values: Sequence[float], digits: int) -> str:
    """``median (min-max)``, or the one value."""
    if len(values) == 1:
        return f"{values[0]:.{digits}f}"
    return f"{statistics.median(values):.{digits}f} ({min(values):.{digits}f}-{max(values):.{digits}f})"


def round_summary(targets: Sequence[Target], outcomes: Sequence[Outcome], workloads: Sequence[str]) -> list[str]:
    """Each target's median ops/s per workload over the rounds, with the range (failed runs left out)."""
    lines = ["ops/s over the rounds, median (min-max):"]
    for w in workloads:
        for t in targets:
            runs = [o.ops_per_s for o in outcomes if o.target == t.name and o.workload == w and o.errors >= 0]
            if runs:
                lines.append(f"  {t.name:<12}{w:<9}{_spread(runs, 0)}")
    return lines


def ratio_lines(targets: Sequence[Target], outcomes: Sequence[Outcome], workloads: Sequence[str]) -> list[str]:
    """The first target's throughput over the second's, per workload: one ratio per round, then their spread."""
    a, b = targets
    by_key = {(o.target, o.workload, o.round): o for o in outcomes}
    lines = [f"throughput ratio {a.name}/{b.name}" + (", median (min-max) of the rounds' ratios:"
                                                       if any(o.round for o in outcomes) else ":")]
    for w in workloads:
        ratios = []
        for r in sorted({o.round for o in outcomes}):
            oa, ob = by_key.get((a.name, w, r)), by_key.get((b.name, w, r))
            if oa and ob and ob.ops_per_s and oa.errors >= 0:
                ratios.append(oa.ops_per_s / ob.ops_per_s)
        if ratios:
            lines.append(f"  {w:<8}{_spread(ratios, 2):>8}")
    return lines


def _tls_note(target: Target) -> str:
    return f" (TLS: {target.tls_session or '?'}; {target.tls.describe()})" if target.tls is not None else ""


def _ensemble_note(target: Target) -> str:
    if not target.addresses:
        return ""
    ports = ",".join(str(port) for _, port in target.addresses)
    return f" (ensemble of {len(target.addresses)}, client ports {ports}; this one led at the start)"


def failover_lines(failovers: Sequence[FailoverOutcome]) -> list[str]:
    """The failover table and, for two targets, the ratio of their medians."""
    if not failovers:
        return []
    lines = [f"failover: kill -9 of the leader until a write from a new session is acknowledged, "
             f"{len(failovers[0].runs_ms)} runs each",
             f"{'target':<12}{'median ms':>10}{'max ms':>10}  runs ms"]
    for f in failovers:
        runs = " ".join(f"{ms:.0f}" for ms in f.runs_ms)
        lines.append(f"{f.target:<12}{f.median_ms:>10.0f}{f.max_ms:>10.0f}  {runs}")
    if len(failovers) == 2 and failovers[1].median_ms:
        a, b = failovers
        lines.append(f"failover median ratio {a.target}/{b.target}: {a.median_ms / b.median_ms:.2f}")
    return lines


def write_json(path: Path, targets: Sequence[Target], outcomes: Sequence[Outcome], args: argparse.Namespace,
               failovers: Sequence[FailoverOutcome] = ()) -> None:
    path.write_text(json.dumps({
        "machine": machine_info(), "settings": {k: str(v) for k, v in vars(args).items()},
        "servers": {t.name: t.version for t in targets}, "results": [asdict(o) for o in outcomes],
        **({"tls": {t.name: t.tls_session for t in targets}} if any(t.tls for t in targets) else {}),
        **({"failover": [asdict(f) for f in failovers]} if failovers else {}),
    }, indent=2))
