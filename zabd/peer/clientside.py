# -*- test-case-name: tests.unit.test_ensemble_service -*-
"""What a standalone server and an ensemble peer both run around their clients: timers, admin and client ports.

zabd.peer.standalone and zabd.peer.ensemble differ in what answers clients;
how clients and operators reach it is the same, and is built here once.
"""
from __future__ import annotations

from typing import Any, Callable

from twisted.application.internet import TimerService
from twisted.application.service import MultiService

from zabd.admin.listeners import admin_services
from zabd.config.zoocfg import ZabdConfig
from zabd.metrics.server import ServerMetrics
from zabd.server.client_port import ClientPortFactory
from zabd.server.security import ClientListeners, Security
from zabd.serving.standalone import StandaloneServer
from zabd.views.fourletter import COMMANDS
from zabd.views.fourletter_view import AdminView
from zabd.views.stats_view import FourLetterWords


def every(parent: MultiService, reactor: Any, interval_ms: int, work: Callable[[], object]) -> None:
    """Run ``work`` every ``interval_ms`` while ``parent`` runs (first when it starts)."""
    timer = TimerService(interval_ms / 1000.0, work)
    timer.clock = reactor
    timer.setServiceParent(parent)


def serve_clients(parent: MultiService, config: ZabdConfig, reactor: Any, security: Security,
                  metrics: ServerMetrics, listeners: ClientListeners, server: StandaloneServer | None,
                  words: FourLetterWords, view: AdminView) -> ClientPortFactory:
    """Open the admin endpoint on ``view`` and the client ports before ``server`` (None: no server yet)."""
    # The HTTP admin endpoint reads the same view as the four-letter words.
    for listener in admin_services(view, config, reactor, security.admin, metrics.admin_tls):
        listener.setServiceParent(parent)
    factory = ClientPortFactory(server, words.answer, COMMANDS, config.jute_max_buffer, config.max_client_cnxns,
                                config.max_cnxns, config.global_outstanding_limit, metrics=metrics, clock=reactor)
    listeners.serve(factory)
    return factory
