"""The quorum port's Twisted adapter (zabd.server.quorum_port) on in-memory reactors and transports."""
from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import Any

import pytest
from twisted.internet.address import IPv4Address
from twisted.internet.error import ConnectionDone, ConnectionRefusedError, TimeoutError
from twisted.internet.testing import MemoryReactorClock, StringTransport
from twisted.logger import LogEvent, capturedLogs
from twisted.python.failure import Failure
from twisted.test import iosim

from tests.unit.fakes import TcpTransport
from zabd.ensemble.transport import Stream, StreamLink
from zabd.quorum.packets import PacketType, QuorumPacket, encode_packet
from zabd.server.quorum_port import QuorumPortFactory, QuorumStream, ReactorQuorumNetwork, ReactorScheduler

BASE_PORT = 22880
ADDRESSES = {sid: ("127.0.0.1", BASE_PORT + sid) for sid in (1, 2, 3)}


class Owner:
    """What a peer does with a stream: records input and losses."""

    def __init__(self, stream: Stream) -> None:
        self.stream = stream
        self.data: list[bytes] = []
        self.closes = 0
        stream.on_data = self.data.append
        stream.on_close = self._closed

    def _closed(self) -> None:
        self.closes += 1


class Dials:
    """Records the callbacks of ReactorQuorumNetwork.connect."""

    def __init__(self) -> None:
        self.connected: list[Stream] = []
        self.failed = 0

    def connect(self, network: ReactorQuorumNetwork, sid: int) -> None:
        network.connect(sid, self.connected.append, self._failed)

    def _failed(self) -> None:
        self.failed += 1


@contextmanager
def port_logs() -> Iterator[Sequence[LogEvent]]:
    with capturedLogs() as events:
        mine: list[LogEvent] = []
        yield mine
        mine.extend(e for e in events if e.get("log_namespace") == "zabd.server.quorum_port")


def accept(factory: QuorumPortFactory, transport: StringTransport | None = None) -> tuple[Any, StringTransport]:
    transport = transport or StringTransport(peerAddress=IPv4Address("TCP", "127.0.0.1", 40001))
    proto = factory.buildProtocol(IPv4Address("TCP", "127.0.0.1", 40001))
    proto.makeConnection(transport)
    return proto, transport


def complete_dial(reactor: MemoryReactorClock, index: int = -1) -> tuple[Any, StringTransport]:
    host, port, factory, _, _ = reactor.tcpClients[index]
    addr = IPv4Address("TCP", host, port)
    proto = factory.buildProtocol(addr)
    transport = StringTransport(peerAddress=addr)
    proto.makeConnection(transport)
    return proto, transport


# ------------------------------------------------------------------ streams


def test_accepted_stream_carries_bytes_both_ways_and_reports_a_loss_once() -> None:
    owners: list[Owner] = []
    factory = QuorumPortFactory(lambda stream: owners.append(Owner(stream)))
    proto, transport = accept(factory)
    assert len(owners) == 1 and owners[0].stream is proto
    owner = owners[0]
    owner.stream.write(b"abc")
    proto.dataReceived(b"xyz")
    assert transport.value() == b"abc" and owner.data == [b"xyz"]
    proto.connectionLost(Failure(ConnectionDone()))
    proto.connectionLost(Failure(ConnectionDone()))
    assert owner.closes == 1
    owner.stream.write(b"late")
    assert transport.value() == b"abc"  # nothing written on a lost connection


def test_own_close_is_final_no_on_close_and_no_more_io() -> None:
    owners: list[Owner] = []
    _, transport = accept(QuorumPortFactory(lambda stream: owners.append(Owner(stream))))
    owner = owners[0]
    proto = owner.stream
    assert isinstance(proto, QuorumStream)
    owner.stream.close()
    owner.stream.close()
    assert transport.disconnecting
    proto.dataReceived(b"after close")
    owner.stream.write(b"after close")
    proto.connectionLost(Failure(ConnectionDone()))
    assert owner.data == [] and transport.value() == b"" and owner.closes == 0


def test_input_before_the_owner_takes_the_stream_is_dropped() -> None:
    stream = QuorumStream("accepted")
    stream.makeConnection(StringTransport())
    stream.dataReceived(b"nobody listens")
    stream.connectionLost(Failure(ConnectionDone()))
    assert stream.lost and not stream.closed


