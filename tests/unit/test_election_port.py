"""The election port: link rules (zabd.election.links) and the Twisted adapter on in-memory transports."""
from __future__ import annotations

import struct
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import Any

import pytest
from twisted.internet.address import IPv4Address
from twisted.internet.error import ConnectionRefusedError
from twisted.internet.testing import MemoryReactorClock, StringTransport
from twisted.logger import LogEvent, LogLevel, capturedLogs
from twisted.python.failure import Failure
from twisted.test import iosim

from tests.unit.fakes import TcpTransport
from zabd.election.links import (
    OBSERVER_ID, Close, Dial, FrameReader, LinkTable, Loopback, Up, Write, check_frame_length, frame,
)
from zabd.election.messages import MAX_FRAME, ElectionWireError, InitialMessage
from zabd.server.election_port import ElectionConnection, ElectionPortFactory

GOLDEN_INITIAL = bytes.fromhex("ffffffffffff0000" "0000000000000003" "0000000f") + b"127.0.0.1:23883"
BASE_PORT = 23880


def initial(sid: int) -> bytes:
    return InitialMessage(sid, f"127.0.0.1:{BASE_PORT + sid}").encode()


@contextmanager
def port_logs() -> Iterator[Sequence[LogEvent]]:
    """Only this module's events: other code may log meanwhile."""
    with capturedLogs() as events:
        mine: list[LogEvent] = []
        yield mine
        mine.extend(e for e in events if e.get("log_namespace") == "zabd.server.election_port")


# ------------------------------------------------------------------ a node on a MemoryReactorClock


class Node:
    """One ElectionPortFactory on its own memory reactor, connections on StringTransports."""

    def __init__(self, myid: int, sids: Sequence[int] = (1, 2, 3), **kw: Any) -> None:
        self.reactor = MemoryReactorClock()
        self.received: list[tuple[int, bytes]] = []
        peers = {sid: ("127.0.0.1", BASE_PORT + sid) for sid in sids}
        self.port = ElectionPortFactory(myid, f"127.0.0.1:{BASE_PORT + myid}", peers,
                                        lambda sid, payload: self.received.append((sid, payload)),
                                        self.reactor, **kw)

    def dials(self) -> list[tuple[str, int]]:
        return [(host, port) for host, port, *_ in self.reactor.tcpClients]

    def complete_dial(self, sid: int) -> tuple[ElectionConnection, StringTransport]:
        """The TCP connect of the latest dial to ``sid`` succeeds."""
        host, port, factory, _, _ = [c for c in self.reactor.tcpClients if c[1] == BASE_PORT + sid][-1]
        addr = IPv4Address("TCP", host, port)
        proto = factory.buildProtocol(addr)
        transport = StringTransport(peerAddress=addr)
        proto.makeConnection(transport)
        return proto, transport

    def accept(self, data: bytes = b"") -> tuple[ElectionConnection, StringTransport]:
        """A peer connects to my listener and sends ``data``."""
        addr = IPv4Address("TCP", "127.0.0.1", 40000)
        proto = self.port.buildProtocol(addr)
        transport = StringTransport(peerAddress=addr)
        proto.makeConnection(transport)
        if data:
            proto.dataReceived(data)
        return proto, transport


# ------------------------------------------------------------------ handshake


def test_election_sockets_turn_nagle_off() -> None:
    node = Node(1)
    addr = IPv4Address("TCP", "127.0.0.1", 40000)
    transport = TcpTransport(peerAddress=addr)
    node.port.buildProtocol(addr).makeConnection(transport)
    assert transport.no_delay


def test_dialled_connection_sends_golden_initial_message_then_queued_frame() -> None:
    node = Node(3)
    node.port.send(1, b"vote")
    assert node.dials() == [("127.0.0.1", BASE_PORT + 1)]
    assert node.reactor.tcpClients[0][3] == 5.0  # zookeeper.cnxTimeout default, in seconds
    _, transport = node.complete_dial(1)
    assert transport.value() == GOLDEN_INITIAL + b"\x00\x00\x00\x04vote"
    assert not transport.disconnecting
    assert node.port.connected(1) and node.port.any_delivered()


