# -*- test-case-name: tests.unit.test_zab_leader -*-
"""The leader's discovery and synchronization (protocol doc 4.4, 4.5).

- **Discovery.** A new epoch is chosen once the leader and a quorum of
  voters have connected: one more than the highest acceptedEpoch among them
  (ZooKeeper's getEpochToPropose). It is persisted as acceptedEpoch first,
  then sent as LEADERINFO.
- **Synchronization.** Once a quorum has sent ACKEPOCH (none of them ahead
  of the leader), currentEpoch is persisted and every learner is synced
  (zabd.quorum.leader_sync). A quorum of NEWLEADER acks, counting the
  leader, ends it: the leader serves and sends UPTODATE. Later learners go
  straight through.
"""
from __future__ import annotations

import enum
from collections.abc import Callable
from typing import Protocol

from twisted.logger import Logger

from zabd.membership.verifier import QuorumVerifier
from zabd.quorum.configchange import has_quorums, restamped, verifiers_in_force
from zabd.quorum.leader_sync import SyncSource, synchronize
from zabd.quorum.learnerhandler import LearnerHandler, Stage
from zabd.core.zxid import first_zxid_of

log = Logger()


class Phase(enum.Enum):
    """Where a leader is: choosing an epoch, syncing a quorum, serving, or stepped down."""

    DISCOVERY = "discovery"
    SYNC = "sync"
    BROADCAST = "broadcast"
    DONE = "done"


class DiscoveryCore(SyncSource, Protocol):
    """What discovery and sync need of their leader (zabd.quorum.leader.Leader is one)."""

    myid: int
    verifier: QuorumVerifier
    phase: Phase
    handlers: list[LearnerHandler]
    #: A voter's newer acceptedEpoch made this leader step down.
    stepped_down_for_promise: bool

    def see(self, verifier: QuorumVerifier) -> None: ...

    def start_broadcast(self) -> None: ...

    def stop(self, reason: str) -> None: ...


