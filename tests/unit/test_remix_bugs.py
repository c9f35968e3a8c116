"""The Zab bugs Remix found in ZooKeeper (EuroSys 2025), each as a scripted scenario on zabd (issue 15).

Every test drives a simulated ensemble (zabd.testing.remix) into the
interleaving that breaks ZooKeeper 3.8, asserts from the packet log, the
role log and the disks that the scenario really reached that step, and
checks Zab's and Remix's invariants after every simulation step
(zabd.testing.chaos_invariants: leaderLogCompleteness, monotonicRead,
prefixConsistency, processConsistency, ackConsistent, messageLegal). Each
ends with every peer back, serving one history with equal digests.

In the docstrings, "3.8" is ZooKeeper 3.8.4's Learner.syncWithLeader (the
fix of ZOOKEEPER-3911 included); the fixes are 3.9.3's and 3.9.4's.
"""
from __future__ import annotations

from collections.abc import Callable, Iterator

import pytest

from zabd.quorum.learner import Learner, Phase
from zabd.core.zxid import first_zxid_of
from zabd.storage.epochs import CURRENT_EPOCH
from zabd.testing.remix import RemixWorld, Sent, committed_log_gap

SEEDS = range(8)
#: A follower's fsyncs in the scenarios that race them: slow enough that an ACK sent
#: before its fsync would be seen to leave long before the txns are durable.
SLOW_FSYNC_MS = 400

MakeWorld = Callable[..., RemixWorld]


class InvariantBroken(AssertionError):
    """An invariant failed once the scenario had reached its step (what a strict xfail here expects)."""


@pytest.fixture
def make_world() -> Iterator[MakeWorld]:
    worlds: list[RemixWorld] = []

    def make(seed: int, voters: int = 3, **kwargs: int) -> RemixWorld:
        world = RemixWorld(seed, voters, **kwargs)
        worlds.append(world)
        return world

    yield make
    for world in worlds:
        world.close()


def finish(world: RemixWorld) -> None:
    """Every peer up, one history served everywhere, equal digests, and no invariant broken on the way."""
    ensemble = world.ensemble
    for sid in sorted(ensemble.down):
        world.slow_disk(sid, None)
        world.restart(sid)
    for sid in ensemble.sids:
        world.slow_disk(sid, None)
    world.converge()
    if world.violations:
        raise InvariantBroken("\n".join(world.violations) + "\n" + world.sim.format_trace(last=30))
    digests = ensemble.digests()
    if len(set(digests.values())) != 1:
        raise InvariantBroken(f"digests differ: {digests}")


def position(sent: list[Sent], kind: str, zxid: int | None = None) -> int:
    """Where the first ``kind`` packet (of ``zxid``) is in ``sent``; -1 when it is not there."""
    return next((i for i, s in enumerate(sent) if s.kind == kind and (zxid is None or s.zxid == zxid)), -1)


def last_sync(world: RemixWorld, leader: int, sid: int) -> list[Sent]:
    """What ``leader`` sent ``sid`` from the DIFF, TRUNC or SNAP of its latest sync on, in order."""
    starts = world.packets.between(leader, sid, "DIFF", "TRUNC", "SNAP")
    assert starts, f"{leader} never synced {sid}"
    sent = [s for s in world.packets.between(leader, sid) if s.serial == starts[-1].serial]
    return sent[position(sent, starts[-1].kind):]


def only_on_the_old_leader_side(world: RemixWorld, count: int = 1) -> list[int]:
    """Leader 3 proposes ``count`` txns that peer 2 logs durably and 3 never does: 3 crashes, nothing commits.

    Peer 1 is cut off meanwhile. Returns the txns' zxids: a history that only peer 2 holds.
    """
    ensemble = world.ensemble
    ensemble.start()
    assert world.settle() == 3
    world.write_and_commit(5)
    ensemble.net.partition([{1}, {2, 3}])
    world.slow_disk(3, 5_000)  # the leader's own copy never reaches the disk
    zxids = ensemble.write(count)
    assert world.run_until(lambda: world.durable(2, zxids[-1]), 2_000)
    leader = ensemble.peers[3].leader
    assert leader is not None and leader.last_committed < zxids[0], "the txns must not commit in epoch 1"
    ensemble.crash(3)
    world.slow_disk(3, None)
    ensemble.net.heal()
    return zxids


