# -*- test-case-name: tests.unit.test_ensemble_clients -*-
"""A leader's parts on the client side: where requests go, who owns each session, how sessions are settled.

With local sessions on (zabd.serving.localsessions), the leader's own
clients get local sessions whose createSession and closeSession skip prep
and wait in the sync stage's queue with no txn; an ephemeral create of one
of them is preceded by the createSession that upgrades it, as 3.8's
LeaderRequestProcessor does.
"""
from __future__ import annotations

from twisted.logger import Logger

from zabd.core.localsessions import LeaderSessions
from zabd.jute.errors import Code, KeeperError
from zabd.jute.opcodes import OpCode
from zabd.jute.records import ConnectRequest
from zabd.pipeline.context import ServerContext
from zabd.pipeline.prep import TXN_TYPES
from zabd.pipeline.request import Request
from zabd.serving.chain import Chain
from zabd.serving.connection import ServerConnection, State
from zabd.serving.localsessions import is_local_session_op, upgrade_request
from zabd.serving.sessions import SessionSettler

log = Logger()


class SessionOwners:
    """Which peer each session's client is on (3.8's session owner), and SESSIONMOVED from it."""

    def __init__(self, myid: int, sessions: LeaderSessions) -> None:
        self.myid = myid
        self._sessions = sessions
        self.of: dict[int, int] = {}

    def check(self, request: Request, owner: int | None) -> None:
        """SESSIONMOVED for a write from a peer the session has left (3.8's checkSession)."""
        session_id = request.session_id
        if owner is None:
            return
        sessions = self._sessions
        if sessions.local_enabled and request.type != OpCode.createSession and not sessions.is_global(session_id):
            return  # a local session cannot move: it is known to one peer only
        if request.type == OpCode.createSession:
            self.of[session_id] = owner
        elif request.type in TXN_TYPES:
            # closeSession too, where 3.8 lets it through from anywhere: a close
            # forwarded late by a peer the client has left would end the session
            # after the requests the client went on to send elsewhere (chaos seed
            # 42576). Expiry's closeSession has no owner, and is not checked.
            current = self.of.setdefault(session_id, owner)  # the first word after an election
            if current != owner:
                request.error = KeeperError(Code.SESSIONMOVED)


class LeaderRequests:
    """The leader's request path: local sessions' own ops, upgrades and the owner check, then the chain."""

    def __init__(self, ctx: ServerContext, chain: Chain, sessions: LeaderSessions, owners: SessionOwners) -> None:
        self.ctx = ctx
        self.chain = chain
        self.sessions = sessions
        self.owners = owners

    def submit(self, request: Request) -> None:
        sessions = self.sessions
        if sessions.local_enabled and is_local_session_op(request, sessions):
            self._local_session_op(request)
            return
        if isinstance(request.client, ServerConnection):
            if sessions.local_enabled:
                upgrade = upgrade_request(request, sessions, self.ctx.settings.local_sessions_upgrading,
                                          self.ctx.now_ms())
                if upgrade is not None:
                    self.chain.submit(upgrade)
            self.owners.check(request, self.owners.myid)
        self.chain.submit(request)

    def _local_session_op(self, request: Request) -> None:
        """A local session's createSession or closeSession: no zxid, no proposal, answered in order."""
        self.ctx.stats.outstanding += 1
        if request.type == OpCode.closeSession:
            log.info("Closing local session 0x{session:x}", session=request.session_id)
            self.ctx.sessions.set_closing(request.session_id)
        self.chain.sync.process(request)


class LeaderDoor:
    """Settles sessions as a standalone server does; a resumed session is then owned here."""

    def __init__(self, settler: SessionSettler, owners: SessionOwners) -> None:
        self._settler = settler
        self._owners = owners

    def connect(self, conn: ServerConnection, request: ConnectRequest) -> None:
        self._settler.connect(conn, request)
        if request.sessionId != 0 and conn.state is not State.CLOSED:
            self._owners.of[request.sessionId] = self._owners.myid
