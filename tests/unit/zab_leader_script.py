"""A real Leader driven by scripted learners, as ZooKeeper's Zab1_0Test drives one (tests.unit.test_zab_*).

``LeaderScene`` builds one ``Leader`` on a ``SimReplica`` (virtual time, an
in-memory disk) with a recording effect sink. ``connect`` opens a
``ScriptedLearner``: it says what a learner would (``info``, ``ack_epoch``,
``ack``...) straight into its LearnerHandler, and ``take`` returns what the
leader's effects put on its connection since the last look, decoded as the
learner would read it (packets, and a SNAP's stream as one SnapshotStream).
"""
from __future__ import annotations

from dataclasses import dataclass, field

from zabd.jute.opcodes import OpCode
from zabd.jute.records import ACL, Id
from zabd.jute.txns import CreateTxn, Txn, TxnDigest, TxnHeader
from zabd.membership.verifier import QuorumMaj
from zabd.quorum.leader import Leader
from zabd.quorum.leader_effects import LinkEffect, Send, SendBytes
from zabd.quorum.leader_hooks import LeaderHooks, ServingHooks
from zabd.quorum.learnerhandler import LearnerHandler
from zabd.quorum.packets import (
    LearnerInfo,
    PacketStreamDecoder,
    PacketType,
    QuorumPacket,
    RequestForward,
    encode_ack_epoch,
    encode_packet,
)
from zabd.core.zxid import first_zxid_of
from zabd.quorum.snapstream import SnapshotStream
from zabd.testing.ensemble import SIM_TIMING, sim_member
from zabd.testing.memdisk import MemoryDisk
from zabd.testing.simreplica import SimReplica
from zabd.testing.simulation import Simulation

__all__ = ["LeaderScene", "ScriptedLearner", "create_txn", "zxid"]


#: world:anyone may do anything.
ACL_OPEN = [ACL(31, Id("world", "anyone"))]


def zxid(epoch: int, counter: int) -> int:
    return first_zxid_of(epoch) | counter


def create_txn(zxid: int, path: str) -> bytes:
    """A serialized create of ``path`` at ``zxid``, as a PROPOSAL carries it."""
    header = TxnHeader(0x99, 1, zxid, 1_700_000_000_000, OpCode.create)
    return Txn(header, CreateTxn(path, b"v", ACL_OPEN, False, 1), TxnDigest(2, 1)).to_bytes()


class Address:
    """A learner's PacketLink as the machines see it: an address, never called (the sink records)."""

    def send(self, packet: QuorumPacket) -> None:
        raise AssertionError("the leader called a link itself")

    def send_raw(self, data: bytes) -> None:
        raise AssertionError("the leader called a link itself")

    def close(self) -> None:
        raise AssertionError("the leader called a link itself")


@dataclass
class ScriptedLearner:
    """One learner connection, scripted by the test."""

    scene: LeaderScene
    link: Address
    handler: LearnerHandler
    decoder: PacketStreamDecoder = field(default_factory=PacketStreamDecoder)
    pending: list[QuorumPacket | SnapshotStream] = field(default_factory=list)
    _closed: bool = False

    def say(self, kind: int, zxid: int, data: bytes | None = None, authinfo: list[Id] | None = None) -> None:
        self.handler.receive(QuorumPacket(kind, zxid, data, authinfo), self.scene.sim.now_ms)

    def info(self, sid: int, accepted_epoch: int = 0, *, observer: bool = False,
             config_version: int | None = 0) -> None:
        kind = PacketType.OBSERVERINFO if observer else PacketType.FOLLOWERINFO
        self.say(kind, first_zxid_of(accepted_epoch), LearnerInfo(sid, config_version=config_version).encode())

    def ack_epoch(self, last_zxid: int, current_epoch: int | None = 0) -> None:
        self.say(PacketType.ACKEPOCH, last_zxid, encode_ack_epoch(current_epoch))

    def ack(self, zxid: int) -> None:
        self.say(PacketType.ACK, zxid)

    def take(self) -> list[QuorumPacket | SnapshotStream]:
        """What reached this learner since the last call, as it decodes it."""
        self._pull()
        items, self.pending = self.pending, []
        return items

    @property
    def closed(self) -> bool:
        """Whether the leader closed this connection."""
        self._pull()
        return self._closed

    def _pull(self) -> None:
        wire = b""
        for effect in self.scene.effects_to(self.link):
            if isinstance(effect, Send):
                wire += encode_packet(effect.packet)
            elif isinstance(effect, SendBytes):
                wire += effect.data
            else:
                self._closed = True
        self.pending += self.decoder.feed(wire)

    def kinds(self) -> list[str]:
        """The types of what ``take`` returns, by name ("SNAPSTREAM" for a snapshot stream)."""
        return [PacketType(item.type).name if isinstance(item, QuorumPacket) else "SNAPSTREAM"
                for item in self.take()]

    def sync_to_broadcast(self, sid: int, last_zxid: int, accepted_epoch: int = 0, *,
                          observer: bool = False) -> list[str]:
        """FOLLOWERINFO (or OBSERVERINFO) .. ACK of NEWLEADER against a leader that has its quorum;
        returns what came."""
        self.info(sid, accepted_epoch, observer=observer)
        self.ack_epoch(last_zxid, accepted_epoch)
        self.ack(first_zxid_of(self.scene.leader.epoch))
        return self.kinds()