def test_connect_timeout_is_configurable() -> None:
    node = Node(2, connect_timeout_ms=1500)
    node.port.connect_all()
    assert sorted(node.dials()) == [("127.0.0.1", BASE_PORT + 1), ("127.0.0.1", BASE_PORT + 3)]
    assert {client[3] for client in node.reactor.tcpClients} == {1.5}


def test_smaller_sid_dials_sends_initial_and_hangs_up() -> None:
    node = Node(1)
    node.port.send(3, b"vote")
    _, transport = node.complete_dial(3)
    assert transport.value() == initial(1)  # the initial message only, then close: 3 dials back
    assert transport.disconnecting
    assert not node.port.connected(3)
    assert not node.port.any_delivered()  # the vote waits for 3's connection


def test_accepting_larger_sid_keeps_it_and_sends_the_slot() -> None:
    node = Node(1)
    node.port.send(3, b"old")
    node.port.send(3, b"new")
    assert len(node.dials()) == 1  # one dial at a time per peer
    _, transport = node.accept(initial(3) + frame(b"hello"))
    assert not transport.disconnecting
    assert transport.value() == frame(b"new")  # capacity 1: the newest won
    assert node.received == [(3, b"hello")]
    assert node.port.connected(3) and node.port.any_delivered()


def test_accepting_smaller_sid_closes_and_dials_back_to_its_address() -> None:
    node = Node(3)
    proto, transport = node.accept(InitialMessage(1, "10.0.0.1:3999").encode() + frame(b"ignored"))
    assert transport.disconnecting
    assert node.received == []  # the losing connection is read no further
    assert node.dials() == [("10.0.0.1", 3999)]  # the address it announced
    assert proto.sid == 1


def test_smaller_sid_dialling_again_drops_my_stale_link() -> None:
    node = Node(3)
    node.port.send(1, b"v")
    _, old = node.complete_dial(1)
    _, new = node.accept(initial(1))
    assert old.disconnecting and new.disconnecting
    assert not node.port.connected(1)
    assert len(node.dials()) == 2


def test_legacy_bare_sid_initial_message() -> None:
    node = Node(1)
    _, transport = node.accept(struct.pack(">q", 2) + frame(b"x"))
    assert not transport.disconnecting
    assert node.received == [(2, b"x")]


def test_own_sid_is_refused() -> None:
    node = Node(2)
    with port_logs() as events:
        _, transport = node.accept(initial(2))
    assert transport.disconnecting
    assert not node.port.connected(2)
    assert [e["reason"] for e in events] == ["peer claims my own sid"]


def test_replaced_connection_is_closed_and_its_loss_changes_nothing() -> None:
    node = Node(1)
    first, t1 = node.accept(initial(3))
    second, t2 = node.accept(initial(3))
    assert t1.disconnecting and not t2.disconnecting
    first.dataReceived(frame(b"late"))  # bytes still in flight on the old socket
    first.connectionLost(Failure(ConnectionError()))
    assert node.port.connected(3)
    second.dataReceived(frame(b"fresh"))
    assert node.received == [(3, b"fresh")]


# ------------------------------------------------------------------ queue, re-send, loopback


def test_last_message_is_resent_when_a_link_starts_with_an_empty_slot() -> None:
    node = Node(3)
    node.port.send(1, b"v1")
    proto, transport = node.complete_dial(1)
    node.port.send(1, b"v2")
    assert transport.value() == initial(3) + frame(b"v1") + frame(b"v2")
    proto.connectionLost(Failure(ConnectionError()))
    node.port.connect_all()
    _, again = node.complete_dial(1)
    assert again.value() == initial(3) + frame(b"v2")


def test_queued_message_beats_the_last_one_on_reconnect() -> None:
    node = Node(3)
    node.port.send(1, b"v1")
    proto, _ = node.complete_dial(1)
    proto.connectionLost(Failure(ConnectionError()))
    node.port.send(1, b"v2")
    _, again = node.complete_dial(1)
    assert again.value() == initial(3) + frame(b"v2")


