"""Fuzz the jute decoder and the client, quorum and election ports, in memory.

    python -m zabd.testing.fuzz --target {jute,client,quorum,election,all} --inputs N [--seed S]
    python -m zabd.testing.fuzz --replay FINDING.bin [--target T]

A seeded mutation fuzzer (zabd.testing.fuzz_seeds.Mutator): each input is a
seed of the target's corpus with 1-8 stacked mutations, or now and then plain
random bytes; the same ``--seed`` gives the same inputs. ``--engine atheris``
hands the same targets to atheris (libFuzzer, coverage-guided) instead, when
it is installed.

Findings: an exception out of a target (a decoder may only raise its own
refusal), a traceback logged by a catch-all for any other exception type, a
broken invariant (the target asserts), an input slower than ``--time-limit``
(1 s; confirmed by running it again), and a resident size past
``--rss-limit-mb``. Each is saved as ``<target>-<kind>-<sha1>.bin`` (the
input) and ``.txt`` (what happened) under ``--out``, and ``--replay`` runs
one again. The exit status is 1 if anything was found.
"""
from __future__ import annotations

import argparse
import hashlib
import resource
import signal
import sys
import tempfile
import time
import tracemalloc
import traceback
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

from twisted.logger import ILogObserver, LogEvent, globalLogBeginner, globalLogPublisher, textFileLogObserver
from zope.interface import implementer

from zabd.testing.fuzz_seeds import Mutator
from zabd.testing.fuzz_targets import DECODE_ERRORS, TARGETS, Target, make_target

_PAGE_KB = resource.getpagesize() // 1024


@dataclass
class Finding:
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


def fuzz(name: str, count: int, seed: int = 0, out: Path | None = None, data_dir: str | None = None,
         progress: int = 0, **limits: Any) -> Report:
    """Run ``count`` mutated inputs through target ``name``."""
    with tempfile.TemporaryDirectory(prefix="zabd-fuzz-") as tmp:
        target = make_target(name, data_dir or tmp)
        mutator = Mutator(target.seeds(), seed)
        return Runner(target, **limits).run(mutator.next, count, out, progress, label=f" of --seed {seed}")


def replay(path: Path, name: str | None = None, **limits: Any) -> Finding | None:
    """Run one saved input again; its target comes from the file name unless given."""
    name = name or path.name.split("-", 1)[0]
    with tempfile.TemporaryDirectory(prefix="zabd-fuzz-") as tmp:
        target = make_target(name, tmp)
        runner = Runner(target, **limits)
        globalLogPublisher.addObserver(runner.logged)
        try:
            took, finding = runner.execute(path.read_bytes())
            if finding is None:
                target.check()
        finally:
            globalLogPublisher.removeObserver(runner.logged)
    if finding is None and took > runner.time_limit:
        finding = Finding(name, "hang", path.read_bytes(), f"took {took:.2f} s")
    return finding


def _atheris(name: str, count: int, seed: int, out: Path, **limits: Any) -> None:
    import atheris

    target = make_target(name, tempfile.mkdtemp(prefix="zabd-fuzz-"))
    corpus = Path(tempfile.mkdtemp(prefix=f"zabd-fuzz-{name}-corpus-"))
    for i, data in enumerate(target.seeds()):
        (corpus / f"seed{i}").write_bytes(data)
    runner = Runner(target, **limits)
    globalLogPublisher.addObserver(runner.logged)

    def one(data: bytes) -> None:
        took, finding = runner.execute(data)
        if finding is None and took > runner.time_limit:
            finding = Finding(name, "hang", data, f"took {took:.2f} s")
        if finding is not None:
            raise RuntimeError(f"{finding.kind}, saved as {finding.save(out)}:\n{finding.detail}")

    atheris.instrument_all()
    atheris.Setup([sys.argv[0], f"-runs={count}", f"-seed={seed + 1}", "-max_len=8192", "-timeout=10",
                   f"-rss_limit_mb={int(limits.get('rss_limit_mb', 1024))}", str(corpus)], one)
    atheris.Fuzz()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m zabd.testing.fuzz", description=__doc__.split("\n\n")[0])
    parser.add_argument("--target", choices=[*TARGETS, "all"], default="all")
    parser.add_argument("--inputs", type=int, default=10_000, help="inputs per target")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", type=Path, default=Path("fuzz-findings"), help="where findings are saved")
    parser.add_argument("--replay", type=Path, nargs="*", help="run saved inputs again instead of fuzzing")
    parser.add_argument("--time-limit", type=float, default=1.0, help="seconds an input may take")
    parser.add_argument("--rss-limit-mb", type=float, default=1024.0, help="the resident-size bound")
    parser.add_argument("--alloc-limit-mb", type=float, help="trace allocations (slower): what one input may take")
    parser.add_argument("--progress", type=int, default=50_000, help="print a line every N inputs")
    parser.add_argument("--engine", choices=["mutate", "atheris"], default="mutate")
    parser.add_argument("--log", type=Path, help="write zabd's log here (default: discard it)")
    args = parser.parse_args(argv)
    if argv is None:  # the command line: zabd's log goes to --log or nowhere (not to a test's process)
        observers = [textFileLogObserver(args.log.open("a"))] if args.log else []
        globalLogBeginner.beginLoggingTo(observers, redirectStandardIO=False)
    limits = {"time_limit": args.time_limit, "rss_limit_mb": args.rss_limit_mb, "watchdog": 30.0,
              "alloc_limit_mb": args.alloc_limit_mb}
    if args.replay:
        found = [(path, replay(path, None if args.target == "all" else args.target, **limits)) for path in args.replay]
        for path, finding in found:
            print(f"{path}: " + ("passes" if finding is None else f"{finding.kind}\n{finding.detail}"))
        return 1 if any(finding for _, finding in found) else 0
    names = list(TARGETS) if args.target == "all" else [args.target]
    if args.engine == "atheris":
        if len(names) != 1:
            parser.error("--engine atheris takes one --target")
        _atheris(names[0], args.inputs, args.seed, args.out, **{**limits, "watchdog": None})  # libFuzzer's -timeout
    reports = [fuzz(name, args.inputs, args.seed, args.out, progress=args.progress, **limits) for name in names]
    print("\n".join(["summary:", *(r.line() for r in reports)]))
    print(f"total: {sum(r.inputs for r in reports)} inputs, {sum(len(r.findings) for r in reports)} findings, "
          f"peak RSS {peak_rss_mb():.0f} MB")
    return 1 if any(r.findings for r in reports) else 0


if __name__ == "__main__":
    sys.exit(main())
