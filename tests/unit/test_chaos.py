"""Random faults on a simulated ensemble, invariants after every step (zabd.testing.chaos; issue 15, item 3).

The sweep runs 300 seeds, each with at least 200 client operations and 10
faults, and expects no violation. Each bug the explorer found stays here as
a named regression: the seed that found it, and a scripted scenario that
does not depend on how seeds are drawn.
"""
from __future__ import annotations

import errno
import random

import pytest

from tests.unit.test_simulation import election_world, listening_pair
from zabd.quorum.learner import Phase
from zabd.quorum.snapstream import SnapshotStream
from zabd.testing.chaos import SeedReport, run_seed
from zabd.testing.chaos_history import Histories, TracedReplica
from zabd.testing.ensemble import QUORUM_PORT, SimEnsemble
from zabd.testing.memdisk import DiskFault, MemoryDisk
from zabd.testing.simnet import SimNetwork
from zabd.testing.simulation import Scope, Simulation

#: 12 x 25 = 300 seeds.
BATCHES, BATCH, FIRST = 12, 25, 1000


def assert_ok(report: SeedReport) -> None:
    assert report.ok, report.details()
    assert report.ops >= 200 and report.faults_applied >= 10, report.summary()


@pytest.mark.parametrize("batch", range(BATCHES))
def test_random_faults_break_no_invariant(batch: int) -> None:
    failing = []
    for seed in range(FIRST + batch * BATCH, FIRST + (batch + 1) * BATCH):
        report = run_seed(seed)
        if not report.ok:
            failing.append(report.details())
        elif report.ops < 200 or report.faults_applied < 10:
            failing.append(f"too little happened: {report.summary()}")
    assert not failing, "\n\n".join(failing)


def test_a_seed_replays_exactly() -> None:
    first, second = run_seed(7), run_seed(7)
    assert (first.steps, first.virtual_ms, first.committed, first.faults) == \
        (second.steps, second.virtual_ms, second.committed, second.faults)


# -- bugs found ------------------------------------------------------------------


def write_and_commit(ensemble: SimEnsemble, count: int, sids: list[int] | None = None) -> list[int]:
    zxids = ensemble.write(count)
    assert ensemble.run_until(lambda: ensemble.committed_everywhere(zxids[-1], sids), 10_000)
    return zxids


@pytest.mark.parametrize("seed", range(8))
def test_follower_that_crashes_after_newleader_keeps_its_old_epoch_until_the_txns_are_durable(seed: int) -> None:
    """ZOOKEEPER-4643, found by the explorer (4 of the first 300 seeds, see below).

    At NEWLEADER zabd persisted currentEpoch first and logged the DIFF's txns
    after. Peer 1, behind, syncs from peer 2 and crashes in between: it comes
    back with the new epoch and the old log, and its vote (higher epoch) beats
    peer 3's, which holds txns committed by 2 and 3. As leader, 1 truncated
    them everywhere. Now currentEpoch waits until the txns are durable.
    """
    ensemble = SimEnsemble(seed, 3)
    ensemble.start()
    assert ensemble.settle() == 3
    write_and_commit(ensemble, 5)
    ensemble.net.partition([{1}, {2, 3}])
    committed = write_and_commit(ensemble, 5, [2, 3])
    ensemble.net.partition([{3}, {1, 2}])

    def syncing() -> bool:
        learner = ensemble.peers[1].learner
        return learner is not None and learner.phase is Phase.NEWLEADER and ensemble.peers[1].leader_id == 2

    assert ensemble.run_until(syncing, 10_000)
    ensemble.crash(1)  # the txns of its DIFF are logged, not yet durable
    ensemble.crash(2)
    ensemble.net.heal()
    ensemble.restart(1)
    ensemble.settle([1, 3])
    ensemble.restart(2)
    ensemble.settle()
    assert all(ensemble.replica(sid).last_processed_zxid >= committed[-1] for sid in ensemble.sids)
    assert len(set(ensemble.digests().values())) == 1


@pytest.mark.parametrize("seed", [138, 167, 174, 259])
def test_zookeeper_4643_seeds(seed: int) -> None:
    """The seeds of the first 300 that break leaderLogCompleteness without the fix above."""
    assert_ok(run_seed(seed))


