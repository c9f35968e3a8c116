"""ServerConnection: the handshake, request framing rules, auth, and closing, on a fake transport."""
from __future__ import annotations

import struct

import pytest
from twisted.internet.task import Clock

from tests.unit.fakes import (
    OPEN_ACL,
    FakeClient,
    RecordingTxnLog,
    Reply,
    connect_request,
    connected_client,
    make_server,
)
from zabd.core.sessions import session_password
from zabd.jute.errors import Code
from zabd.jute.opcodes import OpCode
from zabd.jute.records import (
    AuthPacket,
    ConnectResponse,
    CreateRequest,
    CreateResponse,
    PathWatchRequest,
    StatResponse,
)
from zabd.serving.connection import State
from zabd.serving.standalone import StandaloneServer


# ---- handshake ---------------------------------------------------------------------------


@pytest.mark.parametrize(("read_only", "body_length"), [(False, 37), (True, 37), (None, 36)])
def test_handshake_body_length_follows_the_read_only_byte(
    server: StandaloneServer, read_only: bool | None, body_length: int
) -> None:
    client = FakeClient(server)
    response = client.handshake(timeout=10000, read_only=read_only)
    assert response is not None
    first = client.transport.writes[0]
    assert struct.unpack(">i", first[:4])[0] == body_length == len(first) - 4
    if read_only is not None:
        assert client.connect_extra == b"\x00"  # not a read-only server
    assert response.protocolVersion == 0
    assert response.timeOut == 10000
    assert response.sessionId >> 56 == 1  # standalone server id 1 in the top byte
    assert response.passwd == session_password(response.sessionId)
    assert client.conn.state is State.ACTIVE and not client.lost


def test_session_ids_increase_by_one(server: StandaloneServer) -> None:
    first, second = connected_client(server), connected_client(server)
    assert second.session_id == first.session_id + 1


@pytest.mark.parametrize(("requested", "negotiated"), [
    (1000, 4000), (-5, 4000), (4000, 4000), (10000, 10000), (40000, 40000), (10_000_000, 40000)])
def test_timeout_is_clamped(server: StandaloneServer, requested: int, negotiated: int) -> None:
    response = FakeClient(server).handshake(timeout=requested)
    assert response is not None and response.timeOut == negotiated
    assert server.ctx.sessions.timeout_of(response.sessionId) == negotiated


def test_timeout_bounds_follow_the_options(clock: Clock) -> None:
    server = make_server(clock, min_session_timeout_ms=100, max_session_timeout_ms=500)[0]
    assert FakeClient(server).handshake(timeout=50).timeOut == 100  # type: ignore[union-attr]
    assert FakeClient(server).handshake(timeout=900).timeOut == 500  # type: ignore[union-attr]


def test_client_ahead_of_the_server_is_closed_without_response(server: StandaloneServer) -> None:
    existing = connected_client(server)
    existing.call(OpCode.create, CreateRequest("/x", b"", OPEN_ACL, 0))
    last = server.ctx.tree.last_processed_zxid
    ok = FakeClient(server)
    assert ok.handshake(last_zxid=last) is not None
    last = server.ctx.tree.last_processed_zxid  # createSession is a txn too
    ahead = FakeClient(server)
    sessions = len(server.ctx.sessions)
    ahead.send_connect(last_zxid=last + 1)
    assert ahead.transport.written == b"" and ahead.lost
    assert len(server.ctx.sessions) == sessions


@pytest.mark.parametrize("frame", [b"", b"\x00" * 10, connect_request()[:-22], connect_request(passwd=None)[:20]])
def test_undecodable_connect_request_closes_silently(server: StandaloneServer, frame: bytes) -> None:
    client = FakeClient(server)
    client.conn.frame_received(frame)
    assert client.transport.written == b"" and client.lost


def test_null_password_on_a_new_session_is_accepted(server: StandaloneServer) -> None:
    response = FakeClient(server).handshake(passwd=None)
    assert response is not None and response.timeOut > 0


# ---- resuming sessions ---------------------------------------------------------------------


def test_resume_with_the_right_password(server: StandaloneServer) -> None:
    first = connected_client(server, timeout=6000)
    first.call(OpCode.create, CreateRequest("/eph", b"", OPEN_ACL, 1))
    second = FakeClient(server)
    response = second.handshake(session_id=first.session_id, passwd=first.password, timeout=8000)
    assert response == ConnectResponse(0, 8000, first.session_id, first.password)
    assert first.lost and first.conn.state is State.CLOSED
    assert not second.lost
    # The session, and its ephemeral, carry on.
    exists = second.call(OpCode.exists, PathWatchRequest("/eph", False)).decode(StatResponse)
    assert exists.stat.ephemeralOwner == first.session_id
    assert server.by_session[first.session_id] is second.conn


@pytest.mark.parametrize("password", [bytes(16), b"short", None])
def test_resume_with_a_wrong_password_closes_both_connections(server: StandaloneServer,
                                                               password: bytes | None) -> None:
    first = connected_client(server)
    intruder = FakeClient(server)
    response = intruder.handshake(session_id=first.session_id, passwd=password)
    assert response == ConnectResponse(0, 0, 0, bytes(16))
    assert intruder.lost
    # ZooKeeper drops the session's current connection before checking the password.
    assert first.lost
    assert first.session_id in server.ctx.sessions


def test_resume_of_an_unknown_session_is_refused(server: StandaloneServer) -> None:
    sid = 0x0100000000001234
    response = FakeClient(server).handshake(session_id=sid, passwd=session_password(sid))
    assert response is not None and (response.timeOut, response.sessionId) == (0, 0)


