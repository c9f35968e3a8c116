# -*- test-case-name: tests.unit.test_zab -*-
"""The leader's side of one learner connection (ZooKeeper's LearnerHandler).

It walks one learner through discovery and synchronization, then forwards
broadcast traffic to it. Decisions that need every learner (the new epoch,
the quorums of ACKEPOCH and of NEWLEADER acks, commits) belong to the
``Leader``; the handler reports to it and carries out what it decides.
"""
from __future__ import annotations

import enum
from typing import TYPE_CHECKING

from twisted.logger import Logger

from zabd.metrics.peertimes import SyncTimer

from zabd.quorum.packets import (
    PacketType,
    QuorumPacket,
    encode_activation,
    encode_packet,
    encode_leader_info,
    encode_revalidate_reply,
    parse_ack_epoch,
    parse_learner_info,
    parse_request_forward,
    parse_revalidate_request,
    parse_touches,
)
from zabd.quorum.roles import COUNTER_MASK, PacketLink, epoch_of, first_zxid_of
from zabd.quorum.snapstream import QuorumWireError, SnapshotStream
from zabd.quorum.syncplan import plan_sync

if TYPE_CHECKING:
    from zabd.quorum.leader import Leader

log = Logger()


class Stage(enum.Enum):
    INFO = "info"  # waiting for FOLLOWERINFO / OBSERVERINFO
    EPOCH = "epoch"  # waiting for the new epoch, then for ACKEPOCH
    ACKED_EPOCH = "acked-epoch"  # waiting for a quorum of ACKEPOCH
    NEWLEADER = "newleader"  # synced; waiting for the ACK of NEWLEADER
    UPTODATE = "uptodate"  # NEWLEADER acked; waiting for the leader to serve
    BROADCAST = "broadcast"
    CLOSED = "closed"


_FORWARDING = frozenset({Stage.NEWLEADER, Stage.UPTODATE, Stage.BROADCAST})
#: The highest epoch a zxid (a signed long, epoch in its high 32 bits) can carry.
_LAST_EPOCH = 0x7FFFFFFF


