# -*- test-case-name: tests.unit.test_client_session -*-
"""Fake ZooKeeper servers on a fake network and clock, for testing clients without sockets.

:class:`FakeNetwork` is an ``IReactorTCP`` and ``IReactorTime`` over a
``task.Clock``: a client's ``connectTCP(host, port)`` reaches the fake server
registered at that address. Nothing moves until the test calls
:meth:`FakeNetwork.pump` (or :meth:`FakeNetwork.advance`, which moves the
clock and then pumps), so every test decides the interleaving.

Two kinds of server:

- :class:`ScriptedServer` answers nothing by itself: the test reads the
  frames each connection received and writes the replies it wants (or drops
  the connection, or refuses or ignores new ones).
- :class:`RealServer` is a whole in-memory zabd
  :class:`~zabd.serving.standalone.StandaloneServer` on the same clock, so
  sessions really expire and watches really fire.
"""
from __future__ import annotations

import struct
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from twisted.internet.interfaces import IReactorTCP, IReactorTime
from twisted.internet.address import IPv4Address
from twisted.internet.protocol import Protocol
from twisted.internet.task import Clock
from twisted.python.failure import Failure
from zope.interface import classImplements

from zabd.jute.codec import Reader, Writer
from zabd.jute.opcodes import NOTIFICATION_XID, KeeperState
from zabd.jute.records import ConnectRequest, ConnectResponse, WatcherEvent
from zabd.jute.schema import Record, encode
from zabd.serving.connection import ServerConnection
from zabd.peer.servers import standalone_server
from zabd.serving.standalone import ServerOptions, StandaloneServer

_LENGTH = struct.Struct(">i")
_REQUEST = struct.Struct(">ii")
_REPLY = struct.Struct(">iqi")


class _ClientTransport:
    """The client's end of a fake connection: writes go to the server on the next pump."""

    def __init__(self, link: FakeConnection) -> None:
        self.link = link
        self.disconnecting = False

    def write(self, data: bytes) -> None:
        if not self.link.closed:
            self.link.to_server += data

    def writeSequence(self, data: list[bytes]) -> None:  # noqa: N802 (Twisted's name)
        for chunk in data:
            self.write(chunk)

    def loseConnection(self) -> None:  # noqa: N802
        self.disconnecting = True
        self.link.close_requested = True

    abortConnection = loseConnection  # noqa: N815

    def getPeer(self) -> object:  # noqa: N802
        return self.link.address

    def getHost(self) -> object:  # noqa: N802
        return ("fake", 0)


@dataclass(eq=False)
class FakeConnection:
    """One accepted connection, seen from the server: frames in, bytes out."""

    server: FakeServer
    address: tuple[str, int]
    protocol: Protocol
    to_server: bytearray = field(default_factory=bytearray)
    to_client: bytearray = field(default_factory=bytearray)
    frames: list[bytes] = field(default_factory=list)  # every whole frame received, in order
    close_requested: bool = False  # by either side; done on the next pump
    closed: bool = False
    _partial: bytes = b""
    handler: Any = None  # the RealServer's ServerConnection, if any

    # The server's transport (what ServerConnection writes to).
    def write(self, data: bytes) -> None:
        if not self.closed:
            self.to_client += data

    def loseConnection(self) -> None:  # noqa: N802
        self.close_requested = True

    def drop(self) -> None:
        """The server (or the network) ends this connection."""
        self.close_requested = True

    def send_frame(self, body: bytes) -> None:
        self.write(_LENGTH.pack(len(body)) + body)

    def reply(self, xid: int, zxid: int = 0, err: int = 0, record: Record | None = None) -> None:
        self.send_frame(_REPLY.pack(xid, zxid, err) + (encode(record) if record is not None else b""))

    def event(self, event_type: int, path: str) -> None:
        self.reply(NOTIFICATION_XID, -1, 0, WatcherEvent(event_type, KeeperState.SyncConnected, path))

    def accept_session(self, timeout: int, session_id: int, passwd: bytes = bytes(16),
                       read_only: bool | None = False) -> None:
        """Answer the ConnectRequest (timeout 0 refuses: the session expired)."""
        w = Writer()
        ConnectResponse(0, timeout, session_id, passwd).write(w)
        if read_only is not None:
            w.write_bool(read_only)
        self.send_frame(w.getvalue())

    @property
    def unframed(self) -> bytes:
        """Bytes received that make no whole frame yet (a four-letter word, say)."""
        return self._partial

    def requests(self) -> list[tuple[int, int, bytes]]:
        """(xid, opcode, body) of every frame after the ConnectRequest."""
        return [parse_request(frame) for frame in self.frames[1:]]

    def _take_frames(self) -> list[bytes]:
        data, self._partial = self._partial + bytes(self.to_server), b""
        self.to_server.clear()
        new: list[bytes] = []
        while len(data) >= 4:
            (n,) = _LENGTH.unpack_from(data)
            if len(data) - 4 < n:
                break
            new.append(data[4:4 + n])
            data = data[4 + n:]
        self._partial = data
        self.frames += new
        return new


def parse_request(frame: bytes) -> tuple[int, int, bytes]:
    xid, opcode = _REQUEST.unpack_from(frame)
    return xid, opcode, frame[_REQUEST.size:]


def parse_connect(frame: bytes) -> tuple[ConnectRequest, bool | None]:
    """A ConnectRequest and its read-only byte (None when absent)."""
    r = Reader(frame)
    request = ConnectRequest.read(r)
    return request, (r.read_bool() if not r.at_end() else None)


