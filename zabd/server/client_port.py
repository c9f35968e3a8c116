# -*- test-case-name: tests.unit.test_client_port -*-
"""The client port: frames bytes for ServerConnection, and answers four-letter words.

All protocol logic lives in zabd.serving; this adapter only frames (4-byte
big-endian length, at most jute.maxbuffer) and moves bytes.  The framing loop
is its own rather than Int32StringReceiver's: it runs for every request, and
every pipelined frame of a read goes through it.
"""
from __future__ import annotations

import struct
from collections import Counter
from typing import Callable, cast

from twisted.internet.interfaces import IAddress, IReactorTime
from twisted.internet.protocol import Factory, Protocol
from twisted.logger import Logger

from zabd.jute.opcodes import OpCode
from zabd.metrics.server import ServerMetrics
from zabd.pipeline.stats import ServerStats
from zabd.server.tcpoptions import set_no_delay
from zabd.serving.connection import ServerConnection
from zabd.serving.standalone import StandaloneServer

log = Logger()

_LENGTH = struct.Struct(">i")
_TYPE_OFFSET = 4  # a request frame: xid, then the op type


def _is_ping(data: bytes, start: int, length: int) -> bool:
    return length >= _TYPE_OFFSET + 4 and _LENGTH.unpack_from(data, start + _TYPE_OFFSET)[0] == OpCode.ping

#: Renders a four-letter word (name, optional 8-byte argument) to its text answer.
FourLetterHandler = Callable[[str, bytes], str]


class ClientPortProtocol(Protocol):
    def __init__(self, factory: ClientPortFactory, conn_maker: Callable[[ClientPortProtocol], ServerConnection],
                 host: str = "?"):
        self.factory = factory
        self.host = host
        self.max_length = factory.max_buffer
        self._unprocessed = b""
        self._conn_maker = conn_maker
        self.conn: ServerConnection | None = None
        self._first = True
        self._head = b""
        self._pending_4lw: str | None = None
        #: The length of the frame held back in ``_unprocessed`` passed the large-request check.
        self._length_checked = False
        self._lost = False

    def connectionMade(self) -> None:
        set_no_delay(self.transport)
        server = self.factory.server
        if server is None:
            return  # an ensemble peer between roles: four-letter words only
        self.conn = self._conn_maker(self)
        server.connection_made(self.conn)

    def dataReceived(self, data: bytes) -> None:
        if self._first:
            data = self._sniff(data)
            if not data:
                return
        conn = self.conn
        if conn is None:
            # As ZooKeeper's "ZooKeeperServer not running": the client tries another peer.
            log.info("Closing a client connection: this peer is not serving")
            assert self.transport is not None
            self.transport.loseConnection()
            return
        conn.begin_batch()
        try:
            held = self._frames(conn, self._unprocessed + data if self._unprocessed else data)
        finally:
            conn.end_batch()
        if held:
            self.factory.throttle(self, conn.server.ctx.stats)

    def _frames(self, conn: ServerConnection, data: bytes) -> bool:
        """Hand the whole frames in ``data`` to the connection; keep the rest.

        At globalOutstandingLimit a whole request waits with the unread bytes,
        and True says to stop reading this connection until the server is
        below the limit; a ping still goes on (it holds no memory, and a
        session must not expire behind a flood). 3.8 hands on what it has read
        before it looks, so every connection that sends at the limit adds
        requests: 1,000 flooding connections took a limit of 100 to over 1,000
        requests in flight, and memory with it.
        """
        end = len(data)
        pos = 0
        limit = self.max_length
        stats = conn.server.ctx.stats
        outstanding_limit = self.factory.outstanding_limit
        large = conn.server.large_requests
        checked = self._length_checked
        self._length_checked = False
        held = False
        while end - pos >= 4:
            (length,) = _LENGTH.unpack_from(data, pos)
            if not 0 <= length <= limit:
                self._length_out_of_range(length)
                return False
            # 3.8 looks at a large request's length once, as it arrives.
            if length > large.above and not checked and not large.receiving(length):
                self._large_request(length)
                return False
            start = pos + 4
            if start + length > end:
                self._length_checked = True
                break
            if (stats.outstanding >= outstanding_limit or stats.queued >= outstanding_limit) \
                    and not _is_ping(data, start, length):
                self._length_checked = True
                held = True
                break
            checked = False
            pos = start + length
            conn.frame_received(data[start:pos])
        self._unprocessed = data[pos:] if pos < end else b""
        return held

    def resume(self) -> None:
        """The server is below globalOutstandingLimit again: read on, the frames held back first."""
        assert self.transport is not None
        self.transport.resumeProducing()  # type: ignore[attr-defined]
        if self._unprocessed:
            # The client may send nothing more until those are answered: no read would come.
            self.factory.call_soon(self._held_frames)

    def _held_frames(self) -> None:
        if not self._lost and self._unprocessed and self.conn is not None:
            self.dataReceived(b"")

    def _sniff(self, data: bytes) -> bytes:
        """Before the handshake, the first 4 bytes may be a four-letter word."""
        head = self._head + data
        need = 12 if self._pending_4lw is not None else 4
        if len(head) < need:
            self._head = head
            return b""
        self._head = b""
        if self._pending_4lw is not None:
            # stmk carries an 8-byte mask after the word.
            self._answer(self._pending_4lw, head[4:12])
            return b""
        word = self.factory.four_letter_words.get(struct.unpack(">i", head[:4])[0])
        if word is None:
            self._first = False
            return head
        if word == "stmk":
            self._pending_4lw = word
            return self._sniff(head)
        self._answer(word, b"")
        return b""

    def _answer(self, word: str, argument: bytes) -> None:
        self._first = False
        try:
            text = self.factory.four_letter(word, argument)
        except Exception:
            log.failure("Four-letter word {word} failed", word=word)
            text = ""
        assert self.transport is not None
        self.transport.write(text.encode("utf-8"))
        self.transport.loseConnection()

    def _length_out_of_range(self, length: int) -> None:
        log.info("Closing {peer}: frame length {length} out of range (jute.maxbuffer {limit})",
                 peer=self.conn.peer if self.conn else "?", length=length, limit=self.max_length)
        self._unprocessed = b""
        assert self.transport is not None
        self.transport.loseConnection()

    def _large_request(self, length: int) -> None:
        log.warn("Closing {peer}: rejecting a large request of {length} bytes (largeRequestMaxBytes)",
                 peer=self.conn.peer if self.conn else "?", length=length)
        self._unprocessed = b""
        assert self.transport is not None
        self.transport.loseConnection()

    def connectionLost(self, reason: object = None) -> None:
        self._lost = True
        if self.conn is not None:
            self.conn.connection_lost()
        # Every accepted connection took a maxClientCnxns slot, served or not.
        self.factory.connection_closed(self)