def run_to_newleader(world: RemixWorld, sid: int, leader: int) -> Learner:
    """Run until ``sid`` has taken NEWLEADER from ``leader``; returns that learner."""
    peers = world.ensemble.peers

    def at_newleader() -> bool:
        learner = peers[sid].learner
        return learner is not None and learner.phase is Phase.NEWLEADER and peers[sid].leader_id == leader

    assert world.run_until(at_newleader, 20_000), world.sim.format_trace(last=30)
    learner = peers[sid].learner
    assert learner is not None
    return learner


# -- ZOOKEEPER-3911 ----------------------------------------------------------------


@pytest.mark.parametrize("seed", SEEDS)
def test_zookeeper_3911_a_diff_is_durable_before_the_leader_counts_the_learner(seed: int,
                                                                               make_world: MakeWorld) -> None:
    """ZOOKEEPER-3911: committed txns lost when the whole quorum crashes right after UPTODATE.

    Before the fix, a follower synced by DIFF acknowledged NEWLEADER at once
    and logged the DIFF's proposals only after UPTODATE. Here txn T is held
    only by peer 2 (leader 3 proposed it and crashed before its own fsync).
    Peer 2 leads epoch 2 and DIFFs T to peer 1; once 1 acknowledges
    NEWLEADER, 2 serves T: it is committed, and readable. 1 and 2 crash just
    after 1 has taken UPTODATE; 1 and 3 come back. In the old ZooKeeper 1's
    log lacked T, and 1 and 3 elected a history without it (monotonicRead).
    """
    world = make_world(seed)
    ensemble = world.ensemble
    (txn,) = only_on_the_old_leader_side(world)
    world.slow_disk(1, SLOW_FSYNC_MS)
    run_to_newleader(world, 1, 2)
    assert world.run_until(lambda: ensemble.peers[1].serving, 5_000)
    # The step: leader 2 serves T (committed), and 1 is past UPTODATE, synced by a DIFF carrying T.
    assert ensemble.peers[2].serving and txn in world.history(2) and txn in world.committed_zxids()
    sync = last_sync(world, 2, 1)
    assert [s.kind for s in sync][:4] == ["DIFF", "PROPOSAL", "COMMIT", "NEWLEADER"]
    assert sync[position(sync, "PROPOSAL")].zxid == txn and position(sync, "UPTODATE") > position(sync, "NEWLEADER")
    assert world.durable(1, txn), "1 took UPTODATE with T not durable"
    ensemble.crash(1)
    ensemble.crash(2)
    assert not world.durable(3, txn)
    world.restart(1)
    world.restart(3)
    world.settle([1, 3])
    assert all(txn in world.history(sid) for sid in (1, 3))
    finish(world)


# -- ZOOKEEPER-4394 ----------------------------------------------------------------


@pytest.mark.parametrize("seed", SEEDS)
def test_zookeeper_4394_a_commit_between_newleader_and_uptodate_is_applied(seed: int,
                                                                           make_world: MakeWorld) -> None:
    """ZOOKEEPER-4394: a COMMIT between NEWLEADER and UPTODATE killed the sync with a NullPointerException.

    3.8's learner logged every pending proposal at NEWLEADER and emptied
    its queue of them, so a COMMIT arriving after NEWLEADER for a proposal
    sent before it (one outstanding when the leader synced the learner)
    found nothing to commit: the follower dropped out and synced again, as
    often as the interleaving came back. Here peer 1 rejoins a serving
    leader while proposal P is outstanding (2's and 3's fsyncs are slowed);
    its sync carries DIFF, history, PROPOSAL P, NEWLEADER, and 1's slow disk
    holds its NEWLEADER ACK back until COMMIT P (and a later proposal Q and
    its COMMIT) have arrived, before UPTODATE. The same learner must go on
    to serve, with P and Q applied.
    """
    world = make_world(seed)
    ensemble = world.ensemble
    ensemble.start()
    assert world.settle() == 3
    world.write_and_commit(5)
    ensemble.crash(1)
    world.write_and_commit(5, [2, 3])
    world.slow_disk(1, SLOW_FSYNC_MS)
    world.slow_disk(2, 60)
    world.slow_disk(3, 60)
    rejoined = world.sim.now_ms
    world.restart(1)
    assert world.run_until(lambda: any(s.at_ms >= rejoined for s in world.packets.between(3, 1, "LEADERINFO")))
    (proposal,) = ensemble.write(1)  # outstanding while 1's ACKEPOCH arrives and 3 plans its sync
    learner = run_to_newleader(world, 1, 3)
    exits = len(world.roles.of(1))
    (later,) = ensemble.write(1)  # proposed to 1 after its NEWLEADER
    assert world.run_until(lambda: ensemble.peers[1].serving, 5_000)
    # The step: COMMIT P (and Q's PROPOSAL and COMMIT) between NEWLEADER and UPTODATE.
    sync = last_sync(world, 3, 1)
    newleader, uptodate = position(sync, "NEWLEADER"), position(sync, "UPTODATE")
    assert position(sync, "PROPOSAL", proposal) < newleader < position(sync, "COMMIT", proposal) < uptodate, \
        [str(s) for s in sync]
    assert newleader < position(sync, "PROPOSAL", later) < position(sync, "COMMIT", later) < uptodate
    assert ensemble.peers[1].learner is learner and learner.phase is Phase.BROADCAST
    assert len(world.roles.of(1)) == exits, world.roles.of(1)
    assert {proposal, later} <= set(world.history(1))
    finish(world)


