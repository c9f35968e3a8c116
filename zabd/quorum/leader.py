# -*- test-case-name: tests.unit.test_zab_leader,tests.unit.test_zab_leader_broadcast -*-
"""The leader's side of Zab (protocol doc 4.4, 4.7, 4.8): one leadership, from election to step-down.

``Leader`` holds what its phases share (the replica, the configs, the
learner handlers) and composes them: discovery and sync
(zabd.quorum.leader_discovery, zabd.quorum.leader_sync), then broadcast
(zabd.quorum.leader_broadcast). It is sans-IO: packets and closes go out
as effects (zabd.quorum.leader_effects) into the sink it was given, and
what learners ask of the client side goes to its ``ServingHooks``.

- **Liveness.** ``tick`` runs every half tick: it pings, and once a tick it
  checks that a quorum of voters was heard from within syncLimit ticks.
- **Reconfig** (zabd.quorum.configchange). While a proposed config is not in
  force, proposals and NEWLEADER need a quorum of both; a committed reconfig
  goes out with the leader of the new config, and this leader steps down if
  that is someone else.
"""
from __future__ import annotations

from collections.abc import Callable, Iterator

from twisted.logger import Logger

from zabd.jute.records import Id
from zabd.membership.verifier import QuorumVerifier
from zabd.metrics.server import ServerMetrics
from zabd.quorum.configchange import designated_leader, has_quorums, verifiers_in_force
from zabd.quorum.leader_broadcast import Broadcast, Proposal
from zabd.quorum.leader_discovery import Discovery, Phase
from zabd.quorum.leader_effects import EffectSink, perform
from zabd.quorum.leader_hooks import ServingHooks
from zabd.quorum.learnerhandler import LearnerHandler, Stage
from zabd.quorum.packets import PacketType, QuorumPacket, RequestForward
from zabd.quorum.roles import PacketLink, Replica, Timing
from zabd.core.zxid import first_zxid_of
from zabd.quorum.syncplan import OnDiskHistory

__all__ = ["Leader", "Phase", "Proposal"]

log = Logger()


class Leader:
    """One leadership: the learners' handlers, the epoch, the phase, and the configs it sees."""

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
        clients: ServingHooks | None = None,
        on_disk_history: OnDiskHistory | None = None,
        last_seen: QuorumVerifier | None = None,
        on_config_seen: Callable[[QuorumVerifier], None] = lambda verifier: None,
        on_config: Callable[[QuorumVerifier, int], object] = lambda verifier, leader: None,
        metrics: ServerMetrics | None = None,
        emit: EffectSink = perform,
    ) -> None:
        self.myid = myid
        self.metrics = metrics if metrics is not None else ServerMetrics()
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
        #: Where learners' requests, revalidations and touches go (the server, once it runs).
        self.clients = clients if clients is not None else ServingHooks()
        self.on_disk_history = on_disk_history
        #: Where packets and closes go, in order (zabd.quorum.leader_effects).
        self.emit = emit
        self.phase = Phase.DISCOVERY
        self.handlers: list[LearnerHandler] = []
        self.epoch = -1
        self._started_ms = clock()
        self._ticks = 0
        self.serving_since_ms: int | None = None
        #: A voter's newer acceptedEpoch made this leader step down (the one unseating a learner may cause).
        self.stepped_down_for_promise = False
        self.discovery = Discovery(self)
        self.broadcast = Broadcast(self)

    # -- connections --------------------------------------------------------

    def learner_connected(self, link: PacketLink) -> LearnerHandler:
        handler = LearnerHandler(self, link, self.clock())
        self.handlers.append(handler)
        return handler

    def handler_closed(self, handler: LearnerHandler) -> None:
        if handler in self.handlers:
            self.handlers.remove(handler)

    # -- what handlers report (zabd.quorum.learnerhandler.LeaderSide) ----------

    def learner_info(self, handler: LearnerHandler) -> None:
        self.discovery.learner_info(handler)

    def epoch_acked(self, handler: LearnerHandler, current_epoch: int | None, last_zxid: int) -> None:
        self.discovery.epoch_acked(handler, current_epoch, last_zxid)

    def newleader_acked(self, handler: LearnerHandler) -> None:
        self.discovery.newleader_acked(handler)

    def acked(self, handler: LearnerHandler, zxid: int) -> None:
        # Any follower's ACK is kept: one outside the config in force may be a
        # voter of the config being proposed. The verifiers count voters only.
        if handler.sid is not None:  # (the handler passes on followers' ACKs only)
            self.broadcast.ack(handler.sid, zxid)

    def forwarded(self, handler: LearnerHandler, forward: RequestForward, auth: list[Id]) -> None:
        self.clients.hooks.forwarded(handler, forward, auth)

    def revalidate(self, handler: LearnerHandler, session_id: int, timeout_ms: int) -> bool:
        self.metrics.revalidate_count.add()
        return self.clients.hooks.revalidate(handler, session_id, timeout_ms)

    def touched(self, touches: list[tuple[int, int]]) -> None:
        self.clients.hooks.touched(touches)

    # -- the end of sync ---------------------------------------------------------

    def start_broadcast(self) -> None:
        self.phase = Phase.BROADCAST
        self.serving_since_ms = self.clock()
        self.broadcast.last_proposed = max(self.broadcast.last_proposed, first_zxid_of(self.epoch))
        log.info("Leader {myid} serves epoch {epoch}", myid=self.myid, epoch=self.epoch)
        if self.last_seen.version > self.verifier.version:
            # The config NEWLEADER carried (a reconfig left pending, or a first
            # version) is in force once a quorum of both acked it.
            new = self.last_seen
            leader = designated_leader(self.myid, new, self.discovery.newleader_acks, [])
            self.activate(new, leader)
            if leader != self.myid:
                self.stop(f"the config of version 0x{new.version:x} is led by {leader}")
                return
        self.on_serving(self.epoch)
        for handler in self.handlers:
            if handler.stage is Stage.UPTODATE:
                handler.send_uptodate()

    # -- configs ---------------------------------------------------------------

    def see(self, verifier: QuorumVerifier) -> None:
        self.last_seen = verifier
        self.on_config_seen(verifier)

    def activate(self, verifier: QuorumVerifier, leader: int) -> None:
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
        self.broadcast.propose(zxid, txn, new_config)

    def durable(self, zxid: int) -> None:
        """The local log holds everything up to ``zxid``: the leader's own ACKs."""
        self.broadcast.durable(zxid)

    def outstanding_proposals(self) -> Iterator[tuple[int, bytes]]:
        return self.broadcast.outstanding_proposals()

    @property
    def outstanding(self) -> dict[int, Proposal]:
        return self.broadcast.outstanding

    @property
    def last_proposed(self) -> int:
        return self.broadcast.last_proposed

    @property
    def last_committed(self) -> int:
        return self.broadcast.last_committed

    @property
    def proposal_sizes(self) -> tuple[int, int, int]:
        """Last, smallest and largest txn proposed (mntr, stat); -1 before any."""
        return self.broadcast.proposal_sizes

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
