# -*- test-case-name: tests.unit.test_standalone -*-
"""The client-facing server every role runs, sans-IO, put together from its role's parts.

A standalone server, a leader's, a follower's or observer's, and a read-only
one differ in their session table, final stage, where a request goes once
the request throttler lets it (``RequestPath``), how a ConnectRequest's
session is settled (``SessionDoor``) and how sessions and containers are
cleaned up (``Housekeeping``). ``ClientServer`` is given those; everything
else (connections, overload protection, the ``ConnectionServer`` side a
ServerConnection talks to) is the same for all. zabd.serving.standalone,
leading, following and readonly build the parts.

It is driven by plain calls (``connect``, ``submit``, ``expire_sessions``) and
reads time only from the injected clock, so tests run it on a
``twisted.internet.task.Clock`` without a reactor.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from random import Random
from typing import Callable, Protocol

from zabd.config.overload_settings import ConnectionThrottleSettings, LargeRequestSettings, RequestThrottleSettings
from zabd.core.acl import AuthProviders
from zabd.core.datatree import DataTree
from zabd.core.localsessions import UpgradeableSessions
from zabd.core.sessions import SessionTracker, session_password
from zabd.jute.records import ConnectRequest, Id
from zabd.metrics.server import ServerMetrics
from zabd.pipeline.context import ServerContext, Settings
from zabd.pipeline.request import Request
from zabd.pipeline.stats import ServerStats
from zabd.serving.clients import ClientTable
from zabd.serving.connection import ServerConnection
from zabd.serving.connthrottle import BlueThrottle
from zabd.serving.overload import LargeRequests
from zabd.serving.requestthrottle import RequestThrottler, Scheduler


@dataclass(frozen=True)
class ServerOptions:
    """What a client-facing server is configured with (a projection of ZabdConfig)."""

    tick_ms: int = 2000
    min_session_timeout_ms: int = 4000
    max_session_timeout_ms: int = 40000
    server_id: int = 1
    super_digest: str | None = None
    digest_auth_enabled: bool = True
    settings: Settings = Settings()
    max_containers_per_minute: int = 10000
    #: The process's metrics: every server built from these options records into them.
    metrics: ServerMetrics = field(default_factory=ServerMetrics, compare=False)
    request_throttle: RequestThrottleSettings = RequestThrottleSettings()
    connection_throttle: ConnectionThrottleSettings = ConnectionThrottleSettings()
    large_requests: LargeRequestSettings = LargeRequestSettings()
    #: Timers for the request throttler (needed when it is on).
    scheduler: Scheduler | None = field(default=None, compare=False)
    #: The connection throttle's random drops (a fresh Random if None).
    random: Random | None = field(default=None, compare=False)

    def session_timeout(self, requested: int) -> int:
        """The negotiated timeout: the requested one within the server's bounds."""
        return min(max(requested, self.min_session_timeout_ms), self.max_session_timeout_ms)


def server_context(options: ServerOptions, clock: Callable[[], float], tree: DataTree | None,
                   sessions: SessionTracker, recovered: dict[int, int] | None = None) -> ServerContext:
    """The state a server's stages share; recovered sessions get a whole timeout from now, as in ZooKeeper."""
    ctx = ServerContext(
        tree=tree or DataTree(),
        sessions=sessions,
        providers=AuthProviders(options.super_digest, options.digest_auth_enabled),
        clock=clock,
        settings=options.settings,
        metrics=options.metrics,
    )
    now_ms = int(clock() * 1000)
    for session_id, timeout in (recovered or {}).items():
        sessions.add(session_id, timeout, now_ms)
    return ctx


def request_throttler(options: ServerOptions, ctx: ServerContext, path: RequestPath) -> RequestThrottler:
    """The queue in front of ``path`` (per server, as in 3.8)."""
    return RequestThrottler(options.request_throttle, path.submit, ctx.stats, options.metrics, ctx.now_ms,
                            options.scheduler)


class RequestPath(Protocol):
    """Where a request goes once the request throttler lets it: the role's processor chain."""

    def submit(self, request: Request) -> None: ...


class SessionDoor(Protocol):
    """How the role settles the session of a new connection (ZooKeeper's processConnectRequest)."""

    def connect(self, conn: ServerConnection, request: ConnectRequest) -> None: ...


class Housekeeping(Protocol):
    """The role's time-driven work: expiring sessions, collecting containers and TTL nodes."""

    def expire_sessions(self) -> None: ...

    def collect_containers(self) -> None: ...