class ClientPortFactory(Factory):
    """
    The client ports' connections, with 3.8's limits.

    :param max_per_ip: ``maxClientCnxns`` (0: none).
    :param max_cnxns: ``maxCnxns``, over every client port (0: none).
    :param outstanding_limit: ``globalOutstandingLimit``: with this many
        requests in flight (or waiting in the request throttler), a
        connection that sends more stops being read until the server is
        below the limit again, as 3.8 disables receive.
    :param metrics: where refused connections are counted (``connection_rejected``).
    :param clock: runs the frames a throttled connection held back, once it may go on
        (default: the global reactor).
    """

    def __init__(self, server: StandaloneServer | None, four_letter: FourLetterHandler,
                 four_letter_words: dict[int, str], max_buffer: int, max_per_ip: int,
                 max_cnxns: int = 0, outstanding_limit: int = 1000, metrics: ServerMetrics | None = None,
                 clock: IReactorTime | None = None) -> None:
        #: Who answers sessions; None while an ensemble peer is between roles.
        self.server = server
        self.four_letter = four_letter
        self.four_letter_words = four_letter_words
        self.max_buffer = max_buffer
        self.max_per_ip = max_per_ip
        self.max_cnxns = max_cnxns
        self.outstanding_limit = outstanding_limit
        self.metrics = metrics
        self.clock = clock
        self.per_ip: Counter[str] = Counter()
        self.connections = 0
        #: Connections not read while the server is at globalOutstandingLimit.
        self.throttled: set[ClientPortProtocol] = set()

    def buildProtocol(self, addr: IAddress | None) -> ClientPortProtocol | None:
        host = getattr(addr, "host", "?")
        port = getattr(addr, "port", 0)
        if self.max_cnxns and self.connections >= self.max_cnxns:
            log.warn("Too many connections - max is {limit}", limit=self.max_cnxns)
            self._rejected()
            return None
        if self.max_per_ip and self.per_ip[host] >= self.max_per_ip:
            log.warn("Too many connections from {host} - max is {limit}", host=host, limit=self.max_per_ip)
            self._rejected()
            return None
        self.per_ip[host] += 1
        self.connections += 1

        def make(proto: ClientPortProtocol) -> ServerConnection:
            assert proto.transport is not None and self.server is not None
            return ServerConnection(self.server, proto.transport, host, port)

        return ClientPortProtocol(self, make, host)

    def _rejected(self) -> None:
        if self.metrics is not None:
            self.metrics.connection_rejected.add()

    def connection_closed(self, protocol: ClientPortProtocol) -> None:
        host = protocol.host
        self.connections -= 1
        self.throttled.discard(protocol)
        self.per_ip[host] -= 1
        if self.per_ip[host] <= 0:
            del self.per_ip[host]

    def throttle(self, protocol: ClientPortProtocol, stats: ServerStats) -> None:
        """Stop reading ``protocol`` until ``stats`` says the server is below the limit."""
        assert protocol.transport is not None
        protocol.transport.pauseProducing()  # type: ignore[attr-defined]
        self.throttled.add(protocol)
        stats.throttle_at = self.outstanding_limit
        stats.on_drained = self._drained

    def _drained(self) -> None:
        throttled, self.throttled = self.throttled, set()
        for protocol in throttled:
            protocol.resume()

    def call_soon(self, work: Callable[[], None]) -> None:
        """On the next turn, not inside the final stage that just answered a request."""
        clock = self.clock
        if clock is None:
            from twisted.internet import reactor
            clock = cast(IReactorTime, reactor)
        clock.callLater(0, work)


__all__ = ["ClientPortFactory", "ClientPortProtocol", "Protocol"]
