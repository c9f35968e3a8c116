# -*- test-case-name: tests.unit.test_tls_ports -*-
"""
TLS for zabd's ports, on Twisted's TLS (``twisted.protocols.tls``, pyOpenSSL).

A port's own factory and protocols do not change: :class:`SecureListening`
wraps a listening factory so that each connection speaks TLS, or (port
unification) TLS or plaintext as its first byte says; :class:`SecureTcp`
stands in for the reactor of the quorum and election ports, wrapping what
they dial and listen with.  Every TLS connection goes through a
:class:`HandshakeWatch`, which bounds the handshake's time, logs one line
when it fails, and keeps 3.8's counters (:class:`TlsCounters`).
"""

from __future__ import annotations

import ipaddress
from typing import Any

from OpenSSL import SSL
from twisted.internet.interfaces import (
    IAddress, IConnector, IDelayedCall, IHandshakeListener, IListeningPort,
    IOpenSSLClientConnectionCreator, IOpenSSLServerConnectionCreator, IReactorTime,
)
from twisted.internet.protocol import ClientFactory, Factory, Protocol, connectionDone
from twisted.logger import Logger
from twisted.protocols.tls import TLSMemoryBIOFactory, TLSMemoryBIOProtocol
from twisted.python.failure import Failure
from zope.interface import implementer

from zabd.metrics.tls import TlsCounters
from zabd.tls.contexts import Contexts, Expectation

log = Logger()

#: The first byte of every TLS record that starts a handshake (ContentType 22).
TLS_HANDSHAKE_RECORD = 0x16


def _host(transport: Any) -> str | None:
    address = transport.getPeer() if transport is not None else None
    return getattr(address, "host", None)


@implementer(IOpenSSLServerConnectionCreator)
class ServerCreator:
    """Server-side connections; ``check_peer_host``: the quorum ports' check of the dialler's address."""

    def __init__(self, contexts: Contexts, check_peer_host: bool = False) -> None:
        self.contexts = contexts
        self.check_peer_host = check_peer_host

    def serverConnectionForTLS(self, tls_protocol: TLSMemoryBIOProtocol) -> SSL.Connection:
        assert self.contexts.server is not None, "a listener's contexts have a key store"
        connection = SSL.Connection(self.contexts.server, None)
        # The TLS layer has no transport yet: the dialler's address is read at verification.
        peer_host = (lambda: _host(tls_protocol.transport)) if self.check_peer_host else None
        tls_protocol.tls_expectation = Expectation(peer_host=peer_host)  # type: ignore[attr-defined]
        return connection


@implementer(IOpenSSLClientConnectionCreator)
class ClientCreator:
    """Client-side connections to ``host``, whose certificate must name it (if verification is on)."""

    def __init__(self, contexts: Contexts, host: str) -> None:
        self.contexts = contexts
        self.host = host

    def clientConnectionForTLS(self, tls_protocol: TLSMemoryBIOProtocol) -> SSL.Connection:
        connection = SSL.Connection(self.contexts.client, None)
        tls_protocol.tls_expectation = Expectation(self.host)  # type: ignore[attr-defined]
        try:
            ipaddress.ip_address(self.host)
        except ValueError:
            connection.set_tlsext_host_name(self.host.encode("idna"))
        connection.set_connect_state()
        return connection


