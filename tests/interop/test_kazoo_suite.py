"""kazoo's own test suite (kazoo.tests) against a 3-peer zabd ensemble, as issue 5 asks.

The harness starts peers with ``java ... QuorumPeerMain``; zabd.testing's
java shim starts twistd instead. On this project's machines 315 tests pass
against Apache ZooKeeper 3.8.0 with pure-sasl installed (312 without it, as
here); zabd must pass every one of them except those needing SASL, which a
later issue covers: at least 312.  TLS is no excuse: kazoo's TestSSLClient
(secureClientPort, the harness's pyjks JKS stores, a client certificate)
must pass.  The harness's zoo.cfg names the SASL authentication provider,
which zabd refuses at startup; the java shim leaves out exactly that line
(see its docstring), which is why the SASL tests stay excused.

A few of kazoo's tests race by ZooKeeper's own rules: test_lock_ephemeral
creates a node through one session and reads it at once through another,
which may be connected to a peer the commit has not reached yet (ZooKeeper
promises no cross-session read-your-writes without ``sync``). A test that
fails gets one more run on a fresh cluster; it must pass then, and the
report names it.
"""
from __future__ import annotations

import sys

import pytest

from zabd.testing.kazoo_suite import kazoo_pytest_command, report, run_suite, suite_environment

MIN_PASSED = 312
#: SASL is a later issue; its tests skip here (no pure-sasl), and would be excused.
EXCUSED = ("test_sasl.py",)
#: Must pass outright, never excused.
TLS_TEST = "test_client.py::TestSSLClient::test_create"
DEADLINE_S = 1200.0
RERUN_DEADLINE_S = 300.0
#: More failures than this is no race: no re-run.
MAX_RERUNS = 3


@pytest.mark.timeout(DEADLINE_S + RERUN_DEADLINE_S + 120)
def test_kazoo_suite_passes_against_a_zabd_ensemble() -> None:
    env = suite_environment(False, 21000)
    result = run_suite(kazoo_pytest_command(None, 120.0), env, DEADLINE_S)
    report(result, "zabd", sys.stdout)
    assert result.finished, "the suite did not finish before its deadline"
    unexpected = [test for test in result.failing() if not any(name in test for name in EXCUSED)]
    passed = result.count("PASSED", "XFAIL")
    passed_again: set[str] = set()
    if unexpected and len(unexpected) <= MAX_RERUNS:
        again = run_suite(kazoo_pytest_command(None, 120.0, tests=unexpected), env, RERUN_DEADLINE_S)
        report(again, "zabd, failures run once more", sys.stdout)
        passed_again = {test for test in unexpected if again.outcome(test) == "PASSED"}
        passed += len(passed_again)
        unexpected = [test for test in unexpected if again.outcome(test) != "PASSED"]
    assert not unexpected, {test: result.reasons.get(test) for test in unexpected}
    # Ran and passed (not skipped, not left out), at once or on its one re-run.
    tls = result.outcome(TLS_TEST)
    assert tls == "PASSED" or any(test.endswith(TLS_TEST) for test in passed_again), (
        TLS_TEST, tls, result.reasons.get(TLS_TEST))
    assert passed >= MIN_PASSED, result.counts_line()