def _snap_then_cut(seed: int, cut: str) -> SimEnsemble:
    """Peer 1 is synced by SNAP; right after it installs the snapshot, ``cut`` ends that sync."""
    histories = Histories(lambda kind, message: None)
    armed = [False]

    class CutAfterInstall(TracedReplica):
        def install(self, snapshot: SnapshotStream, zxid: int) -> None:
            super().install(snapshot, zxid)
            if armed[0] and self.sid == 1:
                armed[0] = False
                if cut == "disk":
                    self.disk.inject("fsync", errno.EIO)  # the NEWLEADER snapshot's fsync
                else:
                    for serial, dialer, _ in ensemble.net.streams(QUORUM_PORT):
                        if dialer == 1:
                            ensemble.net.reset_stream(serial)

    def replica(sid: int, scope: Scope, disk: MemoryDisk, count: int) -> TracedReplica:
        return CutAfterInstall(sid, scope, disk, count, histories)

    ensemble = SimEnsemble(seed, 3, commit_log_count=10, replica_factory=replica)
    ensemble.start()
    ensemble.settle()
    write_and_commit(ensemble, 5)
    ensemble.crash(1)
    write_and_commit(ensemble, 30, [2, 3])  # more than its committed log: peer 1 needs a SNAP
    armed[0] = True
    ensemble.restart(1)
    ensemble.settle()
    write_and_commit(ensemble, 5)
    ensemble.crash(1)
    ensemble.restart(1)
    ensemble.settle()
    write_and_commit(ensemble, 1)
    return ensemble


@pytest.mark.parametrize("cut", ["connection", "disk"])
@pytest.mark.parametrize("seed", range(4))
def test_a_sync_cut_after_its_snapshot_leaves_no_hole_in_the_log(seed: int, cut: str) -> None:
    """Found by the explorer (the seeds below, and 995 and 206 of earlier generators).

    A learner synced by SNAP (or by TRUNC plus txns) changes its tree in
    memory and makes it durable only with the snapshot it saves at NEWLEADER.
    When the sync ends before that (the connection breaks, or the snapshot's
    fsync fails), the peer looks again with a tree newer than its disk; its
    next sync is a DIFF from that tree's zxid, which saves no snapshot, and
    its log goes on past a hole. Restarted, it replays its old snapshot and
    log and skips the hole (recovery accepts a new epoch's first txn after
    any zxid): same last zxid as everyone, another tree, silently.

    Fixed: a learner whose sync ends before that snapshot is durable reloads
    its tree from its files (``Replica.reload``) before it looks again.
    """
    ensemble = _snap_then_cut(seed, cut)
    assert len(set(ensemble.digests().values())) == 1, ensemble.digests()


@pytest.mark.parametrize("seed", [1632, 9141, 10263])
def test_seeds_where_a_sync_cut_after_its_snapshot_loses_committed_txns(seed: int) -> None:
    """The bug of the test above, found three ways (fixed as it is).

    1632: peer 3's SNAP sync fails at its NEWLEADER snapshot (EIO on the temp file's write); it looks
    again with the leader's tree in memory and its old one on disk, and the next leader TRUNCs it to
    just below that tree's zxid: a reload from disk, which takes it far lower. It serves on without
    committed txns. 9141: the same with no disk fault, the leader cut off right after the SNAP.
    10263: ENOSPC on that snapshot; peer 5 rejoins by DIFF, logs past the hole, crashes, and comes
    back with a history that skips the SNAP's txns.
    """
    assert_ok(run_seed(seed))


def test_seed_50060_with_a_short_committed_log_and_txn_log_syncs() -> None:
    """ZOOKEEPER-3911's kind, found with ``--commit-log 20 --disk-history`` (3.8's txnlog sync).

    Peer 4, synced by SNAP at 0x200000005, keeps in its log what it logged in epoch 1, including
    0x100000024, a txn the quorum never committed, and lacks 0x200000001..5, which came in the
    snapshot. As leader it syncs peer 5, whose last txn is that 0x100000024, from its log: the txn is
    there, so the planner sends a DIFF of what follows in the log. Peer 5 keeps the uncommitted txn
    and misses the snapshot's five (processConsistency at NEWLEADER), and later leads without them.

    Fixed: once a SNAP's snapshot is durable, the log files below it go (``drop_through``): the
    log then holds the leader's history only, and a learner it does not hold gets a SNAP.
    """
    assert_ok(run_seed(50060, commit_log_count=20, disk_history=True))


@pytest.mark.parametrize("seed", [5413, 6945])
def test_a_peer_that_accepted_a_newer_epoch_rejoins(seed: int) -> None:
    """Liveness. Seed 5413: peer 3 twice starts to lead, persists the epoch it chose (acceptedEpoch 4) and crashes
    before its LEADERINFO reaches anyone; peers 1 and 2 go on under leader 2 in epoch 3. From then on
    peer 3 elects 2, refuses its LEADERINFO ("leader epoch 3 is older than my accepted epoch 4"), looks
    again, elects 2 again, for as long as 2 leads: 60 s after every fault healed it still does not serve.
    Seed 6945: the same with 5 peers (peer 5 accepted epoch 3, leader 4 serves epoch 2).

    3.8 does the same. zabd does better: a leader past discovery that meets a learner with a
    newer acceptedEpoch steps down, and the next election chooses an epoch above that promise.
    """
    assert_ok(run_seed(seed))


