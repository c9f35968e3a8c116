# -*- test-case-name: tests.unit.test_standalone -*-
"""A standalone ZooKeeper server, sans-IO: the prep → sync → final chain plus sessions.

It is driven by plain calls (``connect``, ``submit``, ``tick``) and reads time
only from the injected clock, so tests run it with ``twisted.internet.task.Clock``
semantics without a reactor.
"""
from __future__ import annotations

import struct
from dataclasses import dataclass, field
from random import Random
from typing import Callable, ClassVar

from twisted.logger import Logger

from zabd.core.acl import AuthProviders
from zabd.core.containers import expired_nodes
from zabd.core.datatree import DataTree
from zabd.core.localsessions import UpgradeableSessions
from zabd.core.sessions import SessionTracker, session_password
from zabd.jute.opcodes import OpCode
from zabd.jute.records import ConnectRequest
from zabd.logs import SESSION_EXPIRED
from zabd.metrics.server import ServerMetrics
from zabd.pipeline.context import ServerContext, Settings
from zabd.pipeline.final import FinalStage
from zabd.pipeline.prep import PrepStage
from zabd.pipeline.request import Request
from zabd.pipeline.sync import MemoryTxnLog, SyncStage, TxnLog
from zabd.serving.connection import ServerConnection
from zabd.serving.connthrottle import BlueThrottle
from zabd.config.overload_settings import ConnectionThrottleSettings, LargeRequestSettings, RequestThrottleSettings
from zabd.serving.overload import LargeRequests
from zabd.serving.requestthrottle import RequestThrottler, Scheduler

log = Logger()


@dataclass(frozen=True)
class ServerOptions:
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