class FakeServer:
    """What a fake address does with connections: ``mode`` is accept, refuse or silent (never answers TCP)."""

    def __init__(self) -> None:
        self.mode = "accept"
        self.connections: list[FakeConnection] = []

    @property
    def last(self) -> FakeConnection:
        return self.connections[-1]

    def connected(self, conn: FakeConnection) -> None:
        self.connections.append(conn)

    def frames_arrived(self, conn: FakeConnection, frames: list[bytes]) -> None:
        """Override to answer; the scripted server leaves that to the test."""

    def disconnected(self, conn: FakeConnection) -> None:
        """Override to learn of a closed connection."""


ScriptedServer = FakeServer


class RealServer(FakeServer):
    """An in-memory zabd StandaloneServer behind a fake address, on the network's clock."""

    def __init__(self, clock: Clock, options: ServerOptions | None = None,
                 server: StandaloneServer | None = None) -> None:
        super().__init__()
        self.server = server or standalone_server(options or ServerOptions(), clock.seconds)
        self._ports = 50000

    def connected(self, conn: FakeConnection) -> None:
        super().connected(conn)
        self._ports += 1
        conn.handler = ServerConnection(self.server, conn, "127.0.0.1", self._ports)
        self.server.connection_made(conn.handler)

    def frames_arrived(self, conn: FakeConnection, frames: list[bytes]) -> None:
        for frame in frames:
            conn.handler.frame_received(frame)

    def disconnected(self, conn: FakeConnection) -> None:
        conn.handler.connection_lost()

    def expire_sessions(self) -> None:
        self.server.expire_sessions()


@dataclass(eq=False)
class _Dial:
    host: str
    port: int
    factory: Any  # a ClientFactory
    connector: FakeConnector


class FakeConnector:
    def __init__(self, host: str, port: int) -> None:
        self.host, self.port = host, port
        self.state = "connecting"

    def stopConnecting(self) -> None:  # noqa: N802
        self.state = "disconnected"

    def disconnect(self) -> None:
        self.state = "disconnected"

    def getDestination(self) -> tuple[str, int]:  # noqa: N802
        return (self.host, self.port)


class FakeNetwork:
    """A reactor for clients: fake TCP to registered fake servers, time from a Clock."""

    def __init__(self, clock: Clock | None = None) -> None:
        self.clock = clock or Clock()
        self.servers: dict[tuple[str, int], FakeServer] = {}
        self.dials: list[tuple[str, int]] = []  # every connectTCP, in order
        self._pending: list[_Dial] = []
        self._links: list[FakeConnection] = []

    def add(self, host: str, port: int, server: FakeServer) -> FakeServer:
        self.servers[(host, port)] = server
        return server

    # IReactorTime
    def seconds(self) -> float:
        return self.clock.seconds()

    def callLater(self, delay: float, callable: Callable[..., Any], *args: object,  # noqa: N802
                  **kwargs: object) -> Any:
        return self.clock.callLater(delay, callable, *args, **kwargs)

    def getDelayedCalls(self) -> Any:  # noqa: N802
        return self.clock.getDelayedCalls()

    # IReactorTCP
    def connectTCP(self, host: str, port: int, factory: Any, timeout: float = 30,  # noqa: N802
                   bindAddress: Any = None) -> Any:  # noqa: N803
        connector = FakeConnector(host, port)
        self.dials.append((host, port))
        self._pending.append(_Dial(host, port, factory, connector))
        return connector

    def listenTCP(self, *args: Any, **kw: Any) -> Any:  # noqa: N802
        raise NotImplementedError("FakeNetwork only connects")

    # moving things
    def advance(self, seconds: float) -> None:
        self.pump()
        self.clock.advance(seconds)
        self.pump()

    def pump(self) -> None:
        """Deliver connects, bytes and closes until nothing moves."""
        for _ in range(10_000):
            if not self._step():
                return
        raise AssertionError("the fake network never went quiet")

    def _step(self) -> bool:
        moved = False
        pending, self._pending = self._pending, []
        for dial in pending:
            moved = True
            self._connect(dial)
        for link in list(self._links):
            if link.to_server:
                moved = True
                frames = link._take_frames()
                if frames:
                    link.server.frames_arrived(link, frames)
            if link.to_client and not link.closed:
                moved = True
                data = bytes(link.to_client)
                link.to_client.clear()
                link.protocol.dataReceived(data)
            if link.close_requested and not link.closed and not link.to_server and not link.to_client:
                moved = True
                link.closed = True
                self._links.remove(link)
                link.server.disconnected(link)
                link.protocol.connectionLost(Failure(ConnectionError("fake connection closed")))
        return moved

    def _connect(self, dial: _Dial) -> None:
        if dial.connector.state != "connecting":
            return
        server = self.servers.get((dial.host, dial.port))
        if server is None or server.mode == "refuse":
            dial.connector.state = "disconnected"
            dial.factory.clientConnectionFailed(dial.connector, Failure(ConnectionRefusedError()))
            return
        if server.mode == "silent":
            return
        dial.connector.state = "connected"
        protocol: Any = dial.factory.buildProtocol(IPv4Address("TCP", dial.host, dial.port))
        assert protocol is not None
        link = FakeConnection(server, (dial.host, dial.port), protocol)
        self._links.append(link)
        server.connected(link)
        protocol.makeConnection(_ClientTransport(link))


# Declared apart from the class: the fake implements only what clients use of these interfaces.
classImplements(FakeNetwork, IReactorTCP, IReactorTime)
