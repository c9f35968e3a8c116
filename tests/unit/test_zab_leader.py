"""The leader's side of Zab, transition by transition: discovery and sync (broadcast: test_zab_leader_broadcast).

As ZooKeeper's Zab1_0Test: one real Leader (on a simulated disk) driven by
scripted learners, checking what it sends each of them (tests.unit.zab_leader_script).
"""
from __future__ import annotations

from zabd.quorum import leader_discovery
from zabd.quorum.leader import Phase
from zabd.quorum.learnerhandler import Stage
from zabd.quorum.packets import PacketType, QuorumPacket, parse_leader_info
from zabd.core.zxid import first_zxid_of
from zabd.quorum.snapstream import SnapshotStream
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
