# -*- test-case-name: tests.unit.test_ensemble_clients -*-
"""The client side of a following or observing peer: follower-request → commit → final.

Reads are answered here from the local tree. Writes, syncs, createSession
and closeSession go to the leader as REQUEST packets and wait in arrival
order; when the leader's COMMIT (or INFORM) of a txn arrives, the txn is
applied through the final stage, which answers the client that asked for it
(matched on session id and cxid, as ZooKeeper's CommitProcessor matches) or
just applies it when the write came from elsewhere. A read that arrived
behind a waiting write waits with it, so no reply overtakes an earlier one.

Global sessions belong to the leader: this peer only reports which ones
its clients touched (in the PING answers) and asks the leader about a
reconnecting client's session (REVALIDATE). It never expires one.

With local sessions on (zabd.serving.localsessions), new sessions are local
to this peer: their createSession and closeSession are answered here in
order, never forwarded, and this peer expires them. A client reconnecting
with one is checked here; on any other peer it is unknown, so expired. An
ephemeral create of a local session is forwarded behind the createSession
that upgrades it (3.8's FollowerRequestProcessor and
ObserverRequestProcessor).
"""
from __future__ import annotations

from collections.abc import Callable

from twisted.logger import Logger

from zabd.core.sessions import session_password
from zabd.jute.records import ConnectRequest
from zabd.pipeline.context import ServerContext
from zabd.quorum.learner import Learner
from zabd.serving.clients import ClientTable
from zabd.serving.connection import ServerConnection
from zabd.serving.follower_requests import FORWARDED, FollowerRequests, TouchedSessions
from zabd.serving.localsessions import LocalSessionFinal
from zabd.serving.server import ClientServer, ServerOptions, request_throttler, server_context
from zabd.serving.sessions import Housekeeper, SessionSettler

log = Logger()

__all__ = ["FORWARDED", "FollowerServer", "TouchedSessions"]


class FollowerServer(ClientServer):
    """The server of a following or observing peer: a ClientServer given a learner's parts.

    Only the leader expires global sessions; a learner expires its local ones.
    """

    def __init__(self, options: ServerOptions, clock: Callable[[], float], learner: Learner) -> None:
        replica = learner.replica
        self.sessions = sessions = TouchedSessions(options.tick_ms, options.server_id, int(clock() * 1000),
                                                   local_enabled=options.settings.local_sessions)
        ctx = server_context(options, clock, replica.tree, sessions, replica.sessions())
        clients = ClientTable(ctx.stats, ctx.watches)
        self.requests = requests = FollowerRequests(ctx, LocalSessionFinal(ctx, clients.session_closed), learner,
                                                    sessions, clients)
        throttler = request_throttler(options, ctx, requests)
        settler = SessionSettler(ctx, options, clients, throttler.submit)
        door = RevalidatingDoor(ctx, options, clients, sessions, learner, settler)
        super().__init__(options, ctx, clients, requests, throttler, door,
                         Housekeeper(ctx, options, sessions.expire_local, throttler.submit, requests.submit))
        self.learner = learner
        learner.serve(self.sessions.drain, requests.synced)
        replica.on_commit = requests.committed


class RevalidatingDoor:
    """A learner settles new and local sessions itself; a global one is asked of the leader (REVALIDATE)."""

    def __init__(self, ctx: ServerContext, options: ServerOptions, clients: ClientTable, sessions: TouchedSessions,
                 learner: Learner, settler: SessionSettler) -> None:
        self.ctx = ctx
        self.options = options
        self.clients = clients
        self.sessions = sessions
        self.learner = learner
        self._settler = settler

    def connect(self, conn: ServerConnection, request: ConnectRequest) -> None:
        if request.sessionId == 0 or self.sessions.is_local(request.sessionId):
            # A new session (local, or global once the leader's txn commits),
            # or one local to this peer: settled here.
            self._settler.connect(conn, request)
            return
        self.ctx.metrics.connection_requests.add()
        self.ctx.metrics.connection_revalidates.add()
        if request.lastZxidSeen > self.ctx.tree.last_processed_zxid:
            log.info("Refusing session 0x{session:x} for {peer}: client is ahead of this peer",
                     session=request.sessionId, peer=conn.peer)
            conn.close()
            return
        timeout = conn.timeout = self.options.session_timeout(request.timeOut)
        session_id = conn.session_id = request.sessionId
        self.clients.replace(session_id, conn)
        if request.passwd != session_password(session_id):
            conn.session_established(False)
            return

        def answered(valid: bool) -> None:
            if valid:
                self.clients.by_session[session_id] = conn
                self.ctx.sessions.touch(session_id, int(self.ctx.now_ms()), timeout)
            self.clients.release_batch(lambda: conn.session_established(valid))

        self.learner.revalidate(session_id, timeout, answered)