def test_send_to_myself_arrives_on_a_later_turn() -> None:
    node = Node(2)
    node.port.send(2, b"a")
    node.port.send(2, b"b")
    assert node.received == [] and node.dials() == []
    node.reactor.advance(0)
    assert node.received == [(2, b"a"), (2, b"b")]
    assert node.reactor.getDelayedCalls() == []


def test_failed_dial_keeps_the_payload_and_connect_all_retries() -> None:
    node = Node(3)
    node.port.send(1, b"v")
    host, port, factory, _, _ = node.reactor.tcpClients[0]
    with port_logs() as events:
        factory.clientConnectionFailed(node.reactor.connectors[0], Failure(ConnectionRefusedError()))
    assert [(e["log_level"], e["sid"], e["peer"]) for e in events] == [(LogLevel.warn, 1, f"{host}:{port}")]
    assert not node.port.any_delivered()
    node.port.connect_all()
    assert len(node.dials()) == 3  # 1 again, and 2 for the first time
    _, transport = node.complete_dial(1)
    assert transport.value() == initial(3) + frame(b"v")


# ------------------------------------------------------------------ bad input


@pytest.mark.parametrize("length", [0, -1, MAX_FRAME + 1, 0x7FFFFFFF])
def test_bad_frame_length_closes_only_that_connection(length: int) -> None:
    node = Node(1, sids=(1, 2, 3))
    bad_proto, bad = node.accept(initial(2) + frame(b"ok"))
    good_proto, good = node.accept(initial(3))
    with port_logs() as events:
        node.port.send(2, b"queued")  # goes out on the bad link before it breaks
        bad_proto.dataReceived(struct.pack(">i", length) + frame(b"never"))
        good_proto.dataReceived(frame(b"still served"))
        bad_proto.connectionLost(Failure(ConnectionError()))
    assert bad.disconnecting and not good.disconnecting
    assert bad.value() == frame(b"queued")
    assert node.received == [(2, b"ok"), (3, b"still served")]
    assert len(events) == 1  # one line for the drop, none for the loss that follows
    assert events[0]["log_level"] == LogLevel.warn
    assert events[0]["sid"] == 2 and events[0]["peer"] == "127.0.0.1:40000"
    assert "invalid frame length" in events[0]["reason"]
    node.port.send(2, b"later")
    assert not node.port.connected(2)  # "later" waits for 2 to dial again,
    assert node.port.any_delivered()  # but 3's queue is empty


def test_a_dead_peers_waiting_vote_does_not_hide_the_delivered_ones() -> None:
    node = Node(2)
    node.port.send(1, b"v")
    node.port.send(3, b"v")
    assert not node.port.any_delivered()  # both wait for their links
    factory = [c[2] for c in node.reactor.tcpClients if c[1] == BASE_PORT + 3][-1]
    with port_logs():
        factory.clientConnectionFailed(node.reactor.connectors[-1], Failure(ConnectionRefusedError()))
    node.complete_dial(1)
    assert node.port.connected(1) and not node.port.connected(3)
    assert node.port.any_delivered()  # FLE re-sends on its next empty poll, and 1 answers


def test_bad_initial_message_closes_with_one_log_line() -> None:
    node = Node(1)
    with port_logs() as events:
        proto, transport = node.accept(struct.pack(">qqi", -2, 3, 3) + b"h:1")
        proto.connectionLost(Failure(ConnectionError()))
    assert transport.disconnecting
    assert len(events) == 1 and "unrecognized protocol version" in events[0]["reason"]
    assert events[0]["sid"] is None and events[0]["peer"] == "127.0.0.1:40000"
    assert node.reactor.getDelayedCalls() == []


def test_silent_peer_is_dropped_after_the_handshake_timeout() -> None:
    node = Node(1, handshake_timeout_ms=4000)
    _, silent = node.accept(initial(3)[:10])
    _, prompt = node.accept(initial(2))
    node.reactor.advance(3.9)
    assert not silent.disconnecting
    node.reactor.advance(0.1)
    assert silent.disconnecting and not prompt.disconnecting
    assert node.reactor.getDelayedCalls() == []


# ------------------------------------------------------------------ stop


