"""The leader's side of Zab, transition by transition: broadcast, reconfig, liveness.

As ZooKeeper's Zab1_0Test: one real Leader (on a simulated disk) driven by
scripted learners, checking what it sends each of them (tests.unit.zab_leader_script).
"""
from __future__ import annotations

from zabd.membership.verifier import QuorumMaj
from zabd.quorum.leader import Phase
from zabd.quorum.leader_effects import Close
from zabd.quorum.packets import PacketType, QuorumPacket, encode_touches, parse_activation
from zabd.core.zxid import first_zxid_of
from zabd.quorum.snapstream import SnapshotStream
from zabd.testing.ensemble import SIM_TIMING, sim_member
from tests.unit.zab_leader_script import LeaderScene, create_txn, zxid


def _packets(items: list[QuorumPacket | SnapshotStream]) -> list[tuple[str, int]]:
    return [(PacketType(p.type).name, p.zxid) if isinstance(p, QuorumPacket) else ("SNAPSTREAM", -1)
            for p in items]


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
