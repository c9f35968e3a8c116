# -*- test-case-name: tests.unit.test_server_connection -*-
"""One client connection's protocol, sans-IO: bytes (or whole frames) in, effects (zabd.serving.effects) out.

The first frame is a ConnectRequest; once the server settles the session,
every later frame is RequestHeader + record. Frames that arrive while the
session is being settled wait, as ZooKeeper stops reading until then.
"""
from __future__ import annotations

import struct
from collections import deque
from enum import Enum
from typing import Protocol

from twisted.logger import Logger

from zabd.core.acl import AuthIds
from zabd.jute.codec import JuteError, Reader
from zabd.jute.errors import Code, KeeperError
from zabd.jute.opcodes import OP_NAMES, NOTIFICATION_XID, OpCode
from zabd.jute.records import AuthPacket, ConnectRequest, Id
from zabd.pipeline.request import Reply, Request
from zabd.pipeline.stats import ServerStats
from zabd.serving.connstats import ConnectionStats
from zabd.serving.effects import CLOSE, PAUSE_READING, ConnectionLimits, Emit, ResumeReading, Write
from zabd.serving.framing import Fed, RequestFramer
from zabd.serving.overload import LargeRequests
from zabd.serving.replies import connect_response, event_frame, reply_frame

log = Logger()

_HEADER = struct.Struct(">ii")

#: Opcodes a client may send (ZooKeeper's Request.isValid, less the internal ones).
VALID_OPS = frozenset(op for op in OP_NAMES if op not in (
    OpCode.notification, OpCode.createSession, OpCode.error, OpCode.auth, OpCode.sasl,
))


class ConnectionServer(Protocol):
    """What a connection needs of its server (zabd.serving.server.ClientServer). ``collect``: replies are
    released together, ``end_batch`` comes when that ends; ``hold``: ``resume`` comes once below the limit."""

    @property
    def stats(self) -> ServerStats: ...
    @property
    def large_requests(self) -> LargeRequests: ...
    def now_ms(self) -> float: ...
    def enqueue(self, request: Request) -> None: ...
    def admit_connection(self, request: ConnectRequest) -> bool: ...
    def connect(self, conn: ServerConnection, request: ConnectRequest) -> None: ...
    def touch(self, session_id: int, now_ms: int, timeout_ms: int | None) -> None: ...
    def authenticate(self, scheme: str, credential: bytes, remote_ip: str) -> list[Id]: ...
    def password(self, session_id: int) -> bytes: ...
    def collect(self, conn: ServerConnection) -> bool: ...
    def hold(self, conn: ServerConnection, limit: int) -> None: ...
    def disconnected(self, conn: ServerConnection) -> None: ...


class State(Enum):
    """Where a connection is: before its ConnectRequest, settling its session, serving it, or gone."""

    NEW = "new"
    SETTLING = "settling"
    ACTIVE = "active"
    CLOSED = "closed"