def test_stop_closes_everything_and_leaves_no_delayed_calls() -> None:
    node = Node(2)
    node.port.listen(BASE_PORT + 2, "127.0.0.1")
    _, linked = node.accept(initial(3))
    _, pending = node.accept(initial(3)[:5])  # still in the handshake: a timer runs
    node.port.send(1, b"v")  # a dial under way
    node.port.send(2, b"self")  # a loopback scheduled
    assert node.reactor.getDelayedCalls() != []
    stopped = node.port.stop()
    assert stopped.called
    assert linked.disconnecting and pending.disconnecting
    assert node.reactor.connectors[0].stoppedConnecting
    assert node.reactor.getDelayedCalls() == []
    node.port.send(3, b"after")
    node.port.connect_all()
    node.reactor.advance(10)
    assert node.dials() == [("127.0.0.1", BASE_PORT + 1)] and node.received == []
    _, late = node.complete_dial(1)  # the dial won the race with stopConnecting
    assert late.value() == b"" and late.disconnecting


# ------------------------------------------------------------------ three nodes on iosim


class Mesh:
    """Nodes sharing one MemoryReactorClock; dials reach the listener on the dialled port via iosim."""

    def __init__(self, sids: Sequence[int]) -> None:
        self.reactor = MemoryReactorClock()
        self.received: dict[int, list[tuple[int, bytes]]] = {sid: [] for sid in sids}
        peers = {sid: ("127.0.0.1", BASE_PORT + sid) for sid in sids}
        self.ports = {
            sid: ElectionPortFactory(sid, f"127.0.0.1:{BASE_PORT + sid}", peers,
                                     lambda src, payload, me=sid: self.received[me].append((src, payload)),
                                     self.reactor)
            for sid in sids
        }
        self.routed = 0
        self.links: list[tuple[int, int, iosim.FakeTransport]] = []  # (dialler, dialled, dialler's transport)
        self.pumps: list[iosim.IOPump] = []

    def run(self) -> None:
        for _ in range(100):
            moved = self._route()
            moved = any([pump.pump() for pump in self.pumps]) or moved
            if not moved:
                return
        raise AssertionError("the mesh did not settle")

    def _route(self) -> bool:
        clients = self.reactor.tcpClients
        moved = self.routed < len(clients)
        for host, port, factory, _, _ in clients[self.routed:]:
            dialler = next(sid for sid, p in self.ports.items() if factory._port is p)
            target = port - BASE_PORT
            client = factory.buildProtocol(IPv4Address("TCP", host, port))
            server = self.ports[target].buildProtocol(IPv4Address("TCP", host, 50000 + dialler))
            client_io = iosim.FakeTransport(client, False, peerAddress=IPv4Address("TCP", host, port))
            server_io = iosim.FakeTransport(server, True, peerAddress=IPv4Address("TCP", host, 50000 + dialler))
            self.pumps.append(iosim.connect(server, server_io, client, client_io, clock=self.reactor))
            self.links.append((dialler, target, client_io))
        self.routed = len(clients)
        return moved


def test_three_peers_settle_on_one_link_per_pair_opened_by_the_larger_sid() -> None:
    mesh = Mesh((1, 2, 3))
    for sid, port in mesh.ports.items():
        for other in (1, 2, 3):
            port.send(other, f"{sid}->{other}".encode())
    mesh.run()
    for sid in (1, 2, 3):
        assert sorted(mesh.received[sid]) == [(o, f"{o}->{sid}".encode()) for o in (1, 2, 3)]
        assert mesh.ports[sid].any_delivered()
    live = sorted((a, b) for a, b, io in mesh.links if not io.disconnected)
    assert live == [(2, 1), (3, 1), (3, 2)]
    for port in mesh.ports.values():
        port.stop()
    mesh.run()
    assert all(io.disconnected for _, _, io in mesh.links)
    assert mesh.reactor.getDelayedCalls() == []


