"""zabd.peer.assembly: one peer from its parts, with recording fakes for the links, ports and owner."""
from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

from zabd.election.links import MessageHandler
from zabd.ensemble.peer import QuorumPeer
from zabd.ensemble.transport import Cancellable, Stream
from zabd.membership.verifier import QuorumMaj, QuorumVerifier
from zabd.metrics.server import ServerMetrics
from zabd.peer.assembly import AcceptLearner, PeerParts, PeerSpec, Unowned, assemble_peer
from zabd.peer.switch import ServingSwitch
from zabd.quorum.roles import Timing
from zabd.serving.standalone import ServerOptions
from zabd.testing.ensemble import sim_member
from zabd.testing.memdisk import MemoryDisk
from zabd.testing.simreplica import SimReplica
from zabd.testing.simulation import Simulation

TIMING = Timing(tick_ms=200, init_limit=10, sync_limit=5)


@dataclass
class RecordingElection:
    deliver: MessageHandler
    sent: list[tuple[int, bytes]] = field(default_factory=list)

    def send(self, sid: int, payload: bytes) -> None:
        self.sent.append((sid, payload))

    def any_delivered(self) -> bool:
        return True

    def connect_all(self) -> None:
        pass


@dataclass
class RecordingListener:
    accept: AcceptLearner


class NoDialling:
    def connect(self, sid: int, connected: Callable[[Stream], None], failed: Callable[[], None]) -> None:
        pass


class NeverScheduler:
    def call_later(self, delay_ms: int, fn: Callable[[], object]) -> Cancellable:
        return Never()


class Never:
    def cancel(self) -> None:
        pass


@dataclass
class RecordingOwner:
    heard: list[str] = field(default_factory=list)

    def serving_changed(self, peer: QuorumPeer) -> None:
        self.heard.append(f"serving {peer.serving}")

    def config_changed(self, verifier: QuorumVerifier, in_force: bool) -> None:
        self.heard.append(f"config {verifier.version:#x} {in_force}")


class ClosableStream:
    def __init__(self) -> None:
        self.on_data: Callable[[bytes], None] = lambda data: None
        self.on_close: Callable[[], None] = lambda: None
        self.closed = False

    def write(self, data: bytes) -> None:
        pass

    def close(self) -> None:
        self.closed = True


def _parts(switch: ServingSwitch | None = None) -> PeerParts[RecordingElection, RecordingListener]:
    sim = Simulation(1)
    replica = SimReplica(sim.scope("peer1"), MemoryDisk(sim.rng))
    return PeerParts(replica, NeverScheduler(), lambda: 0, RecordingElection, NoDialling(), RecordingListener,
                     ServerMetrics(), switch)


def test_the_parts_made_for_the_peer_reach_it() -> None:
    verifier = QuorumMaj([sim_member(1), sim_member(2), sim_member(3)])
    assembled = assemble_peer(PeerSpec(1, verifier, TIMING), _parts(), Unowned())
    peer = assembled.peer
    assert peer.election is assembled.election and peer.myid == 1 and peer.timing == TIMING
    # A learner that dials a peer that does not lead is turned away by the peer itself.
    stream = ClosableStream()
    assembled.quorum_listener.accept(stream)
    assert stream.closed
    # The election links deliver to the peer: a malformed notification is dropped, not raised.
    assembled.election.deliver(2, b"\x00")


def test_the_owner_hears_after_the_switch() -> None:
    verifier = QuorumMaj([sim_member(1), sim_member(2), sim_member(3)])
    switch = ServingSwitch(ServerOptions(), lambda: 0.0)
    owner = RecordingOwner()
    peer = assemble_peer(PeerSpec(1, verifier, TIMING), _parts(switch), owner).peer
    peer.on_serving_changed(peer)
    assert owner.heard == ["serving False"]
    assert switch._looking_since_ms == 0.0  # the switch saw the change first: the read-only grace starts
    newer = QuorumMaj([sim_member(1), sim_member(2)], version=0x100000001)
    peer.configs.on_changed(newer, True)
    assert owner.heard[-1] == "config 0x100000001 True"
