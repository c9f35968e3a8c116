# -*- test-case-name: tests.unit.test_ensemble_sim -*-
"""One member of an ensemble: LOOKING, then LEADING, FOLLOWING or OBSERVING, and back.

``QuorumPeer`` wires Fast Leader Election to the Zab roles. It owns no
sockets and no clock: the election network, the quorum-port connections, a
scheduler and the replica are given to it, so the same peer runs on real
ports (zabd.server) and on the simulated network (zabd.testing). A role
that ends, for whatever reason, sends the peer back to LOOKING for a new
round, as ZooKeeper's QuorumPeer.run loop does.

Configs (dynamic reconfiguration): the peer holds the config in force and
the last one seen. A newer config arrives in an election notification, in
NEWLEADER, or in a committed reconfig; the peer takes it, tells its owner
(``on_config_changed``, which writes zoo.cfg.dynamic files and updates
addresses), and leaves its role if the leader or its own kind changed. A
peer outside the config follows as a non-voting follower, as in 3.8.
"""
from __future__ import annotations

from collections.abc import Callable

from twisted.logger import Logger

from zabd.election.fle import FastLeaderElection
from zabd.election.links import ElectionNetwork
from zabd.election.messages import ElectionWireError, PeerState, parse_notification
from zabd.election.votes import ArmTimer, Decided, Effect, NewerConfig, ReconnectAll, Send, Vote
from zabd.ensemble.transport import Cancellable, QuorumNetwork, Scheduler, Stream, StreamLink
from zabd.membership.verifier import QuorumVerifier, verifier_from_text
from zabd.logs import ELECTION
from zabd.metrics.peertimes import PeerTimes
from zabd.metrics.server import ServerMetrics
from zabd.quorum.configchange import install_config_node
from zabd.quorum.leader import Leader
from zabd.quorum.leader_hooks import ServingHooks
from zabd.quorum.learner import Learner
from zabd.quorum.learnerhandler import LearnerHandler
from zabd.quorum.roles import Replica, Timing

log = Logger()

#: Between a learner's attempts to reach its leader (3.8's leaderConnectDelayDuringRetryMs).
CONNECT_RETRY_MS = 100


