"""
Run kazoo's own test suite (``kazoo.tests``) against a 3-peer zabd ensemble.

kazoo's harness (kazoo.testing.common) starts every peer as ``java ...
QuorumPeerMain zoo.cfg``; with ``kazoo_shim/`` first on PATH that ``java``
starts ``twistd -n zabd`` instead (see the shim's docstring).  ``--zookeeper``
runs the same suite against Apache ZooKeeper 3.8.0 from the Debian jars, for
comparison.

    python -m zabd.harness.kazoo_suite [--zookeeper] [-k EXPR] [--deadline S]

The whole run has a deadline (the pytest process group, servers included, is
killed when it passes) and each test a timeout; the closing lines are the
failing test ids with their first error line and ``N passed, N failed, N
skipped``.  Needs kazoo's test dependencies: pyOpenSSL and pyjks.
"""

from __future__ import annotations

import argparse
import os
import re
import select
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TextIO

from zabd.harness.commands import zabd_environment, zookeeper_classpath
from zabd.harness.portblock import claim_port_block

SHIM_DIRECTORY = Path(__file__).resolve().parent / "kazoo_shim"
ZOOKEEPER_VERSION = "3.8.0"
PLUGIN_MODULE = "zabd.harness.kazoo_mend"  # its pytest_configure mends the harness
DEFAULT_DEADLINE_S = 900.0
DEFAULT_TEST_TIMEOUT_S = 120.0
# Between SIGTERM and SIGKILL when the deadline passes.
KILL_GRACE_S = 5.0

# "kazoo/tests/test_x.py::TestX::test_y PASSED   [ 12%]" from ``pytest -v``;
# a test that fails in teardown after passing gets a second, ERROR line.
_OUTCOME_LINE = re.compile(r"^(\S+::\S+) (PASSED|FAILED|ERROR|SKIPPED|XFAIL|XPASS)\b")
# "FAILED kazoo/tests/test_x.py::TestX::test_y - KeyError: 'a'" from ``-rfE``.
_REASON_LINE = re.compile(r"^(FAILED|ERROR) (\S+::\S+)(?: - (.*))?$")
_FAILING = ("FAILED", "ERROR", "XPASS")


@dataclass(slots=True)
class SuiteResult:
    """What one run of the suite did: each test's worst outcome and why it failed."""

    outcomes: dict[str, str] = field(default_factory=dict)
    reasons: dict[str, str] = field(default_factory=dict)
    finished: bool = False
    returncode: int | None = None

    def feed(self, line: str) -> None:
        """Take one line of pytest's output into account."""
        line = line.rstrip()
        outcome = _OUTCOME_LINE.match(line)
        if outcome is not None:
            test, status = outcome.groups()
            if self.outcomes.get(test) not in _FAILING:
                self.outcomes[test] = status
            return
        reason = _REASON_LINE.match(line)
        if reason is not None:
            status, test, message = reason.groups()
            self.outcomes.setdefault(test, status)
            self.reasons.setdefault(test, message or status)

    def count(self, *statuses: str) -> int:
        return sum(1 for status in self.outcomes.values() if status in statuses)

    def outcome(self, test: str) -> str | None:
        """The outcome of ``test``, also when pytest named it by a path from elsewhere."""
        found = self.outcomes.get(test)
        if found is None:
            found = next((status for name, status in self.outcomes.items() if name.endswith("/" + test)), None)
        return found

    def failing(self) -> list[str]:
        return sorted(t for t, status in self.outcomes.items() if status in _FAILING)

    def counts_line(self) -> str:
        """The plain ``N passed, N failed, N skipped`` line (errors count as failures)."""
        return (f"{self.count('PASSED', 'XFAIL')} passed, {self.count(*_FAILING)} failed, "
                f"{self.count('SKIPPED')} skipped")


def suite_environment(use_zookeeper: bool, port_offset: int,
                      base: Mapping[str, str] | None = None) -> dict[str, str]:
    """The environment kazoo's harness reads, with the shim first on PATH unless ZooKeeper."""
    env = zabd_environment() if base is None else dict(base)
    env.update({
        "ZOOKEEPER_VERSION": ZOOKEEPER_VERSION,
        "ZOOKEEPER_PORT_OFFSET": str(port_offset),
        "ZOOKEEPER_CLUSTER_SIZE": "3",
        # Run as kazoo's own CI does: test_read_only then waits for its setUp's
        # writes to reach the peer it keeps, where it would race them (and
        # test_build checks the server's version against ZOOKEEPER_VERSION).
        "CI": "true",
        "ZABD_SHIM_PYTHON": sys.executable,
        "COLUMNS": "400",  # pytest cuts -rfE reasons to the terminal's width
    })
    # The harness insists on a classpath even when the shim ignores it.  It picks
    # NettyServerCnxnFactory, whose jars zookeeper.jar's manifest leaves out.
    env["ZOOKEEPER_CLASSPATH"] = (
        zookeeper_classpath(netty=True) if use_zookeeper else str(SHIM_DIRECTORY))
    if not use_zookeeper:
        env["PATH"] = os.pathsep.join([str(SHIM_DIRECTORY), env.get("PATH", "")])
    return env