def test_stream_link_decodes_packets_from_a_quorum_stream() -> None:
    owners: list[StreamLink] = []
    received: list[object] = []
    factory = QuorumPortFactory(lambda stream: owners.append(
        StreamLink(stream, lambda item, now: received.append(item), lambda: None, lambda: 0)))
    proto, transport = accept(factory)
    ping = QuorumPacket(PacketType.PING, 7)
    data = encode_packet(ping)
    proto.dataReceived(data[:3])
    proto.dataReceived(data[3:])
    owners[0].send(QuorumPacket(PacketType.PING, 9))
    assert received == [ping]
    assert transport.value() == encode_packet(QuorumPacket(PacketType.PING, 9))


@pytest.mark.parametrize("keep_alive", [True, False])
def test_nagle_off_and_keep_alive_when_configured(keep_alive: bool) -> None:
    accepted = TcpTransport()
    accept(QuorumPortFactory(lambda stream: None, keep_alive=keep_alive), accepted)
    reactor = MemoryReactorClock()
    network = ReactorQuorumNetwork(reactor, ADDRESSES, keep_alive=keep_alive)
    network.connect(2, lambda stream: None, lambda: None)
    proto = reactor.tcpClients[0][2].buildProtocol(None)
    dialled = TcpTransport()
    proto.makeConnection(dialled)
    # A COMMIT must not wait for the TCP ACK of its PROPOSAL (ZooKeeper's setTcpNoDelay).
    assert (accepted.no_delay, dialled.no_delay) == (True, True)
    assert (accepted.keep_alive, dialled.keep_alive) == (keep_alive, keep_alive)


def test_up_down_and_close_are_logged_with_peer_address_and_direction() -> None:
    reactor = MemoryReactorClock()
    network = ReactorQuorumNetwork(reactor, ADDRESSES)
    dials = Dials()
    with port_logs() as events:
        dials.connect(network, 3)
        proto, _ = complete_dial(reactor)
        Owner(proto)
        proto.connectionLost(Failure(ConnectionDone()))
        owners: list[Owner] = []
        accept(QuorumPortFactory(lambda stream: owners.append(Owner(stream))))
        owners[0].stream.close()
    seen = [(e["log_format"].split(" {")[0], e.get("direction"), e.get("peer"), e.get("sid")) for e in events]
    assert seen == [
        ("Quorum connection", "dialled", f"127.0.0.1:{BASE_PORT + 3}", 3),
        ("Quorum connection", "dialled", f"127.0.0.1:{BASE_PORT + 3}", 3),
        ("Quorum connection", "accepted", "127.0.0.1:40001", None),
        ("Closing quorum connection", "accepted", "127.0.0.1:40001", None),
    ]
    assert events[0]["log_format"].endswith(" up") and " down: " in events[1]["log_format"]


# ------------------------------------------------------------------ dialling


def test_dial_success_calls_connected_once_and_later() -> None:
    reactor = MemoryReactorClock()
    network = ReactorQuorumNetwork(reactor, ADDRESSES)
    dials = Dials()
    dials.connect(network, 2)
    assert dials.connected == [] and dials.failed == 0  # never inside connect
    assert [(h, p, t) for h, p, _, t, _ in reactor.tcpClients] == [("127.0.0.1", BASE_PORT + 2, 20.0)]
    proto, transport = complete_dial(reactor)
    assert dials.connected == [proto] and dials.failed == 0
    factory = reactor.tcpClients[0][2]
    factory.clientConnectionFailed(reactor.connectors[0], Failure(ConnectionRefusedError()))
    assert dials.connected == [proto] and dials.failed == 0
    owner = Owner(proto)
    owner.stream.write(b"hello")
    proto.dataReceived(b"world")
    assert transport.value() == b"hello" and owner.data == [b"world"]


@pytest.mark.parametrize("error", [ConnectionRefusedError(), TimeoutError()])
def test_refused_or_timed_out_dial_calls_failed_once(error: Exception) -> None:
    reactor = MemoryReactorClock()
    network = ReactorQuorumNetwork(reactor, ADDRESSES, connect_timeout_ms=1500)
    dials = Dials()
    dials.connect(network, 1)
    host, port, factory, timeout, _ = reactor.tcpClients[0]
    assert timeout == 1.5
    factory.clientConnectionFailed(reactor.connectors[0], Failure(error))
    factory.clientConnectionFailed(reactor.connectors[0], Failure(error))
    assert dials.failed == 1 and dials.connected == []
    assert factory.buildProtocol(IPv4Address("TCP", host, port)) is None  # a late connect is refused


