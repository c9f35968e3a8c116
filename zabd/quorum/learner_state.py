# -*- test-case-name: tests.unit.test_zab_follower -*-
"""What a learner's phases share: the replica, the proposals in flight, the ACKs waiting for the disk.

The handlers of :mod:`zabd.quorum.learner_sync`, :mod:`zabd.quorum.follower`
and :mod:`zabd.quorum.observer` all act on one :class:`LearnerState`, and
ask for I/O only by adding effects to it (``send``, ``stop``).

Committing is the same for both kinds of learner: a COMMIT applies the oldest
pending proposal, except while a DIFF's history or anything after NEWLEADER
is being logged, when the commits wait for UPTODATE (3.8's packetsCommitted).
"""
from __future__ import annotations

from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field

from twisted.logger import Logger

from zabd.metrics.peertimes import SyncTimer
from zabd.metrics.registry import Summary
from zabd.metrics.server import ServerMetrics
from zabd.quorum.learner_effects import Close, Effect, Exit, Phase, Send, packet_name
from zabd.quorum.learnerconfig import LearnerConfigs
from zabd.quorum.packets import PacketType, QuorumPacket, encode_touches
from zabd.quorum.roles import Replica, Timing, txn_time_ms
from zabd.quorum.snapstream import QuorumWireError
from zabd.storage.logformat import TXN_HEADER_SIZE

log = Logger(namespace="zabd.quorum.learner")  # the learner's lines keep one namespace

#: A PING's answer: the sessions this peer's clients touched since the last one (id, timeout).
Touches = Callable[[], list[tuple[int, int]]]

#: One transition: what a packet legal in a phase does to the learner.
Handler = Callable[["LearnerState", QuorumPacket], None]
#: A learner's transitions: (phase, packet type) -> handler; a pair not listed is illegal.
Transitions = dict[tuple[Phase, int], Handler]


@dataclass(slots=True)
class SyncProgress:
    """What discovery and synchronization remember between packets."""

    #: False after DIFF: the log holds the history, no snapshot at NEWLEADER.
    snapshot_needed: bool = True
    #: The zxid of the SNAP whose stream comes next (-1: none).
    snap_zxid: int = -1
    #: The proposals logged at NEWLEADER: acknowledged right after NEWLEADER is (3.9.4's order).
    acks_after_newleader: list[int] = field(default_factory=list)


