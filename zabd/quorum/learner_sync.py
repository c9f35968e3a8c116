# -*- test-case-name: tests.unit.test_zab_follower -*-
"""A learner's discovery and synchronization (protocol doc 4.4, 4.7), apart from broadcast.

- FOLLOWERINFO / OBSERVERINFO out (:func:`learner_info`); LEADERINFO in,
  acceptedEpoch persisted, ACKEPOCH out.
- DIFF, TRUNC or SNAP (and a SNAP's stream), then history, then NEWLEADER:
  the ``updatingEpoch`` marker, a snapshot if the sync needs one, and every
  proposal received so far logged; once all of it is durable, currentEpoch
  is persisted and only then is the ACK of NEWLEADER sent (3.9.4's order,
  ZOOKEEPER-4643). UPTODATE starts serving. A restart after txns of the new
  epoch are durable and before currentEpoch is takes their epoch (the marker).
- A TRUNC the files cannot land on exactly (below a SNAP's snapshot) ends the
  sync: the replica reloaded what its files hold, and the next sync starts there.

Each handler takes the learner's :class:`LearnerState` and one packet;
:data:`SYNC_TRANSITIONS` says in which phase each is legal.
"""
from __future__ import annotations

from twisted.logger import Logger

from zabd.metrics.peertimes import SyncTimer
from zabd.quorum.learner_effects import Phase, Serving, packet_name
from zabd.quorum.learner_state import LearnerState, Transitions
from zabd.quorum.packets import (
    PROTOCOL_VERSION,
    LearnerInfo,
    PacketType,
    QuorumPacket,
    encode_ack_epoch,
    parse_leader_info,
)
from zabd.core.zxid import epoch_of, first_zxid_of
from zabd.quorum.snapstream import QuorumWireError, SnapshotStream
from zabd.storage.truncate import TruncateError

log = Logger(namespace="zabd.quorum.learner")  # the learner's lines keep one namespace


def learner_info(state: LearnerState) -> QuorumPacket:
    """The first packet: who this learner is, and the epoch it last accepted."""
    kind = PacketType.OBSERVERINFO if state.observer else PacketType.FOLLOWERINFO
    info = LearnerInfo(state.myid, PROTOCOL_VERSION, state.configs.version).encode()
    return QuorumPacket(kind, first_zxid_of(state.replica.accepted_epoch), info)


def leader_info(state: LearnerState, p: QuorumPacket) -> None:
    """LEADERINFO: accept the new epoch (durably) and answer ACKEPOCH with this replica's history."""
    if parse_leader_info(p.data) < PROTOCOL_VERSION:
        state.stop("the leader speaks a pre-Zab-1.0 protocol")
        return
    epoch = epoch_of(p.zxid)
    replica = state.replica
    if epoch > replica.accepted_epoch:
        replica.set_accepted_epoch(epoch)
        answer: int | None = replica.current_epoch
    elif epoch == replica.accepted_epoch:
        answer = None  # this epoch was accepted before: tell the leader with -1
    else:
        state.stop(f"leader epoch {epoch} is older than my accepted epoch {replica.accepted_epoch}")
        return
    state.new_epoch = epoch
    state.phase = Phase.SYNC
    state.sync_timer = SyncTimer("learner", state.clock(), replica.last_logged_zxid)
    state.send(QuorumPacket(PacketType.ACKEPOCH, replica.last_logged_zxid, encode_ack_epoch(answer)))


def not_leader_info(state: LearnerState, p: QuorumPacket) -> None:
    """Discovery takes LEADERINFO (and PING) only."""
    state.stop(f"expected LEADERINFO, got {packet_name(p.type)}")


def sync_mode(state: LearnerState, p: QuorumPacket) -> None:
    """DIFF, TRUNC or SNAP: how the leader brings this replica to its history."""
    state.sync_mode = PacketType(p.type).name
    state.sync_timer.chosen(state.sync_mode, p.zxid)
    # From here on an ACK waits for what this sync logs, reported afresh
    # (after TRUNC or SNAP the log's zxids may go back).
    state.durable_zxid = -1
    if p.type == PacketType.DIFF:
        state.sync.snapshot_needed = False
        state.logging = True  # DIFF: the history goes to the log as ZooKeeper's writeToTxnLog
    elif p.type == PacketType.TRUNC:
        log.info("Truncating the log to 0x{zxid:x}", zxid=p.zxid)
        try:
            state.replica.truncate(p.zxid)
        except TruncateError as e:
            # Below a SNAP's snapshot: the replica reloaded what its files hold; the next sync starts there.
            state.stop(f"TRUNC 0x{p.zxid:x} cannot land exactly ({e.reason}); "
                       f"reloaded 0x{state.replica.last_processed_zxid:x}")
            return
        state.unsaved = True  # the history's commits now go to the tree, not the log
    else:
        state.sync.snap_zxid = p.zxid  # the stream that follows is the tree as of this zxid