@implementer(IHandshakeListener)
class HandshakeWatch(Protocol):
    """
    Between a TLS layer and the port's protocol: times the handshake, reports its end.

    The port's protocol gets the TLS layer itself as its transport, so
    writes take no extra step; only the TLS layer's calls pass through here.
    """

    def __init__(self, inner: Protocol, counters: TlsCounters, clock: IReactorTime,
                 timeout_s: float, what: str) -> None:
        self.inner = inner
        self.counters = counters
        self.what = what
        self.done = False
        #: The handshake deadline passed (already logged as such).
        self.timed_out = False
        self._clock = clock
        self._timeout_s = timeout_s
        self._timer: IDelayedCall | None = None

    def makeConnection(self, transport: Any) -> None:
        self.transport = transport
        self.counters.outstanding += 1
        self._timer = self._clock.callLater(self._timeout_s, self._too_slow)
        self.inner.makeConnection(transport)

    def _finish(self) -> None:
        if self._timer is not None and self._timer.active():
            self._timer.cancel()
        self._timer = None
        if not self.done:
            self.done = True
            self.counters.outstanding -= 1

    def _too_slow(self) -> None:
        self._timer = None
        log.info("Closing {what} connection from {peer}: no TLS handshake within {seconds} s",
                 what=self.what, peer=_host(self.transport), seconds=self._timeout_s)
        self.timed_out = True
        self.transport.abortConnection()  # type: ignore[union-attr]

    def handshakeCompleted(self) -> None:
        self._finish()
        handshake = getattr(self.inner, "handshakeCompleted", None)
        if handshake is not None:
            handshake()

    def dataReceived(self, data: bytes) -> None:
        self.inner.dataReceived(data)

    def connectionLost(self, reason: Failure = connectionDone) -> None:
        if not self.done:
            self._finish()
            # A close our side asked for before the handshake ended (a peer port
            # hanging up on an election it does not need) is no failed handshake.
            ours = bool(getattr(self.transport, "disconnecting", False)) and not self.timed_out
            if not ours:
                self.counters.unsuccessful += 1
            if not (ours or self.timed_out):
                expected = getattr(self.transport, "tls_expectation", None)
                why = getattr(expected, "refusal", None) or reason.getErrorMessage()
                log.info("TLS handshake on the {what} port with {peer} failed: {why}",
                         what=self.what, peer=_host(self.transport), why=why)
        self.inner.connectionLost(reason)


class _Sniffer(Protocol):
    """Port unification: the first byte chooses TLS (a handshake record) or plaintext."""

    def __init__(self, listening: SecureListening, inner: Protocol) -> None:
        self._listening = listening
        self._inner = inner
        self._chosen: Protocol | None = None
        self._timer: IDelayedCall | None = None

    def connectionMade(self) -> None:
        timeout_s = self._listening.detection_timeout_s
        self._timer = self._listening.clock.callLater(timeout_s, self._choose, b"")

    def _choose(self, first: bytes) -> Protocol:
        # Nothing within ssl.handshakeDetectionTimeoutMillis counts as plaintext, as in 3.8.
        if self._timer is not None and self._timer.active():
            self._timer.cancel()
        self._timer = None
        if first[:1] == bytes([TLS_HANDSHAKE_RECORD]):
            chosen: Protocol = self._listening.tls_protocol(self._inner)
        else:
            chosen = self._inner
            self._listening.counters.plaintext(_host(self.transport) or "")
        self._chosen = chosen
        chosen.makeConnection(self.transport)
        return chosen

    def dataReceived(self, data: bytes) -> None:
        chosen = self._chosen if self._chosen is not None else self._choose(data)
        chosen.dataReceived(data)

    def connectionLost(self, reason: Failure = connectionDone) -> None:
        if self._timer is not None and self._timer.active():
            self._timer.cancel()
        if self._chosen is not None:
            self._chosen.connectionLost(reason)


