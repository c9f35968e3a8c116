# -*- test-case-name: tests.unit.test_peer_assembly -*-
"""The one place a QuorumPeer is put together from its parts.

The twistd service (zabd.peer.ensemble), the simulated ensemble
(zabd.testing.ensemble) and the loopback ensemble
(zabd.harness.loopback_ensemble) all build their peers here; what differs
between them (real or simulated network, clock and disk) comes in as
:class:`PeerParts`, typed by the Protocols the peer needs, and whoever owns
the peer hears of it through a :class:`PeerOwner`.

Two parts are made here rather than given, because each needs the peer
that does not exist yet: the election links (they hand every notification to
the peer) and the quorum listener (it hands the peer every learner that dials
in). The caller passes factories for them and gets back what they made, with
its own concrete type, to listen, stop or re-address them.

Nothing here does I/O or imports twisted.internet, so the simulation can
use it as the real peer does.
"""
from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Generic, Protocol, TypeVar

from zabd.election.links import ElectionNetwork, MessageHandler
from zabd.ensemble.peer import QuorumPeer
from zabd.ensemble.transport import QuorumNetwork, Scheduler, Stream
from zabd.membership.verifier import QuorumVerifier
from zabd.metrics.server import ServerMetrics
from zabd.peer.switch import ServingSwitch
from zabd.quorum.roles import Replica, Timing

ElectionT = TypeVar("ElectionT", bound=ElectionNetwork)
ListenerT = TypeVar("ListenerT")

#: Accepts learners' connections to this peer's quorum port.
AcceptLearner = Callable[[Stream], None]


class PeerOwner(Protocol):
    """What the owner of a peer hears: it may change whom clients talk to, and rewrite addresses and files."""

    def serving_changed(self, peer: QuorumPeer) -> None:
        """The peer started or stopped serving (after its ServingSwitch, if any, followed)."""

    def config_changed(self, verifier: QuorumVerifier, in_force: bool) -> None:
        """A config was seen (``in_force`` False) or put in force."""


class Unowned:
    """An owner that needs to hear nothing (a peer run for its replication alone)."""

    def serving_changed(self, peer: QuorumPeer) -> None:
        pass

    def config_changed(self, verifier: QuorumVerifier, in_force: bool) -> None:
        pass


@dataclass(frozen=True, slots=True)
class PeerSpec:
    """Who the peer is: its id, the configs it starts from, and its timing."""

    myid: int
    verifier: QuorumVerifier
    timing: Timing
    observer: bool = False
    #: An observer keeps a txn log (3.8's syncEnabled).
    observer_logs: bool = True
    #: The newest config seen, when newer than the one in force.
    last_seen: QuorumVerifier | None = None


@dataclass(frozen=True, slots=True)
class PeerParts(Generic[ElectionT, ListenerT]):
    """What a peer runs on: real or simulated, the peer cannot tell."""

    replica: Replica
    scheduler: Scheduler
    #: Now, in ms.
    clock: Callable[[], int]
    #: Makes the election links that hand each notification to the given handler.
    election: Callable[[MessageHandler], ElectionT]
    #: Dials the leader's quorum port while the peer follows.
    quorum: QuorumNetwork
    #: Makes what hands the peer each learner that dials in.
    quorum_listener: Callable[[AcceptLearner], ListenerT]
    #: The process's registry: the peer and every server it runs record into it.
    metrics: ServerMetrics
    #: Puts the right server in front of clients as the peer's role changes; None: no clients.
    switch: ServingSwitch | None = None


@dataclass(frozen=True, slots=True)
class AssembledPeer(Generic[ElectionT, ListenerT]):
    """A peer, ready to start, with the parts that were made for it."""

    peer: QuorumPeer
    election: ElectionT
    quorum_listener: ListenerT
    switch: ServingSwitch | None


def assemble_peer(spec: PeerSpec, parts: PeerParts[ElectionT, ListenerT],
                  owner: PeerOwner) -> AssembledPeer[ElectionT, ListenerT]:
    """Build the peer of ``spec`` on ``parts``; ``owner`` hears of its serving and its configs."""
    made: list[QuorumPeer] = []  # the links exist before the peer they deliver to

    def deliver(sid: int, payload: bytes) -> None:
        made[0].election_message(sid, payload)

    def accept(stream: Stream) -> None:
        made[0].quorum_connection(stream)

    election = parts.election(deliver)
    peer = QuorumPeer(
        spec.myid, spec.verifier, parts.replica, parts.scheduler, parts.clock, spec.timing, election, parts.quorum,
        observer=spec.observer, observer_logs=spec.observer_logs, last_seen=spec.last_seen, metrics=parts.metrics,
        on_serving_changed=_serving_listener(parts.switch, owner), on_config_changed=owner.config_changed,
    )
    made.append(peer)
    return AssembledPeer(peer, election, parts.quorum_listener(accept), parts.switch)


def _serving_listener(switch: ServingSwitch | None, owner: PeerOwner) -> Callable[[QuorumPeer], None]:
    if switch is None:
        return owner.serving_changed

    def changed(peer: QuorumPeer) -> None:
        switch.changed(peer)
        owner.serving_changed(peer)

    return changed
