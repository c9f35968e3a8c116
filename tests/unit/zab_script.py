"""A scripted leader for one real learner machine (ZooKeeper's Zab1_0Test as the model).

:class:`ScriptedLeader` holds a :class:`~zabd.quorum.learner_machine.LearnerMachine`
on a SimReplica (the simulated disk, fsyncs that take virtual time) and feeds
it packets one at a time; every effect the machine returns is recorded, with
what the disk durably held when it was asked for, so a test can check both
the transition and the order of durable writes and ACKs.
"""
from __future__ import annotations

from dataclasses import dataclass

from zabd.core.datatree import DataTree
from zabd.jute.opcodes import OpCode
from zabd.jute.records import ACL, Id
from zabd.jute.txns import CreateTxn, SetDataTxn, Txn, TxnDigest, TxnHeader
from zabd.membership.verifier import QuorumVerifier
from zabd.quorum.learner_effects import Close, Effect, Exit, Phase, Send
from zabd.quorum.learner_machine import LearnerMachine
from zabd.quorum.learner_state import LearnerState
from zabd.quorum.packets import PROTOCOL_VERSION, PacketType, QuorumPacket, encode_leader_info
from zabd.quorum.roles import Timing
from zabd.core.zxid import first_zxid_of
from zabd.quorum.snapstream import SnapshotStream
from zabd.storage.epochs import CURRENT_EPOCH
from zabd.testing.chaos_packets import durable_epoch
from zabd.testing.memdisk import MemoryDisk
from zabd.testing.simreplica import SimReplica
from zabd.testing.simulation import Simulation

MYID = 2
TIMING = Timing(tick_ms=200, init_limit=10, sync_limit=5)
OPEN = [ACL(31, Id("world", "anyone"))]
#: Long enough for every fsync of the SimReplica to complete.
FSYNC_MS = 50
#: When the leader stamped its txns: the machine's clock is far later, so latencies are positive.
TXN_TIME_MS = 1_000


def zxid(epoch: int, counter: int) -> int:
    return first_zxid_of(epoch) + counter


def txn(at: int, path: str | None = None) -> bytes:
    """A create of ``path`` (by default named after the zxid) as zxid ``at``."""
    return Txn(TxnHeader(0x99, 1, at, TXN_TIME_MS, OpCode.create),
               CreateTxn(path or f"/n{at:x}", b"v", OPEN, False, 1), TxnDigest(2, 1)).to_bytes()


def config_text(version: int, observers: tuple[int, ...] = ()) -> bytes:
    """A three-server dynamic config (server 3 an observer if listed) of this version."""
    lines = [f"server.{sid}=10.0.0.{sid}:2888:3888:{'observer' if sid in observers else 'participant'};2181"
             for sid in (1, 2, 3)]
    return "\n".join([*lines, f"version={version:x}"]).encode()


def reconfig_txn(at: int, observers: tuple[int, ...] = ()) -> bytes:
    """A reconfig as zxid ``at``: it proposes the config of version ``at``."""
    return Txn(TxnHeader(0x99, 2, at, TXN_TIME_MS, OpCode.reconfig),
               SetDataTxn("/zookeeper/config", config_text(at, observers), -1), TxnDigest(2, 1)).to_bytes()


def tree_with(*zxids: int) -> SnapshotStream:
    """A SNAP stream's content: a tree holding the nodes of these txns."""
    tree = DataTree()
    for at in zxids:
        tree.apply(Txn.from_bytes(txn(at)))
    return SnapshotStream(tree, {})


@dataclass(frozen=True, slots=True)
class Recorded:
    """One effect, with the currentEpoch the disk durably held when the machine asked for it."""

    effect: Effect
    durable_current_epoch: int | None


