"""Fuzz targets for the peer ports (zabd.testing.fuzz): quorum packets and election links.

- quorum: the packet stream decoder with every payload parser; a rogue learner
  talking to the serving leader of a simulated ensemble (its LearnerHandler);
  a rogue leader in front of a fresh learner on a memory disk; a rogue learner
  taking a fresh leader through discovery and sync on its own.
- election: an accepted or a dialled connection of the election port
  (FrameReader, LinkTable, parse_initial) whose frames reach a live peer's
  FastLeaderElection; notifications straight into that peer; initial messages.
  Every other ensemble has only the fuzzed peer up, so it stays LOOKING.
"""
from __future__ import annotations

from typing import Any

from twisted.internet.address import IPv4Address
from twisted.internet.error import ConnectionDone
from twisted.internet.testing import MemoryReactorClock, StringTransport
from twisted.python.failure import Failure

from zabd.election import messages
from zabd.election.messages import ElectionWireError
from zabd.ensemble.transport import StreamLink
from zabd.jute.codec import JuteError
from zabd.jute.txns import Txn
from zabd.quorum import packets as qp
from zabd.membership.verifier import QuorumMaj
from zabd.quorum.leader import Leader
from zabd.quorum.learner import Learner
from zabd.quorum.learnerhandler import LearnerHandler
from zabd.quorum.snapstream import QuorumWireError
from zabd.server.election_port import ElectionPortFactory
from zabd.testing import fuzz_seeds as seeds
from zabd.testing.ensemble import SIM_TIMING, SimEnsemble, sim_member
from zabd.testing.fuzz_targets import REBUILD, assert_consistent, pieces
from zabd.testing.memdisk import MemoryDisk
from zabd.testing.simreplica import SimReplica
from zabd.testing.simulation import Simulation

#: The peer whose election port and FLE take the election inputs (a larger sid keeps dialled links).
FUZZ_PEER = 3
_SENDERS = (1, 2, 0, 4, 1 << 40)
#: What each packet's data is parsed with, as its receiver reads it.
_PAYLOADS: dict[int, Any] = {
    qp.PacketType.FOLLOWERINFO: qp.parse_learner_info, qp.PacketType.OBSERVERINFO: qp.parse_learner_info,
    qp.PacketType.LEADERINFO: qp.parse_leader_info, qp.PacketType.ACKEPOCH: qp.parse_ack_epoch,
    qp.PacketType.PING: qp.parse_touches, qp.PacketType.REQUEST: qp.parse_request_forward,
    qp.PacketType.REVALIDATE: qp.parse_revalidate_request,
    qp.PacketType.COMMITANDACTIVATE: qp.parse_activation, qp.PacketType.INFORMANDACTIVATE: qp.parse_activation,
}


class _Stream:
    """An in-memory quorum stream (zabd.ensemble.transport.Stream)."""

    def __init__(self) -> None:
        self.out = bytearray()
        self.closed = False
        self.on_data: Any = None
        self.on_close: Any = None

    def write(self, data: bytes) -> None:
        self.out += data

    def close(self) -> None:
        self.closed = True


class _Ensemble:
    """A settled 3-peer simulated ensemble, rebuilt every REBUILD inputs; with ``alone``, every
    other one has only FUZZ_PEER up (LOOKING, as no quorum answers)."""

    def __init__(self, alone: bool = False) -> None:
        self.count = 0
        self.alone = alone
        self.ensemble = self._build()

    def _build(self) -> SimEnsemble:
        ensemble = SimEnsemble(self.count)
        if self.alone and self.count // REBUILD % 2 == 1:
            ensemble.start(FUZZ_PEER)
            ensemble.sim.run_for(1000)
        else:
            ensemble.start()
            ensemble.settle()
        return ensemble

    def next(self) -> SimEnsemble:
        self.count += 1
        if self.count % REBUILD == 0:
            self.healthy()
            self.ensemble = self._build()
        return self.ensemble

    def healthy(self) -> None:
        """After some sim time a leader serves, a write commits everywhere, and the trees agree."""
        e = self.ensemble
        if self.alone:
            return  # fuzzed votes and configs may leave this ensemble in any state a peer may take
        e.settle(within_ms=120_000)
        zxid = e.write(1)[-1]
        assert e.run_until(lambda: e.committed_everywhere(zxid), 10_000), "a write did not commit everywhere"
        assert e.run_until(lambda: len(set(e.digests().values())) == 1, 10_000), f"digests differ: {e.digests()}"
        for sid in e.live_peers():
            assert_consistent(e.replica(sid).tree)


