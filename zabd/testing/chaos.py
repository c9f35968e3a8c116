# -*- test-case-name: tests.unit.test_chaos -*-
"""Deterministic simulation with random faults, FoundationDB-style (issue 15, item 3).

One seed is one world: a 3- or 5-peer SimEnsemble whose replicas trace their
histories (zabd.testing.chaos_history), clients running a random workload
(zabd.testing.chaos_workload), and faults drawn from the seed
(zabd.testing.chaos_faults). The invariants of zabd.testing.chaos_invariants
are checked after every simulation step; then every fault heals, the
ensemble settles, every client leaves, and zabd.testing.chaos_checks checks
the end state and the client history. A seed replays exactly.

    python -m zabd.testing.chaos --seeds 1000 [--first 0] [--voters 3|5] [--ops 200] [--faults 10]

prints each failing seed with its violations, faults and the trace's end,
and a summary with the rate; ``run_seed`` does one seed for tests.
"""
from __future__ import annotations

import argparse
import multiprocessing
import random
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field

from twisted.logger import globalLogBeginner, textFileLogObserver

from zabd.testing.chaos_checks import check_converged, check_ephemerals, check_writes, converged
from zabd.testing.chaos_faults import Chaos, plan
from zabd.testing.chaos_history import Histories, TracedReplica
from zabd.testing.chaos_invariants import Monitor
from zabd.testing.chaos_workload import Workload
from zabd.testing.ensemble import SimEnsemble
from zabd.testing.memdisk import DiskFault, MemoryDisk
from zabd.testing.simulation import Scope

#: Violations kept per seed (the first ones matter; later ones are mostly their echoes).
MAX_VIOLATIONS = 12
#: After healing: time for one leader and every peer to serve, and for every session to expire.
SETTLE_MS = 60_000
EXPIRY_MS = 12_000


class Abort(Exception):
    """The seed cannot go on (an exception escaped the peers, or too many violations)."""


@dataclass
class SeedReport:
    """What one seed's run did and found: its peers, ops, faults, halts and broken invariants."""

    seed: int
    voters: int
    ops: int = 0
    acknowledged: int = 0
    faults: list[str] = field(default_factory=list)
    faults_applied: int = 0
    halts: list[str] = field(default_factory=list)
    violations: list[str] = field(default_factory=list)
    steps: int = 0
    packets: int = 0
    epochs: int = 0
    committed: int = 0
    virtual_ms: int = 0
    wall_s: float = 0.0
    trace: str = ""

    @property
    def ok(self) -> bool:
        return not self.violations

    def summary(self) -> str:
        return (f"seed {self.seed}: {self.voters} peers, {self.ops} ops ({self.acknowledged} acknowledged), "
                f"{self.faults_applied} faults, {len(self.halts)} halts, {self.epochs} epochs, {self.committed} txns "
                f"committed, {self.steps} steps, {self.virtual_ms / 1000:.1f} s virtual, {self.wall_s:.2f} s: "
                + ("ok" if self.ok else f"{len(self.violations)} VIOLATIONS"))

    def details(self) -> str:
        lines = [self.summary(), "violations:", *("  " + v for v in self.violations), "faults:",
                 *("  " + f for f in self.faults), *(["halts:"] if self.halts else []), *("  " + h for h in self.halts)]
        if self.trace:
            lines += ["trace (end):", self.trace]
        return "\n".join(lines)


class _Run:
    def __init__(self, seed: int, voters: int, ops: int, faults: int, *, commit_log_count: int = 500,
                 disk_history: bool = False) -> None:
        self.report = SeedReport(seed, voters)
        self.histories = histories = Histories(self.violation)

        def replica(sid: int, scope: Scope, disk: MemoryDisk, commit_log_count: int) -> TracedReplica:
            return TracedReplica(sid, scope, disk, commit_log_count, histories, disk_history=disk_history)

        self.ensemble = SimEnsemble(seed, voters, replica_factory=replica, commit_log_count=commit_log_count)
        self.sim = self.ensemble.sim
        self.monitor = Monitor(self.ensemble, histories, self.violation)
        self.span_ms = max(6_000, faults * 800)
        self.workload = Workload(self.ensemble, histories, self.violation, seed=seed, clients=voters,
                                 ops=ops, span_ms=self.span_ms)
        self.chaos = Chaos(self.ensemble, self.workload, plan(seed, faults, self.span_ms))
        self._disk_owner = {id(disk): sid for sid, disk in self.ensemble.disks.items()}

    def violation(self, kind: str, message: str) -> None:
        line = f"{self.sim.now_ms}ms {kind}: {message}"
        violations = self.report.violations
        if any(v.split(" ", 1)[1] == line.split(" ", 1)[1] for v in violations):
            return
        violations.append(line)
        if len(violations) >= MAX_VIOLATIONS:
            raise Abort("too many violations")

    def step(self) -> bool:
        try:
            ran = self.sim.step()
        except DiskFault as e:
            self.chaos.halt(self._disk_owner[id(e.disk)], e)
            ran = True
        except Abort:
            raise
        except Exception as e:  # a peer failed in a way zabd does not handle
            self.violation("exception", f"{type(e).__name__}: {e}")
            raise Abort(repr(e)) from e
        self.report.steps += 1
        self.monitor.check()
        self.chaos.after_step()
        return ran

    def run_until(self, predicate: Callable[[], bool], within_ms: int) -> bool:
        deadline = self.sim.now_ms + within_ms
        while not predicate():
            due = self.sim.next_time_ms()
            if due is None or due > deadline:
                return predicate()
            self.step()
        return True

    def run(self) -> None:
        ensemble, workload, chaos = self.ensemble, self.workload, self.chaos
        ensemble.start()
        workload.start()
        chaos.start()
        span = self.span_ms
        self.run_until(lambda: self.sim.now_ms >= span and workload.issued >= workload.target, 4 * span)
        chaos.heal()
        workload.issuing = False
        if not self.run_until(lambda: ensemble.leader() is not None and ensemble.all_serving(), SETTLE_MS):
            self.violation("liveness", f"no leader served every peer within {SETTLE_MS // 1000} s of healing")
            return
        self.run_until(workload.idle, 10_000)
        ensemble.write(1, prefix="/final")
        if not self.run_until(lambda: converged(ensemble), SETTLE_MS):
            self.violation("liveness", "the peers did not converge after healing")
        check_converged(ensemble, self.histories, self.violation)
        check_writes(workload, self.histories, self.violation)
        check_ephemerals(ensemble, self.violation, all_expired=False)
        workload.stop()
        self.run_until(lambda: False, EXPIRY_MS)
        if not self.run_until(lambda: converged(ensemble), SETTLE_MS):
            self.violation("liveness", "the peers did not converge after every session expired")
        check_converged(ensemble, self.histories, self.violation)
        check_ephemerals(ensemble, self.violation, all_expired=True)


