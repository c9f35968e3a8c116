"""The Learner driver carries out its machine's effects, in order, on the link and the peer's callbacks."""
from __future__ import annotations

from tests.unit.zab_script import MYID, TIMING, txn, zxid
from zabd.quorum.learner import Learner, Phase
from zabd.quorum.packets import (
    PacketType,
    QuorumPacket,
    RequestForward,
    encode_leader_info,
    encode_revalidate_reply,
    parse_touches,
)
from zabd.core.zxid import first_zxid_of
from zabd.testing.memdisk import MemoryDisk
from zabd.testing.simreplica import SimReplica
from zabd.testing.simulation import Simulation


class RecordingLink:
    """A PacketLink that writes down what the learner did to it, into the shared event list."""

    def __init__(self, events: list[str]) -> None:
        self.events = events

    def send(self, packet: QuorumPacket) -> None:
        self.events.append(f"send {PacketType(packet.type).name} 0x{packet.zxid:x}")

    def send_raw(self, data: bytes) -> None:
        self.events.append("send_raw")

    def close(self) -> None:
        self.events.append("close")


def make_learner() -> tuple[Learner, list[str], Simulation]:
    sim = Simulation(1)
    events: list[str] = []
    replica = SimReplica(sim.scope("learner"), MemoryDisk(sim.rng))
    learner = Learner(MYID, replica, RecordingLink(events), lambda: sim.now_ms, TIMING,
                      on_exit=lambda reason: events.append(f"exit: {reason}"),
                      on_serving=lambda: events.append("serving"))
    replica.set_durable_callback(learner.durable)
    learner.serve(lambda: [(0x77, 4000)], lambda: events.append("synced"))
    return learner, events, sim


def test_the_driver_sends_serves_and_answers_for_its_machine() -> None:
    learner, events, sim = make_learner()
    learner.start()
    learner.receive(QuorumPacket(PacketType.LEADERINFO, first_zxid_of(1), encode_leader_info()), sim.now_ms)
    learner.receive(QuorumPacket(PacketType.DIFF, 0), sim.now_ms)
    learner.receive(QuorumPacket(PacketType.PROPOSAL, zxid(1, 1), txn(zxid(1, 1))), sim.now_ms)
    learner.receive(QuorumPacket(PacketType.NEWLEADER, first_zxid_of(1)), sim.now_ms)
    sim.run_for(50)
    learner.receive(QuorumPacket(PacketType.UPTODATE, 0), sim.now_ms)
    assert events == ["send FOLLOWERINFO 0x0", "send ACKEPOCH 0x0", "send ACK 0x100000000", "send ACK 0x100000001",
                      "send ACK 0x100000000", "serving"]
    assert learner.phase is Phase.BROADCAST and learner.sync_mode == "DIFF" and learner.new_epoch == 1
    assert learner.received_any and not learner.observer and learner.myid == MYID

    del events[:]
    answers: list[bool] = []
    learner.forward(RequestForward(0x77, 1, 1, b""), [])
    learner.revalidate(0x77, 4000, answers.append)
    learner.receive(QuorumPacket(PacketType.REVALIDATE, -1, encode_revalidate_reply(0x77, True)), sim.now_ms)
    learner.receive(QuorumPacket(PacketType.SYNC, 0), sim.now_ms)
    assert events == ["send REQUEST 0x-1", "send REVALIDATE 0x-1", "synced"] and answers == [True]
    assert learner.touches() == [(0x77, 4000)]


def test_the_driver_closes_then_tells_the_peer_once() -> None:
    learner, events, sim = make_learner()
    learner.start()
    learner.receive(QuorumPacket(PacketType.UPTODATE, 0), sim.now_ms)
    learner.lost()
    learner.stop("again")
    assert events == ["send FOLLOWERINFO 0x0", "close", "exit: expected LEADERINFO, got UPTODATE"]


def test_a_ping_is_answered_with_the_sessions_the_server_hands_over() -> None:
    learner, events, sim = make_learner()
    answered: list[QuorumPacket] = []
    learner.link.send = answered.append  # type: ignore[method-assign]
    learner.receive(QuorumPacket(PacketType.PING, 3), sim.now_ms)
    [pong] = answered
    assert pong.type == PacketType.PING and parse_touches(pong.data) == [(0x77, 4000)]