class ScriptedLeader:
    """Plays the leader to one learner machine; see the module docstring."""

    def __init__(self, *, observer: bool = False, observer_logs: bool = True, seed: int = 1,
                 history: tuple[int, ...] = (), replica_type: type[SimReplica] = SimReplica,
                 touches: list[tuple[int, int]] | None = None, config_version: int = 0) -> None:
        self.sim = Simulation(seed)
        self.sim.run_for(TXN_TIME_MS * 2)
        self.disk = MemoryDisk(self.sim.rng)
        self.replica = replica_type(self.sim.scope("learner"), self.disk)
        for at in history:  # this learner's own past: logged, applied and durable
            self.replica.log(at, txn(at))
            self.replica.apply(at, txn(at))
        self.sim.run_for(FSYNC_MS)
        if history:
            self.replica.set_accepted_epoch(history[-1] >> 32)
            self.replica.set_current_epoch(history[-1] >> 32)
        #: Configs the learner reported seen (their versions), and put in force (version, leader).
        self.seen: list[int] = []
        self.in_force: list[tuple[int, int | None]] = []
        #: What the peer answers to a config put in force: must the learner leave?
        self.leave_on_config = False
        self.machine = LearnerMachine(
            MYID, self.replica, lambda: self.sim.now_ms, TIMING, observer=observer, observer_logs=observer_logs,
            config_version=config_version, touches=lambda: list(touches or []),
            on_config_seen=lambda config: self.seen.append(config.version), on_config=self._in_force,
        )
        self.replica.set_durable_callback(lambda at: self._record(self.machine.durable(at)))
        self.recorded: list[Recorded] = []

    @property
    def state(self) -> LearnerState:
        return self.machine.state

    @property
    def phase(self) -> Phase:
        return self.machine.state.phase

    # -- driving -----------------------------------------------------------------------

    def start(self) -> list[Effect]:
        return self._record(self.machine.start())

    def send(self, kind: PacketType, at: int, data: bytes | None = None) -> list[Effect]:
        """The leader sends one packet; the effects of this packet alone."""
        return self._record(self.machine.receive(QuorumPacket(kind, at, data), self.sim.now_ms))

    def send_snapshot(self, stream: SnapshotStream) -> list[Effect]:
        return self._record(self.machine.receive(stream, self.sim.now_ms))

    def settle(self) -> list[Effect]:
        """Let the disk finish its fsyncs; the effects the machine asked for meanwhile."""
        before = len(self.recorded)
        self.sim.run_for(FSYNC_MS)
        return [r.effect for r in self.recorded[before:]]

    def discover(self, epoch: int) -> list[Effect]:
        """FOLLOWERINFO/OBSERVERINFO, then LEADERINFO of ``epoch``."""
        self.start()
        return self.send(PacketType.LEADERINFO, first_zxid_of(epoch), encode_leader_info(PROTOCOL_VERSION))

    def newleader(self, epoch: int) -> list[Effect]:
        """NEWLEADER, then the disk's fsyncs: the effects of both."""
        effects = self.send(PacketType.NEWLEADER, first_zxid_of(epoch))
        return effects + self.settle()

    # -- what the learner did ----------------------------------------------------------

    def sent(self) -> list[tuple[str, int]]:
        """Every packet the learner sent, as (type name, zxid), oldest first."""
        return [(PacketType(r.effect.packet.type).name, r.effect.packet.zxid)
                for r in self.recorded if isinstance(r.effect, Send)]

    def acks(self) -> list[int]:
        return [at for name, at in self.sent() if name == "ACK"]

    def exit_reason(self) -> str | None:
        reasons = [r.effect.reason for r in self.recorded if isinstance(r.effect, Exit)]
        assert len(reasons) <= 1, reasons
        return reasons[0] if reasons else None

    def ended(self) -> bool:
        """The role is over the way a breach ends it: closed, then the peer told, once."""
        kinds = [type(r.effect) for r in self.recorded if isinstance(r.effect, (Close, Exit))]
        return self.phase is Phase.DONE and kinds == [Close, Exit]

    def epoch_when_sent(self, kind: str, at: int) -> int | None:
        """The currentEpoch durable on disk when the learner asked to send this packet."""
        for r in self.recorded:
            if isinstance(r.effect, Send) and (PacketType(r.effect.packet.type).name, r.effect.packet.zxid) == (
                    kind, at):
                return r.durable_current_epoch
        raise AssertionError(f"{kind} 0x{at:x} was never sent: {self.sent()}")

    def _in_force(self, config: QuorumVerifier, leader: int | None) -> bool:
        self.in_force.append((config.version, leader))
        return self.leave_on_config

    def _record(self, effects: list[Effect]) -> list[Effect]:
        epoch = durable_epoch(self.disk, CURRENT_EPOCH)
        self.recorded.extend(Recorded(effect, epoch) for effect in effects)
        return effects

