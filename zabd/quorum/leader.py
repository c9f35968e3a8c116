# -*- test-case-name: tests.unit.test_zab -*-
"""The leader's side of Zab (protocol doc 4.4, 4.7, 4.8): epochs, quorums, commits.

- **Discovery.** A new epoch is chosen once the leader and a quorum of
  voters have connected: one more than the highest acceptedEpoch among them
  (ZooKeeper's getEpochToPropose). It is persisted as acceptedEpoch first.
- **Synchronization.** Once a quorum has sent ACKEPOCH (none of them ahead
  of the leader), currentEpoch is persisted and every learner is synced
  (``LearnerHandler.synchronize``). A quorum of NEWLEADER acks, counting the
  leader, starts serving and sends UPTODATE. Later learners go straight
  through.
- **Broadcast.** ``propose`` sends PROPOSAL to the forwarding followers and
  logs the txn locally; the local durable report is the leader's own ACK. A
  quorum of ACKs commits, strictly in zxid order: COMMIT to followers,
  INFORM to observers, and the txn applied locally.
- **Liveness.** ``tick`` runs every half tick: it pings, and once a tick it
  checks that a quorum of voters was heard from within syncLimit ticks.
- **Reconfig** (zabd.quorum.configchange). While a proposed config is not in
  force, proposals and NEWLEADER need a quorum of both; a committed reconfig
  goes out as COMMITANDACTIVATE / INFORMANDACTIVATE with the leader of the
  new config, and this leader steps down if that is someone else.
"""
from __future__ import annotations

import enum
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field

from twisted.logger import Logger

from zabd.membership.verifier import QuorumVerifier
from zabd.quorum.configchange import designated_leader, has_quorums, restamped, verifiers_in_force
from zabd.jute.records import Id
from zabd.metrics.server import ServerMetrics
from zabd.quorum.learnerhandler import LearnerHandler, Stage, send_commit
from zabd.quorum.packets import PacketType, QuorumPacket, RequestForward, encode_packet
from zabd.quorum.roles import PacketLink, Replica, Timing, first_zxid_of
from zabd.quorum.syncplan import OnDiskHistory

log = Logger()


class Phase(enum.Enum):
    DISCOVERY = "discovery"
    SYNC = "sync"
    BROADCAST = "broadcast"
    DONE = "done"


@dataclass(slots=True)
class Proposal:
    txn: bytes
    verifiers: tuple[QuorumVerifier, ...]
    acks: set[int] = field(default_factory=set)
    #: The config a reconfig proposes.
    new_config: QuorumVerifier | None = None
    #: The leader's clock when it was proposed (quorum_ack_latency, ack_latency).
    proposed_ms: int = 0


