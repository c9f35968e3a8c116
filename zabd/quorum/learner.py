# -*- test-case-name: tests.unit.test_zab_follower -*-
"""A follower's or an observer's side of Zab on one quorum connection (protocol doc 4.4, 4.7, 4.8).

:class:`Learner` is the thin driver of a :class:`~zabd.quorum.learner_machine.LearnerMachine`:
it hands the machine each input and carries out the effects it returns, in
order, on the ``PacketLink`` and through the peer's callbacks. What the
learner does is in the machine and its parts:

- discovery and synchronization (LEADERINFO, DIFF/TRUNC/SNAP, NEWLEADER and
  its ACK after the sync is durable, UPTODATE): :mod:`zabd.quorum.learner_sync`;
- a follower's broadcast (PROPOSAL logged and acknowledged once durable,
  COMMIT, COMMITANDACTIVATE): :mod:`zabd.quorum.follower`;
- an observer's (INFORM, INFORMANDACTIVATE, never an ACK of a txn):
  :mod:`zabd.quorum.observer`;
- configs: :mod:`zabd.quorum.learnerconfig` (``on_config`` returns True when
  the leader or this peer's kind changed: the learner must go).

Any breach of the protocol ends the role (``on_exit``): the peer goes back
to LOOKING, as ZooKeeper's learner does when its leader misbehaves.
"""
from __future__ import annotations

from collections.abc import Callable

from zabd.jute.records import Id
from zabd.membership.verifier import QuorumVerifier
from zabd.metrics.server import ServerMetrics
from zabd.quorum.learner_effects import Close, Effect, Exit, Phase, Revalidated, Send, Serving, Synced
from zabd.quorum.learner_machine import LearnerMachine
from zabd.quorum.learner_state import Touches
from zabd.quorum.packets import QuorumPacket, RequestForward
from zabd.quorum.roles import PacketLink, Replica, Timing
from zabd.quorum.snapstream import SnapshotStream

__all__ = ["Learner", "Phase"]


class Learner:
    """Carries out a learner machine's effects on one connection to the leader and on the peer."""

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
        on_sync: Callable[[], None] = lambda: None,
        touches: Touches = list,
        on_config_seen: Callable[[QuorumVerifier], None] = lambda verifier: None,
        on_config: Callable[[QuorumVerifier, int | None], bool] = lambda verifier, leader: False,
        metrics: ServerMetrics | None = None,
    ) -> None:
        self.machine = LearnerMachine(
            myid, replica, clock, timing, observer=observer, observer_logs=observer_logs,
            config_version=config_version, touches=touches, on_config_seen=on_config_seen,
            on_config=on_config, metrics=metrics,
        )
        self.link = link
        self.on_exit = on_exit
        self.on_serving = on_serving
        #: SYNC packets complete the forwarded syncs in the order they were sent.
        self.on_sync = on_sync

    # -- what the peer and its server read -------------------------------------------

    @property
    def myid(self) -> int:
        return self.machine.state.myid

    @property
    def replica(self) -> Replica:
        return self.machine.state.replica

    @property
    def observer(self) -> bool:
        return self.machine.state.observer

    @property
    def phase(self) -> Phase:
        return self.machine.state.phase

    @property
    def received_any(self) -> bool:
        return self.machine.state.received_any

    @property
    def new_epoch(self) -> int:
        return self.machine.state.new_epoch

    @property
    def sync_mode(self) -> str | None:
        return self.machine.state.sync_mode

    @property
    def metrics(self) -> ServerMetrics:
        return self.machine.state.metrics

    @property
    def touches(self) -> Touches:
        return self.machine.state.touches

    def serve(self, touches: Touches, on_sync: Callable[[], None]) -> None:
        """The follower's server started: PINGs carry its sessions' touches, SYNCs complete its syncs."""
        self.machine.state.touches = touches
        self.on_sync = on_sync

    # -- inputs ------------------------------------------------------------------------

    def start(self) -> None:
        self._run(self.machine.start())

    def receive(self, item: QuorumPacket | SnapshotStream, now_ms: int | None = None) -> None:
        self._run(self.machine.receive(item, now_ms))

    def durable(self, zxid: int) -> None:
        self._run(self.machine.durable(zxid))

    def tick(self) -> None:
        self._run(self.machine.tick())

    def lost(self) -> None:
        self._run(self.machine.lost())

    def stop(self, reason: str) -> None:
        self._run(self.machine.stop(reason))

    def abandon(self) -> None:
        """End quietly: the connection never got going, and the peer will dial again."""
        self._run(self.machine.abandon())

    def forward(self, request: RequestForward, auth: list[Id]) -> None:
        """Send a client's write (or sync, createSession, closeSession) to the leader."""
        self._run(self.machine.forward(request, auth))

    def revalidate(self, session_id: int, timeout_ms: int, answer: Callable[[bool], None]) -> None:
        """Ask the leader whether a reconnecting client's session is still alive."""
        self._run(self.machine.revalidate(session_id, timeout_ms, answer))

    # -- effects -----------------------------------------------------------------------

    def _run(self, effects: list[Effect]) -> None:
        for effect in effects:
            match effect:
                case Send(packet):
                    self.link.send(packet)
                case Close():
                    self.link.close()
                case Exit(reason):
                    self.on_exit(reason)
                case Serving():
                    self.on_serving()
                case Synced():
                    self.on_sync()
                case Revalidated(answer, valid):
                    answer(valid)
