# -*- test-case-name: tests.unit.test_zab_leader_broadcast -*-
"""The leader's broadcast (protocol doc 4.7): proposals, their ACKs, commits in zxid order.

``propose`` sends PROPOSAL to the forwarding followers and logs the txn
locally; the local durable report is the leader's own ACK. A quorum of
ACKs (of every config in force while a reconfig is pending) commits,
strictly in zxid order: COMMIT to followers, INFORM to observers, and the
txn applied locally. A committed reconfig goes out as COMMITANDACTIVATE /
INFORMANDACTIVATE with the leader of the new config.
"""
from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from typing import Protocol

from zabd.membership.verifier import QuorumVerifier
from zabd.metrics.server import ServerMetrics
from zabd.quorum.configchange import designated_leader, has_quorums, verifiers_in_force
from zabd.quorum.learnerhandler import LearnerHandler
from zabd.quorum.packets import PacketType, QuorumPacket, encode_activation, encode_packet
from zabd.quorum.roles import Replica


@dataclass(slots=True)
class Proposal:
    """One txn proposed and not yet committed, with the voters that acknowledged it."""

    txn: bytes
    verifiers: tuple[QuorumVerifier, ...]
    acks: set[int] = field(default_factory=set)
    #: The config a reconfig proposes.
    new_config: QuorumVerifier | None = None
    #: The leader's clock when it was proposed (quorum_ack_latency, ack_latency).
    proposed_ms: int = 0


class BroadcastCore(Protocol):
    """What broadcast needs of its leader (zabd.quorum.leader.Leader is one)."""

    myid: int
    replica: Replica
    metrics: ServerMetrics
    clock: Callable[[], int]
    handlers: list[LearnerHandler]
    verifier: QuorumVerifier
    last_seen: QuorumVerifier

    def see(self, verifier: QuorumVerifier) -> None: ...

    def activate(self, verifier: QuorumVerifier, leader: int) -> None: ...

    def stop(self, reason: str) -> None: ...


class Broadcast:
    """Proposals outstanding, ACKs counted, commits sent and applied in zxid order."""

    def __init__(self, core: BroadcastCore) -> None:
        self.core = core
        #: In zxid order, so the oldest outstanding proposal is the first key.
        self.outstanding: dict[int, Proposal] = {}
        replica = core.replica
        self.last_proposed = replica.last_processed_zxid
        self.last_committed = replica.last_processed_zxid
        self.durable_zxid = replica.last_logged_zxid
        #: Last, smallest and largest txn proposed (mntr, stat); -1 before any.
        self.proposal_sizes = (-1, -1, -1)
        self._ack_keys: dict[int, str] = {}  # sid -> its ack_latency key, made once

    def propose(self, zxid: int, txn: bytes, new_config: QuorumVerifier | None) -> None:
        if zxid <= self.last_proposed:
            raise ValueError(f"proposal 0x{zxid:x} after 0x{self.last_proposed:x}: zxids must rise")
        core = self.core
        if new_config is not None:
            core.see(new_config)
        self.outstanding[zxid] = Proposal(txn, verifiers_in_force(core.verifier, core.last_seen),
                                          new_config=new_config, proposed_ms=core.clock())
        core.metrics.proposal_count.add()
        self.last_proposed = zxid
        size = len(txn)
        last, low, high = self.proposal_sizes
        self.proposal_sizes = (size, size if low < 0 else min(low, size), max(high, size))
        packet = encode_packet(QuorumPacket(PacketType.PROPOSAL, zxid, txn))  # once for every follower
        for handler in core.handlers:
            if handler.forwarding and not handler.observer:
                handler.send_encoded(packet)
        core.replica.log(zxid, txn)

    def outstanding_proposals(self) -> Iterator[tuple[int, bytes]]:
        for zxid, proposal in self.outstanding.items():
            yield zxid, proposal.txn

    def durable(self, zxid: int) -> None:
        """The local log holds everything up to ``zxid``: the leader's own ACKs."""
        self.durable_zxid = max(self.durable_zxid, zxid)
        myid = self.core.myid
        for pending, proposal in self.outstanding.items():
            if pending > zxid:
                break
            proposal.acks.add(myid)
        self._commit_ready()

    def ack(self, sid: int, zxid: int) -> None:
        proposal = self.outstanding.get(zxid)
        if proposal is None:
            return  # committed already, or a proposal sent during sync
        proposal.acks.add(sid)
        key = self._ack_keys.get(sid)
        if key is None:
            key = self._ack_keys[sid] = str(sid)
        core = self.core
        core.metrics.ack_latency.add(key, core.clock() - proposal.proposed_ms)
        self._commit_ready()

    def _commit_ready(self) -> None:
        # Strictly in order: the oldest outstanding proposal commits first.
        core = self.core
        outstanding = self.outstanding
        while outstanding:
            zxid = next(iter(outstanding))
            proposal = outstanding[zxid]
            if not has_quorums(proposal.verifiers, proposal.acks):
                return
            del outstanding[zxid]
            self.last_committed = zxid
            metrics = core.metrics
            metrics.commit_count.add()
            metrics.quorum_ack_latency.add(core.clock() - proposal.proposed_ms)
            new = proposal.new_config
            if new is not None:
                leader = designated_leader(core.myid, new, proposal.acks, (p.acks for p in outstanding.values()))
                send_commit(core.handlers, zxid, proposal.txn, leader)
                core.replica.apply(zxid, proposal.txn)
                core.activate(new, leader)
                if leader != core.myid:
                    core.stop(f"the config of version 0x{new.version:x} is led by {leader}")
                    return
                continue
            send_commit(core.handlers, zxid, proposal.txn, None)
            core.replica.apply(zxid, proposal.txn)


def send_commit(handlers: Iterable[LearnerHandler], zxid: int, txn: bytes, leader: int | None) -> None:
    """COMMIT to followers and INFORM to observers, or their ACTIVATE forms for a reconfig."""
    if leader is None:
        commit = encode_packet(QuorumPacket(PacketType.COMMIT, zxid))
    else:
        commit = encode_packet(QuorumPacket(PacketType.COMMITANDACTIVATE, zxid, encode_activation(leader)))
    inform: bytes | None = None
    for handler in handlers:
        if not handler.forwarding:
            continue
        if handler.observer:
            if inform is None:
                inform = encode_packet(
                    QuorumPacket(PacketType.INFORM, zxid, txn) if leader is None else
                    QuorumPacket(PacketType.INFORMANDACTIVATE, zxid, encode_activation(leader, txn)))
            handler.send_encoded(inform)
        else:
            handler.send_encoded(commit)