def test_link_up_and_down_are_logged_with_fields() -> None:
    mesh = Mesh((1, 2))
    with port_logs() as events:
        mesh.ports[2].send(1, b"v")
        mesh.run()
        mesh.links[0][2].loseConnection()  # the network drops the link
        mesh.run()
    seen = [("up" if e["log_format"].endswith(" up") else "down" if " down: " in e["log_format"] else "?",
             e["direction"], e["sid"], e["peer"]) for e in events]
    assert sorted(seen) == [
        ("down", "accepted", 2, "127.0.0.1:50002"),  # on 1: every line names the peer's address and sid
        ("down", "dialled", 1, "127.0.0.1:23881"),  # on 2
        ("up", "accepted", 2, "127.0.0.1:50002"),
        ("up", "dialled", 1, "127.0.0.1:23881"),
    ]
    assert [s[0] for s in seen[:2]] == ["up", "up"]


# ------------------------------------------------------------------ pure rules


def test_frame_length_limits() -> None:
    check_frame_length(1)
    check_frame_length(MAX_FRAME)
    for bad in (0, -5, MAX_FRAME + 1):
        with pytest.raises(ElectionWireError, match="invalid frame length"):
            check_frame_length(bad)
    with pytest.raises(ElectionWireError):
        frame(b"")
    assert frame(b"ab") == b"\x00\x00\x00\x02ab"


def test_frame_reader_across_chunks_and_error_after_good_frames() -> None:
    reader = FrameReader(expect_initial=True)
    data = GOLDEN_INITIAL + frame(b"one") + frame(b"two")
    results = [reader.feed(data[i:i + 7]) for i in range(0, len(data), 7)]
    assert [r.initial for r in results if r.initial] == [InitialMessage(3, "127.0.0.1:23883")]
    assert [f for r in results for f in r.frames] == [b"one", b"two"]
    bad = reader.feed(frame(b"three") + struct.pack(">i", 0) + frame(b"four"))
    assert bad.frames == (b"three",) and bad.error is not None
    assert reader.feed(frame(b"five")).frames == ()  # spent


def test_link_table_effects_for_both_sides() -> None:
    low: LinkTable[str] = LinkTable(1, (1, 2, 3))
    assert low.send(3, b"v") == [Dial(3)]
    assert low.send(3, b"w") == []  # dial under way; slot replaced
    assert low.dialled(3, "c1") == [Close("c1", 3, "peer has the larger sid and dials me")]
    assert low.accepted(InitialMessage(3, "h:1"), "c2") == [Up("c2", 3), Write("c2", b"w")]
    assert low.send(1, b"me") == [Loopback(b"me")]
    assert low.connect_all() == [Dial(2)]
    high: LinkTable[str] = LinkTable(3, (1, 2, 3))
    assert high.accepted(InitialMessage(1, "h:9"), "c3") == [Close("c3", 1, "lower sid dialled; dialling back"),
                                                              Dial(1, ("h", 9))]
    assert high.lost(1, "c3") is False


def test_any_delivered_once_some_queue_is_empty() -> None:
    table: LinkTable[str] = LinkTable(2, (1, 2, 3, 4, 5))
    assert not table.any_delivered()  # no queue yet, as 3.8's empty queueSendMap
    assert [e for sid in (1, 3, 4, 5) for e in table.send(sid, b"v")] == [Dial(1), Dial(3), Dial(4), Dial(5)]
    assert not table.any_delivered()  # every vote waits for its link
    table.dial_failed(5)  # 5 is dead: its vote waits for good
    table.accepted(InitialMessage(4, "h:4"), "c4")
    assert table.any_delivered()  # 4 took its vote
    assert table.lost(4, "c4") and table.any_delivered()  # the queue outlives its connection, empty
    table.send(4, b"w")
    assert not table.any_delivered()  # until 4 links again
    unasked: LinkTable[str] = LinkTable(1, (1, 2, 3))
    unasked.accepted(InitialMessage(3, "h:3"), "c3")
    assert unasked.any_delivered()  # a link makes a queue even before anything is sent on it


def test_observers_without_a_sid_get_negative_ids() -> None:
    table: LinkTable[str] = LinkTable(1, (1, 2))
    first = table.accepted(InitialMessage(OBSERVER_ID, "o:1"), "a")
    second = table.accepted(InitialMessage(OBSERVER_ID, "o:2"), "b")
    assert first[0] == Close("a", -1, "lower sid dialled; dialling back")
    assert second[0] == Close("b", -2, "lower sid dialled; dialling back")
