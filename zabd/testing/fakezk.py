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

The servers and their connections are in zabd.testing.fakeservers; this
module re-exports them.
"""
from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from twisted.internet.interfaces import IReactorTCP, IReactorTime
from twisted.internet.address import IPv4Address
from twisted.internet.task import Clock
from twisted.python.failure import Failure
from zope.interface import classImplements

from zabd.testing.fakeservers import (
    FakeConnection, FakeServer, RealServer, ScriptedServer, parse_connect, parse_request,
)

__all__ = ["FakeConnection", "FakeConnector", "FakeNetwork", "FakeServer", "RealServer", "ScriptedServer",
           "parse_connect", "parse_request"]


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
class _Dial:
    host: str
    port: int
    factory: Any  # a ClientFactory
    connector: FakeConnector


class FakeConnector:
    """The IConnector a client gets from FakeNetwork.connectTCP."""

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
