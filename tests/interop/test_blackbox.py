"""The black-box fault test on real twistd peers (issue 15, section 4), and proof that its checker bites.

``test_short_fault_run`` is the CI mode of ``python -m zabd.harness.blackbox``:
three zabd peers behind loopback proxies, one cycle of each kind of fault
(kill -9 of a peer, of the leader and of all peers, SIGSTOP, a partition),
compare-and-set, sequential creates and ephemerals, and no anomaly allowed.

The broken builds are made here, never in zabd: a ``sitecustomize.py`` put
first on the peers' PYTHONPATH patches the server in each peer process, as
``ZABD_BLACKBOX_BUGS`` asks, and says so in the peer's log:

* ``volatile-disk``: the txn log waits :data:`DISK_DELAY_S` before it writes
  a batch, so a kill -9 loses what it had not written, as a power cut loses
  what was not fsynced. Alone it is no bug: acks wait for the write.
* ``ack-before-fsync``: followers ACK a proposal and the leader counts its own
  ACK as soon as the txn is handed to the log, not once it is durable.
* ``deposed-leader``: a leader that no longer hears from a quorum does not
  step down, so its clients go on reading its frozen tree.

Each broken build runs a deterministic schedule (kill -9 of every peer right
after an acknowledgement; the leader cut off for longer than the staleness
bound while the writers work on the other side), and the same schedule on
the real build (with the slow disk) must give 0 anomalies.
"""

from __future__ import annotations

import logging
import os
import socket
import struct
from collections.abc import Iterator, Sequence
from pathlib import Path

import pytest

from zabd.harness.blackbox import Options, Report, run
from zabd.harness.blackbox_checks import STALE_BOUND_S, staleness_anomalies
from zabd.harness.commands import LOCALHOST, zabd_environment
from zabd.harness.history import History
from zabd.harness.nemesis import ProxyNetwork
from zabd.harness.probes import free_port

DISK_DELAY_S = 0.25
INJECTED = "blackbox: injected"
SITECUSTOMIZE = f'''
"""The black-box test's broken builds (tests/interop/test_blackbox.py); nothing here is zabd."""
import os
import sys

BUGS = set(filter(None, os.environ.get("ZABD_BLACKBOX_BUGS", "").split(",")))

if "volatile-disk" in BUGS:
    from zabd.persist.disklog import GroupCommitLog

    _flush = GroupCommitLog._flush

    def _slow_flush(self):
        if getattr(self, "_blackbox_due", False):
            self._blackbox_due = False
            return _flush(self)
        from twisted.internet import reactor
        self._scheduled = self._blackbox_due = True
        reactor.callLater({DISK_DELAY_S}, _slow_flush, self)

    GroupCommitLog._flush = _slow_flush

if "ack-before-fsync" in BUGS:
    from zabd.quorum.leader import Leader
    from zabd.quorum.learner_state import LearnerState
    from zabd.quorum.packets import PacketType, QuorumPacket

    def _log_and_ack(self, zxid, txn):
        self.replica.log(zxid, txn)
        self.send(QuorumPacket(PacketType.ACK, zxid))

    _propose = Leader.propose

    def propose(self, zxid, txn, new_config=None):
        _propose(self, zxid, txn, new_config)
        self.durable(zxid)

    LearnerState.log_and_ack = _log_and_ack
    Leader.propose = propose

if "deposed-leader" in BUGS:
    from zabd.quorum.leader import Leader

    _stop = Leader.stop

    def stop(self, reason):
        if "heard from within" not in reason:
            _stop(self, reason)

    Leader.stop = stop

if BUGS:
    print("{INJECTED}", ",".join(sorted(BUGS)), file=sys.stderr, flush=True)
'''


def build(tmp_path: Path, bugs: Sequence[str]) -> dict[str, str]:
    """The peers' environment: zabd's, with the broken build's sitecustomize first on PYTHONPATH."""
    site = tmp_path / "site"
    site.mkdir(parents=True)
    (site / "sitecustomize.py").write_text(SITECUSTOMIZE)
    env = zabd_environment()
    env["PYTHONPATH"] = f"{site}{os.pathsep}{env['PYTHONPATH']}"
    env["ZABD_BLACKBOX_BUGS"] = ",".join(bugs)
    return env


def injected(tmp_path: Path) -> set[str]:
    lines = (line for log in tmp_path.glob("peers/**/server.log") for line in log.read_text().splitlines())
    return {bug for line in lines if line.startswith(INJECTED) for bug in line.split()[-1].split(",")}


@pytest.fixture(autouse=True)
def quiet_kazoo() -> Iterator[None]:
    """kazoo warns of every connection a fault drops: thousands of lines in a failure's report."""
    logger = logging.getLogger("kazoo")
    level = logger.level
    logger.setLevel(logging.ERROR)
    yield
    logger.setLevel(level)


def run_in(tmp_path: Path, options: Options) -> Report:
    report = run(options, tmp_path / "peers")
    print(report.summary(examples=3))
    return report


def test_short_fault_run(tmp_path: Path) -> None:
    schedule = ("kill", "isolate-leader", "pause", "kill-leader", "bridge", "pause-leader", "kill-all", "isolate")
    report = run_in(tmp_path, Options("zabd", cycles=len(schedule), seconds=90, seed=15, schedule=schedule))
    assert report.cycles == len(schedule)
    assert report.acked_writes >= 300 and report.acked.get("cas", 0) >= 200, report.summary()
    assert report.ok, report.summary(examples=20)
    assert report.unsettled == 0 and report.final_peers == [1, 2, 3]


