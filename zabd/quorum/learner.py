# -*- test-case-name: tests.unit.test_zab -*-
"""A follower's or an observer's side of Zab (protocol doc 4.4, 4.7, 4.8).

Discovery, synchronization and broadcast, one packet at a time:

- FOLLOWERINFO / OBSERVERINFO out; LEADERINFO in, acceptedEpoch persisted,
  ACKEPOCH out.
- DIFF, TRUNC or SNAP, then history (PROPOSAL, COMMIT), then NEWLEADER: the
  ``updatingEpoch`` marker, a snapshot if the sync needs one, and every
  proposal received so far logged; once all of it is durable, currentEpoch
  is persisted and only then is the ACK of NEWLEADER sent (3.9.4's order,
  ZOOKEEPER-4643). UPTODATE starts serving. A restart after txns of the new
  epoch are durable and before currentEpoch is takes their epoch (the marker).
- A sync that ends before its snapshot is durable (after SNAP or TRUNC) takes
  the replica back to its files: the tree in memory is ahead of the disk, and
  must not vote or be synced from as if it were durable.
- Then PROPOSAL is logged and acknowledged once durable, COMMIT applies the
  oldest pending proposal, INFORM (observers) applies a committed txn, PING
  is answered with session touches.
- Configs: a reconfig PROPOSAL is reported as seen, and the config NEWLEADER
  carries or a COMMITANDACTIVATE / INFORMANDACTIVATE puts in force is reported
  with its leader once applied; the peer says whether this learner must go
  (``on_config`` returns True: the leader or this peer's kind changed).

Any breach of the protocol ends the role (``on_exit``): the peer goes back
to LOOKING, as ZooKeeper's learner does when its leader misbehaves.
"""
from __future__ import annotations

import enum
from collections import deque
from collections.abc import Callable

from zabd.jute.records import Id

from twisted.logger import Logger

from zabd.membership.verifier import QuorumVerifier
from zabd.metrics.peertimes import SyncTimer
from zabd.metrics.server import ServerMetrics
from zabd.metrics.registry import Summary
from zabd.quorum.learnerconfig import LearnerConfigs
from zabd.quorum.packets import (
    PROTOCOL_VERSION,
    LearnerInfo,
    PacketType,
    QuorumPacket,
    RequestForward,
    encode_ack_epoch,
    encode_revalidate_request,
    encode_touches,
    parse_activation,
    parse_leader_info,
    parse_revalidate_reply,
)
from zabd.quorum.roles import PacketLink, Replica, Timing, epoch_of, first_zxid_of, txn_time_ms
from zabd.quorum.snapstream import QuorumWireError, SnapshotStream
from zabd.storage.logformat import TXN_HEADER_SIZE
from zabd.storage.truncate import TruncateError

log = Logger()


class Phase(enum.Enum):
    DISCOVERY = "discovery"  # info sent, waiting for LEADERINFO
    SYNC = "sync"  # ACKEPOCH sent, waiting for DIFF/TRUNC/SNAP then history
    NEWLEADER = "newleader"  # NEWLEADER seen, waiting for UPTODATE
    BROADCAST = "broadcast"  # serving
    DONE = "done"


