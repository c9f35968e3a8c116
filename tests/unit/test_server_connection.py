"""ServerConnection alone, sans-IO: bytes in, effects out, against a recording ConnectionServer."""
from __future__ import annotations

import struct

from tests.unit.fakes import connect_request, frame
from zabd.config.overload_settings import LargeRequestSettings
from zabd.core.acl import AuthProviders
from zabd.core.sessions import session_password
from zabd.jute.errors import Code
from zabd.jute.opcodes import OpCode
from zabd.jute.records import AuthPacket, ConnectRequest, ConnectResponse, Id, PathWatchRequest
from zabd.jute.schema import decode, encode
from zabd.metrics.registry import Counter
from zabd.pipeline.request import Request
from zabd.pipeline.stats import ServerStats
from zabd.serving.connection import ServerConnection, State
from zabd.serving.effects import (
    Close,
    ConnectionLimits,
    Effect,
    PauseReading,
    ResumeReading,
    Write,
)
from zabd.serving.overload import LargeRequests

SESSION = 0x0100000000000007


class RecordingServer:
    """A ConnectionServer that records what a connection asks of it and answers nothing by itself."""

    def __init__(self, large: LargeRequestSettings = LargeRequestSettings()) -> None:
        self.stats = ServerStats()
        self.rejected = Counter("large_requests_rejected")
        self.large_requests = LargeRequests(large, self.stats, self.rejected)
        self.providers = AuthProviders(None, True)
        self.connects: list[ConnectRequest] = []
        self.requests: list[Request] = []
        self.touches: list[tuple[int, int, int | None]] = []
        self.held: list[tuple[ServerConnection, int]] = []
        self.gone: list[ServerConnection] = []
        self.admit = True

    def now_ms(self) -> float:
        return 1000.0

    def enqueue(self, request: Request) -> None:
        self.requests.append(request)

    def admit_connection(self, request: ConnectRequest) -> bool:
        return self.admit

    def connect(self, conn: ServerConnection, request: ConnectRequest) -> None:
        self.connects.append(request)

    def touch(self, session_id: int, now_ms: int, timeout_ms: int | None) -> None:
        self.touches.append((session_id, now_ms, timeout_ms))

    def authenticate(self, scheme: str, credential: bytes, remote_ip: str) -> list[Id]:
        return self.providers.authenticate(scheme, credential, remote_ip)

    def password(self, session_id: int) -> bytes:
        return session_password(session_id)

    def collect(self, conn: ServerConnection) -> bool:
        return False

    def hold(self, conn: ServerConnection, limit: int) -> None:
        self.held.append((conn, limit))

    def disconnected(self, conn: ServerConnection) -> None:
        self.gone.append(conn)


def new_connection(limits: ConnectionLimits = ConnectionLimits(max_buffer=4096, outstanding_limit=3),
                   server: RecordingServer | None = None) -> tuple[ServerConnection, RecordingServer, list[Effect]]:
    server = server or RecordingServer()
    effects: list[Effect] = []
    return ServerConnection(server, effects.append, "10.0.0.1", 4000, limits), server, effects


def settled(**kwargs: object) -> tuple[ServerConnection, RecordingServer, list[Effect]]:
    """A connection whose session the server has just settled; its effects so far are cleared."""
    conn, server, effects = new_connection(**kwargs)  # type: ignore[arg-type]
    conn.bytes_received(frame(connect_request()))
    conn.session_id, conn.timeout = SESSION, 10000
    conn.session_established(True)
    effects.clear()
    return conn, server, effects


def request(xid: int, op: int, body: bytes = b"") -> bytes:
    return frame(struct.pack(">ii", xid, op) + body)


def written(effects: list[Effect]) -> bytes:
    return b"".join(effect.data for effect in effects if isinstance(effect, Write))


def replies(effects: list[Effect]) -> list[tuple[int, int, int]]:
    """(xid, zxid, err) of every reply written."""
    data, out, pos = written(effects), [], 0
    while pos < len(data):
        (length,) = struct.unpack_from(">i", data, pos)
        out.append(struct.unpack_from(">iqi", data, pos + 4))
        pos += 4 + length
    return out


