"""The leader's side of one learner connection: its transition table and the illegal-message cases.

One real Leader on a simulated disk, one scripted learner (tests.unit.zab_leader_script).
"""
from __future__ import annotations

from zabd.jute.records import Id
from zabd.quorum.learnerhandler import TRANSITIONS, Stage
from zabd.quorum.packets import (
    PacketType,
    QuorumPacket,
    RequestForward,
    encode_revalidate_request,
    encode_touches,
    parse_revalidate_reply,
)
from zabd.core.zxid import first_zxid_of
from zabd.quorum.snapstream import SnapshotStream
from zabd.core.datatree import DataTree
from tests.unit.zab_leader_script import LeaderScene, zxid


def test_the_table_accepts_only_learner_info_first_then_acks_pings_and_revalidations() -> None:
    after_info = {Stage.EPOCH, Stage.ACKED_EPOCH, Stage.NEWLEADER, Stage.UPTODATE, Stage.BROADCAST}
    accepted = {stage: {PacketType(kind).name for (s, kind) in TRANSITIONS if s is stage} for stage in Stage}
    assert accepted[Stage.INFO] == {"FOLLOWERINFO", "OBSERVERINFO"}
    assert accepted[Stage.EPOCH] == {"ACKEPOCH", "ACK", "PING", "REVALIDATE"}
    assert accepted[Stage.BROADCAST] == {"REQUEST", "ACK", "PING", "REVALIDATE"}
    for stage in after_info - {Stage.EPOCH, Stage.BROADCAST}:
        assert accepted[stage] == {"ACK", "PING", "REVALIDATE"}
    assert accepted[Stage.CLOSED] == set()


def test_followerinfo_makes_a_voter_and_observerinfo_an_observer() -> None:
    scene = LeaderScene(observers=(4,))
    follower, observer = scene.connect(), scene.connect()
    follower.info(2, accepted_epoch=3)
    observer.info(4, observer=True)
    assert (follower.handler.stage, follower.handler.sid, follower.handler.is_voter) == (Stage.EPOCH, 2, True)
    assert follower.handler.accepted_epoch == 3
    assert (observer.handler.observer, observer.handler.is_voter) == (True, False)


def test_anything_but_learner_info_first_closes_the_link() -> None:
    for kind in (PacketType.ACK, PacketType.PING, PacketType.ACKEPOCH, PacketType.REQUEST, 99):
        scene = LeaderScene()
        learner = scene.connect()
        learner.say(kind, 0)
        assert learner.kinds() == [] and learner.closed
        assert learner.handler.stage is Stage.CLOSED
        assert scene.leader.handlers == []


def test_an_unknown_packet_type_after_info_closes_the_link() -> None:
    scene = LeaderScene()
    learner = scene.connect()
    learner.info(2)
    learner.say(42, 0)
    assert learner.closed and scene.leader.handlers == []


def test_bad_learner_info_closes_the_link() -> None:
    cases = {
        "no data": lambda learner: learner.say(PacketType.FOLLOWERINFO, 0, None),
        "newer config": lambda learner: learner.info(2, config_version=0x500000000),
        "last epoch": lambda learner: learner.info(2, accepted_epoch=0x7FFFFFFF),
        "my own id": lambda learner: learner.info(1),
    }
    for name, say in cases.items():
        scene = LeaderScene()
        learner = scene.connect()
        say(learner)
        assert learner.closed, name
        assert scene.leader.handlers == [], name


def test_a_second_ackepoch_or_a_request_before_broadcast_closes_the_link() -> None:
    scene = LeaderScene()
    learner = scene.connect()
    learner.info(2)
    learner.ack_epoch(0)
    learner.take()
    learner.ack_epoch(0)
    assert learner.closed

    scene = LeaderScene()
    learner = scene.connect()
    learner.info(2)
    learner.say(PacketType.REQUEST, -1, RequestForward(0x77, 1, 1).encode())
    assert learner.closed


def test_a_snapshot_stream_from_a_learner_closes_the_link() -> None:
    scene = LeaderScene()
    learner = scene.connect()
    learner.info(2)
    learner.handler.receive(SnapshotStream(DataTree(), {}), scene.sim.now_ms)
    assert learner.closed


def test_a_closed_handler_ignores_everything_after() -> None:
    scene = LeaderScene()
    learner = scene.connect()
    learner.say(PacketType.ACK, 0)
    learner.take()
    learner.info(2)
    learner.say(PacketType.REVALIDATE, -1, encode_revalidate_request(0x77, 4000))
    assert scene.effects == [] and learner.handler.stage is Stage.CLOSED


def test_an_ack_of_newleader_of_another_epoch_or_before_newleader_is_ignored() -> None:
    scene = LeaderScene()
    learner = scene.connect()
    learner.info(2)
    epoch = scene.leader.epoch
    learner.ack(first_zxid_of(epoch))  # before NEWLEADER went out: ignored, as 3.8 does
    assert learner.handler.stage is Stage.EPOCH
    learner.ack_epoch(0)
    assert learner.handler.stage is Stage.NEWLEADER
    learner.ack(first_zxid_of(epoch - 1))
    assert learner.handler.stage is Stage.NEWLEADER and not learner.closed
    learner.ack(first_zxid_of(epoch))
    assert learner.handler.stage is Stage.BROADCAST
    assert learner.kinds()[-1] == "UPTODATE"


def test_pings_and_revalidations_without_a_server_are_answered_as_before_one_runs() -> None:
    scene = LeaderScene()
    learner = scene.connect()
    learner.info(2)
    learner.take()
    learner.say(PacketType.PING, 0, encode_touches([(0x77, 4000)]))
    learner.say(PacketType.REVALIDATE, -1, encode_revalidate_request(0x77, 4000))
    (reply,) = learner.take()
    assert isinstance(reply, QuorumPacket) and reply.type == PacketType.REVALIDATE
    assert parse_revalidate_reply(reply.data) == (0x77, False)
    assert scene.leader.metrics.revalidate_count.value == 1


def test_requests_touches_and_revalidations_reach_the_server_once_it_runs() -> None:
    scene = LeaderScene()
    learners = scene.serving(2)
    forwarded, touches = scene.serve()
    learner = learners[2]
    forward = RequestForward(0x77, 5, 1, b"body")
    learner.say(PacketType.REQUEST, -1, forward.encode(), [Id("ip", "10.0.0.2")])
    learner.say(PacketType.PING, zxid(1, 0), encode_touches([(0x77, 4000), (0x78, 6000)]))
    learner.say(PacketType.REVALIDATE, -1, encode_revalidate_request(0x77, 4000))
    learner.say(PacketType.REVALIDATE, -1, encode_revalidate_request(0x99, 4000))
    assert forwarded == [(learner.handler, forward, [Id("ip", "10.0.0.2")])]
    assert touches == [[(0x77, 4000), (0x78, 6000)]]
    replies = [parse_revalidate_reply(p.data) for p in learner.take() if isinstance(p, QuorumPacket)]
    assert replies == [(0x77, True), (0x99, False)]
