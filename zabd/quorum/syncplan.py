# -*- test-case-name: tests.unit.test_syncplan -*-
"""How the leader brings one learner up to date: DIFF, TRUNC or SNAP (protocol doc 4.5).

:func:`plan_sync` is branch-3.8's ``LearnerHandler.syncFollower`` as a pure
function of the learner's last zxid (from ACKEPOCH), the leader's tree zxid,
its :class:`CommittedLog` and, for learners older than that log, its on-disk
txn log (:class:`OnDiskHistory`). :class:`ProposalQueue` is
``queueCommittedProposals`` with the ``needOpPacket`` state it shares between
the walks of one sync. The caller sends :meth:`SyncPlan.packets` (for SNAP,
the snapshot stream follows), then forwards whatever was committed or
proposed after :attr:`SyncPlan.forward_from` (``startForwarding``), then
NEWLEADER.
"""
from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from itertools import chain
from typing import Literal, Protocol

from twisted.logger import Logger

from zabd.core.zxid import is_first_of_epoch
from zabd.quorum.committedlog import CommittedLog
from zabd.quorum.packets import PacketType, QuorumPacket
from zabd.storage.epochs import epoch_of

SyncMode = Literal["DIFF", "TRUNC", "SNAP"]
Proposal = tuple[int, bytes]  # (zxid, serialized txn entry)

#: ZKDatabase.DEFAULT_SNAPSHOT_SIZE_FACTOR; 3.8 also falls back to it for values above 1.
DEFAULT_SNAPSHOT_SIZE_FACTOR = 0.33

log = Logger()


class OnDiskHistory(Protocol):
    """The leader's txn log and newest snapshot, as rule 5 reads them (the caller supplies it)."""

    @property
    def first_zxid(self) -> int | None:
        """The zxid of the oldest txn in the txn log (the oldest ``log.<zxid>``), None without one."""

    def size_bytes_from(self, zxid: int) -> int:
        """The log size 3.8 weighs for a read from ``zxid``: see :func:`zabd.storage.history.txn_log_storage_size`."""

    def snapshot_size(self) -> int:
        """The size in bytes of the newest snapshot file, 0 without one."""

    def proposals_from(self, zxid: int) -> Iterator[Proposal]:
        """Every logged txn in zxid order, from the start of the log file holding ``zxid``.

        3.8 reads the whole file (not only from ``zxid``); the walk skips what
        lies below ``zxid`` but remembers the last such zxid for a TRUNC.
        The walk stops reading once it passes ``minCommittedLog``; an
        iterator with a ``close`` method is closed afterwards.
        """


@dataclass(frozen=True, slots=True)
class SyncPlan:
    """What to send a learner after ACKEPOCH and before NEWLEADER."""

    mode: SyncMode
    #: The zxid the DIFF, TRUNC or SNAP packet carries.
    zxid: int
    #: Proposals to send after it, each as PROPOSAL(zxid, bytes) then COMMIT(zxid).
    history: tuple[Proposal, ...] = ()
    #: The zxid given to startForwarding: committed-but-unapplied and outstanding
    #: proposals above it follow the history.
    forward_from: int = 0
    #: Why this plan, for the log: "in sync", "peer ahead", "committed log",
    #: "txn log", "forced", "epoch mismatch", "gap", "log too large", "no history".
    reason: str = ""

    def packets(self) -> list[QuorumPacket]:
        """The packets in order; for SNAP only the SNAP packet (the snapshot stream follows it)."""
        out = [QuorumPacket(PacketType[self.mode], self.zxid)]
        for zxid, txn_bytes in self.history:
            out.append(QuorumPacket(PacketType.PROPOSAL, zxid, txn_bytes))
            out.append(QuorumPacket(PacketType.COMMIT, zxid))
        return out


class ProposalQueue:
    """The packets one sync queues: the first op (DIFF or TRUNC) and the history after it.

    ``op`` is None while ``needOpPacket`` is still true; a sync that ends
    that way falls back to SNAP.
    """

    def __init__(self) -> None:
        self.op: tuple[SyncMode, int] | None = None
        self.history: list[Proposal] = []

    def clear(self) -> None:
        """Drop everything queued (the gap fallback of rule 5)."""
        self.op = None
        self.history.clear()

    def queue_committed(
        self,
        proposals: Iterable[Proposal],
        peer_last_zxid: int,
        max_zxid: int | None,
        last_committed_zxid: int,
    ) -> int:
        """Queue the proposals in ``(peer_last_zxid, max_zxid]``; returns the last zxid queued.

        The first proposal at or above the peer's zxid decides the op: equal
        gives DIFF(last_committed_zxid) without resending it; a new-epoch peer
        gets that DIFF and the proposal; a proposal of another epoch stops the
        walk with no op (SNAP); otherwise TRUNC to the proposal before it.
        """
        new_epoch_peer = is_first_of_epoch(peer_last_zxid)
        queued_zxid = peer_last_zxid
        previous_zxid = -1  # 3.8's prevProposalZxid: -1 until one is skipped
        for zxid, txn_bytes in proposals:
            if max_zxid is not None and zxid > max_zxid:
                break
            if zxid < peer_last_zxid:
                previous_zxid = zxid
                continue
            if self.op is None:
                if zxid == peer_last_zxid:
                    self.op = ("DIFF", last_committed_zxid)
                    continue
                if new_epoch_peer:
                    self.op = ("DIFF", last_committed_zxid)
                elif zxid > peer_last_zxid:
                    if epoch_of(zxid) != epoch_of(peer_last_zxid):
                        # A learner cannot truncate across an epoch boundary.
                        log.warn(
                            "Cannot send TRUNC to a peer at {peer_last_zxid:#x}:"
                            " the next proposal {zxid:#x} is of another epoch",
                            peer_last_zxid=peer_last_zxid, zxid=zxid,
                        )
                        return queued_zxid
                    self.op = ("TRUNC", previous_zxid)
            if zxid <= queued_zxid:
                continue  # the peer has it, or the iterator repeated it
            self.history.append((zxid, txn_bytes))
            queued_zxid = zxid
        if self.op is None and new_epoch_peer:
            # The leader's history ends before the peer's new epoch: nothing to send.
            self.op = ("DIFF", last_committed_zxid)
        return queued_zxid


