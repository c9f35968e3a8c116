"""Large requests (largeRequestThreshold, largeRequestMaxBytes) and the txn size prep allows (ZOOKEEPER-3496)."""
from __future__ import annotations

import struct

import pytest
from twisted.internet.address import IPv4Address
from twisted.internet.task import Clock
from twisted.internet.testing import StringTransport

from tests.unit.fakes import (
    OPEN_ACL, FakeClient, RecordingTxnLog, assert_consistent, connect_request, connected_client, frame, make_server,
)
from zabd.jute import multi
from zabd.jute.errors import Code
from zabd.jute.opcodes import OpCode
from zabd.jute.records import ACL, AuthPacket, CreateRequest, Id, SetDataRequest
from zabd.jute.schema import encode
from zabd.pipeline.context import Settings
from zabd.pipeline.txnsize import may_exceed, txn_size
from zabd.server.client_port import ClientPortFactory, ClientPortProtocol
from zabd.config.overload_settings import LargeRequestSettings
from zabd.serving.standalone import StandaloneServer

#: Requests above 40 bytes are large; together they may hold 300.
LIMITS = LargeRequestSettings(max_bytes=300, threshold=40)


def set_data(client: FakeClient, size: int) -> int:
    """Send a setData whose payload is exactly ``size`` bytes; return its xid."""
    record = SetDataRequest("/", b"", -1)
    data = b"x" * (size - len(encode(record)))
    return client.send(OpCode.setData, SetDataRequest("/", data, -1))


def slow_server(clock: Clock) -> tuple[StandaloneServer, RecordingTxnLog]:
    log = RecordingTxnLog()
    return make_server(clock, txn_log=log, large_requests=LIMITS)[0], log


def session(server: StandaloneServer, log: RecordingTxnLog) -> FakeClient:
    client = FakeClient(server)
    client.send_connect()
    log.make_durable()
    assert client.read_connect_response() is not None
    return client


def test_large_requests_hold_their_bytes_until_answered(clock: Clock) -> None:
    server, log = slow_server(clock)
    client = session(server, log)
    stats = server.ctx.stats
    set_data(client, 40)  # not large: not counted
    set_data(client, 120)
    set_data(client, 150)
    assert stats.large_request_bytes == 270
    log.make_durable()
    assert stats.large_request_bytes == 0 and not client.lost
    assert server.ctx.metrics.large_requests_rejected.value == 0


def test_a_large_request_over_the_budget_closes_its_connection(clock: Clock) -> None:
    server, log = slow_server(clock)
    holder, refused = session(server, log), session(server, log)
    set_data(holder, 200)
    set_data(refused, 101)
    assert refused.lost and not holder.lost
    assert server.ctx.metrics.large_requests_rejected.value == 1
    assert server.ctx.stats.large_request_bytes == 200
    log.make_durable()
    assert server.ctx.stats.large_request_bytes == 0


def test_auth_packets_are_never_large(clock: Clock) -> None:
    server, log = slow_server(clock)
    client = session(server, log)
    secret = b"u:" + b"p" * 400
    assert client.call(OpCode.auth, AuthPacket(0, "digest", secret), xid=-4).err == 0
    assert server.ctx.stats.large_request_bytes == 0


def test_an_unknown_opcode_gives_its_bytes_back(clock: Clock) -> None:
    server, log = slow_server(clock)
    client = session(server, log)
    client.send(999, b"x" * 100)
    assert client.lost and server.ctx.stats.large_request_bytes == 0


def port(server: StandaloneServer, host_port: int) -> tuple[ClientPortProtocol, StringTransport]:
    factory = ClientPortFactory(server, lambda word, argument: "", {}, 4096, 0)
    proto = factory.buildProtocol(IPv4Address("TCP", "127.0.0.1", host_port))
    assert proto is not None
    transport = StringTransport()
    proto.makeConnection(transport)
    return proto, transport


def set_data_frame(size: int, xid: int = 1) -> bytes:
    """A whole setData frame whose payload is ``size`` bytes."""
    record = SetDataRequest("/", b"", -1)
    data = b"x" * (size - len(encode(record)))
    return frame(struct.pack(">ii", xid, OpCode.setData) + encode(SetDataRequest("/", data, -1)))


def test_the_client_port_refuses_a_large_frame_as_its_length_arrives(clock: Clock) -> None:
    server, log = slow_server(clock)
    holder = session(server, log)
    proto, transport = port(server, 1)
    proto.dataReceived(frame(connect_request()))
    log.make_durable()
    set_data(holder, 200)
    proto.dataReceived(set_data_frame(150)[:4])  # the length alone: 200 + 158 is over 300
    assert transport.disconnecting
    assert server.ctx.metrics.large_requests_rejected.value == 1
    log.make_durable()


