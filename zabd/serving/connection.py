# -*- test-case-name: tests.unit.test_connection -*-
"""One client connection's protocol, sans-IO: whole frames in, bytes out.

The first frame is a ConnectRequest; once the server settles the session,
every later frame is RequestHeader + record.  Frames that arrive while the
session is being settled wait, as ZooKeeper stops reading until then.
"""
from __future__ import annotations

import struct
from collections import deque
from enum import Enum
from typing import TYPE_CHECKING, Protocol

from twisted.logger import Logger

from zabd.core.acl import AuthIds
from zabd.jute.codec import JuteError, Reader, Writer
from zabd.jute.errors import Code, KeeperError
from zabd.jute.opcodes import OP_NAMES, KeeperState, NOTIFICATION_XID, OpCode
from zabd.jute.records import AuthPacket, ConnectRequest, ConnectResponse, Id, WatcherEvent
from zabd.pipeline.request import Reply, Request

if TYPE_CHECKING:
    from zabd.serving.standalone import StandaloneServer

log = Logger()

_REPLY = struct.Struct(">iiqi")
_HEADER = struct.Struct(">ii")

#: Opcodes a client may send (ZooKeeper's Request.isValid, less the internal ones).
VALID_OPS = frozenset(op for op in OP_NAMES if op not in (
    OpCode.notification, OpCode.createSession, OpCode.error, OpCode.auth, OpCode.sasl,
))


class Transport(Protocol):
    def write(self, data: bytes) -> None: ...

    def loseConnection(self) -> None: ...


class State(Enum):
    NEW = "new"
    SETTLING = "settling"
    ACTIVE = "active"
    CLOSED = "closed"


class ServerConnection:
    def __init__(self, server: StandaloneServer, transport: Transport, remote_ip: str, remote_port: int) -> None:
        self.server = server
        self.transport = transport
        self.remote_ip = remote_ip
        self.remote_port = remote_port
        self.state = State.NEW
        self.session_id = 0
        self.timeout = 0
        # ZooKeeper keeps a connection's ids in a Java HashSet; AuthIds keeps
        # its iteration order, which whoAmI and "auth" ACLs expose.
        self._auth_set = AuthIds([Id("ip", remote_ip)])
        self.auth_ids: tuple[Id, ...] = tuple(self._auth_set)
        self.read_only_byte: bool | None = None
        #: Set by a read-only server: its ConnectResponses say readOnly=true.
        self.read_only_server = False
        self.closing = False
        self._held: deque[bytes] = deque()
        #: While the adapter feeds one chunk of input, output collects here
        #: and leaves in one write (one syscall for many pipelined replies).
        self._batch: list[bytes] | None = None
        self._arrived_ms: float | None = None
        self._touched_ms = -1.0
        self.stats = ConnectionStats(server.ctx.now_ms())
        self._server_stats = server.ctx.stats
        self._large = server.large_requests
        #: server.enqueue without the extra call: every request goes through it.
        self._enqueue = server.throttler.submit

    # -- input ------------------------------------------------------------

    def frame_received(self, frame: bytes) -> None:
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
        server = self.server
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
            now = server.ctx.now_ms()
        if now != self._touched_ms:
            # ZooKeeper touches with the connection's negotiated timeout
            # (touch(cnxn)); requests read together touch it once.
            server.ctx.sessions.touch(self.session_id, int(now), self.timeout or None)
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
                server.ctx.stats.large_request_bytes -= size  # 3.8 gives it back when it refuses the opcode
            log.info("Closing session 0x{session:x}: unknown opcode {op}", session=self.session_id, op=kind)
            self.send_reply(xid, -1, Code.UNIMPLEMENTED, None)
            self.close()

    def _auth(self, xid: int, payload: bytes) -> None:
        try:
            packet = AuthPacket.read(Reader(payload))
            ids = self.server.ctx.providers.authenticate(packet.scheme or "", packet.auth or b"", self.remote_ip)
        except (JuteError, KeeperError):
            log.info("Auth failed for session 0x{session:x} from {peer}", session=self.session_id, peer=self.peer)
            self.server.ctx.stats.auth_failed += 1
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
        self._arrived_ms = self.server.ctx.now_ms()

    def end_batch(self) -> None:
        self._arrived_ms = None
        batch, self._batch = self._batch, None
        if batch:
            self.transport.write(b"".join(batch))

    def _write(self, data: bytes) -> None:
        if self._batch is not None:
            self._batch.append(data)
            return
        collecting = self.server.collecting
        if collecting is not None:
            # Replies released together (one fsync's worth) leave in one write.
            self._batch = [data]
            collecting.append(self)
        else:
            self.transport.write(data)

    def session_established(self, valid: bool) -> None:
        if self.state is State.CLOSED:
            return
        w = Writer()
        w.write_int(0)
        ConnectResponse(
            0,
            self.timeout if valid else 0,
            self.session_id if valid else 0,
            self.server.password(self.session_id) if valid else bytes(16),
        ).write(w)
        if self.read_only_byte is not None:
            w.write_bool(self.read_only_server)
        struct.pack_into(">i", w.buf, 0, len(w.buf) - 4)
        self._write(bytes(w.buf))
        if not valid:
            log.info("Invalid session 0x{session:x} for {peer}: closing", session=self.session_id, peer=self.peer)
            self.close()
            return
        self.state = State.ACTIVE
        while self._held and self.state is State.ACTIVE:
            self._request(self._held.popleft())

    def send_reply(self, xid: int, zxid: int, err: int, body: Reply, now_ms: float = 0.0) -> None:
        if self.state is State.CLOSED:
            return
        if body is None or err:
            self._write(_REPLY.pack(16, xid, zxid, err))
        elif isinstance(body, bytes):
            self._write(_REPLY.pack(16 + len(body), xid, zxid, 0) + body)
        else:
            w = Writer()
            body.write(w)
            self._write(_REPLY.pack(16 + len(w.buf), xid, zxid, 0) + w.buf)
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
        w = Writer()
        WatcherEvent(event_type, KeeperState.SyncConnected, path).write(w)
        self._write(_REPLY.pack(16 + len(w.buf), NOTIFICATION_XID, -1, 0) + w.buf)
        self._sent(NOTIFICATION_XID, -1)

    def close(self) -> None:
        if self.state is State.CLOSED:
            return
        self.state = State.CLOSED
        self.end_batch()
        self.transport.loseConnection()

    @property
    def connected(self) -> bool:
        return self.state is not State.CLOSED

    @property
    def peer(self) -> str:
        return f"{self.remote_ip}:{self.remote_port}"


class ConnectionStats:
    """Per-connection figures for the cons and stat four-letter words."""

    __slots__ = ("established_ms", "received", "sent", "last_op", "last_cxid", "last_zxid", "last_response_ms")

    def __init__(self, now_ms: float) -> None:
        self.established_ms = now_ms
        self.reset()

    def reset(self) -> None:
        self.received = 0
        self.sent = 0
        self.last_op = 0
        self.last_cxid = -1
        self.last_zxid = -1
        self.last_response_ms = 0.0
