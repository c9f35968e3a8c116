# -*- test-case-name: tests.unit.test_service -*-
"""Wire a standalone zabd from a ZabdConfig: the client port and the timers."""
from __future__ import annotations

import os
from typing import Any

from twisted.application.internet import StreamServerEndpointService, TimerService
from twisted.application.service import MultiService
from twisted.internet.endpoints import TCP4ServerEndpoint, TCP6ServerEndpoint
from twisted.logger import Logger

from zabd.pipeline.context import Settings
from zabd.server.client_port import ClientPortFactory
from zabd.server.config import ZabdConfig
from zabd.server.fourletter import COMMANDS
from zabd.serving.standalone import ServerOptions, StandaloneServer
from zabd.server.stats_view import FourLetterWords

log = Logger()


def server_options(config: ZabdConfig) -> ServerOptions:
    return ServerOptions(
        tick_ms=config.tick_time,
        min_session_timeout_ms=config.min_session_timeout_ms,
        max_session_timeout_ms=config.max_session_timeout_ms,
        server_id=1,
        super_digest=config.super_digest,
        settings=Settings(
            extended_types=config.extended_types_enabled,
            skip_acl=config.skip_acl,
            reconfig_enabled=config.reconfig_enabled,
        ),
        max_containers_per_minute=config.container_max_per_minute,
    )


class ZabdService(MultiService):
    """The standalone server: its client port plus session and container timers."""

    def __init__(self, config: ZabdConfig, reactor: Any) -> None:
        super().__init__()
        self.config = config
        self.reactor = reactor
        self.server = StandaloneServer(server_options(config), reactor.seconds)
        words = FourLetterWords(self.server, config)
        factory = ClientPortFactory(self.server, words.answer, COMMANDS, config.jute_max_buffer,
                                    config.max_client_cnxns)
        self.factory = factory
        self.endpoint = _endpoint(reactor, config)
        self.port_service = StreamServerEndpointService(self.endpoint, factory)
        # A port we cannot listen on must stop startup, not leave a deaf server.
        self.port_service._raiseSynchronously = True
        self.port_service.setServiceParent(self)
        for interval_ms, work in (
            (config.tick_time, self.server.expire_sessions),
            (config.container_check_interval_ms, self.server.collect_containers),
        ):
            timer = TimerService(interval_ms / 1000.0, work)
            timer.clock = reactor
            timer.setServiceParent(self)

    def startService(self) -> None:
        os.makedirs(self.config.data_dir, exist_ok=True)
        for key in self.config.unknown_keys:
            log.warn("Ignoring unknown configuration key {key}", key=key)
        log.info("zabd standalone serving clients on {address}:{port}, data in {data_dir}",
                 address=self.config.client_port_address or "0.0.0.0", port=self.config.client_port,
                 data_dir=self.config.data_dir)
        super().startService()


def _endpoint(reactor: Any, config: ZabdConfig) -> Any:
    address = config.client_port_address or ""
    backlog = config.client_port_listen_backlog if config.client_port_listen_backlog > 0 else 50
    if ":" in address:
        return TCP6ServerEndpoint(reactor, config.client_port, backlog=backlog, interface=address)
    return TCP4ServerEndpoint(reactor, config.client_port, backlog=backlog, interface=address)