class Leader:
    def __init__(
        self,
        myid: int,
        replica: Replica,
        verifier: QuorumVerifier,
        clock: Callable[[], int],
        timing: Timing,
        *,
        on_exit: Callable[[str], None],
        on_serving: Callable[[int], None] = lambda epoch: None,
        on_request: Callable[[LearnerHandler, RequestForward, list[Id]], None] = lambda h, r, a: None,
        on_revalidate: Callable[[LearnerHandler, int, int], bool] = lambda h, s, t: False,
        on_touch: Callable[[list[tuple[int, int]]], None] = lambda touches: None,
        on_disk_history: OnDiskHistory | None = None,
        last_seen: QuorumVerifier | None = None,
        on_config_seen: Callable[[QuorumVerifier], None] = lambda verifier: None,
        on_config: Callable[[QuorumVerifier, int], object] = lambda verifier, leader: None,
        metrics: ServerMetrics | None = None,
    ) -> None:
        self.myid = myid
        self.metrics = metrics if metrics is not None else ServerMetrics()
        self._ack_keys: dict[int, str] = {}  # sid -> its ack_latency key, made once
        self.replica = replica
        self.verifier = verifier
        #: The newest config seen, in force or only proposed.
        self.last_seen = verifier if last_seen is None or last_seen.version <= verifier.version else last_seen
        #: Told of a config proposed, and of one put in force (with its leader).
        self.on_config_seen = on_config_seen
        self.on_config = on_config
        self.clock = clock
        self.timing = timing
        self.on_exit = on_exit
        self.on_serving = on_serving
        self.on_request = on_request
        self.on_revalidate = on_revalidate
        self.touched = on_touch
        self.on_disk_history = on_disk_history
        self.phase = Phase.DISCOVERY
        self.handlers: list[LearnerHandler] = []
        self.epoch = -1
        self._epoch_candidate = replica.accepted_epoch + 1
        self._connected: set[int] = {myid}
        self._epoch_acks: set[int] = {myid}
        self._newleader_acks: set[int] = {myid}
        self._epoch_acks_done = False
        self._started_ms = clock()
        self._ticks = 0
        self.outstanding: dict[int, Proposal] = {}
        self.last_proposed = replica.last_processed_zxid
        self.last_committed = replica.last_processed_zxid
        self._durable_zxid = replica.last_logged_zxid
        #: Last, smallest and largest txn proposed (mntr, stat); -1 before any.
        self.proposal_sizes = (-1, -1, -1)
        self.serving_since_ms: int | None = None
        #: A voter's newer acceptedEpoch made this leader step down (the one unseating a learner may cause).
        self.stepped_down_for_promise = False

    # -- connections --------------------------------------------------------

    def learner_connected(self, link: PacketLink) -> LearnerHandler:
        handler = LearnerHandler(self, link, self.clock())
        self.handlers.append(handler)
        return handler

    def handler_closed(self, handler: LearnerHandler) -> None:
        if handler in self.handlers:
            self.handlers.remove(handler)

    # -- discovery and synchronization ---------------------------------------

    def learner_info(self, handler: LearnerHandler) -> None:
        if handler.sid == self.myid:
            handler.close("a learner with my own id")
            return
        if self.phase is not Phase.DISCOVERY:
            if handler.accepted_epoch > self.epoch:
                self._newer_promise(handler)
                return
            handler.send_leader_info(self.epoch)
            return
        self._epoch_candidate = max(self._epoch_candidate, handler.accepted_epoch + 1)
        if handler.is_voter:
            assert handler.sid is not None
            self._connected.add(handler.sid)
        if self.verifier.contains_quorum(self._connected):
            self._choose_epoch()

    def _newer_promise(self, handler: LearnerHandler) -> None:
        """A learner accepted a newer epoch (its leader died before any LEADERINFO went out).

        It would refuse mine forever, as 3.8's learners do, and 3.8's leader keeps its epoch: that
        peer never joins. A voter that does not follow me already makes me step down, and the next
        election chooses an epoch above its promise. Anything else is an impostor: closed.
        """
        sid = handler.sid
        following = any(h is not handler and h.sid == sid and h.forwarding for h in self.handlers)
        if not handler.is_voter or following:
            handler.close(f"claims accepted epoch {handler.accepted_epoch} while "
                          + ("sid {sid} follows me" if following else "not a voter").format(sid=sid))
            return
        self.stepped_down_for_promise = True
        self.stop(f"learner {sid} accepted epoch {handler.accepted_epoch}, above mine")

    def _choose_epoch(self) -> None:
        self.epoch = self._epoch_candidate
        self.replica.set_accepted_epoch(self.epoch)
        if self.verifier.version == 0 and self.last_seen.version == 0:
            # As 3.8 (ZOOKEEPER-1783): a static config gets the new epoch's zxid as its version.
            self._see(restamped(self.verifier, first_zxid_of(self.epoch)))
        self.phase = Phase.SYNC
        log.info("Leader {myid} proposes epoch {epoch}", myid=self.myid, epoch=self.epoch)
        for handler in self.handlers:
            if handler.stage is Stage.EPOCH:
                handler.send_leader_info(self.epoch)

    def epoch_acked(self, handler: LearnerHandler, current_epoch: int | None, last_zxid: int) -> None:
        if self.phase is Phase.DISCOVERY:
            handler.close("ACKEPOCH before LEADERINFO")
            return
        if self.phase is Phase.BROADCAST or self._epoch_acks_done:
            handler.synchronize()
            return
        replica = self.replica
        if current_epoch is not None:
            mine = (replica.current_epoch, replica.last_logged_zxid)
            if (current_epoch, last_zxid) > mine:
                # The wrong peer won the election: step down, as 3.8's leader does.
                self.stop(f"learner {handler.sid} is ahead of me: epoch {current_epoch}, zxid 0x{last_zxid:x}")
                return
            if last_zxid != -1 and handler.is_voter:
                assert handler.sid is not None
                self._epoch_acks.add(handler.sid)
        if self.verifier.contains_quorum(self._epoch_acks):
            self._epoch_acks_done = True
            replica.set_current_epoch(self.epoch)
            for waiting in self.handlers:
                if waiting.stage is Stage.ACKED_EPOCH:
                    waiting.synchronize()

    def newleader_acked(self, handler: LearnerHandler) -> None:
        if self.phase is Phase.BROADCAST:
            handler.send_uptodate()
            return
        if not handler.observer and handler.sid is not None:
            self._newleader_acks.add(handler.sid)
        if has_quorums(verifiers_in_force(self.verifier, self.last_seen), self._newleader_acks):
            self._start_broadcast()

    def _start_broadcast(self) -> None:
        self.phase = Phase.BROADCAST
        self.serving_since_ms = self.clock()
        self.last_proposed = max(self.last_proposed, first_zxid_of(self.epoch))
        log.info("Leader {myid} serves epoch {epoch}", myid=self.myid, epoch=self.epoch)
        if self.last_seen.version > self.verifier.version:
            # The config NEWLEADER carried (a reconfig left pending, or a first
            # version) is in force once a quorum of both acked it.
            new = self.last_seen
            leader = designated_leader(self.myid, new, self._newleader_acks, [])
            self._activate(new, leader)
            if leader != self.myid:
                self.stop(f"the config of version 0x{new.version:x} is led by {leader}")
                return
        self.on_serving(self.epoch)
        for handler in self.handlers:
            if handler.stage is Stage.UPTODATE:
                handler.send_uptodate()

    # -- configs ---------------------------------------------------------------

    def _see(self, verifier: QuorumVerifier) -> None:
        self.last_seen = verifier
        self.on_config_seen(verifier)

    def _activate(self, verifier: QuorumVerifier, leader: int) -> None:
        self.verifier = self.last_seen = verifier
        for handler in self.handlers:
            handler.is_voter = not handler.observer and handler.sid in verifier.voting_members
        log.info("Leader {myid}: config 0x{version:x} in force, led by {leader}",
                 myid=self.myid, version=verifier.version, leader=leader)
        self.on_config(verifier, leader)

    def is_quorum_synced(self, verifier: QuorumVerifier) -> bool:
        """Whether this leader and the synced followers hold a quorum of ``verifier`` (3.8's isQuorumSynced)."""
        synced = {self.myid} | {h.sid for h in self.handlers
                                if h.sid is not None and not h.observer and h.stage is Stage.BROADCAST}
        return verifier.contains_quorum(synced)

    # -- broadcast -----------------------------------------------------------

    def propose(self, zxid: int, txn: bytes, new_config: QuorumVerifier | None = None) -> None:
        """Send one txn to the followers and log it here; it commits on a quorum of ACKs.

        :param new_config: the config a reconfig txn proposes.
        """
        if self.phase is not Phase.BROADCAST:
            raise RuntimeError("proposing before the leader serves")
        if zxid <= self.last_proposed:
            raise ValueError(f"proposal 0x{zxid:x} after 0x{self.last_proposed:x}: zxids must rise")
        # In zxid order, so the oldest outstanding proposal is the first key.
        if new_config is not None:
            self._see(new_config)
        self.outstanding[zxid] = Proposal(txn, verifiers_in_force(self.verifier, self.last_seen),
                                          new_config=new_config, proposed_ms=self.clock())
        self.metrics.proposal_count.add()
        self.last_proposed = zxid
        size = len(txn)
        last, low, high = self.proposal_sizes
        self.proposal_sizes = (size, size if low < 0 else min(low, size), max(high, size))
        packet = encode_packet(QuorumPacket(PacketType.PROPOSAL, zxid, txn))  # once for every follower
        for handler in self.handlers:
            if handler.forwarding and not handler.observer:
                handler.send_encoded(packet)
        self.replica.log(zxid, txn)

    def outstanding_proposals(self) -> Iterator[tuple[int, bytes]]:
        for zxid, proposal in self.outstanding.items():
            yield zxid, proposal.txn

    def durable(self, zxid: int) -> None:
        """The local log holds everything up to ``zxid``: the leader's own ACKs."""
        self._durable_zxid = max(self._durable_zxid, zxid)
        for pending, proposal in self.outstanding.items():
            if pending > zxid:
                break
            proposal.acks.add(self.myid)
        self._commit_ready()

    def acked(self, handler: LearnerHandler, zxid: int) -> None:
        # Any follower's ACK is kept: one outside the config in force may be a
        # voter of the config being proposed. The verifiers count voters only.
        if handler.sid is not None:  # (the handler passes on followers' ACKs only)
            self._ack(handler.sid, zxid)

    def _ack(self, sid: int, zxid: int) -> None:
        proposal = self.outstanding.get(zxid)
        if proposal is None:
            return  # committed already, or a proposal sent during sync
        proposal.acks.add(sid)
        key = self._ack_keys.get(sid)
        if key is None:
            key = self._ack_keys[sid] = str(sid)
        self.metrics.ack_latency.add(key, self.clock() - proposal.proposed_ms)
        self._commit_ready()

    def _commit_ready(self) -> None:
        # Strictly in order: the oldest outstanding proposal commits first.
        outstanding = self.outstanding
        while outstanding:
            zxid = next(iter(outstanding))
            proposal = outstanding[zxid]
            if not has_quorums(proposal.verifiers, proposal.acks):
                return
            del outstanding[zxid]
            self.last_committed = zxid
            metrics = self.metrics
            metrics.commit_count.add()
            metrics.quorum_ack_latency.add(self.clock() - proposal.proposed_ms)
            new = proposal.new_config
            if new is not None:
                leader = designated_leader(self.myid, new, proposal.acks, (p.acks for p in outstanding.values()))
                send_commit(self.handlers, zxid, proposal.txn, leader)
                self.replica.apply(zxid, proposal.txn)
                self._activate(new, leader)
                if leader != self.myid:
                    self.stop(f"the config of version 0x{new.version:x} is led by {leader}")
                    return
                continue
            send_commit(self.handlers, zxid, proposal.txn, None)
            self.replica.apply(zxid, proposal.txn)

    def synced(self, *, observers: bool) -> int:
        """Learners in broadcast (mntr's synced_followers / synced_observers)."""
        return sum(1 for h in self.handlers if h.stage is Stage.BROADCAST and h.observer is observers)

    # -- liveness ------------------------------------------------------------

    def tick(self) -> None:
        """Every half tick: ping the learners; once a tick, check for a live quorum."""
        if self.phase is Phase.DONE:
            return
        now = self.clock()
        if self.phase is not Phase.BROADCAST:
            if now - self._started_ms > self.timing.init_ms:
                self.stop(f"no quorum synced within {self.timing.init_ms} ms ({self.phase.value})")
            return
        ping = QuorumPacket(PacketType.PING, self.last_proposed)
        for handler in self.handlers:
            if handler.stage is Stage.BROADCAST:
                handler.send(ping)
        self._ticks += 1
        if self._ticks % 2 == 0:
            live = {self.myid} | {
                h.sid for h in self.handlers
                if not h.observer and h.sid is not None and h.forwarding
                and now - h.last_heard_ms <= self.timing.sync_ms
            }
            if not has_quorums(verifiers_in_force(self.verifier, self.last_seen), live):
                self.stop(f"only {sorted(live)} heard from within {self.timing.sync_ms} ms")

    def stop(self, reason: str) -> None:
        if self.phase is Phase.DONE:
            return
        self.phase = Phase.DONE
        log.info("Leader {myid} steps down: {reason}", myid=self.myid, reason=reason)
        for handler in list(self.handlers):
            handler.close("the leader stepped down")
        self.on_exit(reason)
