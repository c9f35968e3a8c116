"""Real peers on real loopback TCP (zabd.harness.loopback_ensemble): election, replication, failover.

The script runs in its own process with its own reactor, so a hang fails
this test at the subprocess deadline instead of stalling the suite.
"""
from __future__ import annotations

import json
import subprocess
import sys

import pytest
from twisted.internet.testing import MemoryReactorClock

from zabd.core.datatree import OPEN_ACL
from zabd.jute.opcodes import OpCode
from zabd.jute.txns import CreateTxn, Txn, TxnHeader
from zabd.quorum.snapstream import SnapshotStreamDecoder
from zabd.server.quorum_port import ReactorScheduler
from zabd.storage.epochs import epoch_of
from zabd.harness.memreplica import MemoryReplica

DEADLINE_S = 60
WRITES = 200


@pytest.mark.parametrize("peers", [3, 5])
def test_loopback_ensemble_elects_replicates_and_fails_over(peers: int) -> None:
    command = [sys.executable, "-m", "zabd.harness.loopback_ensemble", "--peers", str(peers),
               "--writes", str(WRITES), "--verbose"]
    done = subprocess.run(command, capture_output=True, text=True, timeout=DEADLINE_S)
    assert done.returncode == 0, done.stderr[-20000:]
    lines = done.stdout.strip().splitlines()
    assert len(lines) == 1, done.stdout
    result = json.loads(lines[0])

    assert (result["peers"], result["writes"]) == (peers, WRITES)
    # Every peer starts empty: the highest sid wins the first election, in epoch 1.
    assert result["leader"] == peers and result["epoch"] == 1
    # The next highest sid takes over in a later epoch.
    assert result["new_leader"] == peers - 1 and result["new_epoch"] > result["epoch"]
    assert 0 <= result["election_ms"] < 20_000 and 0 <= result["failover_ms"] < 20_000

    before = {tuple(value) for value in result["digests_before"].values()}
    after = {tuple(value) for value in result["digests_after"].values()}
    assert len(result["digests_before"]) == peers and len(result["digests_after"]) == peers - 1
    assert len(before) == 1 and len(after) == 1, result  # every live peer: the same zxid and tree digest
    (zxid_before, digest_before), (zxid_after, digest_after) = before.pop(), after.pop()
    assert (epoch_of(zxid_before), zxid_before & 0xFFFFFFFF) == (1, WRITES)
    assert (epoch_of(zxid_after), zxid_after & 0xFFFFFFFF) == (result["new_epoch"], WRITES)
    assert digest_after != digest_before
    # Equal histories: every follower synced by DIFF, and each survivor synced with the new leader.
    modes = {int(sid): sync for sid, sync in result["sync_modes"].items()}
    assert modes[peers] == [] and all(mode == "DIFF" for sync in modes.values() for mode in sync)
    assert all(len(modes[sid]) >= 2 for sid in range(1, peers - 1)) and len(modes[peers - 1]) >= 1


def create(zxid: int, path: str) -> bytes:
    return Txn(TxnHeader(1, zxid, zxid, 0, OpCode.create), CreateTxn(path, b"x", OPEN_ACL, False, -1)).to_bytes()


def test_memory_replica_reports_durable_next_turn_truncates_and_installs() -> None:
    reactor = MemoryReactorClock()
    replica = MemoryReplica(ReactorScheduler(reactor))
    durable: list[int] = []
    replica.set_durable_callback(durable.append)
    for zxid in (1, 2, 3):
        replica.log(zxid, create(zxid, f"/n{zxid}"))
    assert durable == [] and replica.last_logged_zxid == 3
    reactor.advance(0)
    assert durable == [3]  # one report for the turn's batch
    replica.apply(1, create(1, "/n1"))
    replica.catch_up()  # what was logged and not committed is applied when a role ends
    assert replica.last_processed_zxid == 3 and replica.tree.get("/n3") is not None

    replica.truncate(2)
    assert (replica.last_logged_zxid, replica.last_processed_zxid) == (2, 2)
    assert replica.tree.get("/n3") is None and [z for z, _ in replica.committed] == [1, 2]

    zxid, chunks = replica.snapshot_stream()
    decoder = SnapshotStreamDecoder()
    decoder.feed(b"".join(chunks))
    assert decoder.result is not None
    other = MemoryReplica(ReactorScheduler(reactor))
    other.install(decoder.result, zxid)
    other.log(3, create(3, "/n3"))
    other.truncate(2)  # back to the installed snapshot
    assert other.tree.digest.value == replica.tree.digest.value and other.last_logged_zxid == 2
    with pytest.raises(RuntimeError):
        other.truncate(1)  # below the snapshot: refused, nothing changed
    assert other.tree.digest.value == replica.tree.digest.value
    reactor.advance(0)
    assert reactor.getDelayedCalls() == []