class QuorumPeer:
    def __init__(
        self,
        myid: int,
        verifier: QuorumVerifier,
        replica: Replica,
        scheduler: Scheduler,
        clock: Callable[[], int],
        timing: Timing,
        election: ElectionNetwork,
        quorum: QuorumNetwork,
        *,
        observer: bool = False,
        observer_logs: bool = True,
        last_seen: QuorumVerifier | None = None,
        metrics: ServerMetrics | None = None,
    ) -> None:
        self.myid = myid
        #: The process's metrics; they outlive every role, as ZooKeeper's static ServerMetrics.
        self.metrics = metrics if metrics is not None else ServerMetrics()
        #: The config in force, and the newest one seen (proposed, maybe never committed).
        self.verifier = verifier
        self.last_seen = last_seen if last_seen is not None and last_seen.version > verifier.version else verifier
        self.replica = replica
        self.scheduler = scheduler
        self.clock = clock
        self.timing = timing
        self.election = election
        self.quorum = quorum
        self.observer = observer
        self.observer_logs = observer_logs
        self.fle = FastLeaderElection(myid, verifier, observer=observer)
        self.state = PeerState.LOOKING
        self.leader: Leader | None = None
        self.learner: Learner | None = None
        self.leader_id: int | None = None
        self.serving = False
        self.stopped = False
        #: The epochs this peer has served in, in order (tests check they rise).
        self.epochs_served: list[int] = []
        #: How each sync as a learner went ("DIFF", "TRUNC", "SNAP"), in order.
        self.sync_modes: list[str] = []
        #: Told whenever ``serving`` changes (the client side follows it).
        self.on_serving_changed: Callable[[QuorumPeer], None] = lambda peer: None
        #: Told of each config seen (False) or put in force (True).
        self.on_config_changed: Callable[[QuorumVerifier, bool], None] = lambda verifier, in_force: None
        self._election_timer: Cancellable | None = None
        self._tick_timer: Cancellable | None = None
        self._dial_timer: Cancellable | None = None
        self._role_serial = 0
        #: A role ended with txns still on their way to the disk: LOOKING waits for them.
        self._awaiting_flush = False
        self.times = PeerTimes(self.metrics, clock())
        replica.set_durable_callback(self._durable)

    # -- life ----------------------------------------------------------------

    def start(self) -> None:
        install_config_node(self.replica.tree, self.verifier, self.clock())
        self._look()

    def stop(self) -> None:
        self.stopped = True
        self._end_role("stopped")
        self._cancel(self._election_timer)

    # -- election ------------------------------------------------------------

    def election_message(self, sid: int, payload: bytes) -> None:
        if self.stopped or self._awaiting_flush:
            return  # (between roles: the sender tries again on its timeout)
        try:
            notification = parse_notification(payload)
        except ElectionWireError as e:
            log.warn("Dropping a notification from {sid}: {error}", sid=sid, error=str(e))
            return
        self._run(self.fle.receive(self.clock(), sid, notification))

    def _look(self) -> None:
        self.times.looking(self.clock())
        self.state = PeerState.LOOKING
        self.serving = False
        self.leader_id = None
        replica = self.replica
        replica.catch_up()
        self._run(self.fle.look(self.clock(), replica.last_logged_zxid, replica.current_epoch))

    def _run(self, effects: list[Effect]) -> None:
        for effect in effects:
            if isinstance(effect, Send):
                self.election.send(effect.sid, effect.notification.encode())
            elif isinstance(effect, ArmTimer):
                self._cancel(self._election_timer)
                self._election_timer = self.scheduler.call_later(effect.delay_ms, self._election_timeout)
            elif isinstance(effect, ReconnectAll):
                self.election.connect_all()
            elif isinstance(effect, Decided):
                self._cancel(self._election_timer)
                self._decided(effect.state, effect.vote)
            elif isinstance(effect, NewerConfig):
                self._newer_config(effect)

    # -- configs -------------------------------------------------------------

    def _newer_config(self, effect: NewerConfig) -> None:
        try:
            verifier = verifier_from_text(effect.config)
        except ValueError as e:
            log.warn("Peer {sid} sent a config I cannot read: {error}", sid=effect.sid, error=str(e))
            return
        self._in_force(verifier, None)
        self._cancel(self._election_timer)
        self._look()  # a new round under the new config

    def _seen(self, verifier: QuorumVerifier) -> None:
        if verifier.version > self.last_seen.version:
            self.last_seen = verifier
            self.on_config_changed(verifier, False)

    def _in_force(self, verifier: QuorumVerifier, leader: int | None) -> bool:
        """Put ``verifier`` in force; True if this peer must leave its role (3.8's majorChange)."""
        if verifier.version <= self.verifier.version:
            return False
        was_observer = self.observer
        self.verifier = verifier
        self.last_seen = verifier if verifier.version >= self.last_seen.version else self.last_seen
        self.observer = self.myid in verifier.observing_members
        self.fle.set_voters(verifier, observer=self.observer)
        install_config_node(self.replica.tree, verifier, self.clock())
        log.info("Peer {myid}: config 0x{version:x} in force ({kind})", myid=self.myid, version=verifier.version,
                 kind="participant" if self.myid in verifier.voting_members else
                 "observer" if self.observer else "not a member: a non-voting follower")
        self.on_config_changed(verifier, True)
        return self.observer != was_observer or (leader is not None and leader != self.leader_id)

    def _election_timeout(self) -> None:
        self._election_timer = None
        if not self.stopped:
            self._run(self.fle.timer_fired(self.clock(), self.election.any_delivered()))

    def _decided(self, state: PeerState, vote: Vote) -> None:
        self.state = state
        self.leader_id = vote.leader
        self._role_serial += 1
        took_ms = self.times.decided(self.clock())
        log.info("Peer {myid} is {state} (leader {winner}, epoch {epoch}): the election took {duration_ms} ms",
                 event=ELECTION, myid=self.myid, state=state.name, winner=vote.leader, epoch=vote.peer_epoch,
                 duration_ms=took_ms)
        if state is PeerState.LEADING:
            self._lead()
        else:
            self._dial_leader(vote.leader, self.clock() + self.timing.init_ms)
        self._schedule_tick(self._role_serial)

    # -- roles ---------------------------------------------------------------

    def _lead(self) -> None:
        serial = self._role_serial
        self.leader = Leader(
            self.myid, self.replica, self.verifier, self.clock, self.timing,
            on_exit=lambda reason: self._role_ended(serial, reason),
            on_serving=self._leader_serving,
            clients=ServingHooks(),
            on_disk_history=self.replica.on_disk_history(),
            last_seen=self.last_seen,
            on_config_seen=self._seen,
            on_config=self._in_force,
            metrics=self.metrics,
        )

    def quorum_connection(self, stream: Stream) -> None:
        """A learner dialled this peer's quorum port."""
        leader = self.leader
        if leader is None or self.stopped:
            stream.close()
            return
        handler_box: list[LearnerHandler] = []
        link = StreamLink(stream, lambda item, now: handler_box[0].receive(item, now),
                          lambda: handler_box[0].close("connection lost"), self.clock)
        handler_box.append(leader.learner_connected(link))

    def _leader_serving(self, epoch: int) -> None:
        self.times.serving(self.clock(), leading=True)
        self.serving = True
        self.epochs_served.append(epoch)
        self.fle.settled(PeerState.LEADING, self._settled_vote(epoch))
        self.on_serving_changed(self)

    def _dial_leader(self, sid: int, give_up_ms: int) -> None:
        serial = self._role_serial

        def connected(stream: Stream) -> None:
            if serial != self._role_serial or self.stopped:
                stream.close()
                return
            self._follow(stream, serial, sid, give_up_ms)

        def failed() -> None:
            if serial == self._role_serial and not self.stopped:
                self._retry_dial(serial, sid, give_up_ms)

        self.quorum.connect(sid, connected, failed)

    def _retry_dial(self, serial: int, sid: int, give_up_ms: int) -> None:
        # The leader may not listen yet (it decided later than this peer did).
        if self.clock() >= give_up_ms:
            self._role_ended(serial, f"cannot reach leader {sid}")
        else:
            self._dial_timer = self.scheduler.call_later(CONNECT_RETRY_MS, lambda: self._dial_leader(sid, give_up_ms))

    def _follow(self, stream: Stream, serial: int, sid: int, give_up_ms: int) -> None:
        learner_box: list[Learner] = []

        def lost() -> None:
            learner = learner_box[0]
            if learner.received_any or serial != self._role_serial:
                learner.lost()
            else:  # closed before a word: as a refused connection
                learner.abandon()
                self.learner = None
                self._retry_dial(serial, sid, give_up_ms)

        link = StreamLink(stream, lambda item, now: learner_box[0].receive(item, now), lost, self.clock)
        learner = Learner(
            self.myid, self.replica, link, self.clock, self.timing, observer=self.observer,
            observer_logs=self.observer_logs,
            config_version=self.verifier.version,
            on_exit=lambda reason: self._role_ended(serial, reason),
            on_serving=lambda: self._learner_serving(learner),
            on_config_seen=self._seen,
            on_config=self._in_force,
            metrics=self.metrics,
        )
        learner_box.append(learner)
        self.learner = learner
        learner.start()

    def _learner_serving(self, learner: Learner) -> None:
        self.times.serving(self.clock(), leading=False)
        self.serving = True
        if learner.sync_mode is not None:
            self.sync_modes.append(learner.sync_mode)
        self.epochs_served.append(learner.new_epoch)
        self.fle.settled(self.state, self._settled_vote(learner.new_epoch))
        self.on_serving_changed(self)

    def _settled_vote(self, epoch: int) -> Vote:
        assert self.leader_id is not None
        current = self.fle.current_vote
        zxid = current.zxid if current is not None else self.replica.last_logged_zxid
        return Vote(self.leader_id, zxid, self.fle.logical_clock, epoch, self.state)

    def _schedule_tick(self, serial: int) -> None:
        def tick() -> None:
            if serial != self._role_serial or self.stopped:
                return
            if self.leader is not None:
                self.leader.tick()
            elif self.learner is not None:
                self.learner.tick()
            if serial == self._role_serial:
                self._tick_timer = self.scheduler.call_later(self.timing.tick_ms // 2, tick)

        self._tick_timer = self.scheduler.call_later(self.timing.tick_ms // 2, tick)

    def _durable(self, zxid: int) -> None:
        if self.leader is not None:
            self.leader.durable(zxid)
        elif self.learner is not None:
            self.learner.durable(zxid)
        elif self._awaiting_flush and not self.replica.appends_in_flight and not self.stopped:
            self._awaiting_flush = False
            self._look()

    def _role_ended(self, serial: int, reason: str) -> None:
        if serial != self._role_serial:
            return
        log.info("Peer {myid} leaves {state}: {reason}", myid=self.myid, state=self.state.name, reason=reason)
        self._end_role(reason)
        if self.stopped:
            return
        if self.replica.appends_in_flight:
            # As 3.9's fix of ZOOKEEPER-4712: the vote and the next role start from a durable log.
            # A peer that voted on txns it then lost in a crash could lead with an older history
            # than a quorum acknowledged, and truncate it everywhere.
            log.info("Peer {myid} waits for its txn log before it looks", myid=self.myid)
            self._awaiting_flush = True
            return
        self._look()

    def _end_role(self, reason: str) -> None:
        self._role_serial += 1
        self._cancel(self._tick_timer)
        self._cancel(self._dial_timer)
        leader, learner = self.leader, self.learner
        if self.serving:
            self.serving = False
            self.on_serving_changed(self)
        self.replica.on_commit = None
        self.leader = self.learner = None
        if leader is not None:
            leader.stop(reason)
        if learner is not None:
            learner.stop(reason)

    @staticmethod
    def _cancel(timer: Cancellable | None) -> None:
        # A scheduler's cancel must accept a call that has already run.
        if timer is not None:
            timer.cancel()
