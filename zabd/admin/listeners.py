"""
The admin endpoint's listeners, as services of the standalone and ensemble services.

:func:`admin_services` gives the admin listener (``admin.serverAddress``,
default 127.0.0.1 where ZooKeeper binds 0.0.0.0, and ``admin.serverPort``)
and, with ``metricsProvider.httpPort``, a second listener that serves only
``/metrics``.  A port that cannot be bound is logged once as an error and
the server goes on serving clients, as ZooKeeper does with its AdminServer.
"""
from __future__ import annotations

from typing import Any

from twisted.application.service import IService, Service
from twisted.internet.defer import Deferred, succeed
from twisted.internet.endpoints import TCP4ServerEndpoint, TCP6ServerEndpoint
from twisted.internet.interfaces import IListeningPort
from twisted.internet.protocol import Factory
from twisted.logger import Logger
from twisted.python.failure import Failure
from twisted.web.http import Request as HttpRequest
from twisted.web.server import Site

from zabd.admin.resource import admin_root, metrics_root
from zabd.metrics.tls import TlsCounters
from zabd.config.zoocfg import ZabdConfig
from zabd.views.fourletter_view import AdminView
from zabd.server.tls_ports import SecureListening, ServerCreator
from zabd.tls.contexts import Contexts

log = Logger()


class QuietSite(Site):
    """A Site that writes no access log line per request (monitoring polls often)."""

    noisy = False

    def log(self, request: HttpRequest) -> None:
        pass


class OptionalListener(Service):
    """
    Listens on ``address:port`` while running; a failed bind is logged, not raised.

    :ivar port: the listening port once bound (``port.getHost().port`` for port 0).
    :ivar listening: fires with the port, or None if the bind failed.
    """

    def __init__(self, reactor: Any, address: str, port: int, site: Factory[Any], what: str,
                 scheme: str = "http") -> None:
        self.reactor = reactor
        self.address = address
        self.requested_port = port
        self.site = site
        self.what = what
        self.scheme = scheme
        self.port: IListeningPort | None = None
        self.listening: Deferred[IListeningPort | None] = succeed(None)

    def startService(self) -> None:
        super().startService()
        endpoint_type = TCP6ServerEndpoint if ":" in self.address else TCP4ServerEndpoint
        endpoint = endpoint_type(self.reactor, self.requested_port, interface=self.address)
        listening: Deferred[IListeningPort] = endpoint.listen(self.site)
        self.listening = listening.addCallbacks(self._bound, self._failed)

    def _bound(self, port: IListeningPort) -> IListeningPort:
        self.port = port
        log.info("zabd {what} on {scheme}://{address}:{port}/", what=self.what, scheme=self.scheme,
                 address=self.address, port=port.getHost().port)  # type: ignore[attr-defined]
        return port

    def _failed(self, failure: Failure) -> None:
        # ZooKeeper logs the AdminServer's failure and keeps serving; so does zabd.
        log.error("Unable to start the {what} on {address}:{port}: {error}", what=self.what,
                  address=self.address, port=self.requested_port, error=failure.getErrorMessage())

    def stopService(self) -> Deferred[None] | None:
        super().stopService()
        port, self.port = self.port, None
        if port is None:
            return None
        stopped: Deferred[None] | None = port.stopListening()
        return stopped


def admin_services(view: AdminView, config: ZabdConfig, reactor: Any, tls: Contexts | None = None,
                   counters: TlsCounters | None = None) -> list[IService]:
    """
    The listeners the config asks for (possibly none).

    :param view: the server's figures (``StandaloneView`` or ``EnsembleView``).
    :param config: ``admin_*`` and ``metrics_http_*`` settings.
    :param reactor: to listen with (and for the status page's clock).
    :param tls: the quorum stores, for ``admin.forceHttps`` (HTTPS only) or
        ``admin.portUnification`` (HTTP and HTTPS on the one port), as 3.8.
    """
    services: list[IService] = []
    if config.admin_enable_server:
        site: Factory[Any] = QuietSite(admin_root(view, config, reactor))
        scheme = "http"
        if tls is not None and config.security.admin_tls:
            force = config.security.admin_force_https  # it overrides admin.portUnification, as in 3.8
            timeout_s = tls.settings.handshake_detection_timeout_ms / 1000.0
            site = SecureListening(site, ServerCreator(tls), reactor, counters or TlsCounters(), what="admin",
                                   unified=not force, handshake_timeout_s=timeout_s, detection_timeout_s=timeout_s)
            scheme = "https" if force else "http(s)"
        services.append(OptionalListener(reactor, config.admin_server_address, config.admin_server_port,
                                         site, "admin server", scheme))
    if config.metrics_http_port is not None:
        services.append(OptionalListener(reactor, config.metrics_http_host, config.metrics_http_port,
                                         QuietSite(metrics_root(view)), "Prometheus metrics"))
    return services
