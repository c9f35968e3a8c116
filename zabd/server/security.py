# -*- test-case-name: tests.unit.test_tls_ports -*-
"""
A server's TLS at startup: the stores read once, the client listeners, reloads.

:func:`load_security` reads every store the config needs before anything
listens, so a bad store stops startup with the key and the file;
:class:`ClientListeners` is the plaintext and secure client ports as one
service; :func:`quorum_reactor` is what the quorum and election ports
listen and dial with.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from OpenSSL import SSL
from twisted.application.internet import StreamServerEndpointService, TimerService
from twisted.application.service import MultiService
from twisted.internet.endpoints import TCP4ServerEndpoint, TCP6ServerEndpoint
from twisted.internet.interfaces import IAddress, IStreamServerEndpoint
from twisted.internet.protocol import Factory
from twisted.logger import Logger

from zabd.metrics.tls import TlsCounters
from zabd.server.binding import bind_at_startup
from zabd.config.zoocfg import ConfigError, ZabdConfig
from zabd.server.tls_ports import SecureListening, SecureTcp, ServerCreator
from zabd.tls.contexts import Contexts, TlsSettingError
from zabd.tls.settings import TlsSettings
from zabd.tls.stores import StoreError

log = Logger()

#: How often changed store files are looked for (3.8 watches the directory).
RELOAD_INTERVAL_S = 1.0


@dataclass
class Security:
    """The loaded contexts: the client ports', the peers', and the admin server's (quorum stores)."""

    client: Contexts | None = None
    quorum: Contexts | None = None
    #: The quorum stores without asking for client certificates, as 3.8's Jetty does.
    admin: Contexts | None = None


def _contexts(settings: TlsSettings, source: str, client_auth: str | None = None) -> Contexts:
    try:
        return Contexts(settings, server_client_auth=client_auth)
    except (StoreError, TlsSettingError) as e:
        raise ConfigError(f"{source}: {e}", e.key, source, None) from None
    except SSL.Error as e:
        raise ConfigError(f"{source}: {settings.prefix}.keyStore.location: OpenSSL refused the key or "
                          f"certificate: {e}", f"{settings.prefix}.keyStore.location", source, None) from None


def load_security(config: ZabdConfig) -> Security:
    """
    Read every store the config's TLS listeners need.

    :raises ConfigError: naming the key and file of a store that cannot be used.
    """
    settings, source = config.security, config.config_file or "zoo.cfg"
    security = Security()
    if settings.client_tls:
        security.client = _contexts(settings.client, source)
    if settings.quorum_tls and config.ensemble is not None:
        security.quorum = _contexts(settings.quorum, source)
    if settings.admin_tls:
        security.admin = _contexts(settings.quorum, source, client_auth="none")
    return security


def tcp_endpoint(reactor: Any, port: int, address: str | None, backlog: int) -> IStreamServerEndpoint:
    address = address or ""
    backlog = backlog if backlog > 0 else 50
    if ":" in address:
        return TCP6ServerEndpoint(reactor, port, backlog=backlog, interface=address)
    return TCP4ServerEndpoint(reactor, port, backlog=backlog, interface=address)


class _CountingPlaintext(Factory):
    """The plaintext client port's factory, counting connections as 3.8's non_mtls figures."""

    noisy = False

    def __init__(self, inner: Factory[Any], counters: TlsCounters) -> None:
        self.inner, self.counters = inner, counters

    def logPrefix(self) -> str:
        return "zabd client port"

    def doStart(self) -> None:
        self.inner.doStart()

    def doStop(self) -> None:
        self.inner.doStop()

    def buildProtocol(self, addr: IAddress | None) -> Any:
        protocol = self.inner.buildProtocol(addr)
        if protocol is not None:
            self.counters.plaintext(getattr(addr, "host", ""))
        return protocol


class ClientListeners(MultiService):
    """
    The client ports the config asks for: ``clientPort`` (TLS too with
    ``client.portUnification``) and ``secureClientPort``.  Binding fails
    startup, and opens nothing the config did not name.
    """

    def __init__(self, config: ZabdConfig, security: Security, reactor: Any, counters: TlsCounters) -> None:
        super().__init__()
        self.config, self.security, self.reactor, self.counters = config, security, reactor, counters
        settings = config.security
        self.plain: StreamServerEndpointService | None = None
        self.secure: StreamServerEndpointService | None = None
        backlog = config.client_port_listen_backlog
        if settings.plain_client_port:
            self.plain = self._listener(tcp_endpoint(reactor, config.client_port, config.client_port_address,
                                                     backlog))
        if settings.secure_client_port is not None:
            self.secure = self._listener(tcp_endpoint(reactor, settings.secure_client_port,
                                                      settings.secure_client_port_address, backlog))
        if security.client is not None and settings.reload_client_certs:
            timer = TimerService(RELOAD_INTERVAL_S, reload_stores, security.client, "client")
            timer.clock = reactor
            timer.setServiceParent(self)

    def _listener(self, endpoint: IStreamServerEndpoint) -> StreamServerEndpointService:
        service = StreamServerEndpointService(endpoint, None)
        # A port we cannot listen on must stop startup, not leave a deaf server.
        service._raiseSynchronously = True
        service.setServiceParent(self)
        return service

    def privilegedStartService(self) -> None:
        bind_at_startup(super().privilegedStartService, "clients")

    def serve(self, factory: Factory[Any]) -> None:
        """Answer on every client port with ``factory``'s protocols."""
        settings, contexts = self.config.security, self.security.client
        if self.plain is not None:
            if settings.client_port_unification:
                assert contexts is not None
                self.plain.factory = self._secure(factory, contexts, unified=True)
            else:
                self.plain.factory = _CountingPlaintext(factory, self.counters)
        if self.secure is not None:
            assert contexts is not None
            self.secure.factory = self._secure(factory, contexts, unified=False)

    def _secure(self, factory: Factory[Any], contexts: Contexts, unified: bool) -> SecureListening:
        timeout_s = contexts.settings.handshake_detection_timeout_ms / 1000.0
        return SecureListening(factory, ServerCreator(contexts), self.reactor, self.counters, what="client",
                               unified=unified, handshake_timeout_s=timeout_s, detection_timeout_s=timeout_s,
                               handshake_limit=self.config.security.outstanding_handshake_limit)


def reload_stores(contexts: Contexts, what: str) -> None:
    """Read changed store files again; a bad new file is logged and the old contexts stay."""
    before = contexts.server, contexts.client
    problem = contexts.reload_if_changed()
    if problem is not None:
        log.error("Keeping the {what} TLS certificates in use: the changed store cannot be used: {problem}",
                  what=what, problem=problem)
    elif (contexts.server, contexts.client) != before:
        log.info("Reloaded the {what} TLS key and trust stores", what=what)


def quorum_reactor(config: ZabdConfig, security: Security, reactor: Any, counters: TlsCounters,
                   what: str) -> Any:
    """The reactor the quorum or election port uses: plain, or with sslQuorum/portUnification's TLS."""
    settings = config.security
    if security.quorum is None or not settings.quorum_tls:
        return reactor
    return SecureTcp(reactor, security.quorum, dial_tls=settings.ssl_quorum,
                     unified=settings.quorum_port_unification, what=what, counters=counters)