#: Kills come once the workload is under way (500 writes are more than a slow disk's delay, at any speed; the
#: real build, slowed by it, gets 10 s), each right after an acknowledgement.
KILL_ALL = Options("zabd", cycles=3, seconds=60, seed=4, schedule=("kill-all",), hold_s=1.0, hold_writes=1,
                   warmup_writes=500, warmup_s=10)


def test_ack_before_fsync_loses_acknowledged_writes(tmp_path: Path) -> None:
    broken = run_in(tmp_path / "broken", Options(**{**vars(KILL_ALL), "env": build(
        tmp_path / "broken", ["volatile-disk", "ack-before-fsync"])}))
    assert injected(tmp_path / "broken") == {"volatile-disk", "ack-before-fsync"}
    kinds = {a.kind for a in broken.anomalies}
    assert kinds & {"lost-write", "duplicate-version"}, broken.summary()
    assert broken.result is not None and not broken.result.linearizable
    real = run_in(tmp_path / "real", Options(**{**vars(KILL_ALL), "env": build(tmp_path / "real", ["volatile-disk"])}))
    assert injected(tmp_path / "real") == {"volatile-disk"}
    assert real.ok and real.acked_writes > 0, real.summary(examples=20)


#: The leader is cut off for longer than the staleness bound plus an election, while a reader is pinned to every
#: peer. zabd's leader answers a read only once every request that came before it is answered, so a write pending
#: there would stall its reads: the writers stay on the majority side, the cut comes with no op in flight, the
#: ephemeral sessions (whose create and close are writes) stay out, and the sessions outlive the cut.
DEPOSED = Options("zabd", cycles=1, seconds=60, seed=7, schedule=("isolate-leader",), hold_s=STALE_BOUND_S + 8,
                  hold_writes=10**9, settle_s=10, session_timeout=16, writers_avoid_leader=True,
                  require_settled=False, quiesce=True, ephemerals=False)


def test_reads_from_a_deposed_leader_are_stale(tmp_path: Path) -> None:
    broken = run_in(tmp_path / "broken", Options(**{**vars(DEPOSED), "env": build(tmp_path / "broken",
                                                                                   ["deposed-leader"])}))
    assert injected(tmp_path / "broken") == {"deposed-leader"}
    stale = [a for a in broken.anomalies if a.kind == "stale-read"]
    assert stale, broken.summary()
    deposed = broken.first_leader  # its pinned reader, or the final read through it
    assert {str(a.ops[-1].session).split("#")[0] for a in stale} <= {f"r{deposed}", f"final{deposed}"}
    assert broken.result is not None and broken.result.linearizable  # the writes themselves are fine
    real = run_in(tmp_path / "real", DEPOSED)
    assert real.ok, real.summary(examples=20)
    assert real.unsettled == 0


# -- the parts, without peers ---------------------------------------------------------------------------------------


def test_staleness_scan() -> None:
    ticks = iter(range(0, 10**12, 10**9))  # one second a tick
    history = History(clock=lambda: next(ticks))
    first = history.invoke("a", "/k", "cas", value="x", expected_version=0)
    history.ok(first, version=1)  # version 1 from t=1
    late = history.invoke("b", "/k", "read")  # sent at t=2: within the bound
    history.ok(late, value="init", version=0)
    for _ in range(int(STALE_BOUND_S)):
        history.ok(history.invoke("b", "/j", "read"), value="init", version=0)
    stale = history.invoke("b", "/k", "read")  # sent more than the bound after version 1 was acknowledged
    history.ok(stale, value="init", version=0)
    found = staleness_anomalies(history.ops())
    assert [(a.kind, a.ops[-1].id) for a in found] == [("stale-read", stale)]
    assert "superseded" in str(found[0])
    assert staleness_anomalies(history.ops(), bound_s=60) == []


def test_the_proxy_stalls_a_cut_link_and_rewrites_the_election_handshake() -> None:
    server = socket.create_server((LOCALHOST, free_port()))
    network = ProxyNetwork()
    try:
        plain = network.add(1, 2, server.getsockname()[1])
        election = network.add(2, 1, server.getsockname()[1])
        election.announce = 4242
        with socket.create_connection((LOCALHOST, plain.port), timeout=5) as client:
            upstream, _ = server.accept()
            client.sendall(b"ping")
            assert upstream.recv(4) == b"ping"
            network.cut(2, 1)  # either way round
            assert network.cut_links() == [(1, 2)]
            client.sendall(b"held")
            upstream.settimeout(0.5)
            with pytest.raises(TimeoutError):
                upstream.recv(4)
            network.heal_all()
            upstream.settimeout(5)
            assert upstream.recv(4) == b"held"
            upstream.close()
        handshake = struct.pack(">qq", -65535, 2) + struct.pack(">i", 15) + b"127.0.0.1:11111"
        with socket.create_connection((LOCALHOST, election.port), timeout=5) as client:
            client.sendall(handshake + b"rest")
            upstream, _ = server.accept()
            upstream.settimeout(5)
            expected = struct.pack(">qq", -65535, 2) + struct.pack(">i", 14) + b"127.0.0.1:4242" + b"rest"
            received = b""
            while len(received) < len(expected):
                received += upstream.recv(64)
            assert received == expected
            upstream.close()
    finally:
        network.close()
        server.close()