EXISTS = encode(PathWatchRequest("/", False))


# ---- the handshake ---------------------------------------------------------------------------


def test_a_connect_request_cut_anywhere_reaches_the_server_once() -> None:
    conn, server, effects = new_connection()
    data = frame(connect_request(timeout=6000))
    for i in range(len(data)):
        conn.bytes_received(data[i:i + 1])
    assert [r.timeOut for r in server.connects] == [6000]
    assert conn.state is State.SETTLING and effects == []


def test_the_settled_session_is_answered_with_one_write() -> None:
    conn, server, effects = new_connection()
    conn.bytes_received(frame(connect_request()))
    conn.session_id, conn.timeout = SESSION, 8000
    conn.session_established(True)
    assert len(effects) == 1 and isinstance(effects[0], Write)
    response = decode(ConnectResponse, effects[0].data[4:-1])
    assert response == ConnectResponse(0, 8000, SESSION, session_password(SESSION))
    assert effects[0].data[-1:] == b"\x00"  # the readOnly byte the client sent: not a read-only server


def test_an_invalid_session_is_answered_then_closed() -> None:
    conn, server, effects = new_connection()
    conn.bytes_received(frame(connect_request(session_id=SESSION)))
    conn.session_established(False)
    assert [type(e) for e in effects] == [Write, Close]
    assert decode(ConnectResponse, effects[0].data[4:-1]) == ConnectResponse(0, 0, 0, bytes(16))


def test_an_undecodable_connect_request_closes_silently() -> None:
    conn, server, effects = new_connection()
    conn.bytes_received(frame(b"\x00" * 10))
    assert effects == [Close()] and server.connects == []


def test_the_connection_throttle_refusal_closes() -> None:
    server = RecordingServer()
    server.admit = False
    conn, _, effects = new_connection(server=server)
    conn.bytes_received(frame(connect_request()))
    assert effects == [Close()] and server.connects == []


def test_requests_sent_while_settling_wait_for_the_session() -> None:
    conn, server, effects = new_connection()
    conn.bytes_received(frame(connect_request()) + request(1, OpCode.exists, EXISTS))
    assert server.requests == []
    conn.session_id, conn.timeout = SESSION, 10000
    conn.session_established(True)
    assert [(r.session_id, r.xid, r.type) for r in server.requests] == [(SESSION, 1, OpCode.exists)]


# ---- requests and replies ----------------------------------------------------------------------


def test_pipelined_requests_go_on_in_order_and_touch_the_session_once() -> None:
    conn, server, effects = settled()
    conn.bytes_received(request(1, OpCode.exists, EXISTS) + request(2, OpCode.getData, EXISTS))
    assert [(r.xid, r.type, r.payload) for r in server.requests] == [(1, OpCode.exists, EXISTS),
                                                                       (2, OpCode.getData, EXISTS)]
    assert server.touches == [(SESSION, 1000, 10000)]
    assert all(r.client is conn and r.auth_ids == (Id("ip", "10.0.0.1"),) for r in server.requests)


def test_replies_made_while_a_chunk_is_read_leave_in_one_write() -> None:
    server = RecordingServer()
    server.enqueue = lambda r: r.client and r.client.send_reply(r.xid, 5, 0, None)  # type: ignore[method-assign]
    conn, _, effects = settled(server=server)
    conn.bytes_received(request(1, OpCode.exists, EXISTS) + request(2, OpCode.exists, EXISTS))
    assert len(effects) == 1 and replies(effects) == [(1, 5, 0), (2, 5, 0)]


def test_a_reply_outside_a_chunk_is_written_at_once() -> None:
    conn, server, effects = settled()
    conn.send_reply(9, 7, Code.NONODE, None)
    conn.send_event(3, "/x")
    assert [type(e) for e in effects] == [Write, Write]
    assert replies(effects) == [(9, 7, Code.NONODE), (-1, -1, 0)]