def snapshot(state: LearnerState, stream: SnapshotStream) -> None:
    """A SNAP's stream: the leader's tree and sessions, as of the SNAP's zxid."""
    if state.phase is not Phase.SYNC or state.sync.snap_zxid < 0:
        raise QuorumWireError("a snapshot stream without a SNAP packet")
    state.unsaved = True
    state.replica.install(stream, state.sync.snap_zxid)


def newleader(state: LearnerState, p: QuorumPacket) -> None:
    """NEWLEADER: make the sync durable; its ACK waits for the log (see :func:`durable`)."""
    if epoch_of(p.zxid) != state.new_epoch:
        state.stop(f"NEWLEADER for epoch {epoch_of(p.zxid)}, expected {state.new_epoch}")
        return
    state.configs.newleader(p.data)
    replica = state.replica
    replica.mark_epoch_update()
    if state.sync.snapshot_needed:
        replica.save_snapshot()
        state.unsaved = False
    state.logging = True
    state.phase = Phase.NEWLEADER
    last = -1
    for zxid, txn in state.pending:
        if state.observer and not state.logs_txns:
            continue
        replica.log(zxid, txn)
        if not state.observer:
            state.sync.acks_after_newleader.append(zxid)
        last = zxid
    # currentEpoch and the ACK of NEWLEADER wait until everything received is durable.
    state.acks.append((last, p.zxid))
    durable(state, state.durable_zxid)


def durable(state: LearnerState, zxid: int) -> None:
    """The log is durable up to ``zxid``: send the ACKs that waited for it, in order."""
    state.durable_zxid = max(state.durable_zxid, zxid)
    acks = state.acks
    while acks and acks[0][0] <= state.durable_zxid:
        ack = acks.popleft()[1]
        if ack == first_zxid_of(state.new_epoch) and state.phase is Phase.NEWLEADER:
            # 3.9.4's order (ZOOKEEPER-4643): the sync's txns are durable, then
            # currentEpoch, then the ACK. An epoch persisted before its txns lets a
            # crash bring this peer back with the new epoch and an old log, whose
            # vote then beats peers holding committed txns.
            try:
                state.replica.set_current_epoch(state.new_epoch)
            except Exception as e:
                log.failure("Learner {myid} cannot persist its epoch", myid=state.myid)
                state.stop(f"local failure: {e}")
                return
            state.send(QuorumPacket(PacketType.ACK, ack))
            # Only now the proposals of the sync: an ACK of a new-epoch txn sent before
            # currentEpoch is durable could count towards a commit that a failed epoch
            # write then lets this peer vote against (and a 3.8 leader would take the
            # first ACK for the NEWLEADER ACK: ZOOKEEPER-4685).
            for logged in state.sync.acks_after_newleader:
                state.send(QuorumPacket(PacketType.ACK, logged))
            state.sync.acks_after_newleader = []
            continue
        state.send(QuorumPacket(PacketType.ACK, ack))


def uptodate(state: LearnerState, p: QuorumPacket) -> None:
    """UPTODATE: apply the commits that waited, take the leader's config, ACK, and serve."""
    for zxid in state.commits_at_uptodate:
        state.apply_head(zxid)
        if state.phase is Phase.DONE:
            return
    state.commits_at_uptodate.clear()
    config = state.configs.uptodate()  # 3.8 takes the leader's config here (its processReconfig)
    if config is not None:
        state.stop(f"the config of version 0x{config.version:x} changes my role")
        return
    state.phase = Phase.BROADCAST
    state.send(QuorumPacket(PacketType.ACK, first_zxid_of(state.new_epoch)))
    took_ms = state.sync_timer.done(state.clock(), state.myid)
    metrics = state.metrics
    (metrics.observer_sync_time if state.observer else metrics.follower_sync_time).add(took_ms)
    state.emit(Serving())


#: Discovery and synchronization, for followers and observers alike (any other packet
#: in DISCOVERY is answered by :func:`not_leader_info`).
SYNC_TRANSITIONS: Transitions = {
    (Phase.DISCOVERY, PacketType.LEADERINFO): leader_info,
    (Phase.SYNC, PacketType.DIFF): sync_mode,
    (Phase.SYNC, PacketType.TRUNC): sync_mode,
    (Phase.SYNC, PacketType.SNAP): sync_mode,
    (Phase.SYNC, PacketType.NEWLEADER): newleader,
    (Phase.NEWLEADER, PacketType.UPTODATE): uptodate,
}