class Discovery:
    """The quorums of discovery and sync: voters connected, ACKEPOCHs, NEWLEADER acks.

    What a learner's report does depends on the leader's phase; the tables at the
    end of the module say which method answers it.
    """

    def __init__(self, core: DiscoveryCore) -> None:
        self.core = core
        self.epoch_candidate = core.replica.accepted_epoch + 1
        self.connected: set[int] = {core.myid}
        self.epoch_acks: set[int] = {core.myid}
        self.newleader_acks: set[int] = {core.myid}
        self.epoch_acks_done = False

    # -- events, dispatched on the leader's phase by the tables below ----------

    def learner_info(self, handler: LearnerHandler) -> None:
        if handler.sid == self.core.myid:
            handler.close("a learner with my own id")
            return
        _ON_LEARNER_INFO[self.core.phase](self, handler)

    def epoch_acked(self, handler: LearnerHandler, current_epoch: int | None, last_zxid: int) -> None:
        _ON_ACKEPOCH[self.core.phase](self, handler, current_epoch, last_zxid)

    def newleader_acked(self, handler: LearnerHandler) -> None:
        _ON_NEWLEADER_ACK[self.core.phase](self, handler)

    # -- learner info ------------------------------------------------------------

    def _count_for_epoch(self, handler: LearnerHandler) -> None:
        self.epoch_candidate = max(self.epoch_candidate, handler.accepted_epoch + 1)
        if handler.is_voter:
            assert handler.sid is not None
            self.connected.add(handler.sid)
        if self.core.verifier.contains_quorum(self.connected):
            self._choose_epoch()

    def _join_late(self, handler: LearnerHandler) -> None:
        """The epoch is chosen: LEADERINFO at once, unless the learner promised a newer one."""
        if handler.accepted_epoch > self.core.epoch:
            self._newer_promise(handler)
            return
        handler.send_leader_info(self.core.epoch)

    def _newer_promise(self, handler: LearnerHandler) -> None:
        """A learner accepted a newer epoch (its leader died before any LEADERINFO went out).

        It would refuse mine forever, as 3.8's learners do, and 3.8's leader keeps its epoch: that
        peer never joins. A voter that does not follow me already makes me step down, and the next
        election chooses an epoch above its promise. Anything else is an impostor: closed.
        """
        sid = handler.sid
        following = any(h is not handler and h.sid == sid and h.forwarding for h in self.core.handlers)
        if not handler.is_voter or following:
            handler.close(f"claims accepted epoch {handler.accepted_epoch} while "
                          + ("sid {sid} follows me" if following else "not a voter").format(sid=sid))
            return
        self.core.stepped_down_for_promise = True
        self.core.stop(f"learner {sid} accepted epoch {handler.accepted_epoch}, above mine")

    def _choose_epoch(self) -> None:
        core = self.core
        core.epoch = self.epoch_candidate
        core.replica.set_accepted_epoch(core.epoch)
        if core.verifier.version == 0 and core.last_seen.version == 0:
            # As 3.8 (ZOOKEEPER-1783): a static config gets the new epoch's zxid as its version.
            core.see(restamped(core.verifier, first_zxid_of(core.epoch)))
        core.phase = Phase.SYNC
        log.info("Leader {myid} proposes epoch {epoch}", myid=core.myid, epoch=core.epoch)
        for handler in core.handlers:
            if handler.stage is Stage.EPOCH:
                handler.send_leader_info(core.epoch)

    # -- ACKEPOCH -------------------------------------------------------------------

    def _ackepoch_too_early(self, handler: LearnerHandler, current_epoch: int | None, last_zxid: int) -> None:
        handler.close("ACKEPOCH before LEADERINFO")

    def _sync_at_once(self, handler: LearnerHandler, current_epoch: int | None, last_zxid: int) -> None:
        synchronize(self.core, handler)

    def _count_epoch_ack(self, handler: LearnerHandler, current_epoch: int | None, last_zxid: int) -> None:
        if self.epoch_acks_done:
            synchronize(self.core, handler)
            return
        core = self.core
        replica = core.replica
        if current_epoch is not None:
            mine = (replica.current_epoch, replica.last_logged_zxid)
            if (current_epoch, last_zxid) > mine:
                # The wrong peer won the election: step down, as 3.8's leader does.
                core.stop(f"learner {handler.sid} is ahead of me: epoch {current_epoch}, zxid 0x{last_zxid:x}")
                return
            if last_zxid != -1 and handler.is_voter:
                assert handler.sid is not None
                self.epoch_acks.add(handler.sid)
        if core.verifier.contains_quorum(self.epoch_acks):
            self.epoch_acks_done = True
            replica.set_current_epoch(core.epoch)
            for waiting in core.handlers:
                if waiting.stage is Stage.ACKED_EPOCH:
                    synchronize(core, waiting)

    # -- the ACK of NEWLEADER ----------------------------------------------------------

    def _count_newleader_ack(self, handler: LearnerHandler) -> None:
        core = self.core
        if not handler.observer and handler.sid is not None:
            self.newleader_acks.add(handler.sid)
        if has_quorums(verifiers_in_force(core.verifier, core.last_seen), self.newleader_acks):
            core.start_broadcast()

    def _uptodate_at_once(self, handler: LearnerHandler) -> None:
        handler.send_uptodate()


# What each event does in each phase. DONE is unreachable in practice (a leader
# that stepped down closed its handlers) and keeps the answer it always had.
_ON_LEARNER_INFO: dict[Phase, Callable[[Discovery, LearnerHandler], None]] = {
    Phase.DISCOVERY: Discovery._count_for_epoch,
    Phase.SYNC: Discovery._join_late,
    Phase.BROADCAST: Discovery._join_late,
    Phase.DONE: Discovery._join_late,
}
_ON_ACKEPOCH: dict[Phase, Callable[[Discovery, LearnerHandler, int | None, int], None]] = {
    Phase.DISCOVERY: Discovery._ackepoch_too_early,
    Phase.SYNC: Discovery._count_epoch_ack,
    Phase.BROADCAST: Discovery._sync_at_once,
    Phase.DONE: Discovery._count_epoch_ack,
}
_ON_NEWLEADER_ACK: dict[Phase, Callable[[Discovery, LearnerHandler], None]] = {
    Phase.DISCOVERY: Discovery._count_newleader_ack,
    Phase.SYNC: Discovery._count_newleader_ack,
    Phase.BROADCAST: Discovery._uptodate_at_once,
    Phase.DONE: Discovery._count_newleader_ack,
}