def test_unknown_sid_fails_on_a_later_turn() -> None:
    reactor = MemoryReactorClock()
    dials = Dials()
    dials.connect(ReactorQuorumNetwork(reactor, ADDRESSES), 9)
    assert dials.failed == 0 and reactor.tcpClients == []
    reactor.advance(0)
    assert dials.failed == 1 and dials.connected == []


def test_network_stop_abandons_dials_and_drops_dialled_streams() -> None:
    reactor = MemoryReactorClock()
    network = ReactorQuorumNetwork(reactor, ADDRESSES)
    dials = Dials()
    dials.connect(network, 1)
    proto, transport = complete_dial(reactor)
    owner = Owner(proto)
    dials.connect(network, 2)
    network.stop()
    assert transport.disconnecting and reactor.connectors[1].stoppedConnecting
    assert reactor.tcpClients[1][2].buildProtocol(None) is None
    proto.connectionLost(Failure(ConnectionDone()))
    assert owner.closes == 1  # a hang-up by the port: the owner hears of it
    dials.connect(network, 3)
    reactor.advance(0)
    assert dials.connected == [proto] and dials.failed == 1


def test_port_stop_drops_accepted_streams_and_stops_listening() -> None:
    reactor = MemoryReactorClock()
    owners: list[Owner] = []
    factory = QuorumPortFactory(lambda stream: owners.append(Owner(stream)), reactor)
    factory.listen(0, "127.0.0.1")
    assert reactor.tcpServers[0][0] == 0 and reactor.tcpServers[0][3] == "127.0.0.1"
    proto, transport = accept(factory)
    stopped: list[None] = []
    factory.stop().addCallback(stopped.append)
    assert stopped == [None] and transport.disconnecting
    proto.connectionLost(Failure(ConnectionDone()))
    assert owners[0].closes == 1
    assert factory.buildProtocol(IPv4Address("TCP", "127.0.0.1", 40002)) is None


# ------------------------------------------------------------------ both ends on iosim


def test_dialled_and_accepted_ends_talk_and_a_close_reaches_the_other_end_only() -> None:
    reactor = MemoryReactorClock()
    accepted: list[Owner] = []
    factory = QuorumPortFactory(lambda stream: accepted.append(Owner(stream)))
    network = ReactorQuorumNetwork(reactor, ADDRESSES)
    dials = Dials()
    dials.connect(network, 2)
    host, port, dial_factory, _, _ = reactor.tcpClients[0]
    client = dial_factory.buildProtocol(IPv4Address("TCP", host, port))
    server = factory.buildProtocol(IPv4Address("TCP", host, 50001))
    client_io = iosim.FakeTransport(client, False, peerAddress=IPv4Address("TCP", host, port))
    server_io = iosim.FakeTransport(server, True, peerAddress=IPv4Address("TCP", host, 50001))
    pump = iosim.connect(server, server_io, client, client_io, clock=reactor)
    dialler = Owner(dials.connected[0])
    listener = accepted[0]
    dialler.stream.write(b"from dialler")
    listener.stream.write(b"from listener")
    pump.flush()
    assert b"".join(listener.data) == b"from dialler" and b"".join(dialler.data) == b"from listener"
    dialler.stream.close()
    pump.flush()
    assert (dialler.closes, listener.closes) == (0, 1)
    assert client_io.disconnected and server_io.disconnected


# ------------------------------------------------------------------ scheduler


def test_scheduler_runs_in_ms_and_cancel_ignores_calls_run_or_cancelled() -> None:
    reactor = MemoryReactorClock()
    scheduler = ReactorScheduler(reactor)
    ran: list[str] = []
    first = scheduler.call_later(250, lambda: ran.append("first"))
    second = scheduler.call_later(500, lambda: ran.append("second"))
    reactor.advance(0.249)
    assert ran == []
    reactor.advance(0.001)
    assert ran == ["first"]
    first.cancel()  # ran already: nothing happens
    second.cancel()
    second.cancel()
    reactor.advance(1)
    assert ran == ["first"] and reactor.getDelayedCalls() == []
    assert scheduler.now_ms() == 1250