class SecureListening(Factory):
    """
    A listening factory whose connections speak TLS (``unified``: or plaintext too).

    :param inner: the port's own factory; a None from it refuses the connection.
    :param handshake_limit: at most this many handshakes at once (3.8's
        ``netty.server.outstandingHandshake.limit``); 0 or less: no limit.
    """

    noisy = False

    def __init__(self, inner: Factory[Any], creator: ServerCreator, clock: IReactorTime, counters: TlsCounters,
                 *, what: str, unified: bool = False, handshake_timeout_s: float = 5.0,
                 detection_timeout_s: float = 5.0, handshake_limit: int = 0) -> None:
        self.inner = inner
        self.clock = clock
        self.counters = counters
        self.what = what
        self.unified = unified
        self.handshake_timeout_s = handshake_timeout_s
        self.detection_timeout_s = detection_timeout_s
        self.handshake_limit = handshake_limit
        # The clock also paces the TLS layer's write aggregation (one record per reactor turn).
        self._tls = TLSMemoryBIOFactory(creator, False, inner, clock=clock)

    def logPrefix(self) -> str:
        return f"zabd {self.what} port ({'TLS or plaintext' if self.unified else 'TLS'})"

    def doStart(self) -> None:
        self.inner.doStart()

    def doStop(self) -> None:
        self.inner.doStop()

    def buildProtocol(self, addr: IAddress | None) -> Any:
        if 0 < self.handshake_limit <= self.counters.outstanding:
            self.counters.exceeded += 1
            log.info("Refusing a {what} connection from {peer}: {limit} TLS handshakes under way",
                     what=self.what, peer=getattr(addr, "host", "?"), limit=self.handshake_limit)
            return None
        inner = self.inner.buildProtocol(addr)
        if inner is None:
            return None
        return _Sniffer(self, inner) if self.unified else self.tls_protocol(inner)

    def tls_protocol(self, inner: Protocol) -> TLSMemoryBIOProtocol:
        watch = HandshakeWatch(inner, self.counters, self.clock, self.handshake_timeout_s, self.what)
        return self._tls.protocol(self._tls, watch)


class _SecureDial(TLSMemoryBIOFactory):
    """A dial's factory over TLS; the dialler's factory still hears of failures and losses."""

    def __init__(self, creator: ClientCreator, inner: ClientFactory[Any], clock: IReactorTime,
                 counters: TlsCounters, timeout_s: float, what: str) -> None:
        super().__init__(creator, True, inner, clock=clock)
        self._clock, self._counters, self._timeout_s, self._what = clock, counters, timeout_s, what

    def buildProtocol(self, addr: IAddress | None) -> Any:
        inner = self.wrappedFactory.buildProtocol(addr)
        if inner is None:
            return None
        watch = HandshakeWatch(inner, self._counters, self._clock, self._timeout_s, self._what)
        return self.protocol(self, watch)


class SecureTcp:
    """
    The reactor as the quorum and election ports see it, with the ensemble's TLS rules.

    :param contexts: the ``ssl.quorum`` contexts (None: plaintext only).
    :param dial_tls: ``sslQuorum``: dial peers over TLS.
    :param unified: ``portUnification``: listen for TLS and plaintext alike;
        otherwise listen as ``dial_tls`` says.
    """

    def __init__(self, reactor: Any, contexts: Contexts | None, *, dial_tls: bool, unified: bool,
                 what: str, counters: TlsCounters | None = None) -> None:
        self._reactor = reactor
        self._contexts = contexts
        self._dial_tls = dial_tls
        self._unified = unified
        self._what = what
        self.counters = counters if counters is not None else TlsCounters()
        settings = contexts.settings if contexts is not None else None
        self._timeout_s = (settings.handshake_detection_timeout_ms if settings else 5000) / 1000.0

    def __getattr__(self, name: str) -> Any:
        return getattr(self._reactor, name)

    def connectTCP(self, host: str, port: int, factory: ClientFactory[Any], timeout: float = 30,
                   bindAddress: Any = None) -> IConnector:
        dialling: Factory[Any] = factory
        if self._dial_tls:
            assert self._contexts is not None
            dialling = _SecureDial(ClientCreator(self._contexts, host), factory, self._reactor,
                                   self.counters, self._timeout_s, self._what)
        connector: IConnector = self._reactor.connectTCP(host, port, dialling, timeout=timeout)
        return connector

    def listenTCP(self, port: int, factory: Factory[Any], backlog: int = 50, interface: str = "") -> IListeningPort:
        if self._dial_tls or self._unified:
            assert self._contexts is not None
            check_host = self._contexts.settings.hostname_verification
            factory = SecureListening(factory, ServerCreator(self._contexts, check_host), self._reactor,
                                      self.counters, what=self._what, unified=self._unified,
                                      handshake_timeout_s=self._timeout_s, detection_timeout_s=self._timeout_s)
        listening: IListeningPort = self._reactor.listenTCP(port, factory, backlog=backlog, interface=interface)
        return listening
