# -*- test-case-name: tests.unit.test_client_port -*-
"""The client port: moves bytes to a ServerConnection and carries out its effects; answers four-letter words.

All protocol logic lives in zabd.serving, framing and the port's limits
included (the ServerConnection is sans-IO); this adapter sniffs the
four-letter words that may come before a handshake, and otherwise only
writes, closes, and pauses and resumes reading as the connection asks.
"""
from __future__ import annotations

import struct
from collections import Counter
from typing import Callable, cast

from twisted.internet.interfaces import IAddress, IReactorTime
from twisted.internet.protocol import Factory, Protocol
from twisted.logger import Logger

from zabd.metrics.server import ServerMetrics
from zabd.server.tcpoptions import set_no_delay
from zabd.serving.connection import ServerConnection
from zabd.serving.effects import Close, ConnectionLimits, Effect, PauseReading, ResumeReading, Write
from zabd.serving.server import ClientServer

log = Logger()

#: Renders a four-letter word (name, optional 8-byte argument) to its text answer.
FourLetterHandler = Callable[[str, bytes], str]


class ClientPortProtocol(Protocol):
    """One client connection on a reactor: four-letter words before the handshake, then a
    ServerConnection fed the bytes, whose effects this carries out on the transport."""

    def __init__(self, factory: ClientPortFactory, conn_maker: Callable[[ClientPortProtocol], ServerConnection],
                 host: str = "?"):
        self.factory = factory
        self.host = host
        self._conn_maker = conn_maker
        self.conn: ServerConnection | None = None
        self._first = True
        self._head = b""
        self._pending_4lw: str | None = None
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
        conn.bytes_received(data)

    def effect(self, effect: Effect) -> None:
        """Carry out what the connection asks of its transport."""
        transport = self.transport
        assert transport is not None
        if isinstance(effect, Write):
            transport.write(effect.data)
        elif isinstance(effect, Close):
            transport.loseConnection()
        elif isinstance(effect, PauseReading):
            transport.pauseProducing()  # type: ignore[attr-defined]
            self.factory.throttled.add(self)
        elif isinstance(effect, ResumeReading):
            transport.resumeProducing()  # type: ignore[attr-defined]
            self.factory.throttled.discard(self)
            if effect.read_held:
                self.factory.call_soon(self._read_held)

    def _read_held(self) -> None:
        if not self._lost and self.conn is not None:
            self.conn.read_held()

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

    def __init__(self, server: ClientServer | None, four_letter: FourLetterHandler,
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
        self.limits = ConnectionLimits(max_buffer, outstanding_limit)
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
            assert self.server is not None
            return ServerConnection(self.server, proto.effect, host, port, self.limits)

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

    def call_soon(self, work: Callable[[], None]) -> None:
        """On the next turn, not inside the final stage that just answered a request."""
        clock = self.clock
        if clock is None:
            from twisted.internet import reactor
            clock = cast(IReactorTime, reactor)
        clock.callLater(0, work)


__all__ = ["ClientPortFactory", "ClientPortProtocol", "Protocol"]