def test_an_unknown_opcode_gets_zookeepers_answer_then_closes() -> None:
    conn, server, effects = settled()
    conn.bytes_received(request(77, 99, b"garbage") + request(78, OpCode.exists, EXISTS))
    assert replies(effects) == [(77, -1, Code.UNIMPLEMENTED)]
    assert effects[-1] == Close() and server.requests == []  # nothing after it is read


def test_a_request_shorter_than_its_header_closes_without_a_reply() -> None:
    conn, server, effects = settled()
    conn.bytes_received(frame(b"\x00" * 7))
    assert effects == [Close()]


def test_a_failed_auth_answers_authfailed_then_closes() -> None:
    conn, server, effects = settled()
    conn.bytes_received(request(-4, OpCode.auth, encode(AuthPacket(0, "nosuch", b"x"))))
    assert replies(effects) == [(-4, 0, Code.AUTHFAILED)] and effects[-1] == Close()
    assert server.stats.auth_failed == 1


def test_nothing_is_emitted_after_close() -> None:
    conn, server, effects = settled()
    conn.close()
    conn.close()
    conn.send_reply(1, 0, 0, None)
    conn.bytes_received(request(2, OpCode.exists, EXISTS))
    assert effects == [Close()] and server.requests == []
    conn.connection_lost()
    assert server.gone == [conn]


# ---- the port's limits ---------------------------------------------------------------------------


def test_a_frame_over_jute_maxbuffer_closes_as_its_length_arrives() -> None:
    conn, server, effects = new_connection(ConnectionLimits(max_buffer=100))
    conn.bytes_received(struct.pack(">i", 101))
    assert effects == [Close()] and server.connects == []


def test_a_frame_of_exactly_jute_maxbuffer_is_read() -> None:
    conn, server, effects = settled(limits=ConnectionLimits(max_buffer=100))
    body = struct.pack(">ii", 1, OpCode.exists) + EXISTS
    conn.bytes_received(frame(body + b"\x00" * (100 - len(body))))
    assert effects == [] and [r.xid for r in server.requests] == [1]


def test_a_negative_length_closes() -> None:
    conn, server, effects = settled()
    conn.bytes_received(b"\xff\xff\xff\xff")
    assert effects == [Close()]


def test_at_the_outstanding_limit_a_request_waits_unread_and_reading_pauses() -> None:
    conn, server, effects = settled()
    server.stats.outstanding = 3
    conn.bytes_received(request(1, OpCode.exists, EXISTS) + request(-2, OpCode.ping))
    assert effects == [PauseReading()] and server.held == [(conn, 3)] and server.requests == []
    server.stats.outstanding = 0
    conn.resume()
    assert effects[-1] == ResumeReading(read_held=True)
    conn.read_held()
    assert [r.xid for r in server.requests] == [1, -2]


def test_a_ping_goes_on_at_the_limit() -> None:
    conn, server, effects = settled()
    server.stats.queued = 3
    conn.bytes_received(request(-2, OpCode.ping))
    assert effects == [] and [r.type for r in server.requests] == [OpCode.ping]
    conn.resume()
    assert effects == [ResumeReading(read_held=False)]


def test_a_large_request_over_the_budget_closes_as_its_length_arrives() -> None:
    server = RecordingServer(LargeRequestSettings(max_bytes=300, threshold=100))
    conn, _, effects = settled(server=server)
    server.stats.large_request_bytes = 200
    conn.bytes_received(struct.pack(">i", 150))
    assert effects == [Close()] and server.rejected.value == 1


def test_a_large_request_within_the_budget_holds_its_bytes() -> None:
    server = RecordingServer(LargeRequestSettings(max_bytes=300, threshold=100))
    conn, _, effects = settled(server=server)
    conn.bytes_received(request(1, OpCode.setData, b"x" * 150))
    assert server.stats.large_request_bytes == 150 and server.requests[0].large_size == 150
