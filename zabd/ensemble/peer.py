# -*- test-case-name: tests.unit.test_ensemble_sim -*-
"""One member of an ensemble: LOOKING, then LEADING, FOLLOWING or OBSERVING, and back.

``QuorumPeer`` wires Fast Leader Election to the Zab roles. It owns no
sockets and no clock: the election network, the quorum-port connections, a
scheduler and the replica are given to it, so the same peer runs on real
ports (zabd.server) and on the simulated network (zabd.testing). A role
that ends, for whatever reason, sends the peer back to LOOKING for a new
round, as ZooKeeper's QuorumPeer.run loop does.

Configs (dynamic reconfiguration) are :class:`~zabd.ensemble.configs.PeerConfigs`'s;
the peer tells its owner of each (``on_config_changed``, which writes
zoo.cfg.dynamic files and updates addresses) and leaves its role when a
config changes its leader or its own kind.
"""
from __future__ import annotations

from collections.abc import Callable

from twisted.logger import Logger

from zabd.election.fle import FastLeaderElection
from zabd.election.links import ElectionNetwork
from zabd.election.messages import PeerState
from zabd.election.votes import Vote
from zabd.ensemble.configs import ConfigListener, PeerConfigs
from zabd.ensemble.dialing import LeaderDial
from zabd.ensemble.electing import ElectionDriver
from zabd.ensemble.transport import Cancellable, QuorumNetwork, Scheduler, Stream, StreamLink
from zabd.membership.verifier import QuorumVerifier
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


class QuorumPeer:
    """One ensemble member's role machine: FLE's decisions start Zab roles, and a role's end starts FLE again.

    :param on_serving_changed: told whenever ``serving`` changes (the client side follows it).
    :param on_config_changed: told of each config seen (False) or put in force (True).
    """

    def __init__(self, myid: int, verifier: QuorumVerifier, replica: Replica, scheduler: Scheduler,
                 clock: Callable[[], int], timing: Timing, election: ElectionNetwork, quorum: QuorumNetwork, *,
                 observer: bool = False, observer_logs: bool = True, last_seen: QuorumVerifier | None = None,
                 metrics: ServerMetrics | None = None,
                 on_serving_changed: Callable[[QuorumPeer], None] = lambda peer: None,
                 on_config_changed: ConfigListener = lambda verifier, in_force: None) -> None:
        self.myid = myid
        #: The process's metrics; they outlive every role, as ZooKeeper's static ServerMetrics.
        self.metrics = metrics if metrics is not None else ServerMetrics()
        self.replica = replica
        self.scheduler = scheduler
        self.clock = clock
        self.timing = timing
        self.election = election
        self.quorum = quorum
        self.observer_logs = observer_logs
        self.fle = FastLeaderElection(myid, verifier, observer=observer)
        self.on_serving_changed = on_serving_changed
        self.electing = ElectionDriver(self.fle, election, scheduler, clock, self._decided, self._newer_config)
        self.configs = PeerConfigs(myid, verifier, last_seen, observer, self.fle, clock, on_config_changed)
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
        self._tick_timer: Cancellable | None = None
        self._dial: LeaderDial | None = None
        self._role_serial = 0
        #: A role ended with txns still on their way to the disk: LOOKING waits for them.
        self._awaiting_flush = False
        self.times = PeerTimes(self.metrics, clock())
        replica.set_durable_callback(self._durable)

    @property
    def verifier(self) -> QuorumVerifier:
        """The config in force."""
        return self.configs.verifier

    @property
    def last_seen(self) -> QuorumVerifier:
        """The newest config seen (proposed, maybe never committed)."""
        return self.configs.last_seen

    @property
    def observer(self) -> bool:
        return self.configs.observer

    # -- life ----------------------------------------------------------------

    def start(self) -> None:
        install_config_node(self.replica.tree, self.verifier, self.clock())
        self._look()

    def stop(self) -> None:
        self.stopped = self.electing.stopped = True
        self._end_role("stopped")
        self.electing.cancel_timer()

    # -- election ------------------------------------------------------------

    def election_message(self, sid: int, payload: bytes) -> None:
        if self.stopped or self._awaiting_flush:
            return  # (between roles: the sender tries again on its timeout)
        self.electing.message(sid, payload)

    def _look(self) -> None:
        self.times.looking(self.clock())
        self.state = PeerState.LOOKING
        self.serving = False
        self.leader_id = None
        replica = self.replica
        replica.catch_up()
        self.electing.look(replica.last_logged_zxid, replica.current_epoch)

    def _newer_config(self, verifier: QuorumVerifier) -> None:
        self._in_force(verifier, None)
        self._look()  # a new round under the new config

    # -- configs -------------------------------------------------------------

    def _seen(self, verifier: QuorumVerifier) -> None:
        self.configs.seen(verifier)

    def _in_force(self, verifier: QuorumVerifier, leader: int | None) -> bool:
        """Put ``verifier`` in force; True if this peer must leave its role (3.8's majorChange)."""
        return self.configs.put_in_force(verifier, self.replica.tree, leader, self.leader_id)

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
            serial = self._role_serial
            self._dial = LeaderDial(self.quorum, self.scheduler, self.clock, vote.leader,
                                    self.clock() + self.timing.init_ms,
                                    connected=lambda stream: self._follow(stream, serial),
                                    gave_up=lambda reason: self._role_ended(serial, reason))
            self._dial.start()
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

    def _follow(self, stream: Stream, serial: int) -> None:
        learner_box: list[Learner] = []
        dial = self._dial
        assert dial is not None

        def lost() -> None:
            learner = learner_box[0]
            if learner.received_any or serial != self._role_serial:
                learner.lost()
            else:  # closed before a word: as a refused connection
                learner.abandon()
                self.learner = None
                dial.retry()

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
        if self._dial is not None:
            self._dial.cancel()
            self._dial = None
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

