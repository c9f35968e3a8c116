# -*- test-case-name: tests.interop.test_flood -*-
"""The connections of the flood tool (:mod:`zabd.harness.flood`).

:class:`FloodConnection` is one flooding client: it opens a session, waits
for the go, then writes its requests back to back without waiting for any
reply, and counts the replies by error code. Every request's bytes come from
one :class:`FloodFrames`, shared by all connections: a request body is
encoded once, cut into chunks, and each connection writes those very chunk
objects, one at a time as its socket drains (a pull producer), so a
thousand connections of megabyte requests cost the flooder no copies.

:class:`Session` is a plain client for everything else (setup, the ping
probe, the fresh client after the flood): requests answered in order.
"""
from __future__ import annotations

import struct
from collections import Counter, deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from twisted.internet.defer import Deferred
from twisted.internet.protocol import ClientFactory, Protocol
from twisted.protocols.basic import Int32StringReceiver
from twisted.python.failure import Failure

from zabd.client.effects import connect_frame, parse_connect_response, record_body, request_frame
from zabd.jute.codec import Reader
from zabd.jute.opcodes import OpCode
from zabd.jute.records import ACL, ConnectRequest, CreateRequest, Id, ReplyHeader, SetDataRequest

PING_XID = -2
OPEN_ACL = [ACL(31, Id("world", "anyone"))]
#: Reply frames are small (a Stat at most); this only guards against garbage.
MAX_REPLY = 4 * 1024 * 1024
CHUNK = 64 * 1024
#: A request frame's head: its length, then the RequestHeader (xid, opcode).
_HEAD = struct.Struct(">iii")

#: Request kinds: what each sends, on the one node every connection shares.
KINDS = ("setData", "create")


@dataclass(frozen=True)
class Encoded:
    """One request body of a flood, encoded once and cut into chunks that connections share."""

    opcode: int
    chunks: tuple[bytes, ...]
    length: int


class FloodFrames:
    """The request bodies of one flood, encoded once and cut into shared chunks."""

    def __init__(self, kinds: Sequence[str], path: str, value_size: int, chunk: int = CHUNK) -> None:
        unknown = set(kinds) - set(KINDS)
        if unknown or not kinds:
            raise ValueError(f"request kinds must be among {', '.join(KINDS)}: {', '.join(kinds)}")
        value = b"\xa5" * value_size
        bodies = {
            "setData": (OpCode.setData, record_body(SetDataRequest(path, value, -1))),
            # The node exists: the server reads the whole request and answers NODEEXISTS.
            "create": (OpCode.create, record_body(CreateRequest(path, value, OPEN_ACL, 0))),
        }
        self.kinds = tuple(kinds)
        encoded = {}
        for kind in set(self.kinds):
            opcode, body = bodies[kind]
            chunks = tuple(body[i:i + chunk] for i in range(0, len(body), chunk))
            encoded[kind] = Encoded(opcode, chunks, len(body))
        self.encoded = encoded

    def request(self, index: int) -> Encoded:
        return self.encoded[self.kinds[index % len(self.kinds)]]


class FloodConnection(Int32StringReceiver):
    """One flooding client. ``outcome`` ends as answered, closed, refused or (left open) hung."""

    MAX_LENGTH = MAX_REPLY

    def __init__(self, frames: FloodFrames, requests: int, timeout_ms: int,
                 on_ready: Callable[[FloodConnection], None], on_end: Callable[[FloodConnection], None]) -> None:
        self.frames = frames
        self.requests = requests
        self.timeout_ms = timeout_ms
        self._on_ready = on_ready
        self._on_end = on_end
        self.session_id = 0
        self.outcome = "connecting"
        self.replies: Counter[int] = Counter()
        self.answered = 0
        self.sent = 0
        self.bytes_sent = 0
        #: Stop starting requests (a duration-limited flood); set by the caller.
        self.stop_sending = False
        self._chunks: deque[bytes] = deque()
        self._closing = False

    # -- session ----------------------------------------------------------------

    def connectionMade(self) -> None:  # noqa: N802 (Twisted's name)
        self.outcome = "handshake"
        assert self.transport is not None
        self.transport.write(connect_frame(ConnectRequest(0, 0, self.timeout_ms, 0, bytes(16)), False))

    def stringReceived(self, frame: bytes) -> None:  # noqa: N802
        if self.outcome == "handshake":
            response, _ = parse_connect_response(frame)
            if response.timeOut <= 0:
                self._end("refused")
                return
            self.session_id = response.sessionId
            self.outcome = "ready"
            self._on_ready(self)
            return
        header = ReplyHeader.read(Reader(frame))
        if self._closing:
            return
        if header.xid <= 0:
            return  # a notification or ping reply: not ours to count
        self.replies[header.err] += 1
        self.answered += 1
        if self.answered >= self.requests or (self.stop_sending and self.answered >= self.sent):
            self._finish()

    def lengthLimitExceeded(self, length: int) -> None:  # noqa: N802
        self._end("garbage")

    # -- flooding ------------------------------------------------------------------

    def start(self) -> None:
        """Write every request now, back to back; replies are counted as they come."""
        assert self.transport is not None and self.outcome == "ready"
        self.outcome = "flooding"
        if self.requests <= 0:
            self._finish()
            return
        self.transport.registerProducer(self, False)  # type: ignore[attr-defined]

    def resumeProducing(self) -> None:  # noqa: N802 (IPullProducer)
        transport = self.transport
        if transport is None or self.outcome != "flooding":
            return
        if not self._chunks:
            if self.sent >= self.requests or self.stop_sending:
                transport.unregisterProducer()  # type: ignore[attr-defined]
                if self.answered >= self.sent:
                    self._finish()
                return
            request = self.frames.request(self.sent)
            self.sent += 1
            self._chunks.extend(request.chunks)
            head = _HEAD.pack(8 + request.length, self.sent, request.opcode)
            transport.write(head + self._chunks.popleft())
            self.bytes_sent += 8 + request.length
            return
        transport.write(self._chunks.popleft())

    def stopProducing(self) -> None:  # noqa: N802
        self._chunks.clear()

    def _finish(self) -> None:
        if self.outcome != "flooding":
            return
        self._closing = True
        assert self.transport is not None
        self.transport.write(request_frame(self.sent + 1, OpCode.closeSession))
        self._end("answered")
        self.transport.loseConnection()

    # -- the end -----------------------------------------------------------------------

    def connectionLost(self, reason: Failure | None = None) -> None:  # noqa: N802
        self._end("refused" if self.outcome in ("connecting", "handshake") else "closed")

    def abort(self) -> None:
        """Give up on this connection at the deadline (it stays counted as hung)."""
        self._end("hung")
        if self.transport is not None:
            self.transport.abortConnection()  # type: ignore[attr-defined]

    def _end(self, outcome: str) -> None:
        if self.outcome in ("answered", "closed", "refused", "hung", "garbage"):
            return
        self.outcome = outcome
        self._on_end(self)


