# -*- test-case-name: tests.unit.test_fuzz_targets -*-
"""The fuzzer's engine: run inputs through a target and keep what went wrong.

:class:`Runner` feeds one target (zabd.testing.fuzz_targets) its inputs
under a watchdog and the memory limits, and turns an exception out of it, a
traceback logged by a catch-all, a slow input or a grown process into a
:class:`Finding`; :class:`Report` sums a run up. zabd.testing.fuzz is the
command line around it.
"""
from __future__ import annotations

import hashlib
import resource
import signal
import sys
import time
import tracemalloc
import traceback
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

from twisted.logger import ILogObserver, LogEvent, globalLogPublisher
from zope.interface import implementer

from zabd.testing.fuzz_targets import DECODE_ERRORS, Target

_PAGE_KB = resource.getpagesize() // 1024


@dataclass
class Finding:
    """Something a fuzz input made go wrong (a crash, a hang, memory), with the input to replay it."""

    target: str
    kind: str  # "crash", "hang" or "memory"
    data: bytes
    detail: str
    #: Which input of which run (the targets keep state: a replay alone may pass).
    where: str = ""

    def signature(self) -> str:
        """The kind, the innermost frame and the exception type: findings alike are one bug."""
        lines = [line.strip() for line in self.detail.strip().splitlines()]
        frames = [line for line in lines if line.startswith("File ")]
        error = lines[-1].split(":")[0] if lines else ""
        return f"{self.kind} {frames[-1] if frames else ''} {error}"

    def save(self, out: Path) -> Path:
        out.mkdir(parents=True, exist_ok=True)
        stem = out / f"{self.target}-{self.kind}-{hashlib.sha1(self.data).hexdigest()[:12]}"
        stem.with_suffix(".bin").write_bytes(self.data)
        stem.with_suffix(".txt").write_text(f"{self.kind} in {self.target} ({self.where}): {self.detail}\n"
                                            f"input ({len(self.data)} bytes): {self.data.hex()}\n")
        return stem.with_suffix(".bin")


@dataclass
class Report:
    """What one fuzz run did: inputs, time, the slowest input, memory, and the findings."""

    target: str
    inputs: int = 0
    seconds: float = 0.0
    slowest: float = 0.0
    #: The most CPU time one input took.
    slowest_cpu: float = 0.0
    #: Inputs over the limit in wall time but not in CPU time, or not when run again: a busy machine.
    stalls: int = 0
    peak_rss_mb: float = 0.0
    #: The first finding of each signature.
    findings: list[Finding] = field(default_factory=list)
    #: How many inputs found each signature.
    counts: dict[str, int] = field(default_factory=dict)

    def count(self, kind: str) -> int:
        return sum(n for sig, n in self.counts.items() if sig.startswith(kind))

    def line(self) -> str:
        rate = self.inputs / self.seconds if self.seconds else 0.0
        return (f"{self.target}: {self.inputs} inputs in {self.seconds:.0f} s ({rate:.0f}/s), "
                f"{self.count('crash')} crashes, {self.count('hang')} hangs, {self.count('memory')} memory "
                f"({len(self.findings)} distinct), "
                f"slowest {self.slowest * 1000:.0f} ms ({self.slowest_cpu * 1000:.0f} ms CPU, {self.stalls} stalls), "
                f"peak RSS {self.peak_rss_mb:.0f} MB")


@implementer(ILogObserver)
class _LoggedFailures:
    """Tracebacks a catch-all logged for exceptions other than the decoders' refusals."""

    def __init__(self) -> None:
        self.tracebacks: list[str] = []

    def __call__(self, event: LogEvent) -> None:
        failure = event.get("log_failure")
        if failure is not None and not issubclass(failure.type, DECODE_ERRORS):
            self.tracebacks.append(failure.getTraceback())


class _Watchdog(Exception):
    """Raised by SIGALRM in an input that runs on and on."""