def test_seed_12609_a_leader_crashing_with_its_new_epoch_and_an_old_log_loses_no_committed_txn() -> None:
    """ZOOKEEPER-4643's kind on the leader's side (and ZOOKEEPER-4712's: a role ends with its log unflushed).

    Peer 4's fsyncs are slow; it has logged 0x10000001b, which peers 1-3 acknowledged and leader 5
    committed, but not yet made it durable when 5 crashes. Elected on that in-memory log, 4 writes
    currentEpoch 2 on its ACKEPOCH quorum and crashes; it comes back with epoch 2 and a log ending at
    0x10000001a, its vote beats everyone's (epoch 1, 0x10000001b), and as leader of epoch 3 it
    TRUNCs the committed txn away on every peer. The learner side waited for the sync's txns,
    but neither side waited for what the log still had in flight from the role before.

    Fixed as 3.9 fixed ZOOKEEPER-4712: a peer whose role ends looks again only once its log is
    durable, so its vote and its next role start from what a crash would leave.
    """
    assert_ok(run_seed(12609))


@pytest.mark.parametrize("seed", range(4))
def test_a_learner_killed_after_its_syncs_new_epoch_txns_are_durable_restarts_in_that_epoch(seed: int) -> None:
    """Found by the black-box test on real peers: with 3.9.4's order alone, a restart failed.

    Peer f, cut off while epoch 2 began, rejoins by DIFF; the DIFF holds txns of epoch 2. They
    are fsynced, and f is killed before the durable report reaches it, so before currentEpoch
    is written: its log's last zxid is of epoch 2, its currentEpoch 1, and startup refused
    ("the current epoch is older than the last zxid"). The ``updatingEpoch`` marker of 3.8,
    written at NEWLEADER, lets the restart take the log's epoch, as 3.8's does.
    """
    ensemble = SimEnsemble(seed, 3)
    ensemble.start()
    leader = ensemble.settle()
    write_and_commit(ensemble, 3)
    follower = next(sid for sid in ensemble.sids if sid != leader)
    others = [sid for sid in ensemble.sids if sid != follower]
    ensemble.net.partition([{follower}, set(others)])
    ensemble.crash(leader)
    ensemble.restart(leader)
    ensemble.settle(others)
    committed = write_and_commit(ensemble, 5, others)
    new_epoch = committed[-1] >> 32
    assert new_epoch == 2 and ensemble.replica(follower).current_epoch == 1
    txn_log = ensemble.replica(follower).txn_log
    report = txn_log._report
    killed: list[int] = []

    def killed_before_the_report(zxid: int) -> None:
        learner = ensemble.peers[follower].learner
        if not killed and learner is not None and learner.phase is Phase.NEWLEADER and zxid >> 32 == new_epoch:
            killed.append(zxid)
            ensemble.crash(follower)
            return
        report(zxid)

    setattr(txn_log, "_report", killed_before_the_report)
    ensemble.net.heal()
    assert ensemble.run_until(lambda: bool(killed), 10_000)
    assert ensemble.disks[follower].exists("version-2/updatingEpoch")
    ensemble.restart(follower)
    replica = ensemble.replica(follower)
    assert (replica.current_epoch, replica.last_logged_zxid >> 32) == (new_epoch, new_epoch)
    ensemble.settle()
    assert len(set(ensemble.digests().values())) == 1
    assert all(ensemble.replica(sid).last_processed_zxid >= committed[-1] for sid in ensemble.sids)


def test_seed_21467_a_trunc_below_a_snaps_snapshot_reloads_what_the_files_hold() -> None:
    """Found by the 20,000-seed run. Peer 5 was synced by SNAP from a leader whose tree held txns
    it never got committed (that leader fell before NEWLEADER's quorum); 5's NEWLEADER snapshot
    kept them, and the log below it had gone (see test_seed_50060...). The next leader TRUNCs 5 to
    0x200000006, below that snapshot: no file lands there. The simulated replica reloaded the
    older snapshot silently and synced on from the wrong point (DiskReplica refused, and the
    peer would have retried the same TRUNC forever). Now both reload the newest state the files
    hold below the point and end the sync; the next sync starts from there.
    """
    assert_ok(run_seed(21467))


# -- the fault hooks the explorer added to the simulation kit ---------------------