# -- ZOOKEEPER-4643 ----------------------------------------------------------------


@pytest.mark.parametrize("seed", SEEDS)
def test_zookeeper_4643_a_learner_crashing_after_newleader_keeps_its_old_epoch(seed: int,
                                                                              make_world: MakeWorld) -> None:
    """ZOOKEEPER-4643: committed txns truncated after a follower crashed right after writing currentEpoch.

    At NEWLEADER 3.8 wrote currentEpoch first and logged the DIFF's txns
    after. Peer 1 misses txns C that 2 and 3 commit; it syncs from 2 (epoch
    2) by a DIFF of C and crashes right after taking NEWLEADER: C logged, not
    durable. In 3.8 it came back with currentEpoch 2 and a log without C; its
    vote beat 3's (epoch 1, C), and as leader it truncated C on 3. zabd must
    write currentEpoch only once C is durable (then ACK), so 1 comes back
    with epoch 1 and 3, holding C, leads.
    """
    world = make_world(seed)
    ensemble = world.ensemble
    ensemble.start()
    assert world.settle() == 3
    world.write_and_commit(5)
    ensemble.net.partition([{1}, {2, 3}])
    committed = world.write_and_commit(5, [2, 3])
    ensemble.net.partition([{3}, {1, 2}])
    world.slow_disk(1, SLOW_FSYNC_MS)
    run_to_newleader(world, 1, 2)
    # The step: NEWLEADER taken, C logged but not durable, so no epoch 2 and no ACK of NEWLEADER yet.
    assert not world.durable(1, committed[-1])
    assert world.durable_epoch(1) == 1
    assert world.packets.first(1, 2, "ACK", first_zxid_of(2)) is None
    ensemble.crash(1)
    ensemble.crash(2)
    ensemble.net.heal()
    world.restart(1)
    assert world.replica(1).current_epoch == 1
    assert world.settle([1, 3]) == 3, "peer 1 must not lead with a log that lacks C"
    assert set(committed) <= set(world.history(1))
    finish(world)


# -- ZOOKEEPER-4646 ----------------------------------------------------------------


@pytest.mark.parametrize("seed", SEEDS)
def test_zookeeper_4646_the_ack_of_newleader_waits_for_the_fsync(seed: int, make_world: MakeWorld) -> None:
    """ZOOKEEPER-4646: committed txns lost when a follower crashed after acking NEWLEADER.

    3.8's fix of 3911 handed the DIFF's txns to the SyncRequestProcessor
    thread and sent the ACK of NEWLEADER at once, fsync or not. T is held
    only by peer 2, which leads epoch 2 and DIFFs T to peer 1, whose fsyncs
    are slow. The moment 2 has 1's ACK and serves T (committed), 1 and 2
    crash, before 1 takes UPTODATE; 1 and 3 (which lost T) come back. In
    3.8 T could be on no disk but 2's. In zabd the ACK leaves only after
    the fsync, so T is on 1's disk and survives.
    """
    world = make_world(seed)
    ensemble = world.ensemble
    (txn,) = only_on_the_old_leader_side(world)
    world.slow_disk(1, SLOW_FSYNC_MS)
    learner = run_to_newleader(world, 1, 2)
    assert world.run_until(lambda: ensemble.peers[2].serving, 5_000)
    # The step: 2 serves T on 1's ACK, and 1 has not taken UPTODATE yet.
    assert learner.phase is Phase.NEWLEADER and txn in world.committed_zxids()
    newleader = world.packets.first(2, 1, "NEWLEADER", first_zxid_of(2))
    ack = world.packets.first(1, 2, "ACK", first_zxid_of(2))
    assert newleader is not None and ack is not None
    assert ack.at_ms - newleader.at_ms >= SLOW_FSYNC_MS, "the ACK of NEWLEADER left before the txns' fsync"
    assert world.durable(1, txn)
    ensemble.crash(1)
    ensemble.crash(2)
    world.restart(1)
    world.restart(3)
    world.settle([1, 3])
    assert all(txn in world.history(sid) for sid in (1, 3))
    finish(world)