def run_seed(seed: int, voters: int | None = None, ops: int = 200, faults: int = 10, *,
             commit_log_count: int = 500, disk_history: bool = False) -> SeedReport:
    """One seed's world, start to end; the report lists every violation found (none: ok).

    A small ``commit_log_count`` makes learners fall behind the leader's committed log (SNAP, or with
    ``disk_history`` a DIFF read from the leader's log files) far more often.
    """
    started = time.perf_counter()
    voters = voters or random.Random(seed).choice((3, 5))
    run = _Run(seed, voters, ops, faults, commit_log_count=commit_log_count, disk_history=disk_history)
    try:
        run.run()
    except Abort:
        pass
    report = run.report
    report.ops = run.workload.issued
    report.acknowledged = sum(1 for op in run.workload.ops if op.err == 0)
    report.faults = [str(f) for f in run.chaos.faults]
    report.faults_applied = run.chaos.applied
    report.halts = run.chaos.halts
    report.packets = run.monitor.packets.packets
    report.epochs = len(run.monitor.epoch_leader)
    report.committed = len(run.histories.committed) - 1
    report.virtual_ms = run.sim.now_ms
    if report.violations:
        report.trace = run.sim.format_trace(last=40)
    report.wall_s = time.perf_counter() - started
    return report


def _run_one(job: tuple[int, int | None, int, int, int, bool]) -> SeedReport:
    seed, voters, ops, faults, commit_log_count, disk_history = job
    return run_seed(seed, voters, ops, faults, commit_log_count=commit_log_count, disk_history=disk_history)


def _quiet(log_path: str | None = None) -> None:
    """zabd's log lines go to ``log_path``, or nowhere (a run logs a lot, and its failures are in the report)."""
    observers = [textFileLogObserver(open(log_path, "a", encoding="utf-8"))] if log_path else []  # noqa: SIM115
    globalLogBeginner.beginLoggingTo(observers, discardBuffer=True, redirectStandardIO=False)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m zabd.testing.chaos", description=__doc__.split("\n\n")[0])
    parser.add_argument("--seeds", type=int, required=True, help="how many seeds to run")
    parser.add_argument("--first", type=int, default=0, help="the first seed")
    parser.add_argument("--voters", type=int, choices=(3, 5), help="ensemble size (default: drawn per seed)")
    parser.add_argument("--ops", type=int, default=200, help="client operations per seed (at least)")
    parser.add_argument("--faults", type=int, default=10, help="faults per seed")
    parser.add_argument("--commit-log", type=int, default=500, help="the peers' commitLogCount")
    parser.add_argument("--disk-history", action="store_true", help="leaders may sync learners from their logs")
    parser.add_argument("--jobs", type=int, default=1, help="worker processes")
    parser.add_argument("--verbose", action="store_true", help="a line per seed")
    parser.add_argument("--log", metavar="FILE", help="zabd's log lines go here (default: nowhere)")
    args = parser.parse_args(argv)
    _quiet(args.log)
    started = time.perf_counter()
    failed: list[int] = []
    ops = faults = 0
    jobs = [(seed, args.voters, args.ops, args.faults, args.commit_log, args.disk_history)
            for seed in range(args.first, args.first + args.seeds)]
    pool = multiprocessing.Pool(args.jobs) if args.jobs > 1 else None  # (forked: quiet as well)
    reports = pool.imap(_run_one, jobs, chunksize=4) if pool is not None else map(_run_one, jobs)
    for n, report in enumerate(reports, 1):
        ops += report.ops
        faults += report.faults_applied
        if not report.ok:
            failed.append(report.seed)
            print(report.details(), "\n", flush=True)
        elif args.verbose:
            print(report.summary(), flush=True)
        if n % 100 == 0 or n == args.seeds:
            elapsed = time.perf_counter() - started
            print(f"[{n}/{args.seeds} seeds, {len(failed)} failing, {n / elapsed:.2f} seeds/s, "
                  f"{ops / n:.0f} ops and {faults / n:.1f} faults per seed, {elapsed:.0f} s]", flush=True)
    if pool is not None:
        pool.close()
        pool.join()
    print(f"{args.seeds} seeds from {args.first}: {len(failed)} failing" + (f": {failed}" if failed else ""))
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