def kazoo_pytest_command(keyword: str | None, test_timeout_s: float,
                         extra: Sequence[str] = (), tests: Sequence[str] = ()) -> list[str]:
    """
    ``python -m pytest`` over the installed ``kazoo.tests``, one line per test.

    :param tests: only these test ids (as the suite's output names them,
        ``test_lock.py::KazooLockTests::test_lock_ephemeral``), e.g. to
        run one test many times while looking for why it fails.
    """
    command = [sys.executable, "-m", "pytest",
               # hypothesis's plugin keeps objects alive, and test_cache counts
               # live TreeNodes with objgraph (test_close, test_delete_operation).
               "-p", "no:cacheprovider", "-p", "no:hypothesispytest", "-p", PLUGIN_MODULE, "-v", "-rfE", "--tb=short",
               f"--timeout={test_timeout_s:g}"]
    if tests:
        # Given by path, the ids come out as the whole suite names them.
        command += [str(kazoo_tests_directory() / test) for test in tests]
    else:
        command += ["--pyargs", "kazoo.tests"]
    if keyword:
        command += ["-k", keyword]
    return command + list(extra)


def kazoo_tests_directory() -> Path:
    import kazoo.tests

    return Path(kazoo.tests.__file__).resolve().parent


def run_suite(command: Sequence[str], env: Mapping[str, str], deadline_s: float,
              echo: TextIO | None = None,
              clock: Callable[[], float] = time.monotonic) -> SuiteResult:
    """
    Run ``command`` in its own process group, reading its output until it ends or
    ``deadline_s`` passes (then the group, servers included, is killed).

    :param echo: where to copy pytest's output as it comes, if anywhere.
    """
    result = SuiteResult()
    with tempfile.TemporaryDirectory(prefix="kazoo-suite-") as cwd:  # no project pytest config
        process = subprocess.Popen(list(command), env=dict(env), cwd=cwd,
                                   stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                                   stdin=subprocess.DEVNULL, start_new_session=True)
        assert process.stdout is not None
        end = clock() + deadline_s
        pending = b""
        while True:
            remaining = end - clock()
            if remaining <= 0:
                _kill_group(process)
                break
            ready, _, _ = select.select([process.stdout], [], [], min(remaining, 5.0))
            if not ready:
                continue
            chunk = os.read(process.stdout.fileno(), 65536)
            if not chunk:
                result.finished = True
                break
            pending += chunk
            *lines, pending = pending.split(b"\n")
            for raw in lines:
                text = raw.decode("utf-8", "replace")
                result.feed(text)
                if echo is not None:
                    echo.write(text + "\n")
                    echo.flush()
        if pending:
            result.feed(pending.decode("utf-8", "replace"))
        result.returncode = process.wait()
        process.stdout.close()
    return result


def _kill_group(process: subprocess.Popen[bytes]) -> None:
    """End pytest and the servers it started: they share its process group."""
    for sig, wait_s in ((signal.SIGTERM, KILL_GRACE_S), (signal.SIGKILL, None)):
        try:
            os.killpg(process.pid, sig)
        except ProcessLookupError:
            return
        try:
            process.wait(timeout=wait_s)
            return
        except subprocess.TimeoutExpired:
            continue


def report(result: SuiteResult, server: str, out: TextIO) -> None:
    """Print the failing tests with their first error line, then the counts."""
    out.write(f"\n==== kazoo.tests against {server} ====\n")
    if not result.finished:
        out.write("deadline passed: the run was killed; counts are partial\n")
    elif not result.outcomes:
        out.write(f"pytest exited {result.returncode} without running a test\n")
    for test in result.failing():
        out.write(f"{result.outcomes[test]} {test}: {result.reasons.get(test, '')}\n")
    out.write(f"{server}: {result.counts_line()}\n")


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m zabd.harness.kazoo_suite",
                                     description=__doc__.split("\n\n")[1] if __doc__ else None)
    parser.add_argument("--zookeeper", action="store_true",
                        help="run against Apache ZooKeeper 3.8.0 instead of zabd")
    parser.add_argument("-k", dest="keyword", help="pytest -k expression")
    parser.add_argument("--deadline", type=float, default=DEFAULT_DEADLINE_S,
                        help="seconds for the whole run (default %(default)s)")
    parser.add_argument("--test-timeout", type=float, default=DEFAULT_TEST_TIMEOUT_S,
                        help="seconds for one test (default %(default)s)")
    parser.add_argument("--port-offset", type=int, default=20000,
                        help="first port block to try for the harness's peers; a block another "
                             "run holds is skipped (default %(default)s)")
    parser.add_argument("--min-passed", type=int, default=None,
                        help="succeed when at least this many pass, failures or not")
    parser.add_argument("--quiet", action="store_true", help="print only the summary")
    parser.add_argument("pytest_args", nargs="*", help="more pytest arguments (after --)")
    options = parser.parse_args(argv)

    server = "zookeeper" if options.zookeeper else "zabd"
    with claim_port_block(options.port_offset) as offset:
        result = run_suite(
            kazoo_pytest_command(options.keyword, options.test_timeout, options.pytest_args),
            suite_environment(options.zookeeper, offset),
            options.deadline, echo=None if options.quiet else sys.stdout)
    report(result, server, sys.stdout)
    if options.min_passed is not None:
        return 0 if result.finished and result.count("PASSED", "XFAIL") >= options.min_passed else 1
    return 0 if result.finished and not result.failing() and result.outcomes else 1


if __name__ == "__main__":
    sys.exit(main())
