"""
In-memory TLS connections for tests: a zabd TLS listener and a client,
joined by Twisted's ``iosim`` pump on a fake clock, with no sockets.

    server, client, pump = tls_pair(listening, ClientCreator(contexts, "127.0.0.1"), EchoClient())
    pump.flush()

The same OpenSSL handshakes run as on a real port, so refusals, timeouts
and port unification are tested deterministically.
"""

from __future__ import annotations

from typing import Any

from twisted.internet.address import IPv4Address
from twisted.internet.protocol import Factory, Protocol
from twisted.internet.task import Clock
from twisted.protocols.tls import TLSMemoryBIOFactory
from twisted.test.iosim import FakeTransport, IOPump, connect

from zabd.server.tls_ports import ClientCreator
from zabd.tls.contexts import Contexts
from zabd.tls.settings import StoreSpec, TlsSettings


class Recorder(Protocol):
    """A protocol that keeps what it was sent and how it ended."""

    def __init__(self) -> None:
        self.received = b""
        self.made = False
        self.lost: Any = None

    def connectionMade(self) -> None:
        self.made = True

    def dataReceived(self, data: bytes) -> None:
        self.received += data

    def connectionLost(self, reason: Any = None) -> None:
        self.lost = reason


class Echo(Recorder):
    """A Recorder that also writes back what it receives."""

    def dataReceived(self, data: bytes) -> None:
        super().dataReceived(data)
        assert self.transport is not None
        self.transport.write(data)


class _Given(Factory):
    """A factory of the one protocol it was given."""

    def __init__(self, protocol: Protocol) -> None:
        self.protocol_given = protocol

    def buildProtocol(self, addr: Any) -> Protocol:
        return self.protocol_given


def settings_for(prefix: str, key_store: str | None, trust_store: str | None, password: str,
                 **options: Any) -> TlsSettings:
    """TLS settings naming stores by file (their type from the name)."""
    def spec(kind: str, path: str | None) -> StoreSpec | None:
        return StoreSpec(f"{prefix}.{kind}", path, password) if path else None
    return TlsSettings(prefix, spec("keyStore", key_store), spec("trustStore", trust_store), **options)


def tls_pair(listening: Factory[Any], client: Protocol | None, clock: Clock,
             client_host: str = "127.0.0.1", creator: ClientCreator | None = None,
             ) -> tuple[Protocol | None, Protocol, IOPump]:
    """
    Connect ``client`` (over TLS if ``creator`` is given, else plaintext) to
    a listening factory; the server's side is from ``listening.buildProtocol``.

    :returns: (the server protocol or None if refused, the client's outermost protocol, the pump).
    """
    peer = IPv4Address("TCP", client_host, 40000)
    server = listening.buildProtocol(peer)
    outer: Protocol = client if client is not None else Recorder()
    if creator is not None:
        wrapper = TLSMemoryBIOFactory(creator, True, _Given(outer), clock=clock)
        outer = wrapper.buildProtocol(IPv4Address("TCP", "127.0.0.1", 2281))
    server_side = server if server is not None else Recorder()
    server_io = FakeTransport(server_side, isServer=True, peerAddress=peer)
    client_io = FakeTransport(outer, isServer=False, peerAddress=IPv4Address("TCP", "127.0.0.1", 2281))
    pump = connect(server_side, server_io, outer, client_io, greet=False, clock=clock)
    if server is None:
        server_io.loseConnection()
    return server, outer, pump


def client_contexts(key_store: str | None, trust_store: str | None, password: str, **options: Any) -> Contexts:
    """A client's contexts (a key store only if it presents a certificate)."""
    return Contexts(settings_for("ssl", key_store, trust_store, password, **options), need_key=False)
