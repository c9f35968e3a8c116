# -*- test-case-name: tests.unit.test_zab_leader -*-
"""Synchronization of one learner, once a quorum acknowledged the new epoch (protocol doc 4.5).

:func:`synchronize` chooses DIFF, TRUNC or SNAP (zabd.quorum.syncplan) and
emits what brings the learner up to date: the plan's packets or the
snapshot stream, then the proposals still outstanding (for a follower),
then NEWLEADER with the newest config seen.
"""
from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Protocol

from twisted.logger import Logger

from zabd.membership.verifier import QuorumVerifier
from zabd.metrics.peertimes import SyncTimer
from zabd.metrics.server import ServerMetrics
from zabd.quorum.learnerhandler import LearnerHandler, Stage
from zabd.quorum.packets import PacketType, QuorumPacket
from zabd.quorum.roles import Replica
from zabd.core.zxid import first_zxid_of
from zabd.quorum.syncplan import OnDiskHistory, plan_sync

log = Logger()


class SyncSource(Protocol):
    """What a sync reads of the leader (zabd.quorum.leader.Leader is one)."""

    replica: Replica
    on_disk_history: OnDiskHistory | None
    metrics: ServerMetrics
    clock: Callable[[], int]
    epoch: int
    last_seen: QuorumVerifier

    def outstanding_proposals(self) -> Iterator[tuple[int, bytes]]: ...


def synchronize(leader: SyncSource, handler: LearnerHandler) -> None:
    """DIFF, TRUNC or SNAP plus history, outstanding proposals, then NEWLEADER."""
    replica = leader.replica
    plan = plan_sync(handler.last_zxid, replica.last_processed_zxid, replica.committed,
                     on_disk=leader.on_disk_history)
    log.info("Synchronizing learner {sid} (at 0x{peer:x}) by {mode} 0x{zxid:x} with {n} proposals ({why})",
             sid=handler.sid, peer=handler.last_zxid, mode=plan.mode, zxid=plan.zxid, n=len(plan.history),
             why=plan.reason)
    metrics = leader.metrics
    # As 3.8 counts them: a TRUNC is a DIFF.
    (metrics.snap_count if plan.mode == "SNAP" else metrics.diff_count).add()
    sync = handler.sync_timer = SyncTimer("leader", leader.clock(), handler.last_zxid)
    sync.chosen(plan.mode, plan.zxid)
    if plan.mode == "SNAP":
        zxid, chunks = replica.snapshot_stream()
        sync.chosen(plan.mode, zxid)
        handler.send(QuorumPacket(PacketType.SNAP, zxid))
        for chunk in chunks:
            handler.send_encoded(chunk)
    else:
        for packet in plan.packets():
            handler.send(packet)
    if not handler.observer:
        # startForwarding: what is proposed but not yet committed follows.
        for zxid, txn in leader.outstanding_proposals():
            handler.send(QuorumPacket(PacketType.PROPOSAL, zxid, txn))
    handler.enter(Stage.NEWLEADER)
    handler.send(QuorumPacket(PacketType.NEWLEADER, first_zxid_of(leader.epoch), leader.last_seen.config_text()))
