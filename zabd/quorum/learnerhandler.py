# -*- test-case-name: tests.unit.test_zab_learnerhandler -*-
"""The leader's side of one learner connection (ZooKeeper's LearnerHandler).

It walks one learner through discovery and synchronization, then forwards
broadcast traffic to it. Decisions that need every learner (the new epoch,
the quorums of ACKEPOCH and of NEWLEADER acks, commits) belong to the
leader; the handler reports to it (``LeaderSide``) and carries out what it
decides. The handler is sans-IO: what it sends or closes goes out as
effects (zabd.quorum.leader_effects), and which packet a stage accepts is a
table, ``TRANSITIONS``; any other packet closes the connection.
"""
from __future__ import annotations

import enum
from collections.abc import Callable
from typing import Protocol

from twisted.logger import Logger

from zabd.java.limits import INT_MAX
from zabd.membership.verifier import QuorumVerifier
from zabd.metrics.peertimes import SyncTimer
from zabd.jute.records import Id
from zabd.quorum.leader_effects import Close, EffectSink, LinkEffect, Send, SendBytes
from zabd.quorum.packets import (
    PacketType,
    QuorumPacket,
    RequestForward,
    encode_leader_info,
    encode_revalidate_reply,
    parse_ack_epoch,
    parse_learner_info,
    parse_request_forward,
    parse_revalidate_request,
    parse_touches,
)
from zabd.quorum.roles import PacketLink
from zabd.core.zxid import COUNTER_MASK, epoch_of, first_zxid_of
from zabd.quorum.snapstream import QuorumWireError, SnapshotStream

log = Logger()


class Stage(enum.Enum):
    """Where one learner is on its way from connecting to broadcast."""

    INFO = "info"  # waiting for FOLLOWERINFO / OBSERVERINFO
    EPOCH = "epoch"  # waiting for the new epoch, then for ACKEPOCH
    ACKED_EPOCH = "acked-epoch"  # waiting for a quorum of ACKEPOCH
    NEWLEADER = "newleader"  # synced; waiting for the ACK of NEWLEADER
    UPTODATE = "uptodate"  # NEWLEADER acked; waiting for the leader to serve
    BROADCAST = "broadcast"
    CLOSED = "closed"


_FORWARDING = frozenset({Stage.NEWLEADER, Stage.UPTODATE, Stage.BROADCAST})
#: The highest epoch a zxid (a signed long, epoch in its high 32 bits) can carry.
_LAST_EPOCH = INT_MAX


class LeaderSide(Protocol):
    """What a learner handler needs of its leader (zabd.quorum.leader.Leader is one)."""

    #: The epoch proposed, -1 before one is chosen.
    epoch: int
    verifier: QuorumVerifier
    emit: EffectSink

    def learner_info(self, handler: LearnerHandler) -> None: ...

    def epoch_acked(self, handler: LearnerHandler, current_epoch: int | None, last_zxid: int) -> None: ...

    def newleader_acked(self, handler: LearnerHandler) -> None: ...

    def acked(self, handler: LearnerHandler, zxid: int) -> None: ...

    def handler_closed(self, handler: LearnerHandler) -> None: ...

    def forwarded(self, handler: LearnerHandler, forward: RequestForward, auth: list[Id]) -> None: ...

    def revalidate(self, handler: LearnerHandler, session_id: int, timeout_ms: int) -> bool: ...

    def touched(self, touches: list[tuple[int, int]]) -> None: ...