class LearnerHandler:
    def __init__(self, leader: Leader, link: PacketLink, now_ms: int) -> None:
        self.leader = leader
        self.link = link
        self.stage = Stage.INFO
        #: Synced far enough that new proposals and commits go to it.
        self.forwarding = False
        #: A participant of the current config (its ACKs count).
        self.is_voter = False
        self.sid: int | None = None
        self.observer = False
        self.accepted_epoch = -1
        self.last_zxid = -1
        self.last_heard_ms = now_ms
        #: The sync under way, until the learner acknowledges NEWLEADER.
        self._sync: SyncTimer | None = None

    def _enter(self, stage: Stage) -> None:
        self.stage = stage
        self.forwarding = stage in _FORWARDING

    # -- inbound ----------------------------------------------------------

    def receive(self, item: QuorumPacket | SnapshotStream, now_ms: int) -> None:
        if self.stage is Stage.CLOSED:
            return
        self.last_heard_ms = now_ms
        try:
            if isinstance(item, SnapshotStream):
                raise QuorumWireError("a learner sent a snapshot stream")
            self._packet(item)
        except QuorumWireError as e:
            self.close(f"bad packet: {e}")

    def _packet(self, p: QuorumPacket) -> None:
        kind = p.type
        if self.stage is Stage.INFO:
            if kind not in (PacketType.FOLLOWERINFO, PacketType.OBSERVERINFO):
                raise QuorumWireError(f"expected FOLLOWERINFO or OBSERVERINFO, got type {kind}")
            self._info(p)
        elif kind == PacketType.ACKEPOCH and self.stage is Stage.EPOCH:
            self.last_zxid = p.zxid
            self._enter(Stage.ACKED_EPOCH)
            self.leader.epoch_acked(self, parse_ack_epoch(p.data), p.zxid)
        elif kind == PacketType.ACK:
            self._ack(p.zxid)
        elif kind == PacketType.PING:
            self.leader.touched(parse_touches(p.data))
        elif kind == PacketType.REQUEST and self.stage is Stage.BROADCAST:
            self.leader.on_request(self, parse_request_forward(p.data), p.authinfo or [])
        elif kind == PacketType.REVALIDATE:
            self.leader.metrics.revalidate_count.add()
            session_id, timeout = parse_revalidate_request(p.data)
            valid = self.leader.on_revalidate(self, session_id, timeout)
            self.link.send(QuorumPacket(PacketType.REVALIDATE, -1, encode_revalidate_reply(session_id, valid)))
        else:
            raise QuorumWireError(f"unexpected packet type {kind} in stage {self.stage.value}")

    def _info(self, p: QuorumPacket) -> None:
        info = parse_learner_info(p.data)
        if info is None:
            raise QuorumWireError("learner info without data")
        if info.config_version is not None and info.config_version > self.leader.verifier.version:
            raise QuorumWireError(f"learner config version 0x{info.config_version:x} is newer than mine")
        if epoch_of(p.zxid) >= _LAST_EPOCH:  # the epoch after it would not fit in a zxid
            raise QuorumWireError(f"learner accepted epoch 0x{epoch_of(p.zxid):x} leaves no epoch to propose")
        self.sid = info.sid
        self.observer = p.type == PacketType.OBSERVERINFO
        self.is_voter = not self.observer and info.sid in self.leader.verifier.voting_members
        self.accepted_epoch = epoch_of(p.zxid)
        self._enter(Stage.EPOCH)
        log.info("Learner {sid} connected ({kind}), accepted epoch {epoch}",
                 sid=self.sid, kind="observer" if self.observer else "follower", epoch=self.accepted_epoch)
        self.leader.learner_info(self)

    def _ack(self, zxid: int) -> None:
        if zxid & COUNTER_MASK == 0:
            # The ACK of NEWLEADER, or the one after UPTODATE (ignored, as 3.8 does).
            if self.stage is Stage.NEWLEADER and epoch_of(zxid) == self.leader.epoch:
                self._synced()
                self._enter(Stage.UPTODATE)
                self.leader.newleader_acked(self)
            return
        if not self.observer:
            self.leader.acked(self, zxid)

    # -- outbound, as the leader decides -----------------------------------

    def send_leader_info(self, epoch: int) -> None:
        self.link.send(QuorumPacket(PacketType.LEADERINFO, first_zxid_of(epoch), encode_leader_info()))

    def synchronize(self) -> None:
        """DIFF, TRUNC or SNAP plus history, outstanding proposals, then NEWLEADER."""
        leader = self.leader
        replica = leader.replica
        plan = plan_sync(self.last_zxid, replica.last_processed_zxid, replica.committed,
                         on_disk=leader.on_disk_history)
        log.info("Synchronizing learner {sid} (at 0x{peer:x}) by {mode} 0x{zxid:x} with {n} proposals ({why})",
                 sid=self.sid, peer=self.last_zxid, mode=plan.mode, zxid=plan.zxid, n=len(plan.history),
                 why=plan.reason)
        metrics = leader.metrics
        # As 3.8 counts them: a TRUNC is a DIFF.
        (metrics.snap_count if plan.mode == "SNAP" else metrics.diff_count).add()
        sync = self._sync = SyncTimer("leader", leader.clock(), self.last_zxid)
        sync.chosen(plan.mode, plan.zxid)
        if plan.mode == "SNAP":
            zxid, chunks = replica.snapshot_stream()
            sync.chosen(plan.mode, zxid)
            self.link.send(QuorumPacket(PacketType.SNAP, zxid))
            for chunk in chunks:
                self.link.send_raw(chunk)
        else:
            for packet in plan.packets():
                self.link.send(packet)
        if not self.observer:
            # startForwarding: what is proposed but not yet committed follows.
            for zxid, txn in leader.outstanding_proposals():
                self.link.send(QuorumPacket(PacketType.PROPOSAL, zxid, txn))
        self._enter(Stage.NEWLEADER)
        self.link.send(QuorumPacket(PacketType.NEWLEADER, first_zxid_of(leader.epoch), leader.last_seen.config_text()))

    def _synced(self) -> None:
        """The learner acknowledged NEWLEADER: its sync is complete."""
        if self._sync is not None:
            self._sync.done(self.leader.clock(), self.sid)
            self._sync = None

    def send_uptodate(self) -> None:
        self._enter(Stage.BROADCAST)
        self.link.send(QuorumPacket(PacketType.UPTODATE, -1))

    def send(self, packet: QuorumPacket) -> None:
        if self.stage is not Stage.CLOSED:
            self.link.send(packet)

    def send_encoded(self, packet: bytes) -> None:
        """A packet already encoded (one PROPOSAL or COMMIT goes to many learners)."""
        if self.stage is not Stage.CLOSED:
            self.link.send_raw(packet)

    def close(self, reason: str) -> None:
        if self.stage is Stage.CLOSED:
            return
        self._enter(Stage.CLOSED)
        log.info("Dropping learner {sid}: {reason}", sid=self.sid, reason=reason)
        self.link.close()
        self.leader.handler_closed(self)


def send_commit(handlers: list[LearnerHandler], zxid: int, txn: bytes, leader: int | None) -> None:
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
