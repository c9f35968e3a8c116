"""The leader's side of Zab, transition by transition: discovery, sync, broadcast, liveness.

As ZooKeeper's Zab1_0Test: one real Leader (on a simulated disk) driven by
scripted learners, checking what it sends each of them (tests.unit.zab_leader_script).
"""
from __future__ import annotations

from zabd.membership.verifier import QuorumMaj
from zabd.quorum import leader_discovery
from zabd.quorum.leader import Phase
from zabd.quorum.leader_effects import Close
from zabd.quorum.learnerhandler import Stage
from zabd.quorum.packets import PacketType, QuorumPacket, encode_touches, parse_activation, parse_leader_info
from zabd.quorum.roles import first_zxid_of
from zabd.quorum.snapstream import SnapshotStream
from zabd.testing.ensemble import SIM_TIMING, sim_member
from tests.unit.zab_leader_script import LeaderScene, create_txn, zxid


def _packets(items: list[QuorumPacket | SnapshotStream]) -> list[tuple[str, int]]:
    return [(PacketType(p.type).name, p.zxid) if isinstance(p, QuorumPacket) else ("SNAPSTREAM", -1)
            for p in items]


# -- discovery -----------------------------------------------------------------


def test_every_phase_answers_every_learner_report() -> None:
    for table in (leader_discovery._ON_LEARNER_INFO, leader_discovery._ON_ACKEPOCH,
                  leader_discovery._ON_NEWLEADER_ACK):
        assert set(table) == set(Phase)


def test_the_epoch_is_chosen_once_a_quorum_of_voters_connected() -> None:
    scene = LeaderScene(observers=(4,))
    observer = scene.connect()
    observer.info(4, accepted_epoch=9, observer=True)
    assert scene.leader.epoch == -1 and observer.take() == []  # observers do not make a quorum
    follower = scene.connect()
    follower.info(2, accepted_epoch=5)
    # One above the highest acceptedEpoch seen, persisted before LEADERINFO goes out.
    assert scene.leader.epoch == 10 and scene.replica.accepted_epoch == 10
    assert scene.leader.phase is Phase.SYNC
    for learner in (observer, follower):
        (info,) = learner.take()
        assert isinstance(info, QuorumPacket) and (info.type, info.zxid) == (PacketType.LEADERINFO, zxid(10, 0))
        assert parse_leader_info(info.data) == 0x10000


def test_a_static_config_takes_the_new_epochs_first_zxid_as_its_version() -> None:
    scene = LeaderScene()
    scene.connect().info(2)
    assert scene.leader.last_seen.version == first_zxid_of(scene.leader.epoch)


def test_sync_waits_for_a_quorum_of_ackepoch_then_persists_the_epoch() -> None:
    scene = LeaderScene(voters=(1, 2, 3, 4, 5), history=3)
    a, b = scene.connect(), scene.connect()
    a.info(2)
    b.info(3)
    epoch = scene.leader.epoch
    a.take(), b.take()
    a.ack_epoch(zxid(1, 3))
    assert a.take() == [] and scene.replica.current_epoch == 0  # {1, 2} is no quorum of five
    b.ack_epoch(zxid(1, 3))
    assert scene.replica.current_epoch == epoch
    for learner in (a, b):
        assert _packets(learner.take()) == [("DIFF", zxid(1, 3)), ("NEWLEADER", first_zxid_of(epoch))]
        assert learner.handler.stage is Stage.NEWLEADER


def test_a_learner_at_minus_one_or_that_accepted_the_epoch_does_not_count_for_the_ackepoch_quorum() -> None:
    scene = LeaderScene()
    learner = scene.connect()
    learner.info(2)
    learner.ack_epoch(-1)
    assert learner.kinds() == ["LEADERINFO"] and not scene.leader.discovery.epoch_acks_done
    scene = LeaderScene()
    learner = scene.connect()
    learner.info(2)
    learner.ack_epoch(0, current_epoch=None)
    assert learner.kinds() == ["LEADERINFO"] and not scene.leader.discovery.epoch_acks_done