class LearnerHandler:
    """One learner as the leader sees it: its stage, identity, and what it was last heard saying."""

    def __init__(self, leader: LeaderSide, link: PacketLink, now_ms: int) -> None:
        self.leader = leader
        #: Where this handler's effects go (the handler never calls it).
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
        self.sync_timer: SyncTimer | None = None

    def enter(self, stage: Stage) -> None:
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
            transition = TRANSITIONS.get((self.stage, item.type))
            if transition is None:
                raise QuorumWireError(_unexpected(self.stage, item.type))
            transition(self, item, now_ms)
        except QuorumWireError as e:
            self.close(f"bad packet: {e}")

    def _info(self, p: QuorumPacket, now_ms: int) -> None:
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
        self.enter(Stage.EPOCH)
        log.info("Learner {sid} connected ({kind}), accepted epoch {epoch}",
                 sid=self.sid, kind="observer" if self.observer else "follower", epoch=self.accepted_epoch)
        self.leader.learner_info(self)

    def _ack_epoch(self, p: QuorumPacket, now_ms: int) -> None:
        self.last_zxid = p.zxid
        self.enter(Stage.ACKED_EPOCH)
        self.leader.epoch_acked(self, parse_ack_epoch(p.data), p.zxid)

    def _ack(self, p: QuorumPacket, now_ms: int) -> None:
        zxid = p.zxid
        if zxid & COUNTER_MASK == 0:
            # The ACK of NEWLEADER, or the one after UPTODATE (ignored, as 3.8 does).
            if self.stage is Stage.NEWLEADER and epoch_of(zxid) == self.leader.epoch:
                if self.sync_timer is not None:  # the learner acknowledged NEWLEADER: its sync is complete
                    self.sync_timer.done(now_ms, self.sid)
                    self.sync_timer = None
                self.enter(Stage.UPTODATE)
                self.leader.newleader_acked(self)
            return
        if not self.observer:
            self.leader.acked(self, zxid)

    def _ping(self, p: QuorumPacket, now_ms: int) -> None:
        self.leader.touched(parse_touches(p.data))

    def _request(self, p: QuorumPacket, now_ms: int) -> None:
        self.leader.forwarded(self, parse_request_forward(p.data), p.authinfo or [])

    def _revalidate(self, p: QuorumPacket, now_ms: int) -> None:
        session_id, timeout = parse_revalidate_request(p.data)
        valid = self.leader.revalidate(self, session_id, timeout)
        self._emit(Send(self.link, QuorumPacket(PacketType.REVALIDATE, -1,
                                                encode_revalidate_reply(session_id, valid))))

    # -- outbound, as the leader decides -----------------------------------

    def _emit(self, effect: LinkEffect) -> None:
        self.leader.emit(effect)

    def send_leader_info(self, epoch: int) -> None:
        self._emit(Send(self.link, QuorumPacket(PacketType.LEADERINFO, first_zxid_of(epoch), encode_leader_info())))

    def send_uptodate(self) -> None:
        self.enter(Stage.BROADCAST)
        self._emit(Send(self.link, QuorumPacket(PacketType.UPTODATE, -1)))

    def send(self, packet: QuorumPacket) -> None:
        if self.stage is not Stage.CLOSED:
            self._emit(Send(self.link, packet))

    def send_encoded(self, packet: bytes) -> None:
        """A packet already encoded (one PROPOSAL or COMMIT goes to many learners), or SNAP stream bytes."""
        if self.stage is not Stage.CLOSED:
            self._emit(SendBytes(self.link, packet))

    def close(self, reason: str) -> None:
        if self.stage is Stage.CLOSED:
            return
        self.enter(Stage.CLOSED)
        log.info("Dropping learner {sid}: {reason}", sid=self.sid, reason=reason)
        self._emit(Close(self.link))
        self.leader.handler_closed(self)


def _unexpected(stage: Stage, kind: int) -> str:
    if stage is Stage.INFO:
        return f"expected FOLLOWERINFO or OBSERVERINFO, got type {kind}"
    return f"unexpected packet type {kind} in stage {stage.value}"


Transition = Callable[[LearnerHandler, QuorumPacket, int], None]
_CONNECTED = (Stage.EPOCH, Stage.ACKED_EPOCH, Stage.NEWLEADER, Stage.UPTODATE, Stage.BROADCAST)

#: (stage, packet type) -> what the handler does; a pair not here closes the connection.
#: Once a learner has said who it is, it may ACK, PING and REVALIDATE in any stage, as 3.8 allows.
TRANSITIONS: dict[tuple[Stage, int], Transition] = {
    (Stage.INFO, PacketType.FOLLOWERINFO): LearnerHandler._info,
    (Stage.INFO, PacketType.OBSERVERINFO): LearnerHandler._info,
    (Stage.EPOCH, PacketType.ACKEPOCH): LearnerHandler._ack_epoch,
    (Stage.BROADCAST, PacketType.REQUEST): LearnerHandler._request,
    **{(stage, PacketType.ACK): LearnerHandler._ack for stage in _CONNECTED},
    **{(stage, PacketType.PING): LearnerHandler._ping for stage in _CONNECTED},
    **{(stage, PacketType.REVALIDATE): LearnerHandler._revalidate for stage in _CONNECTED},
}