# -- ZOOKEEPER-4685 ----------------------------------------------------------------


@pytest.mark.parametrize("seed", SEEDS)
def test_zookeeper_4685_proposal_acks_before_the_newleader_ack_do_not_stall_the_leader(
        seed: int, make_world: MakeWorld) -> None:
    """ZOOKEEPER-4685: the leader shut down when a learner acked a proposal before NEWLEADER.

    With 3.8's fix of 3911, the SyncRequestProcessor acknowledged the
    DIFF's proposals as it logged them, which could be before the QuorumPeer
    thread's ACK of NEWLEADER. The LearnerHandler took the first ACK for the
    one of NEWLEADER, found the wrong zxid and never counted the learner:
    no quorum within initLimit, the leader shut down, and it could happen
    again in every election. zabd's learner sends its ACK of NEWLEADER first
    and the proposals' after it (3.9.4's order; here three txns held only by
    peer 2, DIFFed to peer 1), and its leader reads each ACK by its zxid in any
    order, so 2 serves within initLimit, at the first try.
    """
    world = make_world(seed)
    ensemble = world.ensemble
    txns = only_on_the_old_leader_side(world, 3)
    learner = run_to_newleader(world, 1, 2)
    exits = len(world.roles.ends)
    assert world.run_until(lambda: ensemble.peers[1].serving, ensemble.timing.init_ms)
    # The step: 1's ACK of NEWLEADER, then those of the DIFF's proposals, on that connection.
    newleader = world.packets.first(2, 1, "NEWLEADER", first_zxid_of(2))
    assert newleader is not None and learner.phase is not Phase.DONE
    acks = [s.zxid for s in world.packets.between(1, 2, "ACK") if s.serial == newleader.serial]
    assert acks[:4] == [first_zxid_of(2), *txns], [hex(zxid) for zxid in acks]
    assert ensemble.peers[2].serving and ensemble.peers[2].epochs_served[-1] == 2
    assert world.roles.ends[exits:] == [], world.roles.ends[exits:]  # nobody left a role meanwhile
    finish(world)


@pytest.mark.parametrize("seed", SEEDS)
def test_zookeeper_4685_kind_a_failed_epoch_write_loses_no_txn_the_learner_acked(
        seed: int, make_world: MakeWorld) -> None:
    """Found while scripting 4685 (fixed): the order of the ACKs matters when currentEpoch cannot be written.

    zabd's learner used to send an ACK for every proposal of the sync before
    its ACK of NEWLEADER: each proposal ACK, then currentEpoch, then the
    NEWLEADER ACK. 3.9.4 acknowledges the outstanding proposals only after
    the NEWLEADER ACK, so a new-epoch txn is never acknowledged by a peer
    whose currentEpoch is older; zabd now does the same.

    Peers 2 and 3 serve epoch 1 (3 leads) while peer 1 is down; 3 -> 2 is cut
    one way so 2 never sees proposal X. Peer 1 restarts and syncs; X is
    outstanding, so its sync carries PROPOSAL X. 1 logs X, ACKs it, and its
    currentEpoch write fails (EIO): the learner leaves, with X durable and
    currentEpoch 0. 3 counts 1's ACK and commits X (3 and 1 are a quorum),
    and crashes. 1 (epoch 0, X) and 2 (epoch 1, no X) elect 2, which
    truncated X on 1, and later on 3: a committed, served txn was gone.
    Now 1 leaves before it acknowledges X, and X cannot commit.
    """
    world = make_world(seed)
    ensemble = world.ensemble
    ensemble.start()
    ensemble.crash(1)
    assert world.settle([2, 3]) == 3
    world.write_and_commit(5, [2, 3])
    ensemble.net.block([(3, 2)])
    (txn,) = ensemble.write(1)
    world.restart(1)
    world.replica(1).fail_epoch_write(CURRENT_EPOCH)
    leader = ensemble.peers[3].leader
    assert leader is not None
    assert world.run_until(lambda: bool(world.replica(1).failed_epoch_writes), 3_000)
    # The step: 1 logged X, failed to write currentEpoch 1, and left without acknowledging anything.
    assert world.run_until(lambda: bool(world.roles.of(1, "learner")), 1_000)
    assert [end.reason for end in world.roles.of(1, "learner")][-1].startswith("local failure")
    assert world.packets.first(1, 3, "ACK", txn) is None and world.packets.first(1, 3, "ACK", first_zxid_of(1)) is None
    assert world.durable(1, txn) and world.durable_epoch(1) == 0 and not world.durable(2, txn)
    assert leader.last_committed < txn
    ensemble.crash(3)
    ensemble.net.block(())
    world.settle([1, 2])
    finish(world)