def test_newleader_acks_of_a_quorum_start_broadcast_and_uptodate() -> None:
    scene = LeaderScene(voters=(1, 2, 3, 4, 5), observers=(6,))
    learners = {sid: scene.connect() for sid in (2, 3, 6)}
    learners[2].info(2)
    learners[3].info(3)
    learners[6].info(6, observer=True)
    for learner in learners.values():
        learner.ack_epoch(0)
    epoch = scene.leader.epoch
    for learner in learners.values():
        assert learner.kinds() == ["LEADERINFO", "DIFF", "NEWLEADER"]
    learners[6].ack(first_zxid_of(epoch))
    learners[2].ack(first_zxid_of(epoch))
    assert scene.served == [] and learners[6].take() == []  # an observer's ack does not count
    learners[3].ack(first_zxid_of(epoch))
    assert scene.served == [epoch] and scene.leader.phase is Phase.BROADCAST
    for learner in learners.values():
        assert learner.kinds() == ["UPTODATE"]
        assert learner.handler.stage is Stage.BROADCAST
    assert (scene.leader.synced(observers=False), scene.leader.synced(observers=True)) == (2, 1)


def test_a_learner_joining_a_serving_leader_goes_straight_through() -> None:
    scene = LeaderScene(history=2)
    scene.serving(2)
    late = scene.connect()
    assert late.sync_to_broadcast(3, zxid(1, 2)) == ["LEADERINFO", "DIFF", "NEWLEADER", "UPTODATE"]


# -- the choice of DIFF, TRUNC or SNAP -------------------------------------------


def test_a_learner_behind_gets_the_missing_txns_as_proposals_and_commits() -> None:
    scene = LeaderScene(history=3)
    learner = scene.connect()
    learner.info(2)
    learner.ack_epoch(zxid(1, 1))
    assert _packets(learner.take())[1:] == [
        ("DIFF", zxid(1, 3)), ("PROPOSAL", zxid(1, 2)), ("COMMIT", zxid(1, 2)),
        ("PROPOSAL", zxid(1, 3)), ("COMMIT", zxid(1, 3)), ("NEWLEADER", first_zxid_of(scene.leader.epoch))]
    assert scene.leader.metrics.diff_count.value == 1


def test_a_learner_with_txns_the_leader_never_committed_is_truncated() -> None:
    # The learner logged 1.4 and 1.5 in epoch 1; this leader's currentEpoch 2 says it knows better.
    scene = LeaderScene(history=3, epochs=(2, 2))
    learner = scene.connect()
    learner.info(2, accepted_epoch=1)
    learner.ack_epoch(zxid(1, 5), current_epoch=1)
    assert _packets(learner.take())[1:] == [("TRUNC", zxid(1, 3)), ("NEWLEADER", first_zxid_of(3))]
    assert scene.exits == []


def test_a_learner_older_than_the_committed_log_gets_a_snapshot() -> None:
    scene = LeaderScene(history=6, commit_log_count=2)
    learner = scene.connect()
    learner.info(2)
    learner.ack_epoch(0)
    items = learner.take()
    assert _packets(items)[1:] == [("SNAP", zxid(1, 6)), ("SNAPSTREAM", -1), ("NEWLEADER", first_zxid_of(1))]
    snapshot = items[2]
    assert isinstance(snapshot, SnapshotStream) and snapshot.tree.get("/h6") is not None
    assert scene.leader.metrics.snap_count.value == 1


def test_proposals_outstanding_during_a_sync_follow_the_diff_for_followers_only() -> None:
    scene = LeaderScene(observers=(4,))
    scene.serving(2)
    scene.leader.propose(zxid(1, 1), create_txn(zxid(1, 1), "/p"))
    follower, observer = scene.connect(), scene.connect()
    assert follower.sync_to_broadcast(3, 0) == ["LEADERINFO", "DIFF", "PROPOSAL", "NEWLEADER", "UPTODATE"]
    observer.info(4, observer=True)
    observer.ack_epoch(0)
    assert observer.kinds() == ["LEADERINFO", "DIFF", "NEWLEADER"]


# -- wrong epochs: the leader steps down or drops the learner ----------------------