class StandaloneServer:
    #: The final stage's class (an ensemble peer's also ends local sessions).
    final_stage: ClassVar[type[FinalStage]] = FinalStage

    def __init__(self, options: ServerOptions, clock: Callable[[], float],
                 txn_log: TxnLog | None = None, tree: DataTree | None = None,
                 sessions: dict[int, int] | None = None) -> None:
        self.options = options
        now_ms = int(clock() * 1000)
        self.ctx = ServerContext(
            tree=tree or DataTree(),
            sessions=self._new_sessions(options, now_ms),
            providers=AuthProviders(options.super_digest, options.digest_auth_enabled),
            clock=clock,
            settings=options.settings,
            metrics=options.metrics,
        )
        self.final = self.final_stage(self.ctx, self._session_closed)
        txn_log = txn_log or MemoryTxnLog()
        self.sync = SyncStage(txn_log, self.final)
        txn_log.set_durable_callback(self._durable)
        #: Connections holding replies until the current release ends.
        self.collecting: list[ServerConnection] | None = None
        self.prep = PrepStage(self.ctx, self.sync)
        self.connections: set[ServerConnection] = set()
        self.by_session: dict[int, ServerConnection] = {}
        self.started_ms = self.ctx.now_ms()
        # Overload protection, per server as in 3.8 (zabd.serving.overload).
        self.throttler = RequestThrottler(options.request_throttle, self.submit, self.ctx.stats, options.metrics,
                                          self.ctx.now_ms, options.scheduler)
        self.connection_throttle = BlueThrottle(options.connection_throttle, now_ms, options.random or Random())
        self.large_requests = LargeRequests(options.large_requests, self.ctx.stats,
                                            options.metrics.large_requests_rejected)
        # Recovered sessions get a whole timeout from now, as in ZooKeeper.
        for session_id, timeout in (sessions or {}).items():
            self.ctx.sessions.add(session_id, timeout, now_ms)

    def _new_sessions(self, options: ServerOptions, now_ms: int) -> SessionTracker:
        """The session table; a standalone server has no local sessions, whatever the settings say (as 3.8)."""
        return SessionTracker(options.tick_ms, options.server_id, now_ms)

    def local_session_count(self) -> int:
        """mntr's zk_local_sessions."""
        sessions = self.ctx.sessions
        return sessions.local_count() if isinstance(sessions, UpgradeableSessions) else 0

    def durable_state(self) -> tuple[DataTree, dict[int, int]]:
        """What a snapshot holds: the tree and the global sessions with their timeouts."""
        return self.ctx.tree, self.ctx.sessions.sessions()

    # -- connections --------------------------------------------------------

    def connection_made(self, conn: ServerConnection) -> None:
        self.connections.add(conn)

    def disconnected(self, conn: ServerConnection) -> None:
        self.connections.discard(conn)
        self.ctx.watches.remove_watcher(conn)
        if self.by_session.get(conn.session_id) is conn:
            del self.by_session[conn.session_id]

    def password(self, session_id: int) -> bytes:
        return session_password(session_id)

    def local_sessions_enabled(self) -> bool:
        """Whether new sessions here start local (3.8's localSessionEnabled, for the connection throttle)."""
        sessions = self.ctx.sessions
        return isinstance(sessions, UpgradeableSessions) and sessions.local_enabled

    def admit_connection(self, request: ConnectRequest) -> bool:
        """Whether the connection throttle lets a ConnectRequest in (3.8's check in processConnectRequest)."""
        throttle = self.connection_throttle
        need = throttle.tokens_needed(request.sessionId, self.local_sessions_enabled())
        metrics = self.ctx.metrics
        if not throttle.check_limit(need, int(self.ctx.now_ms())):
            metrics.connection_rejected.add()
            return False
        metrics.connection_token_deficit.add(throttle.deficit)
        return True

    def connect(self, conn: ServerConnection, request: ConnectRequest) -> None:
        """Settle the session of a new connection (ZooKeeper's processConnectRequest)."""
        ctx = self.ctx
        if request.lastZxidSeen > ctx.tree.last_processed_zxid:
            log.info(
                "Refusing session request for {peer}: client has seen zxid 0x{client:x}, "
                "our last zxid is 0x{ours:x}; client must try another server",
                peer=conn.peer, client=request.lastZxidSeen, ours=ctx.tree.last_processed_zxid,
            )
            conn.close()
            return
        opts = self.options
        timeout = min(max(request.timeOut, opts.min_session_timeout_ms), opts.max_session_timeout_ms)
        conn.timeout = timeout
        now = int(ctx.now_ms())
        metrics = ctx.metrics
        metrics.connection_requests.add()
        if request.sessionId == 0:
            session_id = ctx.sessions.create(timeout, now)
            conn.session_id = session_id
            self.by_session[session_id] = conn
            log.info("Creating session 0x{session:x} with timeout {timeout} for {peer}",
                     session=session_id, timeout=timeout, peer=conn.peer)
            self.enqueue(Request(session_id, 0, OpCode.createSession, struct.pack(">i", timeout), conn,
                                 received_ms=ctx.now_ms()))
            return
        session_id = request.sessionId
        metrics.connection_revalidates.add()
        previous = self.by_session.pop(session_id, None)
        if previous is not None and previous is not conn:
            # ZooKeeper drops the old connection even if the password is wrong.
            previous.close()
        conn.session_id = session_id
        valid = request.passwd == session_password(session_id) and ctx.sessions.touch(session_id, now, timeout)
        if valid:
            self.by_session[session_id] = conn
            log.info("Reopened session 0x{session:x} for {peer}", session=session_id, peer=conn.peer)
        conn.session_established(valid)

    def _durable(self, zxid: int) -> None:
        self.release_batch(lambda: self.sync.durable(zxid))

    def release_batch(self, work: Callable[[], None]) -> None:
        """Run ``work``; the replies it releases leave each connection in one write."""
        if self.collecting is not None:
            work()
            return
        collecting = self.collecting = []
        try:
            work()
        finally:
            self.collecting = None
            for conn in collecting:
                conn.end_batch()

    def enqueue(self, request: Request) -> None:
        """Take a request from a client, or one made for it: through the request throttler to ``submit``."""
        self.throttler.submit(request)

    def submit(self, request: Request) -> None:
        self.ctx.stats.outstanding += 1
        self.prep.process(request)

    def _session_closed(self, session_id: int) -> None:
        conn = self.by_session.pop(session_id, None)
        # A client that asked to close gets its reply first; the final
        # stage closes that connection itself.
        if conn is not None and not conn.closing:
            conn.close()

    # -- time-driven work -----------------------------------------------------

    def _due_sessions(self, now_ms: int) -> list[int]:
        """Sessions this server expires now (marked closing)."""
        return self.ctx.sessions.expire(now_ms)

    def expire_sessions(self) -> None:
        for session_id in self._due_sessions(int(self.ctx.now_ms())):
            self.ctx.metrics.stale_sessions_expired.add()
            log.info("Expiring session 0x{session_id:x}, timeout of {timeout_ms}ms exceeded",
                     event=SESSION_EXPIRED, session_id=session_id,
                     timeout_ms=self.ctx.sessions.timeout_of(session_id))
            self.enqueue(Request(session_id, 0, OpCode.closeSession, b"", None, received_ms=self.ctx.now_ms()))

    def next_expiry_ms(self) -> int | None:
        return self.ctx.sessions.next_expiry_ms()

    def collect_containers(self) -> None:
        """Delete empty used containers and expired TTL nodes (ZooKeeper's ContainerManager)."""
        ttl_enabled = self.options.settings.extended_types
        paths = expired_nodes(self.ctx.tree, int(self.ctx.now_ms()), ttl_enabled)
        for path in paths[: self.options.max_containers_per_minute]:
            self.submit(Request(0, 0, OpCode.deleteContainer, path.encode("utf-8"), None,
                                received_ms=self.ctx.now_ms()))