def plan_sync(
    peer_last_zxid: int,
    last_processed_zxid: int,
    committed: CommittedLog,
    *,
    on_disk: OnDiskHistory | None = None,
    snapshot_size_factor: float = DEFAULT_SNAPSHOT_SIZE_FACTOR,
    force_snap: bool = False,
) -> SyncPlan:
    """syncFollower's decision for a learner whose last zxid is ``peer_last_zxid``.

    ``snapshot_size_factor`` is ``zookeeper.snapshotSizeFactor`` as configured:
    negative turns the on-disk path off, above 1 means the default, and 0
    (or no snapshot) puts no limit on the log read, all as in 3.8. Without
    ``on_disk`` the on-disk path is off.
    """
    min_committed = committed.min_zxid(last_processed_zxid)
    max_committed = committed.max_zxid(last_processed_zxid)
    queue = ProposalQueue()
    current = peer_last_zxid
    reason = "no history"
    if force_snap:
        reason = "forced"
    elif peer_last_zxid == last_processed_zxid:
        queue.op = ("DIFF", peer_last_zxid)
        reason = "in sync"
    elif peer_last_zxid > max_committed and not is_first_of_epoch(peer_last_zxid):
        # The peer has txns the leader never committed: it may have led before.
        queue.op = ("TRUNC", max_committed)
        current = max_committed
        reason = "peer ahead"
    elif min_committed <= peer_last_zxid <= max_committed:
        current = queue.queue_committed(committed, peer_last_zxid, None, max_committed)
        reason = "committed log" if queue.op is not None else "epoch mismatch"
    elif peer_last_zxid < min_committed and snapshot_size_factor >= 0 and on_disk is not None:
        through_disk, reason = _queue_from_disk(
            queue, peer_last_zxid, committed, on_disk, snapshot_size_factor, min_committed, max_committed,
        )
        if through_disk is not None:
            current = through_disk
    if queue.op is None:
        # The tree's zxid, not the peer's: 3.8 forwards from the peer's zxid
        # after an epoch mismatch, which could resend txns the snapshot holds.
        return SyncPlan("SNAP", last_processed_zxid, (), last_processed_zxid, reason)
    mode, zxid = queue.op
    return SyncPlan(mode, zxid, tuple(queue.history), current, reason)


def _queue_from_disk(
    queue: ProposalQueue,
    peer_last_zxid: int,
    committed: CommittedLog,
    on_disk: OnDiskHistory,
    snapshot_size_factor: float,
    min_committed: int,
    max_committed: int,
) -> tuple[int | None, str]:
    """Rule 5: the txn log up to minCommittedLog, then the committed log.

    Returns the last zxid queued, or None (the queue left empty) and why not.
    """
    first_zxid = on_disk.first_zxid
    if first_zxid is None or first_zxid > peer_last_zxid:
        return None, "no history"  # 3.8 can't be sure the log holds the txn right after the peer's
    limit = _txn_log_size_limit(on_disk, snapshot_size_factor)
    if limit > 0 and on_disk.size_bytes_from(peer_last_zxid) > limit:
        return None, "log too large"
    proposals = on_disk.proposals_from(peer_last_zxid)
    try:
        head = next(proposals, None)
        if head is None:
            return None, "no history"
        # The log may hold proposals not yet committed; stop at minCommittedLog.
        current = queue.queue_committed(chain((head,), proposals), peer_last_zxid, min_committed, max_committed)
    finally:
        close = getattr(proposals, "close", None)
        if close is not None:
            close()
    if current < min_committed:
        log.info(
            "Gap between the end of the txn log {end:#x} and the committed log {start:#x}",
            end=current, start=min_committed,
        )
        queue.clear()
        return None, "gap"
    return queue.queue_committed(committed, current, None, max_committed), "txn log"


def _txn_log_size_limit(on_disk: OnDiskHistory, snapshot_size_factor: float) -> int:
    """ZKDatabase.calculateTxnLogSizeLimit: 0 means no limit."""
    factor = DEFAULT_SNAPSHOT_SIZE_FACTOR if snapshot_size_factor > 1 else snapshot_size_factor
    return int(on_disk.snapshot_size() * factor)  # Java's (long) cast truncates the same way