def test_a_learner_ahead_of_the_leader_makes_it_step_down() -> None:
    scene = LeaderScene(history=2)
    learner = scene.connect()
    learner.info(2)
    learner.ack_epoch(zxid(1, 3), current_epoch=1)
    assert scene.leader.phase is Phase.DONE and scene.exits and "ahead of me" in scene.exits[0]
    assert learner.closed


def test_a_voter_that_accepted_a_newer_epoch_makes_a_serving_leader_step_down() -> None:
    scene = LeaderScene()
    scene.serving(2)
    epoch = scene.leader.epoch
    scene.connect().info(3, accepted_epoch=epoch + 1)
    assert scene.leader.phase is Phase.DONE and scene.leader.stepped_down_for_promise


def test_an_observer_claiming_a_newer_epoch_is_dropped() -> None:
    scene = LeaderScene(observers=(4,))
    scene.serving(2)
    observer = scene.connect()
    observer.info(4, accepted_epoch=scene.leader.epoch + 1, observer=True)
    assert observer.closed and scene.leader.phase is Phase.BROADCAST


def test_ackepoch_before_leaderinfo_closes_the_link() -> None:
    scene = LeaderScene(voters=(1, 2, 3, 4, 5))
    learner = scene.connect()
    learner.info(2)  # {1, 2}: no quorum yet, no LEADERINFO
    learner.ack_epoch(0)
    assert learner.closed and scene.leader.phase is Phase.DISCOVERY


# -- broadcast -----------------------------------------------------------------------


def test_a_proposal_commits_on_a_quorum_of_acks_counting_the_leaders_durable_log() -> None:
    scene = LeaderScene(voters=(1, 2, 3), observers=(4,))
    learners = scene.serving(2, 3)
    observer = scene.connect()
    observer.sync_to_broadcast(4, 0, observer=True)
    txn = create_txn(zxid(1, 1), "/x")
    scene.leader.propose(zxid(1, 1), txn)
    assert learners[2].kinds() == ["PROPOSAL"] and learners[3].kinds() == ["PROPOSAL"]
    assert observer.take() == []
    learners[2].ack(zxid(1, 1))
    assert learners[2].take() == []  # the leader's own ACK waits for its disk
    scene.sim.run_for(50)
    assert _packets(learners[2].take()) == [("COMMIT", zxid(1, 1))]
    assert _packets(learners[3].take()) == [("COMMIT", zxid(1, 1))]
    assert _packets(observer.take()) == [("INFORM", zxid(1, 1))]
    assert scene.replica.tree.get("/x") is not None and scene.leader.last_committed == zxid(1, 1)


def test_commits_go_strictly_in_zxid_order() -> None:
    scene = LeaderScene()
    learners = scene.serving(2)
    for counter in (1, 2):
        scene.leader.propose(zxid(1, counter), create_txn(zxid(1, counter), f"/x{counter}"))
    learners[2].take()
    learners[2].ack(zxid(1, 2))
    scene.sim.run_for(50)  # the leader's disk holds both: 1.1 has only its own ACK
    assert learners[2].take() == []
    learners[2].ack(zxid(1, 1))
    assert _packets(learners[2].take()) == [("COMMIT", zxid(1, 1)), ("COMMIT", zxid(1, 2))]


def test_acks_of_observers_and_of_unknown_zxids_are_ignored() -> None:
    scene = LeaderScene(observers=(4,))
    scene.serving(2)
    observer = scene.connect()
    observer.info(4, observer=True)
    observer.ack_epoch(0)
    observer.ack(first_zxid_of(scene.leader.epoch))
    scene.leader.propose(zxid(1, 1), create_txn(zxid(1, 1), "/x"))
    scene.sim.run_for(50)
    observer.ack(zxid(1, 1))
    observer.ack(zxid(1, 9))
    assert zxid(1, 1) in scene.leader.outstanding and scene.leader.outstanding[zxid(1, 1)].acks == {1}


def test_proposing_before_serving_or_out_of_order_is_refused() -> None:
    scene = LeaderScene()
    try:
        scene.leader.propose(zxid(1, 1), b"")
    except RuntimeError:
        pass
    else:
        raise AssertionError("proposed before serving")
    scene.serving(2)
    scene.leader.propose(zxid(1, 2), create_txn(zxid(1, 2), "/x"))
    try:
        scene.leader.propose(zxid(1, 1), create_txn(zxid(1, 1), "/y"))
    except ValueError:
        pass
    else:
        raise AssertionError("a zxid went backwards")


