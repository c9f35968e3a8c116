# -*- test-case-name: tests.interop.test_processes,tests.unit.test_config_overload -*-
"""Wire a standalone zabd from a ZabdConfig: storage, the client port and the timers."""
from __future__ import annotations

import os
import sys
from typing import Any, Callable

from twisted.application.service import MultiService
from twisted.logger import Logger

from zabd.metrics.server import ServerMetrics
from zabd.pipeline.context import Settings
from zabd.server.binding import StartupError
from zabd.config.zoocfg import ZabdConfig
from zabd.config.overload import txn_size_limit
from zabd.persist.persistence import Storage, open_database
from zabd.server.quorum_port import ReactorScheduler
from zabd.server.security import ClientListeners, Security, load_security
from zabd.serving.requestthrottle import Scheduler
from zabd.peer.clientside import every, serve_clients
from zabd.peer.servers import standalone_server
from zabd.serving.standalone import ServerOptions, StandaloneServer
from zabd.views.stats_view import FourLetterWords
from zabd.storage.logformat import CorruptLogError
from zabd.storage.recovery import Recovered, RecoveryError
from zabd.storage.snapformat import CorruptSnapshotError

log = Logger()


def server_options(config: ZabdConfig, metrics: ServerMetrics | None = None,
                   scheduler: Scheduler | None = None) -> ServerOptions:
    """The server's options; ``metrics`` is the process's registry (a new one if not given),
    ``scheduler`` the timers of the request throttler (which needs them when it is on)."""
    overload = config.overload
    return ServerOptions(
        tick_ms=config.tick_time,
        min_session_timeout_ms=config.min_session_timeout_ms,
        max_session_timeout_ms=config.max_session_timeout_ms,
        server_id=1,
        super_digest=config.super_digest,
        digest_auth_enabled=config.digest_auth_enabled,
        settings=Settings(
            extended_types=config.extended_types_enabled,
            skip_acl=config.skip_acl,
            reconfig_enabled=config.reconfig_enabled,
            standalone_enabled=config.standalone_enabled,
            enforce_quota=config.enforce_quota,
            local_sessions=config.local_sessions_enabled,
            local_sessions_upgrading=config.local_sessions_upgrading_enabled,
            max_txn_bytes=txn_size_limit(config.jute_max_buffer, overload),
            stale_connection_check=overload.request_throttle.stale_connection_check,
        ),
        max_containers_per_minute=config.container_max_per_minute,
        metrics=metrics if metrics is not None else ServerMetrics(),
        request_throttle=overload.request_throttle,
        connection_throttle=overload.connection_throttle,
        large_requests=overload.large_requests,
        scheduler=scheduler,
    )


def exit_now(code: int) -> None:
    # No orderly shutdown: it could answer requests whose sync failed.  The
    # log observer writes to stdout, so flush it for the error to be seen.
    for stream in (sys.stdout, sys.stderr):
        stream.flush()
    os._exit(code)


class ZabdService(MultiService):
    """The standalone server: storage, its client port, and session and container timers.

    The database is loaded in ``startService``, once logging is running, and
    the port only listens after that.
    """

    def __init__(self, config: ZabdConfig, reactor: Any, halt: Callable[[int], None] = exit_now,
                 security: Security | None = None) -> None:
        super().__init__()
        self.config = config
        self.reactor = reactor
        self.server: StandaloneServer | None = None
        self._snapshot_after_start = False
        #: The process's metrics: storage and the server record into them.
        self.metrics = ServerMetrics()
        self.security = security if security is not None else load_security(config)
        self.storage = Storage(config, reactor, self._durable_state, halt, metrics=self.metrics)
        self.storage.setServiceParent(self)
        self.client_ports = ClientListeners(config, self.security, reactor, self.metrics.tls)
        self.client_ports.setServiceParent(self)
        every(self, reactor, config.tick_time, lambda: self.running_server.expire_sessions())
        every(self, reactor, config.container_check_interval_ms, lambda: self.running_server.collect_containers())

    @property
    def running_server(self) -> StandaloneServer:
        assert self.server is not None, "the server exists once the service has started"
        return self.server

    def _durable_state(self) -> Any:
        return self.running_server.durable_state()

    def privilegedStartService(self) -> None:
        # twistd binds ports here, before startService: the server must exist first.
        self._open()
        super().privilegedStartService()

    def startService(self) -> None:
        self._open()
        super().startService()
        if self._snapshot_after_start:
            # The logs replayed at startup stay needed until a snapshot covers them.
            self.storage.snapshotter.take()

    def _open(self) -> None:
        if self.server is not None:
            return
        config = self.config
        recovered = load_database(config)
        self.storage.loaded(recovered)
        server = standalone_server(server_options(config, self.metrics, ReactorScheduler(self.reactor)),
                                   self.reactor.seconds, self.storage.log, recovered.tree, recovered.sessions)
        self.server = server
        words = FourLetterWords(server, config)
        self.factory = serve_clients(self, config, self.reactor, self.security, self.metrics, self.client_ports,
                                     server, words, words.view)
        self._snapshot_after_start = recovered.replayed > 0 and not recovered.needs_snapshot
        log.info("zabd standalone serving clients on {ports}, data in {data_dir}",
                 ports=client_ports_text(config), data_dir=config.data_dir)


def load_database(config: ZabdConfig) -> Recovered:
    """Warn of unknown keys and load the database, or stop startup saying why."""
    for key in config.unknown_keys:
        log.warn("Ignoring unknown configuration key {key}", key=key)
    for key, reason in config.ignored_keys:
        log.info("Configuration key {key} has no effect in zabd: {reason}", key=key, reason=reason)
    try:
        return open_database(config)
    except (RecoveryError, CorruptLogError, CorruptSnapshotError) as e:
        log.critical("Unable to load database on disk: {error}", error=str(e))
        raise StartupError(f"zabd: unable to load database on disk: {e}") from None


def client_ports_text(config: ZabdConfig) -> str:
    """The client ports for the startup line: ``0.0.0.0:2181, 0.0.0.0:2281 (TLS)``."""
    settings, ports = config.security, []
    if settings.plain_client_port:
        tls = " (TLS too)" if settings.client_port_unification else ""
        ports.append(f"{config.client_port_address or '0.0.0.0'}:{config.client_port}{tls}")
    if settings.secure_client_port is not None:
        ports.append(f"{settings.secure_client_port_address or '0.0.0.0'}:{settings.secure_client_port} (TLS)")
    return ", ".join(ports)