def test_a_blocked_direction_holds_stream_bytes_and_releases_them_in_order() -> None:
    sim = Simulation(3)
    net = SimNetwork(sim, 1, 20)
    client, accepted = listening_pair(sim, net)
    server = accepted[0]
    net.block([(1, 2)])
    writes = [b"%d;" % n for n in range(40)]
    for data in writes:
        client.end.write(data)
        server.end.write(data)
        sim.run_for(3)
    sim.run_for(500)
    assert client.data == b"".join(writes)  # the other way flows
    client.end.close()
    sim.run_for(500)
    assert server.data == b"" and server.closed == 0  # held, the connection still up
    assert net.connect(1, 2, "quorum") is None and net.connect(2, 1, "quorum") is None
    net.block(())
    for data in writes:
        client.end.write(b"after")  # (the closed end writes nothing more)
    sim.run_for(500)
    assert server.data == b"".join(writes) and server.closed == 1


def test_heal_ends_blocks_and_reset_stream_breaks_one_connection() -> None:
    sim = Simulation(5)
    net = SimNetwork(sim)
    client, accepted = listening_pair(sim, net)
    net.block([(2, 1)])
    accepted[0].end.write(b"held")
    sim.run_for(50)
    assert client.data == b""
    net.heal()
    sim.run_for(50)
    assert client.data == b"held"
    ((serial, dialer, listener),) = net.streams("quorum")
    assert (dialer, listener) == (1, 2) and client.end.dialer and not accepted[0].end.dialer
    net.reset_stream(serial)
    sim.run_for(50)
    assert (client.closed, accepted[0].closed) == (1, 1) and net.streams() == []


def test_stream_taps_see_each_write_with_its_sender() -> None:
    sim = Simulation(6)
    net = SimNetwork(sim)
    seen: list[tuple[int, bool, bytes]] = []
    net.stream_taps.append(lambda end, data: seen.append((end.node, end.dialer, data)))
    client, accepted = listening_pair(sim, net)
    client.end.write(b"up")
    accepted[0].end.write(b"down")
    assert seen == [(1, True, b"up"), (2, False, b"down")]


def test_duplicated_election_messages_arrive_twice_in_order() -> None:
    sim, net, inboxes, links = election_world(8)
    net.duplicate_rate(1.0)
    for n in range(5):
        links[1].send(2, b"%d" % n)
    sim.run_for(500)
    assert inboxes[2].payloads(1) == [b"%d" % n for n in range(5) for _ in (0, 1)]


def test_a_slow_direction_delays_only_that_way() -> None:
    sim, net, inboxes, links = election_world(9, max_delay_ms=5)
    net.slow({(1, 2): 300})
    links[1].send(2, b"slow")
    links[2].send(1, b"quick")
    sim.run_for(100)
    assert inboxes[1].payloads(2) == [b"quick"] and inboxes[2].payloads(1) == []
    sim.run_for(300)
    assert inboxes[2].payloads(1) == [b"slow"]


@pytest.mark.parametrize("error", [errno.EIO, errno.ENOSPC])
def test_injected_write_and_fsync_errors_fire_once_and_a_crash_disarms(error: int) -> None:
    disk = MemoryDisk(random.Random(1))
    disk.write("f", b"durable")
    disk.fsync("f")
    disk.fsync_dir("")
    disk.inject("write", error, after=1)
    disk.append("f", b"+one")
    with pytest.raises(DiskFault) as raised:
        disk.append("f", b"+two")
    assert raised.value.errno == error and raised.value.disk is disk
    written = disk.read("f")
    assert written == b"durable+one" if error == errno.EIO else written.startswith(b"durable+one")
    disk.append("f", b"+three")  # fired once
    disk.inject("fsync", error)
    with pytest.raises(DiskFault):
        disk.fsync("f")
    assert disk.read("f", durable=True) == b"durable"
    disk.inject("fsync", error)
    disk.crash()
    disk.fsync("f")  # disarmed by the crash
    assert len(disk.fired) == 2


def test_seed_42576_a_close_forwarded_late_by_a_peer_the_client_left_is_refused() -> None:
    """Found by a 3,000-seed run (40000-42999). A client's create (xid 5) and closeSession (xid 6)
    went through follower 2, which lost its leader before they were answered; the client went on
    with the same session on the leader (xids 7-11). The forwarded requests reached the leader
    later: the create was refused with SESSIONMOVED, but the close, which 3.8 lets through from
    any peer, was committed after xid 11 and ended the session behind its client's back. A
    forwarded closeSession is now checked against the session's owner like any other write.
    """
    assert_ok(run_seed(42576))