class ClientServer:
    """One server answering ZooKeeper clients, whatever the peer's role; see the module docstring.

    :param clients: its connections (shared with the parts that close them).
    :param path: the role's processor chain.
    :param throttler: the request throttler in front of ``path``.
    :param door: the role's session settling.
    :param housekeeping: the role's session expiry and container collection.
    :param local_sessions: whether new sessions start local (the connection throttle's weights).
    """

    def __init__(self, options: ServerOptions, ctx: ServerContext, clients: ClientTable, path: RequestPath,
                 throttler: RequestThrottler, door: SessionDoor, housekeeping: Housekeeping, *,
                 local_sessions: bool | None = None) -> None:
        self.options = options
        self.ctx = ctx
        self.clients = clients
        self.connections = clients.connections
        self.by_session = clients.by_session
        self.throttler = throttler
        self._path = path
        self._door = door
        self._housekeeping = housekeeping
        sessions = ctx.sessions
        self._local_sessions = local_sessions if local_sessions is not None else (
            isinstance(sessions, UpgradeableSessions) and sessions.local_enabled)
        self.started_ms = ctx.now_ms()
        #: Take a request from a client, or one made for it: through the request throttler to ``submit``.
        self.enqueue: Callable[[Request], None] = throttler.submit
        #: Where the throttler sends a request (the role's chain).
        self.submit: Callable[[Request], None] = path.submit
        self.connection_throttle = BlueThrottle(options.connection_throttle, int(ctx.now_ms()),
                                                options.random or Random())
        self.large_requests = LargeRequests(options.large_requests, ctx.stats,
                                            options.metrics.large_requests_rejected)

    # -- what a ServerConnection needs (ConnectionServer) ----------------------

    @property
    def stats(self) -> ServerStats:
        return self.ctx.stats

    def now_ms(self) -> float:
        return self.ctx.now_ms()

    def admit_connection(self, request: ConnectRequest) -> bool:
        """Whether the connection throttle lets a ConnectRequest in (3.8's check in processConnectRequest)."""
        throttle = self.connection_throttle
        need = throttle.tokens_needed(request.sessionId, self._local_sessions)
        metrics = self.ctx.metrics
        if not throttle.check_limit(need, int(self.ctx.now_ms())):
            metrics.connection_rejected.add()
            return False
        metrics.connection_token_deficit.add(throttle.deficit)
        return True

    def connect(self, conn: ServerConnection, request: ConnectRequest) -> None:
        """Settle the session of a new connection."""
        self._door.connect(conn, request)

    def touch(self, session_id: int, now_ms: int, timeout_ms: int | None) -> None:
        self.ctx.sessions.touch(session_id, now_ms, timeout_ms)

    def authenticate(self, scheme: str, credential: bytes, remote_ip: str) -> list[Id]:
        return self.ctx.providers.authenticate(scheme, credential, remote_ip)

    def password(self, session_id: int) -> bytes:
        return session_password(session_id)

    def collect(self, conn: ServerConnection) -> bool:
        return self.clients.collect(conn)

    def hold(self, conn: ServerConnection, limit: int) -> None:
        self.clients.hold(conn, limit)

    def connection_made(self, conn: ServerConnection) -> None:
        self.clients.connection_made(conn)

    def disconnected(self, conn: ServerConnection) -> None:
        self.clients.disconnected(conn)

    # -- for the views and the peer -------------------------------------------------

    def local_sessions_enabled(self) -> bool:
        """Whether new sessions here start local (3.8's localSessionEnabled, for the connection throttle)."""
        return self._local_sessions

    def local_session_count(self) -> int:
        """mntr's zk_local_sessions."""
        sessions = self.ctx.sessions
        return sessions.local_count() if isinstance(sessions, UpgradeableSessions) else 0

    def durable_state(self) -> tuple[DataTree, dict[int, int]]:
        """What a snapshot holds: the tree and the global sessions with their timeouts."""
        return self.ctx.tree, self.ctx.sessions.sessions()

    def release_batch(self, work: Callable[[], None]) -> None:
        """Run ``work``; the replies it releases leave each connection in one write."""
        self.clients.release_batch(work)

    # -- time-driven work -----------------------------------------------------

    def expire_sessions(self) -> None:
        self._housekeeping.expire_sessions()

    def next_expiry_ms(self) -> int | None:
        return self.ctx.sessions.next_expiry_ms()

    def collect_containers(self) -> None:
        """Delete empty used containers and expired TTL nodes (ZooKeeper's ContainerManager)."""
        self._housekeeping.collect_containers()