class FloodFactory(ClientFactory):
    """Makes a flood's connections and tells of a connection that failed."""

    def __init__(self, make: Callable[[], FloodConnection], on_failed: Callable[[], None]) -> None:
        self.make = make
        self.on_failed = on_failed

    def buildProtocol(self, addr: object) -> Protocol:  # noqa: N802
        return self.make()

    def clientConnectionFailed(self, connector: object, reason: Failure) -> None:  # noqa: N802
        self.on_failed()


class SessionLost(Exception):
    """The server closed a :class:`Session` (or refused its handshake)."""


class Session(Int32StringReceiver):
    """A plain client session: handshake, then requests answered in order."""

    MAX_LENGTH = MAX_REPLY

    def __init__(self, timeout_ms: int) -> None:
        self.timeout_ms = timeout_ms
        self.ready: Deferred[Session] = Deferred()
        self.lost: Deferred[None] = Deferred()
        self._waiting: deque[tuple[int, Deferred[tuple[int, bytes]]]] = deque()
        self._xid = 0
        self._open = False

    def connectionMade(self) -> None:  # noqa: N802
        assert self.transport is not None
        self.transport.write(connect_frame(ConnectRequest(0, 0, self.timeout_ms, 0, bytes(16)), False))

    def stringReceived(self, frame: bytes) -> None:  # noqa: N802
        if not self._open:
            response, _ = parse_connect_response(frame)
            if response.timeOut <= 0:
                assert self.transport is not None
                self.transport.loseConnection()
                return
            self._open = True
            self.ready.callback(self)
            return
        reader = Reader(frame)
        header = ReplyHeader.read(reader)
        if header.xid == -1 or not self._waiting:
            return  # a watch notification
        xid, waiting = self._waiting.popleft()
        if xid != header.xid:
            assert self.transport is not None
            self.transport.loseConnection()
            waiting.errback(SessionLost(f"reply xid {header.xid} for request xid {xid}"))
            return
        waiting.callback((header.err, frame[16:]))

    def request(self, opcode: int, body: bytes = b"") -> Deferred[tuple[int, bytes]]:
        """Send a request; fires with (error code, reply body), or fails with SessionLost."""
        waiting: Deferred[tuple[int, bytes]] = Deferred()
        if not self._open or self.transport is None:
            waiting.errback(SessionLost("the session is not open"))
            return waiting
        if opcode == OpCode.ping:
            xid = PING_XID
        else:
            self._xid += 1
            xid = self._xid
        self._waiting.append((xid, waiting))
        self.transport.write(request_frame(xid, opcode, body))
        return waiting

    def close(self) -> None:
        """End the session (closeSession, unanswered) and the connection."""
        if self.transport is not None:
            if self._open:
                self._xid += 1
                self.transport.write(request_frame(self._xid, OpCode.closeSession))
            self.transport.loseConnection()

    def connectionLost(self, reason: Failure | None = None) -> None:  # noqa: N802
        self._open = False
        if not self.ready.called:
            self.ready.errback(SessionLost("the server closed the connection during the handshake"))
        while self._waiting:
            self._waiting.popleft()[1].errback(SessionLost("the server closed the connection"))
        self.lost.callback(None)


class SessionFactory(ClientFactory):
    """Makes one :class:`Session`; ``ready`` fires with it once its handshake is done."""

    def __init__(self, timeout_ms: int) -> None:
        self.timeout_ms = timeout_ms
        self.ready: Deferred[Session] = Deferred()

    def buildProtocol(self, addr: object) -> Protocol:  # noqa: N802
        session = Session(self.timeout_ms)
        session.ready.addCallbacks(self.ready.callback, self.ready.errback)
        return session

    def clientConnectionFailed(self, connector: object, reason: Failure) -> None:  # noqa: N802
        if not self.ready.called:
            self.ready.errback(SessionLost(f"cannot connect: {reason.getErrorMessage()}"))