class LearnerState:
    """One learner's state between its leader's packets, shared by the handlers of every phase."""

    def __init__(
        self, myid: int, replica: Replica, clock: Callable[[], int], timing: Timing, configs: LearnerConfigs, *,
        observer: bool, logs_txns: bool, touches: Touches, metrics: ServerMetrics,
    ) -> None:
        self.myid = myid
        self.replica = replica
        self.clock = clock
        self.timing = timing
        self.configs = configs
        self.observer = observer
        #: An observer with syncEnabled=false keeps no txn log (it is synced again after a restart).
        self.logs_txns = logs_txns
        self.touches = touches
        self.metrics = metrics
        self.phase = Phase.DISCOVERY
        self.received_any = False
        self.new_epoch = -1
        self.last_heard_ms = clock()
        #: Proposals received and not yet committed, oldest first.
        self.pending: deque[tuple[int, bytes]] = deque()
        #: Commits received during a DIFF sync or after NEWLEADER, applied at UPTODATE.
        self.commits_at_uptodate: list[int] = []
        #: The history goes to the log, not the tree (DIFF, and anything after NEWLEADER): commits wait for UPTODATE.
        self.logging = False
        #: The tree in memory differs from the files until the NEWLEADER snapshot (SNAP, TRUNC).
        self.unsaved = False
        #: How the leader synchronized this learner: "DIFF", "TRUNC" or "SNAP".
        self.sync_mode: str | None = None
        self.sync_timer = SyncTimer("learner", self.last_heard_ms, replica.last_logged_zxid)
        #: ACKs waiting for the log: (zxid that must be durable first, ack zxid).
        self.acks: deque[tuple[int, int]] = deque()
        self.durable_zxid = replica.last_logged_zxid
        self.sync = SyncProgress()
        #: REVALIDATE answers, by session id, in the order asked.
        self.revalidating: dict[int, deque[Callable[[bool], None]]] = {}
        self._effects: list[Effect] = []

    # -- effects -------------------------------------------------------------------

    def send(self, packet: QuorumPacket) -> None:
        self._effects.append(Send(packet))

    def emit(self, effect: Effect) -> None:
        self._effects.append(effect)

    def drain(self) -> list[Effect]:
        """The effects asked for since the last drain, oldest first."""
        effects, self._effects = self._effects, []
        return effects

    def abandon(self) -> None:
        """End quietly: the connection closes and nobody is told."""
        self.phase = Phase.DONE
        self.emit(Close())

    def stop(self, reason: str) -> None:
        """Leave the leader: close, take the replica back to its files if a sync left it ahead, exit."""
        if self.phase is Phase.DONE:
            return
        self.abandon()
        log.info("Learner {myid} leaves the leader: {reason}", myid=self.myid, reason=reason)
        if self.unsaved:
            self.unsaved = False
            try:
                self.replica.reload()
            except Exception:
                log.failure("Learner {myid} cannot reload its files after an unfinished sync", myid=self.myid)
        self.emit(Exit(reason))

    # -- txns ------------------------------------------------------------------------

    def check_rising(self, p: QuorumPacket) -> None:
        """A txn's zxid must be above every one received or logged: the committed log and the log need it."""
        last = self.pending[-1][0] if self.pending else self.replica.last_logged_zxid
        if p.zxid <= last:
            raise QuorumWireError(f"{packet_name(p.type)} 0x{p.zxid:x} after 0x{last:x}: zxids must rise")

    def take_proposal(self, p: QuorumPacket) -> bytes:
        """A PROPOSAL joins the pending ones (its txn is returned); a reconfig's config is seen."""
        if p.data is None or len(p.data) < TXN_HEADER_SIZE:
            raise QuorumWireError("PROPOSAL without a txn")
        self.check_rising(p)
        self.pending.append((p.zxid, p.data))
        self.configs.proposed(p.data)
        return p.data

    def log_and_ack(self, zxid: int, txn: bytes) -> None:
        """Log a proposal; its ACK leaves once the log reports it durable."""
        self.replica.log(zxid, txn)
        self.acks.append((zxid, zxid))

    def commit(self, zxid: int) -> None:
        if self.phase is not Phase.BROADCAST and self.logging:
            # A DIFF's history, or anything after NEWLEADER: applied at
            # UPTODATE, in order (3.8's packetsCommitted).
            self.commits_at_uptodate.append(zxid)
            return
        self.apply_head(zxid)

    def apply_head(self, zxid: int) -> None:
        """Apply the oldest pending proposal, which must be ``zxid``."""
        if not self.pending or self.pending[0][0] != zxid:
            head = f"0x{self.pending[0][0]:x}" if self.pending else "nothing"
            raise QuorumWireError(f"COMMIT 0x{zxid:x} but the next pending proposal is {head}")
        _, txn = self.pending.popleft()
        if self.phase is Phase.BROADCAST:
            self.metrics.learner_commit_received.add()
            self.latency(self.metrics.commit_propagation_latency, txn)
        self.replica.apply(zxid, txn)
        self.applied(zxid)

    def applied(self, zxid: int) -> None:
        """``zxid`` reached the tree: a config it put in force may end this role."""
        config = self.configs.applied(zxid)
        if config is not None:
            self.stop(f"the config of version 0x{config.version:x} changes my role")

    def latency(self, summary: Summary, txn: bytes) -> None:
        # From the leader's wall clock to ours: skew can make it negative (3.8 drops those).
        latency = self.clock() - txn_time_ms(txn)
        if latency >= 0:
            summary.add(latency)

    def answer_ping(self, p: QuorumPacket) -> None:
        self.send(QuorumPacket(PacketType.PING, p.zxid, encode_touches(self.touches())))