class QuorumTarget:
    """The packet decoder; a rogue learner at a serving leader; a rogue leader in front of a fresh learner."""

    name = "quorum"

    def __init__(self) -> None:
        self.sims = _Ensemble()
        self.verifier = QuorumMaj([sim_member(sid) for sid in (1, 2, 3)])

    def seeds(self) -> list[bytes]:
        return seeds.quorum_seeds()

    def execute(self, data: bytes) -> None:
        mode, raw = (data[0] % 4 if data else 0), data[1:]
        if mode == 0:
            self._decode(raw)
        elif mode == 1:
            self._rogue_learner(raw)
        elif mode == 2:
            self._rogue_leader(raw)
        else:
            self._fresh_leader(raw)

    def _decode(self, raw: bytes) -> None:
        decoder = qp.PacketStreamDecoder()
        try:
            for piece in pieces(raw):
                for item in decoder.feed(piece):
                    if isinstance(item, qp.QuorumPacket):
                        _payload(item)
        except QuorumWireError:
            pass

    def _rogue_learner(self, raw: bytes) -> None:
        e = self.sims.next()
        leader = e.leader()
        assert leader is not None
        stream = _Stream()
        e.peers[leader].quorum_connection(stream)
        for piece in pieces(raw):
            if stream.closed:
                break
            stream.on_data(piece)
        stream.on_close()
        before = e.peers[leader].leader
        e.sim.run_for(20)
        # One claim unseats a leader by design: a voter's newer acceptedEpoch (see Leader._newer_promise).
        by_design = before is not None and before.stepped_down_for_promise
        assert e.leader() == leader or by_design, "a rogue learner's bytes unseated the leader"

    def _rogue_leader(self, raw: bytes) -> None:
        sim = Simulation(len(raw))
        box: list[Learner] = []
        stream = _Stream()
        link = StreamLink(stream, lambda item, now: box[0].receive(item, now), lambda: box[0].lost(),
                          lambda: sim.now_ms)
        replica = SimReplica(sim.scope("learner"), MemoryDisk(sim.rng))
        box.append(Learner(2, replica, link, lambda: sim.now_ms, SIM_TIMING, on_exit=lambda reason: None))
        replica.set_durable_callback(box[0].durable)
        box[0].start()
        _feed(sim, stream, raw)
        assert_consistent(replica.tree)

    def _fresh_leader(self, raw: bytes) -> None:
        """A leader of a 3-peer config in discovery, with a small history, and a rogue learner."""
        sim = Simulation(len(raw))
        box: list[LearnerHandler] = []
        stream = _Stream()
        link = StreamLink(stream, lambda item, now: box[0].receive(item, now),
                          lambda: box[0].close("connection lost"), lambda: sim.now_ms)
        replica = SimReplica(sim.scope("leader"), MemoryDisk(sim.rng))
        for zxid in (1, 2, 3):
            replica.log(zxid, seeds._txn(zxid, f"/h{zxid}"))
            replica.apply(zxid, seeds._txn(zxid, f"/h{zxid}"))
        leader = Leader(1, replica, self.verifier, lambda: sim.now_ms, SIM_TIMING, on_exit=lambda reason: None)
        replica.set_durable_callback(leader.durable)
        box.append(leader.learner_connected(link))
        _feed(sim, stream, raw)
        assert_consistent(replica.tree)

    def check(self) -> None:
        self.sims.healthy()

    def close(self) -> None:
        self.check()


def _feed(sim: Simulation, stream: _Stream, raw: bytes) -> None:
    """Hand ``raw`` to a stream's owner in pieces, letting the disk catch up in between."""
    for piece in pieces(raw):
        if stream.closed:
            break
        stream.on_data(piece)
        sim.run_for(3)
    sim.run_for(50)


def _payload(packet: qp.QuorumPacket) -> None:
    """Parse a packet's data as its receiver would; only the wire errors may escape."""
    parse = _PAYLOADS.get(packet.type)
    try:
        if parse is not None:
            parse(packet.data)
        if packet.type == qp.PacketType.REVALIDATE:
            qp.parse_revalidate_reply(packet.data)
        if packet.type in (qp.PacketType.PROPOSAL, qp.PacketType.INFORM) and packet.data is not None:
            Txn.from_bytes(packet.data)
    except (QuorumWireError, JuteError):
        pass


class ElectionTarget:
    """The election port's framing and link rules, and FLE's notification parsing in a live peer."""

    name = "election"

    def __init__(self) -> None:
        self.sims = _Ensemble(alone=True)
        self.count = 0
        self._port()

    def _port(self) -> None:
        self.reactor = MemoryReactorClock()
        peers = {sid: ("127.0.0.1", 3887 + sid) for sid in (1, 2, 3)}
        self.election = ElectionPortFactory(FUZZ_PEER, "127.0.0.1:3890", peers, self._deliver, self.reactor)

    def _deliver(self, sid: int, payload: bytes) -> None:
        self.sims.ensemble.peers[FUZZ_PEER].election_message(sid, payload)

    def seeds(self) -> list[bytes]:
        return seeds.election_seeds(self.sims.ensemble.verifier.config_text())

    def execute(self, data: bytes) -> None:
        self.count += 1
        if self.count % REBUILD == 0:
            self._port()
        e = self.sims.next()
        mode, raw = (data[0] % 4 if data else 0), data[1:]
        if mode == 3:
            self._initial(raw)
        elif mode == 2:
            try:
                messages.parse_notification(raw[1:])
            except ElectionWireError:
                pass
            # Voters 1 and 2, and senders outside the config; never FUZZ_PEER itself, which the port refuses.
            e.peers[FUZZ_PEER].election_message(_SENDERS[raw[0] % len(_SENDERS)] if raw else 2, raw[1:])
        else:
            self._connection(raw, accepted=mode == 0)
        e.sim.run_for(20)
        self.reactor.advance(11)  # handshake timers

    def _initial(self, raw: bytes) -> None:
        try:
            message = messages.parse_initial(raw)
        except ElectionWireError:
            return
        assert messages.initial_length(raw) == len(raw), "initial_length disagrees with parse_initial"
        message.endpoints()

    def _connection(self, raw: bytes, accepted: bool) -> None:
        address = IPv4Address("TCP", "127.0.0.1", 40000)
        proto: Any
        if accepted:
            proto = self.election.buildProtocol(address)
        else:
            self.election.send(1 + len(raw) % 2, b"vote")  # dials sid 1 or 2, smaller than mine: kept
            proto = self.reactor.tcpClients[-1][2].buildProtocol(address)
        transport = StringTransport(peerAddress=address)
        proto.makeConnection(transport)
        for piece in pieces(raw):
            if transport.disconnecting:
                break
            proto.dataReceived(piece)
        proto.connectionLost(Failure(ConnectionDone()))
        assert proto.sid is None or not self.election.connected(proto.sid), "a lost connection is still a link"

    def check(self) -> None:
        pass

    def close(self) -> None:
        self.election.stop()