class ServerConnection:
    """The server side of one client connection: frames the input, decodes requests, encodes replies.

    :param server: the server it serves, seen only through ``ConnectionServer``.
    :param emit: where its effects go (Write, Close, PauseReading, ResumeReading).
    :param limits: jute.maxbuffer and globalOutstandingLimit, for ``bytes_received``.
    """

    def __init__(self, server: ConnectionServer, emit: Emit, remote_ip: str, remote_port: int,
                 limits: ConnectionLimits = ConnectionLimits()) -> None:
        self.server = server
        self._emit = emit
        self.remote_ip = remote_ip
        self.remote_port = remote_port
        self.state = State.NEW
        self.session_id = 0
        self.timeout = 0
        # AuthIds iterates as the Java HashSet of ZooKeeper does: whoAmI and "auth" ACLs show it.
        self._auth_set = AuthIds([Id("ip", remote_ip)])
        self.auth_ids: tuple[Id, ...] = tuple(self._auth_set)
        self.read_only_byte: bool | None = None
        #: Set by a read-only server: its ConnectResponses say readOnly=true.
        self.read_only_server = False
        self.closing = False
        self._held: deque[bytes] = deque()
        self._framer = RequestFramer(limits, server.stats, server.large_requests, self.peer)
        #: Output collected while a chunk is read leaves in one write (one syscall for many replies).
        self._batch: list[bytes] | None = None
        self._arrived_ms: float | None = None
        self._touched_ms = -1.0
        self.stats = ConnectionStats(server.now_ms())
        self._server_stats = server.stats
        self._large = server.large_requests
        #: Every request goes through the server's enqueue: looked up once.
        self._enqueue = server.enqueue

    def bytes_received(self, data: bytes) -> None:
        """Take bytes from the client; whole frames go on, the rest waits for more."""
        if self.state is State.CLOSED:
            return
        self.begin_batch()
        try:
            fed = self._framer.feed(data, self._deliver)
        finally:
            self.end_batch()
        if fed is Fed.HELD:
            self._emit(PAUSE_READING)
            self.server.hold(self, self._framer.limits.outstanding_limit)
        elif fed is Fed.REFUSED:
            self.close()

    def resume(self) -> None:
        """The server is below globalOutstandingLimit again: read on, the frames held back first."""
        # The client may send nothing more until those are answered: no read would come.
        self._emit(ResumeReading(read_held=bool(self._framer.unprocessed)))

    def read_held(self) -> None:
        """Hand on the frames held back at the limit (the turn after ``ResumeReading(read_held=True)``)."""
        if self._framer.unprocessed:
            self.bytes_received(b"")

    def _deliver(self, frame: bytes) -> bool:
        self.frame_received(frame)
        return self.state is not State.CLOSED

    def frame_received(self, frame: bytes) -> None:
        """Take one whole frame (its length prefix already stripped)."""
        if self.state is State.ACTIVE:
            self._request(frame)
        elif self.state is State.SETTLING:
            self._held.append(frame)
        elif self.state is State.NEW:
            self._connect(frame)

    def _connect(self, frame: bytes) -> None:
        r = Reader(frame)
        try:
            request = ConnectRequest.read(r)
            # The readOnly byte is optional: old clients leave it out.
            self.read_only_byte = r.read_bool() if not r.at_end() else None
        except JuteError as e:
            log.info("Closing {peer}: bad ConnectRequest ({error})", peer=self.peer, error=str(e))
            self.close()
            return
        if not self.server.admit_connection(request):
            log.warn("Closing {peer}: refused by the connection throttle", peer=self.peer)
            self.close()
            return
        self.state = State.SETTLING
        self.server.connect(self, request)

    def _request(self, frame: bytes) -> None:
        if self.closing:
            return
        stats = self.stats
        stats.received += 1
        self._server_stats.packets_received += 1
        if len(frame) < 8:
            log.info("Closing {peer}: request frame of {n} bytes", peer=self.peer, n=len(frame))
            self.close()
            return
        xid, kind = _HEADER.unpack_from(frame)
        payload = frame[8:]
        size = len(payload)
        if size > self._large.above and kind != OpCode.auth and kind != OpCode.sasl:
            if not self._large.admit(size):
                log.warn("Closing {peer}: large request of {size} bytes over largeRequestMaxBytes",
                         peer=self.peer, size=size)
                self.close()
                return
        else:
            size = -1
        now = self._arrived_ms
        if now is None:
            now = self.server.now_ms()
        if now != self._touched_ms:
            # ZooKeeper touches with the connection's negotiated timeout
            # (touch(cnxn)); requests read together touch it once.
            self.server.touch(self.session_id, int(now), self.timeout or None)
            self._touched_ms = now
        if kind in VALID_OPS:
            if kind == OpCode.closeSession:
                self.closing = True
            stats.last_op = kind
            stats.last_cxid = xid
            request = Request(self.session_id, xid, kind, payload, self, self.auth_ids, None, None, now)
            if size >= 0:
                request.large_size = size
            self._enqueue(request)
        elif kind == OpCode.auth:
            self._auth(xid, payload)
        elif kind == OpCode.sasl:
            self.send_reply(xid, 0, Code.AUTHFAILED, None)
        else:
            if size >= 0:
                self._server_stats.large_request_bytes -= size  # 3.8 gives it back when it refuses the opcode
            log.info("Closing session 0x{session:x}: unknown opcode {op}", session=self.session_id, op=kind)
            self.send_reply(xid, -1, Code.UNIMPLEMENTED, None)
            self.close()

    def _auth(self, xid: int, payload: bytes) -> None:
        try:
            packet = AuthPacket.read(Reader(payload))
            ids = self.server.authenticate(packet.scheme or "", packet.auth or b"", self.remote_ip)
        except (JuteError, KeeperError):
            log.info("Auth failed for session 0x{session:x} from {peer}", session=self.session_id, peer=self.peer)
            self._server_stats.auth_failed += 1
            self.send_reply(xid, 0, Code.AUTHFAILED, None)
            self.close()
            return
        self._auth_set.add_all(ids)
        self.auth_ids = tuple(self._auth_set)
        self.send_reply(xid, 0, 0, None)

    def connection_lost(self) -> None:
        self.state = State.CLOSED
        self.server.disconnected(self)

    # -- output (the pipeline's Client interface) --------------------------

    def begin_batch(self) -> None:
        if self._batch is None:
            self._batch = []
        # The frames of one chunk arrived together: one clock reading serves them all.
        self._arrived_ms = self.server.now_ms()

    def end_batch(self) -> None:
        self._arrived_ms = None
        batch, self._batch = self._batch, None
        if batch:
            self._emit(Write(b"".join(batch)))

    def _write(self, data: bytes) -> None:
        batch = self._batch
        if batch is not None:
            batch.append(data)
        elif self.server.collect(self):
            # Replies released together (one fsync's worth) leave in one write.
            self._batch = [data]
        else:
            self._emit(Write(data))

    def session_established(self, valid: bool) -> None:
        if self.state is State.CLOSED:
            return
        read_only = self.read_only_server if self.read_only_byte is not None else None
        if not valid:
            self._write(connect_response(0, 0, bytes(16), read_only))
            log.info("Invalid session 0x{session:x} for {peer}: closing", session=self.session_id, peer=self.peer)
            self.close()
            return
        self._write(connect_response(self.timeout, self.session_id, self.server.password(self.session_id),
                                     read_only))
        self.state = State.ACTIVE
        while self._held and self.state is State.ACTIVE:
            self._request(self._held.popleft())

    def send_reply(self, xid: int, zxid: int, err: int, body: Reply, now_ms: float = 0.0) -> None:
        if self.state is State.CLOSED:
            return
        self._write(reply_frame(xid, zxid, err, body))
        self._sent(xid, zxid, now_ms)

    def _sent(self, xid: int, zxid: int, now_ms: float = 0.0) -> None:
        stats = self.stats
        stats.sent += 1
        self._server_stats.packets_sent += 1
        if xid >= 0:
            stats.last_zxid = zxid
            stats.last_response_ms = now_ms

    def send_event(self, event_type: int, path: str) -> None:
        if self.state is State.CLOSED:
            return
        self._write(event_frame(event_type, path))
        self._sent(NOTIFICATION_XID, -1)

    def close(self) -> None:
        if self.state is State.CLOSED:
            return
        self.state = State.CLOSED
        self.end_batch()
        self._emit(CLOSE)

    @property
    def connected(self) -> bool:
        return self.state is not State.CLOSED

    @property
    def peer(self) -> str:
        return f"{self.remote_ip}:{self.remote_port}"
