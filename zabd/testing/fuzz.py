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
import sys
import tempfile
from pathlib import Path
from typing import Any

from twisted.logger import globalLogBeginner, globalLogPublisher, textFileLogObserver

from zabd.testing.fuzz_peers import ElectionTarget, QuorumTarget
from zabd.testing.fuzz_runner import Finding, Report, Runner, peak_rss_mb, rss_mb
from zabd.testing.fuzz_seeds import Mutator
from zabd.testing.fuzz_targets import TARGETS, ClientTarget, JuteTarget, Target

__all__ = ["Finding", "Mutator", "Report", "Runner", "fuzz", "main", "make_target", "peak_rss_mb", "replay",
           "rss_mb"]


def make_target(name: str, data_dir: str) -> Target:
    """The target called ``name`` (one of zabd.testing.fuzz_targets.TARGETS)."""
    if name == "jute":
        return JuteTarget()
    if name == "client":
        return ClientTarget(data_dir)
    if name == "quorum":
        return QuorumTarget()
    if name == "election":
        return ElectionTarget()
    raise ValueError(f"unknown target {name!r}")


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