# -- ZOOKEEPER-4712 ----------------------------------------------------------------


@pytest.mark.parametrize("seed", SEEDS)
def test_zookeeper_4712_a_write_in_flight_from_the_last_role_is_truncated_after_it_lands(
        seed: int, make_world: MakeWorld) -> None:
    """ZOOKEEPER-4712: a follower's shutdown left its SyncRequestProcessor running.

    Since ZOOKEEPER-3642, 3.8's Follower.shutdown() no longer stopped the
    sync processor, so txns a follower had queued kept reaching its log
    after it left the role: during its next election, or after the next
    leader's TRUNC, which could leave a txn no quorum committed in the log,
    to be replayed at the next restart (3.9 stops and flushes the processor
    first). Here peer 1 logs proposal P, its fsyncs taking seconds, and P
    never commits: leader 3 crashes before its own fsync and 2 never sees P
    (3 -> 2 is cut). 1 leaves its role with P on its way to the disk, and is
    cut off while 2 and 3 start epoch 2. zabd keeps one log writer per
    replica across roles: the peer looks again only once P has landed, and
    the replica refuses a TRUNC or SNAP while appends are in flight. The
    next sync must drop P, and P must not come back, not even at a restart.
    """
    world = make_world(seed)
    ensemble = world.ensemble
    ensemble.start()
    assert world.settle() == 3
    world.write_and_commit(5)
    world.slow_disk(1, 3_000)
    world.slow_disk(3, 3_000)
    ensemble.net.block([(3, 2)])
    (txn,) = ensemble.write(1)
    assert world.run_until(lambda: world.replica(1).last_logged_zxid >= txn, 1_000)
    ensemble.crash(3)
    world.slow_disk(3, None)
    ensemble.net.block(())
    ensemble.net.partition([{1}, {2, 3}])
    world.restart(3)
    world.settle([2, 3])
    ensemble.net.heal()
    # The step: 1's follower role ended with P still on its way to the disk; the write lands later.
    ended = world.roles.of(1, "learner")[-1]
    assert ended.reason == "lost the connection to the leader" and not world.durable(1, txn)
    assert world.run_until(lambda: world.durable(1, txn), 10_000)
    assert world.sim.now_ms > ended.at_ms
    leader = world.settle()
    # Its next sync drops P: a TRUNC below it (or a SNAP, if epoch 2 has committed a txn meanwhile).
    sync = last_sync(world, leader, 1)
    assert sync[0].at_ms > ended.at_ms and sync[0].kind in ("TRUNC", "SNAP") and sync[0].zxid != txn, \
        [str(s) for s in sync]
    assert ensemble.peers[1].sync_modes[-1] == sync[0].kind
    assert txn not in world.history(1) and not world.durable(1, txn)
    world.write_and_commit(2)
    ensemble.crash(1)
    world.restart(1)
    world.settle()
    assert txn not in world.history(1)
    finish(world)