def test_the_length_is_checked_once_and_the_whole_request_once_more(clock: Clock) -> None:
    """3.8 checks the frame length when it arrives, then the payload (8 bytes less) when it is whole."""
    server, log = slow_server(clock)
    proto, transport = port(server, 1)
    proto.dataReceived(frame(connect_request()))
    log.make_durable()
    request = set_data_frame(247)  # a frame of 255 bytes
    proto.dataReceived(request[:100])  # its length passes: 255 of 300
    other = session(server, log)
    set_data(other, 50)  # 50 held now: 50 + 255 would not pass again, 50 + 247 does
    proto.dataReceived(request[100:])
    assert not transport.disconnecting
    assert server.ctx.stats.large_request_bytes == 297
    log.make_durable()
    assert server.ctx.stats.large_request_bytes == 0


# -- the txn size limit (ZOOKEEPER-3496) ---------------------------------------------------------

SMALL_TXNS = Settings(max_txn_bytes=4096)


def test_a_txn_peers_could_not_read_is_refused_as_an_error_txn(clock: Clock) -> None:
    log = RecordingTxnLog()
    server = make_server(clock, txn_log=log, settings=SMALL_TXNS)[0]
    client = session(server, log)
    client.send(OpCode.create, CreateRequest("/fits", b"x" * 3000, OPEN_ACL, 0))
    client.send(OpCode.create, CreateRequest("/big", b"x" * 5000, OPEN_ACL, 0))
    log.make_durable()
    assert [reply.err for reply in client.messages()] == [0, Code.MARSHALLINGERROR]
    refused = log.appended[-1]
    assert refused.header.type == OpCode.error and txn_size(refused) < 100  # the zxid is used, as for any error
    assert "/big" not in server.ctx.tree.nodes and "/fits" in server.ctx.tree.nodes
    assert all(txn_size(txn) <= 4096 for txn in log.appended)
    assert_consistent(server.ctx.tree)


def test_an_auth_acl_that_grows_past_the_limit_is_refused(clock: Clock) -> None:
    server = make_server(clock, settings=SMALL_TXNS)[0]
    client = connected_client(server)
    for n in range(100):
        assert client.call(OpCode.auth, AuthPacket(0, "digest", f"user{n}:pw".encode()), xid=-4).err == 0
    # A request of a few dozen bytes whose ACL becomes 100 digest ids of about 50 bytes each.
    result = client.call(OpCode.create, CreateRequest("/mine", b"", [ACL(31, Id("auth", ""))], 0))
    assert result.err == Code.MARSHALLINGERROR
    assert len(server.ctx.pending) == 0


def test_a_multi_past_the_limit_is_refused_whole(clock: Clock) -> None:
    server = make_server(clock, settings=SMALL_TXNS)[0]
    client = connected_client(server)
    ops = [(OpCode.create, CreateRequest(f"/m{n}", b"x" * 900, OPEN_ACL, 0)) for n in range(5)]
    result = client.call(OpCode.multi, multi.write_ops(list(ops)))
    assert result.err == Code.MARSHALLINGERROR
    assert not any(path.startswith("/m") for path in server.ctx.tree.nodes)


def test_a_close_session_with_too_many_ephemerals_is_logged_without_their_paths(clock: Clock) -> None:
    log = RecordingTxnLog()
    server = make_server(clock, txn_log=log, settings=SMALL_TXNS)[0]
    client = session(server, log)
    for n in range(60):
        client.send(OpCode.create, CreateRequest(f"/e{n:03d}-" + "n" * 80, b"", OPEN_ACL, 1))
    log.make_durable()
    assert len(server.ctx.tree.ephemerals[client.session_id]) == 60
    client.send(OpCode.closeSession)
    close = log.appended[-1]
    assert close.header.type == OpCode.closeSession and close.body is None
    log.make_durable()
    assert client.session_id not in server.ctx.tree.ephemerals
    assert not any(path.startswith("/e") for path in server.ctx.tree.nodes)
    assert_consistent(server.ctx.tree)


@pytest.mark.parametrize("data_size", [0, 100, 1000, 1400, 1536, 1600, 2000, 3000])
@pytest.mark.parametrize("ids", [0, 3, 12])
def test_the_cheap_bound_never_lets_a_long_txn_through(clock: Clock, data_size: int, ids: int) -> None:
    """Whenever prep skips measuring, the txn it built is within the limit."""
    log = RecordingTxnLog()
    server = make_server(clock, txn_log=log, settings=SMALL_TXNS)[0]
    client = session(server, log)
    for n in range(ids):
        client.send(OpCode.auth, AuthPacket(0, "digest", f"u{n}:pw".encode()), xid=-4)
    request = CreateRequest("/n", b"d" * data_size, [ACL(31, Id("auth", "")), ACL(1, Id("world", "anyone"))], 2)
    client.send(OpCode.create, request)
    txn = log.appended[-1]
    measured = may_exceed(OpCode.create, len(encode(request)), client.conn.auth_ids, 4096)
    assert measured or txn_size(txn) <= 4096
    log.make_durable()