class LeaderScene:
    """One leader of voters 1, 2, 3 (plus ``observers``) on a simulated disk, with a recording sink."""

    def __init__(self, *, myid: int = 1, voters: tuple[int, ...] = (1, 2, 3), observers: tuple[int, ...] = (),
                 history: int = 0, history_epoch: int = 1, epochs: tuple[int, int] | None = None,
                 commit_log_count: int = 500) -> None:
        self.sim = Simulation(7)
        self.replica = SimReplica(self.sim.scope("leader"), MemoryDisk(self.sim.rng),
                                  commit_log_count=commit_log_count)
        for counter in range(1, history + 1):
            txn = create_txn(zxid(history_epoch, counter), f"/h{counter}")
            self.replica.log(zxid(history_epoch, counter), txn)
            self.replica.apply(zxid(history_epoch, counter), txn)
        self.sim.run_for(100)
        if epochs is not None:
            accepted, current = epochs
            self.replica.set_accepted_epoch(accepted)
            self.replica.set_current_epoch(current)
        self.verifier = QuorumMaj([*(sim_member(sid) for sid in voters),
                                   *(sim_member(sid, observer=True) for sid in observers)])
        self.effects: list[LinkEffect] = []
        self.exits: list[str] = []
        self.served: list[int] = []
        self.clients = ServingHooks()
        self.leader = Leader(myid, self.replica, self.verifier, lambda: self.sim.now_ms, SIM_TIMING,
                             on_exit=self.exits.append, on_serving=self.served.append, clients=self.clients,
                             emit=self.effects.append)
        self.replica.set_durable_callback(self.leader.durable)

    def connect(self) -> ScriptedLearner:
        link = Address()
        return ScriptedLearner(self, link, self.leader.learner_connected(link))

    def effects_to(self, link: Address) -> list[LinkEffect]:
        """Take the recorded effects addressed to ``link``, leaving the others."""
        mine = [e for e in self.effects if e.to is link]
        self.effects[:] = [e for e in self.effects if e.to is not link]
        return mine

    def serving(self, *sids: int, last_zxid: int | None = None) -> dict[int, ScriptedLearner]:
        """Bring followers ``sids`` (a quorum with the leader) through sync: the leader serves."""
        learners = {sid: self.connect() for sid in sids}
        at = self.replica.last_processed_zxid if last_zxid is None else last_zxid
        for sid, learner in learners.items():
            learner.info(sid)
        for learner in learners.values():
            learner.ack_epoch(at)
        for learner in learners.values():
            learner.ack(first_zxid_of(self.leader.epoch))
        for learner in learners.values():
            learner.take()
        assert self.served == [self.leader.epoch]
        return learners

    def serve(self) -> tuple[list[tuple[LearnerHandler, RequestForward, list[Id]]], list[list[tuple[int, int]]]]:
        """Attach a recording client side; returns the forwarded requests and touches it will see."""
        forwarded: list[tuple[LearnerHandler, RequestForward, list[Id]]] = []
        touches: list[list[tuple[int, int]]] = []
        self.clients.serve(LeaderHooks(forwarded=lambda h, f, a: forwarded.append((h, f, a)),
                                       revalidate=lambda h, session, timeout: session == 0x77,
                                       touched=touches.append))
        return forwarded, touches