class Runner:
    """Runs inputs through one target; times each, watches memory, collects logged tracebacks."""

    def __init__(self, target: Target, time_limit: float = 1.0, rss_limit_mb: float = 1024.0,
                 watchdog: float | None = None, alloc_limit_mb: float | None = None,
                 wall: Callable[[], float] = time.perf_counter,
                 cpu_time: Callable[[], float] = time.process_time) -> None:
        self.target = target
        #: The clocks an input is timed by (a test's target moves fake ones).
        self.wall, self.cpu_time = wall, cpu_time
        self.time_limit = time_limit
        self.rss_limit_mb = rss_limit_mb
        self.watchdog = watchdog
        #: With tracemalloc on: the most one input may allocate beyond what was live before it.
        self.alloc_limit_mb = alloc_limit_mb
        self.logged = _LoggedFailures()
        #: The CPU time of the last input run.
        self.cpu = 0.0

    def _alarm(self, signum: int, frame: object) -> None:
        raise _Watchdog()

    def execute(self, data: bytes) -> tuple[float, Finding | None]:
        self.logged.tracebacks.clear()
        name = self.target.name
        if self.watchdog:
            signal.setitimer(signal.ITIMER_REAL, self.watchdog)
        if self.alloc_limit_mb and tracemalloc.is_tracing():
            tracemalloc.reset_peak()
            live = tracemalloc.get_traced_memory()[0]
        start, cpu = self.wall(), self.cpu_time()
        try:
            self.target.execute(data)
        except _Watchdog:
            return self.wall() - start, Finding(name, "hang", data, f"still running after {self.watchdog} s")
        except Exception:
            return self.wall() - start, Finding(name, "crash", data, traceback.format_exc())
        finally:
            if self.watchdog:
                signal.setitimer(signal.ITIMER_REAL, 0)
            self.cpu = self.cpu_time() - cpu
        took = self.wall() - start
        if self.alloc_limit_mb and tracemalloc.is_tracing():
            grew = (tracemalloc.get_traced_memory()[1] - live) / 2**20
            if grew > self.alloc_limit_mb:
                return took, Finding(name, "memory", data, f"allocated {grew:.1f} MB at its peak")
        if self.logged.tracebacks:
            return took, Finding(name, "crash", data, "a catch-all logged:\n" + "\n".join(self.logged.tracebacks))
        return took, None

    def run(self, inputs: Callable[[], bytes], count: int, out: Path | None = None, progress: int = 0,
            check_every: int = 1000, label: str = "") -> Report:
        report = Report(self.target.name)
        globalLogPublisher.addObserver(self.logged)
        old = signal.signal(signal.SIGALRM, self._alarm) if self.watchdog else None
        tracing = bool(self.alloc_limit_mb) and not tracemalloc.is_tracing()
        if tracing:
            tracemalloc.start()
        began = self.wall()
        try:
            for i in range(1, count + 1):
                data = inputs()
                took, finding = self.execute(data)
                if finding is None and took > self.time_limit:
                    finding, took = self._slow(report, data, took)
                report.slowest = max(report.slowest, took)
                report.slowest_cpu = max(report.slowest_cpu, self.cpu)
                if finding is not None:
                    finding.where = f"input {i}{label}"
                    self._record(report, finding, out)
                if i % check_every == 0 or i == count:
                    self._check(report, data, out)
                    report.inputs, report.seconds = i, self.wall() - began
                    if progress and (i % progress == 0 or i == count):
                        print(report.line(), flush=True)
                    if rss_mb() > self.rss_limit_mb:
                        break
            self._check(report, b"", out, self.target.close)
        finally:
            globalLogPublisher.removeObserver(self.logged)
            if old is not None:
                signal.signal(signal.SIGALRM, old)
            if tracing:
                tracemalloc.stop()
        report.seconds = self.wall() - began
        report.peak_rss_mb = max(report.peak_rss_mb, peak_rss_mb())
        return report

    def _slow(self, report: Report, data: bytes, took: float) -> tuple[Finding | None, float]:
        """An input over the time limit: a hang if it is again, on the CPU too (not only starved of it)."""
        cpu = self.cpu
        again, _ = self.execute(data)
        cpu = max(cpu, self.cpu)
        if again > self.time_limit and cpu > self.time_limit / 2:
            return Finding(self.target.name, "hang", data, f"took {took:.2f} s, then {again:.2f} s "
                                                           f"({cpu:.2f} s CPU)"), took
        report.stalls += 1
        return None, again

    def _check(self, report: Report, data: bytes, out: Path | None, check: Callable[[], None] | None = None) -> None:
        try:
            (check or self.target.check)()
        except Exception:
            self._record(report, Finding(self.target.name, "crash", data, "periodic check, after this input:\n"
                                         + traceback.format_exc(), "periodic check"), out)
        rss = rss_mb()
        report.peak_rss_mb = max(report.peak_rss_mb, rss)
        if rss > self.rss_limit_mb:
            self._record(report, Finding(self.target.name, "memory", data,
                                         f"RSS {rss:.0f} MB over the {self.rss_limit_mb:.0f} MB bound"), out)

    def _record(self, report: Report, finding: Finding, out: Path | None) -> None:
        signature = finding.signature()
        report.counts[signature] = report.counts.get(signature, 0) + 1
        if report.counts[signature] > 1:
            return
        report.findings.append(finding)
        where = finding.save(out) if out is not None else None
        print(f"FOUND {finding.kind} in {finding.target} ({len(finding.data)} bytes){f': {where}' if where else ''}\n"
              f"{finding.detail}", file=sys.stderr, flush=True)


def rss_mb() -> float:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * _PAGE_KB / 1024


def peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