@pytest.mark.parametrize("seed", SEEDS)
def test_zookeeper_4712_a_peer_leaves_its_role_with_an_unflushed_log_and_leads(
        seed: int, make_world: MakeWorld) -> None:
    """ZOOKEEPER-4712's risk on the leader's side (with 4643's): chaos seed 12609, scripted.

    Peer 2's fsyncs are slow: it has logged txn P, which 1 and leader 3
    acknowledged and 3 committed, but P is not durable on 2 when 3 crashes.
    In 3.8 the follower's log writer outlived its role, and the election
    and the next role started from the in-memory database. Peer 2, whose
    vote (epoch 1, P) beats 1's on its sid, leads epoch 2 and writes
    currentEpoch 2 on its ACKEPOCH quorum; it crashes at once. If P was not
    durable by then, 2 comes back with epoch 2 and a log without P, its
    vote beats everyone's, and as leader of epoch 3 it truncates P on 1 and
    3: a committed txn lost.
    """
    world = make_world(seed)
    ensemble = world.ensemble
    ensemble.start()
    assert world.settle() == 3
    world.write_and_commit(5)
    world.slow_disk(2, 3_000)
    (txn,) = ensemble.write(1)
    leader = ensemble.peers[3].leader
    assert leader is not None
    assert world.run_until(lambda: leader.last_committed >= txn, 1_000)
    assert world.replica(2).last_logged_zxid >= txn and not world.durable(2, txn)
    ensemble.crash(3)
    assert world.run_until(lambda: bool(world.roles.of(2, "learner")), 1_000)
    # The step: 2's role ended with P in flight; then 2 establishes epoch 2, and crashes right then.
    assert not world.durable(2, txn)
    assert world.run_until(lambda: world.durable_epoch(2) == 2, 10_000), world.sim.format_trace(last=30)
    assert ensemble.peers[2].leader is not None
    durable = world.durable(2, txn)
    ensemble.crash(2)
    finish(world)
    assert durable, "peer 2 persisted epoch 2 with the txn it voted with still not durable"
    assert all(txn in world.history(sid) for sid in ensemble.sids)


# -- ZOOKEEPER-4925 ----------------------------------------------------------------


@pytest.mark.parametrize("seed", SEEDS)
def test_zookeeper_4925_txns_synced_by_diff_enter_the_committed_log(seed: int, make_world: MakeWorld) -> None:
    """ZOOKEEPER-4925 (3.9.3 only): a hole in the committedLog spread data loss through DIFFs.

    3.9.3's learner applied the txns of its sync without adding them to
    the committedLog, the leader's source for DIFFs. With five peers
    (leader 5): 3 goes down, txns A commit; 4 goes down, txns B commit; 4
    rejoins by a DIFF of B (the hole). 5 crashes and 3 comes back: 4 leads
    (equal votes, highest sid) and DIFFs 3 from its committedLog, skipping
    B, so 3 lacked B for good. zabd's learner commits its sync's txns
    through the same path as any commit, and every committedLog stays a
    contiguous tail of its peer's history.
    """
    world = make_world(seed, 5)
    ensemble = world.ensemble
    ensemble.start()
    assert world.settle() == 5
    world.write_and_commit(3)
    ensemble.crash(3)
    first = world.write_and_commit(10, [1, 2, 4, 5])
    ensemble.crash(4)
    second = world.write_and_commit(10, [1, 2, 5])
    world.restart(4)
    world.settle()
    # 4 took B by DIFF: B is in its committedLog, which has no hole.
    assert ensemble.peers[4].sync_modes == ["DIFF"]
    assert set(second) <= {zxid for zxid, _txn in world.replica(4).committed}
    assert all(committed_log_gap(world, sid) is None for sid in (1, 2, 4, 5))
    ensemble.crash(5)
    world.restart(3)
    assert world.settle() == 4
    # The step: 4 leads and syncs 3 by a DIFF from its committedLog, which carries A and B.
    assert ensemble.peers[3].sync_modes == ["DIFF"]
    sync = last_sync(world, 4, 3)
    carried = [s.zxid for s in sync[:position(sync, "NEWLEADER")] if s.kind == "PROPOSAL"]
    assert set(first + second) <= set(carried)
    assert set(first + second) <= set(world.history(3))
    world.write_and_commit(3)
    for sid in ensemble.live_peers():
        assert committed_log_gap(world, sid) is None
    finish(world)
    for sid in ensemble.sids:
        assert committed_log_gap(world, sid) is None