class Learner:
    def __init__(
        self,
        myid: int,
        replica: Replica,
        link: PacketLink,
        clock: Callable[[], int],
        timing: Timing,
        *,
        observer: bool = False,
        observer_logs: bool = True,
        config_version: int = 0,
        on_exit: Callable[[str], None],
        on_serving: Callable[[], None] = lambda: None,
        touches: Callable[[], list[tuple[int, int]]] = list,
        on_config_seen: Callable[[QuorumVerifier], None] = lambda verifier: None,
        on_config: Callable[[QuorumVerifier, int | None], bool] = lambda verifier, leader: False,
        metrics: ServerMetrics | None = None,
    ) -> None:
        self.myid = myid
        self.metrics = metrics if metrics is not None else ServerMetrics()
        self.replica = replica
        self.link = link
        self.clock = clock
        self.timing = timing
        self.observer = observer
        #: An observer with syncEnabled=false keeps no txn log (it is synced again after a restart).
        self.logs_txns = observer_logs or not observer
        self.on_exit = on_exit
        self.on_serving = on_serving
        self.touches = touches
        self.configs = LearnerConfigs(config_version, on_config_seen, on_config)
        self.phase = Phase.DISCOVERY
        self.received_any = False
        self.new_epoch = -1
        self.last_heard_ms = clock()
        #: Proposals received and not yet committed, oldest first.
        self.pending: deque[tuple[int, bytes]] = deque()
        #: Commits received during a DIFF sync, applied at UPTODATE.
        self._commits_at_uptodate: list[int] = []
        self._snapshot_needed = True
        self._snap_zxid = -1
        #: The tree in memory differs from the files until the NEWLEADER snapshot (SNAP, TRUNC).
        self._unsaved = False
        #: How the leader synchronized this learner: "DIFF", "TRUNC" or "SNAP".
        self.sync_mode: str | None = None
        self._sync = SyncTimer("learner", self.last_heard_ms, replica.last_logged_zxid)
        self._logging = False  # proposals go to the log as they arrive
        #: ACKs waiting for the log: (zxid that must be durable first, ack zxid).
        self._acks: deque[tuple[int, int]] = deque()
        #: The proposals logged at NEWLEADER: acknowledged right after NEWLEADER is (3.9.4's order).
        self._acks_after_newleader: list[int] = []
        self._durable_zxid = replica.last_logged_zxid
        #: SYNC packets complete the forwarded syncs in the order they were sent.
        self.on_sync: Callable[[], None] = lambda: None
        #: REVALIDATE answers, by session id, in the order asked.
        self._revalidating: dict[int, deque[Callable[[bool], None]]] = {}

    # -- inputs -----------------------------------------------------------

    def start(self) -> None:
        kind = PacketType.OBSERVERINFO if self.observer else PacketType.FOLLOWERINFO
        info = LearnerInfo(self.myid, PROTOCOL_VERSION, self.configs.version).encode()
        self.link.send(QuorumPacket(kind, first_zxid_of(self.replica.accepted_epoch), info))

    def receive(self, item: QuorumPacket | SnapshotStream, now_ms: int | None = None) -> None:
        if self.phase is Phase.DONE:
            return
        self.last_heard_ms = self.clock() if now_ms is None else now_ms
        self.received_any = True
        try:
            if isinstance(item, SnapshotStream):
                self._snapshot(item)
            else:
                self._packet(item)
        except QuorumWireError as e:
            self.stop(f"bad packet from the leader: {e}")
        except Exception as e:  # the replica failed (e.g. a rewrite with appends in flight)
            log.failure("Learner {myid} cannot go on", myid=self.myid)
            self.stop(f"local failure: {e}")

    def durable(self, zxid: int) -> None:
        self._durable_zxid = max(self._durable_zxid, zxid)
        acks = self._acks
        while acks and acks[0][0] <= self._durable_zxid:
            ack = acks.popleft()[1]
            if ack == first_zxid_of(self.new_epoch) and self.phase is Phase.NEWLEADER:
                # 3.9.4's order (ZOOKEEPER-4643): the sync's txns are durable, then
                # currentEpoch, then the ACK. An epoch persisted before its txns lets a
                # crash bring this peer back with the new epoch and an old log, whose
                # vote then beats peers holding committed txns.
                try:
                    self.replica.set_current_epoch(self.new_epoch)
                except Exception as e:
                    log.failure("Learner {myid} cannot persist its epoch", myid=self.myid)
                    self.stop(f"local failure: {e}")
                    return
                self.link.send(QuorumPacket(PacketType.ACK, ack))
                # Only now the proposals of the sync: an ACK of a new-epoch txn sent before
                # currentEpoch is durable could count towards a commit that a failed epoch
                # write then lets this peer vote against (and a 3.8 leader would take the
                # first ACK for the NEWLEADER ACK: ZOOKEEPER-4685).
                for zxid in self._acks_after_newleader:
                    self.link.send(QuorumPacket(PacketType.ACK, zxid))
                self._acks_after_newleader = []
                continue
            self.link.send(QuorumPacket(PacketType.ACK, ack))

    def tick(self) -> None:
        """Give up on a silent leader: initLimit ticks while syncing, syncLimit after."""
        if self.phase is Phase.DONE:
            return
        limit = self.timing.sync_ms if self.phase is Phase.BROADCAST else self.timing.init_ms
        if self.clock() - self.last_heard_ms > limit:
            self.stop(f"no word from the leader for {limit} ms")

    def lost(self) -> None:
        self.stop("lost the connection to the leader")

    def stop(self, reason: str) -> None:
        if self.phase is Phase.DONE:
            return
        self.abandon()
        log.info("Learner {myid} leaves the leader: {reason}", myid=self.myid, reason=reason)
        if self._unsaved:
            self._unsaved = False
            try:
                self.replica.reload()
            except Exception:
                log.failure("Learner {myid} cannot reload its files after an unfinished sync", myid=self.myid)
        self.on_exit(reason)

    def abandon(self) -> None:
        """End quietly: the connection never got going, and the peer will dial again."""
        self.phase = Phase.DONE
        self.link.close()

    # -- requests from this peer's clients ----------------------------------

    def forward(self, request: RequestForward, auth: list[Id]) -> None:
        """Send a client's write (or sync, createSession, closeSession) to the leader."""
        self.link.send(QuorumPacket(PacketType.REQUEST, -1, request.encode(), auth))

    def revalidate(self, session_id: int, timeout_ms: int, answer: Callable[[bool], None]) -> None:
        """Ask the leader whether a reconnecting client's session is still alive."""
        self._revalidating.setdefault(session_id, deque()).append(answer)
        self.link.send(QuorumPacket(PacketType.REVALIDATE, -1, encode_revalidate_request(session_id, timeout_ms)))

    def _revalidated(self, p: QuorumPacket) -> None:
        session_id, valid = parse_revalidate_reply(p.data)
        waiting = self._revalidating.get(session_id)
        if not waiting:
            raise QuorumWireError(f"REVALIDATE answer for session 0x{session_id:x}, which nobody asked about")
        answer = waiting.popleft()
        if not waiting:
            del self._revalidating[session_id]
        answer(valid)

    # -- packets ----------------------------------------------------------

    def _packet(self, p: QuorumPacket) -> None:
        kind = p.type
        if kind == PacketType.PING:
            self.link.send(QuorumPacket(PacketType.PING, p.zxid, encode_touches(self.touches())))
        elif self.phase is Phase.DISCOVERY:
            self._discovery(p)
        elif kind == PacketType.PROPOSAL:
            self._proposal(p)
        elif kind == PacketType.COMMIT:
            self._commit(p.zxid)
        elif kind == PacketType.COMMITANDACTIVATE and not self.observer:
            self._commit_and_activate(p)
        elif kind == PacketType.INFORM and self.observer:
            self._inform(p)
        elif kind == PacketType.INFORMANDACTIVATE and self.observer:
            leader, txn = parse_activation(p.data or b"")
            self.configs.activates(p.zxid, txn, leader)
            self._inform(QuorumPacket(PacketType.INFORM, p.zxid, txn))
        elif kind == PacketType.SYNC:
            self.on_sync()
        elif kind == PacketType.REVALIDATE:
            self._revalidated(p)
        elif self.phase is Phase.SYNC and kind in (PacketType.DIFF, PacketType.TRUNC, PacketType.SNAP):
            self._sync_mode(p)
        elif kind == PacketType.NEWLEADER and self.phase is Phase.SYNC:
            self._newleader(p)
        elif kind == PacketType.UPTODATE and self.phase is Phase.NEWLEADER:
            self._uptodate()
        else:
            self.stop(f"unexpected packet {_name(kind)} 0x{p.zxid:x} in phase {self.phase.value}")

    def _discovery(self, p: QuorumPacket) -> None:
        if p.type != PacketType.LEADERINFO:
            self.stop(f"expected LEADERINFO, got {_name(p.type)}")
            return
        if parse_leader_info(p.data) < PROTOCOL_VERSION:
            self.stop("the leader speaks a pre-Zab-1.0 protocol")
            return
        epoch = epoch_of(p.zxid)
        replica = self.replica
        if epoch > replica.accepted_epoch:
            replica.set_accepted_epoch(epoch)
            answer: int | None = replica.current_epoch
        elif epoch == replica.accepted_epoch:
            answer = None  # this epoch was accepted before: tell the leader with -1
        else:
            self.stop(f"leader epoch {epoch} is older than my accepted epoch {replica.accepted_epoch}")
            return
        self.new_epoch = epoch
        self.phase = Phase.SYNC
        self._sync = SyncTimer("learner", self.clock(), replica.last_logged_zxid)
        self.link.send(QuorumPacket(PacketType.ACKEPOCH, replica.last_logged_zxid, encode_ack_epoch(answer)))

    def _sync_mode(self, p: QuorumPacket) -> None:
        self.sync_mode = PacketType(p.type).name
        self._sync.chosen(self.sync_mode, p.zxid)
        # From here on an ACK waits for what this sync logs, reported afresh
        # (after TRUNC or SNAP the log's zxids may go back).
        self._durable_zxid = -1
        if p.type == PacketType.DIFF:
            self._snapshot_needed = False
            self._logging = True  # DIFF: the history goes to the log as ZooKeeper's writeToTxnLog
        elif p.type == PacketType.TRUNC:
            log.info("Truncating the log to 0x{zxid:x}", zxid=p.zxid)
            try:
                self.replica.truncate(p.zxid)
            except TruncateError as e:
                # Below a SNAP's snapshot: the replica reloaded what its files hold; the next sync starts there.
                self.stop(f"TRUNC 0x{p.zxid:x} cannot land exactly ({e.reason}); "
                          f"reloaded 0x{self.replica.last_processed_zxid:x}")
                return
            self._unsaved = True  # the history's commits now go to the tree, not the log
        else:
            self._snap_zxid = p.zxid  # the stream that follows is the tree as of this zxid

    def _snapshot(self, snapshot: SnapshotStream) -> None:
        if self.phase is not Phase.SYNC or self._snap_zxid < 0:
            raise QuorumWireError("a snapshot stream without a SNAP packet")
        self._unsaved = True
        self.replica.install(snapshot, self._snap_zxid)

    def _proposal(self, p: QuorumPacket) -> None:
        if p.data is None or len(p.data) < TXN_HEADER_SIZE:
            raise QuorumWireError("PROPOSAL without a txn")
        if self.observer and self.phase is not Phase.SYNC:
            raise QuorumWireError("PROPOSAL to a synced observer")  # they get INFORM
        self._rising(p)
        self.pending.append((p.zxid, p.data))
        self.configs.proposed(p.data)
        if self.phase is Phase.BROADCAST:
            self._latency(self.metrics.proposal_latency, p.data)
            self.metrics.learner_proposal_received.add()
        if self.phase is not Phase.SYNC:
            self._log_and_ack(p.zxid, p.data)

    def _rising(self, p: QuorumPacket) -> None:
        """A txn's zxid must be above every one received or logged: the committed log and the log need it."""
        last = self.pending[-1][0] if self.pending else self.replica.last_logged_zxid
        if p.zxid <= last:
            raise QuorumWireError(f"{_name(p.type)} 0x{p.zxid:x} after 0x{last:x}: zxids must rise")

    def _commit_and_activate(self, p: QuorumPacket) -> None:
        leader, _ = parse_activation(p.data or b"")
        txn = next((t for z, t in self.pending if z == p.zxid), None)
        if txn is None:
            raise QuorumWireError(f"COMMITANDACTIVATE 0x{p.zxid:x} of no pending proposal")
        self.configs.activates(p.zxid, txn, leader)
        self._commit(p.zxid)

    def _log_and_ack(self, zxid: int, txn: bytes) -> None:
        self.replica.log(zxid, txn)
        self._acks.append((zxid, zxid))

    def _latency(self, summary: Summary, txn: bytes) -> None:
        # From the leader's wall clock to ours: skew can make it negative (3.8 drops those).
        latency = self.clock() - txn_time_ms(txn)
        if latency >= 0:
            summary.add(latency)

    def _commit(self, zxid: int) -> None:
        if self.phase is not Phase.BROADCAST and self._logging:
            # A DIFF's history, or anything after NEWLEADER: applied at
            # UPTODATE, in order (3.8's packetsCommitted).
            self._commits_at_uptodate.append(zxid)
            return
        self._apply_head(zxid)

    def _apply_head(self, zxid: int) -> None:
        if not self.pending or self.pending[0][0] != zxid:
            head = f"0x{self.pending[0][0]:x}" if self.pending else "nothing"
            raise QuorumWireError(f"COMMIT 0x{zxid:x} but the next pending proposal is {head}")
        _, txn = self.pending.popleft()
        if self.phase is Phase.BROADCAST:
            self.metrics.learner_commit_received.add()
            self._latency(self.metrics.commit_propagation_latency, txn)
        self.replica.apply(zxid, txn)
        self._applied(zxid)

    def _applied(self, zxid: int) -> None:
        config = self.configs.applied(zxid)
        if config is not None:
            self.stop(f"the config of version 0x{config.version:x} changes my role")

    def _inform(self, p: QuorumPacket) -> None:
        if p.data is None or len(p.data) < TXN_HEADER_SIZE:
            raise QuorumWireError("INFORM without a txn")
        self._rising(p)
        if self.phase is Phase.BROADCAST:
            self.metrics.learner_commit_received.add()
            self._latency(self.metrics.commit_propagation_latency, p.data)
            if self.logs_txns:
                self.replica.log(p.zxid, p.data)
            self.replica.apply(p.zxid, p.data)
            self._applied(p.zxid)
            return
        self.pending.append((p.zxid, p.data))
        if self.phase is Phase.NEWLEADER and self.logs_txns:
            self.replica.log(p.zxid, p.data)
        self._commit(p.zxid)

    def _newleader(self, p: QuorumPacket) -> None:
        if epoch_of(p.zxid) != self.new_epoch:
            self.stop(f"NEWLEADER for epoch {epoch_of(p.zxid)}, expected {self.new_epoch}")
            return
        self.configs.newleader(p.data)
        replica = self.replica
        replica.mark_epoch_update()
        if self._snapshot_needed:
            replica.save_snapshot()
            self._unsaved = False
        self._logging = True
        self.phase = Phase.NEWLEADER
        last = -1
        for zxid, txn in self.pending:
            if self.observer and not self.logs_txns:
                continue
            replica.log(zxid, txn)
            if not self.observer:
                self._acks_after_newleader.append(zxid)
            last = zxid
        # currentEpoch and the ACK of NEWLEADER wait until everything received is durable (see durable).
        self._acks.append((last, p.zxid))
        self.durable(self._durable_zxid)

    def _uptodate(self) -> None:
        for zxid in self._commits_at_uptodate:
            self._apply_head(zxid)
            if self.phase is Phase.DONE:
                return
        self._commits_at_uptodate.clear()
        config = self.configs.uptodate()  # 3.8 takes the leader's config here (its processReconfig)
        if config is not None:
            self.stop(f"the config of version 0x{config.version:x} changes my role")
            return
        self.phase = Phase.BROADCAST
        self.link.send(QuorumPacket(PacketType.ACK, first_zxid_of(self.new_epoch)))
        took_ms = self._sync.done(self.clock(), self.myid)
        (self.metrics.observer_sync_time if self.observer else self.metrics.follower_sync_time).add(took_ms)
        self.on_serving()

def _name(kind: int) -> str:
    try:
        return PacketType(kind).name
    except ValueError:
        return str(kind)
