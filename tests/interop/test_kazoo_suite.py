"""kazoo's own test suite (kazoo.tests) against a 3-peer zabd ensemble, as issue 5 asks.

The harness starts peers with ``java ... QuorumPeerMain``; zabd.harness's
java shim starts twistd instead. The suite runs as kazoo's own CI runs it
(``CI=true``), so test_build checks the server's version too: zabd must pass
every test except those needing SASL, which a later issue covers: at least
313.  TLS is no excuse: kazoo's TestSSLClient
(secureClientPort, the harness's pyjks JKS stores, a client certificate)
must pass.  The harness's zoo.cfg names the SASL authentication provider,
which zabd refuses at startup; the java shim leaves out exactly that line
(see its docstring), which is why the SASL tests stay excused.

The suite runs once: a failing test fails this test; there is no second
run. A kazoo test that fails now and then is a bug to find, in zabd or in
the harness, not a race to retry. Tests used to fail now and then and pass
on a re-run (test_delete_operation, test_update_host_list, test_read_only,
test_race_condition_new_partitioner_during_the_lock) for three reasons:

- every run put its peers on ports 21000-21024, so two runs on one machine
  shared one ensemble, each stopping and restarting the other's peers (two
  suites started 20 s apart failed 2 and 5 scattered tests, test_read_only
  among them); each run now claims a block of its own
  (zabd.harness.portblock);
- a peer could hang for good on the harness's SIGTERM: Twisted's handler
  logged from inside the signal handler while a pool thread was logging
  too; test_read_only, which stops two peers and waits for them, then timed
  out (zabd.server.signals);
- test_read_only writes its chroot through one session and at once stops
  the two peers that took the write; the third had sometimes not joined the
  epoch yet (it had dialled the leader before the leader decided, and was
  due to retry 100 ms later), and answered NoNode. ZooKeeper allows that,
  and kazoo's CI mode waits for replication first; the harness now also
  waits until every peer of a started cluster serves (zabd.harness.kazoo_mend).
"""
from __future__ import annotations

import sys

import pytest

from zabd.harness.kazoo_suite import kazoo_pytest_command, report, run_suite, suite_environment
from zabd.harness.portblock import claim_port_block

MIN_PASSED = 313
#: SASL is a later issue; its tests skip here (no pure-sasl), and would be excused.
EXCUSED = ("test_sasl.py",)
#: Must pass outright, never excused.
TLS_TEST = "test_client.py::TestSSLClient::test_create"
DEADLINE_S = 1200.0
#: The first port block tried; clear of the unit tests' ports (zabd.harness.probes.TEST_PORTS).
FIRST_PORT_OFFSET = 21000


@pytest.mark.timeout(DEADLINE_S + 120)
def test_kazoo_suite_passes_against_a_zabd_ensemble() -> None:
    with claim_port_block(FIRST_PORT_OFFSET) as offset:
        result = run_suite(kazoo_pytest_command(None, 120.0), suite_environment(False, offset), DEADLINE_S)
    report(result, "zabd", sys.stdout)
    assert result.finished, "the suite did not finish before its deadline"
    unexpected = [test for test in result.failing() if not any(name in test for name in EXCUSED)]
    assert not unexpected, {test: result.reasons.get(test) for test in unexpected}
    # Ran and passed: not skipped, not left out.
    tls = result.outcome(TLS_TEST)
    assert tls == "PASSED", (TLS_TEST, tls, result.reasons.get(TLS_TEST))
    assert result.count("PASSED", "XFAIL") >= MIN_PASSED, result.counts_line()