def test_reconnect_after_disconnect(server: StandaloneServer) -> None:
    first = connected_client(server)
    first.disconnect()
    assert first.session_id not in server.by_session
    again = FakeClient(server).handshake(session_id=first.session_id, passwd=first.password)
    assert again is not None and again.sessionId == first.session_id


# ---- frames while settling, and malformed frames ----------------------------------------------


def test_frames_sent_before_the_session_is_settled_wait_for_it(clock: Clock) -> None:
    log = RecordingTxnLog()
    server = make_server(clock, log)[0]
    client = FakeClient(server)
    client.send_connect()
    x1 = client.send(OpCode.create, CreateRequest("/early", b"", OPEN_ACL, 0))
    x2 = client.send(OpCode.exists, PathWatchRequest("/early", False))
    assert client.transport.written == b""
    log.make_durable()  # createSession
    assert client.read_connect_response() is not None
    log.make_durable()  # the create
    messages = client.messages()
    assert [m.xid for m in messages if isinstance(m, Reply)] == [x1, x2]
    assert all(isinstance(m, Reply) and m.err == 0 for m in messages)


@pytest.mark.parametrize("frame", [b"", b"\x00\x00\x00\x01", b"\x00" * 7])
def test_request_frame_shorter_than_a_header_closes(server: StandaloneServer, frame: bytes) -> None:
    client = connected_client(server)
    client.conn.frame_received(frame)
    assert client.lost and client.messages() == []


@pytest.mark.parametrize("opcode", [0, 10, 23, 99, 108, -1, -10, -12, 2**31 - 1, -(2**31)])
def test_unknown_opcode_replies_unimplemented_with_zxid_minus_one_then_closes(server: StandaloneServer,
                                                                                opcode: int) -> None:
    client = connected_client(server)
    result = client.call(opcode, b"", xid=77)
    assert (result.reply.xid, result.zxid, result.err, result.reply.body) == (77, -1, Code.UNIMPLEMENTED, b"")
    assert client.lost
    # Nothing more is processed or written on it.
    client.send(OpCode.create, CreateRequest("/after", b"", OPEN_ACL, 0))
    assert client.messages() == []
    assert server.ctx.tree.get("/after") is None


# ---- auth ----------------------------------------------------------------------------------


def test_digest_auth_succeeds(server: StandaloneServer) -> None:
    client = connected_client(server)
    result = client.call(OpCode.auth, AuthPacket(0, "digest", b"bob:pw"), xid=-4)
    assert (result.reply.xid, result.zxid, result.err, result.reply.body) == (-4, 0, 0, b"")
    assert any(i.scheme == "digest" and i.id.startswith("bob:") for i in client.conn.auth_ids)
    assert not client.lost


@pytest.mark.parametrize("payload", [
    AuthPacket(0, "nosuch", b"x"), AuthPacket(0, "super", b"x"), AuthPacket(0, None, None), b"\x00\x00"])
def test_auth_failure_replies_authfailed_then_closes(server: StandaloneServer, payload: AuthPacket | bytes) -> None:
    client = connected_client(server)
    result = client.call(OpCode.auth, payload, xid=-4)
    assert (result.reply.xid, result.zxid, result.err) == (-4, 0, Code.AUTHFAILED)
    assert client.lost
    assert server.ctx.stats.auth_failed == 1


def test_sasl_is_refused(server: StandaloneServer) -> None:
    client = connected_client(server)
    assert client.call(OpCode.sasl, b"\x00\x00\x00\x00").err == Code.AUTHFAILED


# ---- closing -----------------------------------------------------------------------------------


def test_close_session_replies_then_closes_and_removes_ephemerals(server: StandaloneServer) -> None:
    client = connected_client(server)
    client.call(OpCode.create, CreateRequest("/e", b"", OPEN_ACL, 1)).decode(CreateResponse)
    xid = client.send(OpCode.closeSession)
    later = client.send(OpCode.exists, PathWatchRequest("/e", False))
    result = client.result_for(xid)
    assert (result.err, result.reply.body) == (0, b"")
    assert result.zxid == server.ctx.tree.last_processed_zxid
    assert client.lost
    assert later != xid and client.messages() == []
    assert server.ctx.tree.get("/e") is None
    assert client.session_id not in server.ctx.sessions
    # The session cannot be resumed.
    again = FakeClient(server).handshake(session_id=client.session_id, passwd=client.password)
    assert again is not None and again.timeOut == 0


def test_nothing_is_written_after_close(server: StandaloneServer) -> None:
    client = connected_client(server)
    client.conn.close()
    client.conn.close()
    assert client.transport.lose_calls == 1
    before = len(client.transport.written)
    client.conn.send_reply(1, 0, 0, None)
    client.conn.send_event(1, "/x")
    client.conn.session_established(True)
    assert len(client.transport.written) == before


def test_connection_lost_leaves_the_session_to_expire(server: StandaloneServer) -> None:
    client = connected_client(server)
    client.disconnect()
    assert client.conn not in server.connections
    assert server.ctx.sessions.is_alive(client.session_id)


def test_batched_output_leaves_in_one_write(server: StandaloneServer) -> None:
    client = connected_client(server)
    writes = len(client.transport.writes)
    client.conn.begin_batch()
    for _ in range(3):
        client.send(OpCode.exists, PathWatchRequest("/", False))
    assert len(client.transport.writes) == writes
    client.conn.end_batch()
    assert len(client.transport.writes) == writes + 1
    assert [m.err for m in client.messages() if isinstance(m, Reply)] == [0, 0, 0]


def test_stats_count_packets(server: StandaloneServer) -> None:
    client = connected_client(server)
    client.call(OpCode.exists, PathWatchRequest("/", False))
    client.call(OpCode.ping, xid=-2)
    assert client.conn.stats.received == 2 and client.conn.stats.sent == 2
    assert client.conn.stats.last_op == OpCode.ping