# -- liveness ---------------------------------------------------------------------------


def test_tick_pings_the_learners_in_broadcast() -> None:
    scene = LeaderScene()
    learners = scene.serving(2)
    pending = scene.connect()
    pending.info(3)
    pending.take()
    scene.leader.tick()
    assert _packets(learners[2].take()) == [("PING", scene.leader.last_proposed)]
    assert pending.take() == []


def test_a_leader_that_hears_no_quorum_within_sync_limit_steps_down() -> None:
    scene = LeaderScene()
    learners = scene.serving(2)
    for _ in range(2):
        scene.sim.run_for(SIM_TIMING.tick_ms // 2)
        scene.leader.tick()
        learners[2].say(PacketType.PING, 0, encode_touches([]))  # the follower answers: alive
    assert scene.leader.phase is Phase.BROADCAST
    for _ in range(2 * SIM_TIMING.sync_limit + 2):
        scene.sim.run_for(SIM_TIMING.tick_ms // 2)
        scene.leader.tick()
    assert scene.leader.phase is Phase.DONE and "heard from within" in scene.exits[0]
    assert learners[2].closed


def test_a_leader_that_syncs_no_quorum_within_init_limit_steps_down() -> None:
    scene = LeaderScene()
    scene.sim.run_for(SIM_TIMING.init_ms + 1)
    scene.leader.tick()
    assert scene.leader.phase is Phase.DONE and "no quorum synced" in scene.exits[0]


def test_stop_closes_every_link_once_and_reports_once() -> None:
    scene = LeaderScene()
    scene.serving(2, 3)
    scene.leader.stop("test")
    scene.leader.stop("again")
    assert scene.exits == ["test"]
    assert sum(isinstance(e, Close) for e in scene.effects) == 2 and scene.leader.handlers == []


# -- reconfig -------------------------------------------------------------------------------


def _reconfig(scene: LeaderScene, voters: tuple[int, ...]) -> tuple[int, QuorumMaj]:
    at = zxid(scene.leader.epoch, 1)
    new = QuorumMaj([sim_member(sid) for sid in voters], version=at)
    scene.leader.propose(at, create_txn(at, "/reconfig"), new)
    return at, new


def test_a_committed_reconfig_goes_out_as_commitandactivate_with_its_leader() -> None:
    scene = LeaderScene(observers=(4,))
    learners = scene.serving(2, 3)
    observer = scene.connect()
    observer.sync_to_broadcast(4, 0, observer=True)
    at, new = _reconfig(scene, (1, 2, 3, 5))
    assert scene.leader.last_seen is new and scene.leader.verifier is not new
    learners[2].ack(at)
    scene.sim.run_for(50)
    assert learners[2].kinds() == ["PROPOSAL"]  # {1, 2} is a quorum of the old config, not of the new
    learners[3].ack(at)
    (commit,) = learners[2].take()
    assert isinstance(commit, QuorumPacket) and commit.type == PacketType.COMMITANDACTIVATE
    assert parse_activation(commit.data) == (1, b"")
    (inform,) = observer.take()
    assert isinstance(inform, QuorumPacket) and inform.type == PacketType.INFORMANDACTIVATE
    assert scene.leader.verifier is new and scene.leader.phase is Phase.BROADCAST


def test_a_reconfig_that_leaves_the_leader_out_makes_it_step_down_after_the_commit() -> None:
    scene = LeaderScene()
    learners = scene.serving(2, 3)
    at, new = _reconfig(scene, (2, 3, 5))
    learners[2].ack(at)
    learners[3].ack(at)
    scene.sim.run_for(50)
    kinds = [p.type for p in learners[2].take() if isinstance(p, QuorumPacket)]
    assert kinds == [PacketType.PROPOSAL, PacketType.COMMITANDACTIVATE]
    assert scene.leader.phase is Phase.DONE and "is led by" in scene.exits[0]
