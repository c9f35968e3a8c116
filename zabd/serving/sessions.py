# -*- test-case-name: tests.unit.test_standalone -*-
"""How a server settles a new connection's session, and expires sessions, when its role has nothing special to do."""
from __future__ import annotations

import struct
from typing import Callable

from twisted.logger import Logger

from zabd.core.containers import expired_nodes
from zabd.core.sessions import session_password
from zabd.jute.opcodes import OpCode
from zabd.jute.records import ConnectRequest
from zabd.logs import SESSION_EXPIRED
from zabd.pipeline.context import ServerContext
from zabd.pipeline.request import Request
from zabd.serving.clients import ClientTable
from zabd.serving.connection import ServerConnection
from zabd.serving.server import ServerOptions

log = Logger()

#: Takes a request into the server (through its request throttler).
Enqueue = Callable[[Request], None]


class SessionSettler:
    """ZooKeeper's processConnectRequest: a new session is created by a createSession request,
    a known one is resumed here if its password is right and it is alive."""

    def __init__(self, ctx: ServerContext, options: ServerOptions, clients: ClientTable, enqueue: Enqueue) -> None:
        self.ctx = ctx
        self.options = options
        self.clients = clients
        self._enqueue = enqueue

    def connect(self, conn: ServerConnection, request: ConnectRequest) -> None:
        ctx = self.ctx
        if request.lastZxidSeen > ctx.tree.last_processed_zxid:
            log.info(
                "Refusing session request for {peer}: client has seen zxid 0x{client:x}, "
                "our last zxid is 0x{ours:x}; client must try another server",
                peer=conn.peer, client=request.lastZxidSeen, ours=ctx.tree.last_processed_zxid,
            )
            conn.close()
            return
        timeout = conn.timeout = self.options.session_timeout(request.timeOut)
        now = int(ctx.now_ms())
        metrics = ctx.metrics
        metrics.connection_requests.add()
        if request.sessionId == 0:
            session_id = ctx.sessions.create(timeout, now)
            conn.session_id = session_id
            self.clients.by_session[session_id] = conn
            log.info("Creating session 0x{session:x} with timeout {timeout} for {peer}",
                     session=session_id, timeout=timeout, peer=conn.peer)
            self._enqueue(Request(session_id, 0, OpCode.createSession, struct.pack(">i", timeout), conn,
                                  received_ms=ctx.now_ms()))
            return
        session_id = request.sessionId
        metrics.connection_revalidates.add()
        self.clients.replace(session_id, conn)
        conn.session_id = session_id
        valid = request.passwd == session_password(session_id) and ctx.sessions.touch(session_id, now, timeout)
        if valid:
            self.clients.by_session[session_id] = conn
            log.info("Reopened session 0x{session:x} for {peer}", session=session_id, peer=conn.peer)
        conn.session_established(valid)


class Housekeeper:
    """Expires the sessions ``due`` names through closeSession requests, and collects containers.

    :param due: the sessions to expire now (marked closing); a learner expires only its local ones.
    :param enqueue: where an expiry's closeSession goes (through the request throttler).
    :param submit: where a deleteContainer goes (straight to the chain, as in 3.8).
    """

    def __init__(self, ctx: ServerContext, options: ServerOptions, due: Callable[[int], list[int]],
                 enqueue: Enqueue, submit: Enqueue) -> None:
        self.ctx = ctx
        self.options = options
        self._due = due
        self._enqueue = enqueue
        self._submit = submit

    def expire_sessions(self) -> None:
        ctx = self.ctx
        for session_id in self._due(int(ctx.now_ms())):
            ctx.metrics.stale_sessions_expired.add()
            log.info("Expiring session 0x{session_id:x}, timeout of {timeout_ms}ms exceeded",
                     event=SESSION_EXPIRED, session_id=session_id,
                     timeout_ms=ctx.sessions.timeout_of(session_id))
            self._enqueue(Request(session_id, 0, OpCode.closeSession, b"", None, received_ms=ctx.now_ms()))

    def collect_containers(self) -> None:
        ctx = self.ctx
        ttl_enabled = self.options.settings.extended_types
        paths = expired_nodes(ctx.tree, int(ctx.now_ms()), ttl_enabled)
        for path in paths[: self.options.max_containers_per_minute]:
            self._submit(Request(0, 0, OpCode.deleteContainer, path.encode("utf-8"), None,
                                 received_ms=ctx.now_ms()))
