"""kazoo's own test suite (kazoo.tests) against a 3-peer zabd ensemble, as issue 5 asks.

The harness starts peers with ``java ... QuorumPeerMain``; zabd.testing's
java shim starts twistd instead. On this project's machines 315 tests pass
against Apache ZooKeeper 3.8.0 with pure-sasl installed (312 without it, as
here); zabd must pass every one of them except those needing TLS or SASL,
which a later issue covers: at least 311.
"""
from __future__ import annotations

import sys

import pytest

from zabd.testing.kazoo_suite import kazoo_pytest_command, report, run_suite, suite_environment

MIN_PASSED = 311
#: TLS is a later issue; SASL tests skip here (no pure-sasl), and would be excused too.
EXCUSED = ("TestSSLClient", "test_sasl.py")
DEADLINE_S = 1200.0


@pytest.mark.timeout(DEADLINE_S + 120)
def test_kazoo_suite_passes_against_a_zabd_ensemble() -> None:
    result = run_suite(kazoo_pytest_command(None, 120.0), suite_environment(False, 21000), DEADLINE_S)
    report(result, "zabd", sys.stdout)
    assert result.finished, "the suite did not finish before its deadline"
    unexpected = [test for test in result.failing() if not any(name in test for name in EXCUSED)]
    assert not unexpected, {test: result.reasons.get(test) for test in unexpected}
    assert result.count("PASSED", "XFAIL") >= MIN_PASSED, result.counts_line()
