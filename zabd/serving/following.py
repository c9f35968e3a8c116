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

from collections import deque
from collections.abc import Callable

from twisted.logger import Logger

from zabd.core.localsessions import UpgradeableSessions
from zabd.core.sessions import SessionTracker, session_password
from zabd.jute.opcodes import OpCode
from zabd.jute.records import ConnectRequest
from zabd.jute.txns import ErrorTxn, Txn
from zabd.pipeline.prep import TXN_TYPES
from zabd.pipeline.request import Request
from zabd.quorum.learner import Learner
from zabd.quorum.packets import RequestForward
from zabd.serving.connection import ServerConnection
from zabd.serving.localsessions import LocalSessionFinal, is_local_session_op, upgrade_request
from zabd.serving.standalone import ServerOptions, StandaloneServer

log = Logger()

#: What a learner sends to the leader instead of answering itself.
FORWARDED = TXN_TYPES | {OpCode.sync}


class TouchedSessions(UpgradeableSessions):
    """A learner's session table (3.8's LearnerSessionTracker).

    Touches of global (and upgrading) sessions are remembered for the next
    PING; those never expire here. Local sessions are touched and expired here.
    """

    def __init__(self, tick_ms: int, server_id: int, now_ms: int, *, local_enabled: bool = False) -> None:
        super().__init__(tick_ms, server_id, now_ms, local_enabled=local_enabled)
        self._touched: dict[int, int] = {}

    def _touch_global(self, session_id: int, now_ms: int, timeout_ms: int | None) -> bool:
        known = super()._touch_global(session_id, now_ms, timeout_ms) or session_id in self.upgrading
        if known:
            self._touched[session_id] = timeout_ms or self.timeout_of(session_id) or 0
        return known

    def drain(self) -> list[tuple[int, int]]:
        touched, self._touched = self._touched, {}
        return list(touched.items())


class FollowerServer(StandaloneServer):
    final_stage = LocalSessionFinal
    sessions: TouchedSessions

    def __init__(self, options: ServerOptions, clock: Callable[[], float], learner: Learner) -> None:
        replica = learner.replica
        super().__init__(options, clock, None, replica.tree, replica.sessions())
        self.learner = learner
        self.waiting: deque[Request] = deque()
        #: Requests in ``waiting`` answered here, not by the leader (a local session's own).
        self.answered_here: set[Request] = set()
        learner.touches = self.sessions.drain
        learner.on_sync = self._synced
        replica.on_commit = self._committed

    def _new_sessions(self, options: ServerOptions, now_ms: int) -> SessionTracker:
        # Kept typed as well as in ctx.sessions (this runs inside StandaloneServer.__init__).
        self.sessions = TouchedSessions(options.tick_ms, options.server_id, now_ms,
                                        local_enabled=options.settings.local_sessions)
        return self.sessions

    # -- requests ------------------------------------------------------------

    def submit(self, request: Request) -> None:
        self.ctx.stats.outstanding += 1
        sessions = self.sessions
        if sessions.local_enabled:
            if is_local_session_op(request, sessions):
                self._answer_here(request)
                return
            if request.client is not None:
                upgrade = upgrade_request(request, sessions, self.ctx.settings.local_sessions_upgrading,
                                          self.ctx.now_ms())
                if upgrade is not None:
                    self.ctx.stats.outstanding += 1
                    self._forward(upgrade)
        if request.type in FORWARDED:
            if request.throttled:
                # 3.8 answers it THROTTLEDOP here, in order, and never sends it to the leader.
                self._answer_here(request)
            else:
                self._forward(request)
        elif self.waiting:
            self.waiting.append(request)
        else:
            self.final.process(request)

    def _forward(self, request: Request) -> None:
        self.waiting.append(request)
        self.learner.forward(
            RequestForward(request.session_id, request.xid, request.type, request.payload),
            list(request.auth_ids) if request.client is not None and request.type != OpCode.createSession else [],
        )

    def _answer_here(self, request: Request) -> None:
        """A local session's createSession or closeSession, or a throttled request: no txn, answered here."""
        if request.type == OpCode.closeSession:
            log.info("Closing local session 0x{session:x}", session=request.session_id)
            self.ctx.sessions.set_closing(request.session_id)
        if self.waiting:
            self.answered_here.add(request)
            self.waiting.append(request)
        else:
            self.final.process(request)

    def _committed(self, zxid: int, txn_bytes: bytes) -> None:
        txn = Txn.from_bytes(txn_bytes)
        header = txn.header
        waiting = self.waiting
        head = waiting[0] if waiting else None
        if (head is not None and head.type in TXN_TYPES and head not in self.answered_here
                and head.session_id == header.clientId and head.xid == header.cxid):
            waiting.popleft()
            if head.error is not None and header.type == OpCode.error:
                # This peer's own refusal (EPHEMERALONLOCALSESSION) is what the
                # client hears, not the leader's, as in 3.8's FinalRequestProcessor.
                txn = Txn(header, ErrorTxn(head.error.code))
            head.txn = txn
            self._release(head)
        else:
            self.final.apply(txn)
        self._release_reads()

    def _synced(self) -> None:
        waiting = self.waiting
        if not waiting or waiting[0].type != OpCode.sync:
            log.warn("SYNC from the leader with no sync waiting")
            return
        self._release(waiting.popleft())
        self._release_reads()

    def _release(self, request: Request) -> None:
        self.release_batch(lambda: self.final.process(request))

    def _release_reads(self) -> None:
        waiting = self.waiting
        while waiting and (waiting[0].type not in FORWARDED or waiting[0] in self.answered_here):
            request = waiting.popleft()
            self.answered_here.discard(request)
            self._release(request)

    # -- sessions ------------------------------------------------------------

    def connect(self, conn: ServerConnection, request: ConnectRequest) -> None:
        if request.sessionId == 0 or self.sessions.is_local(request.sessionId):
            # A new session (local, or global once the leader's txn commits),
            # or one local to this peer: settled here.
            super().connect(conn, request)
            return
        self.ctx.metrics.connection_requests.add()
        self.ctx.metrics.connection_revalidates.add()
        if request.lastZxidSeen > self.ctx.tree.last_processed_zxid:
            log.info("Refusing session 0x{session:x} for {peer}: client is ahead of this peer",
                     session=request.sessionId, peer=conn.peer)
            conn.close()
            return
        opts = self.options
        timeout = min(max(request.timeOut, opts.min_session_timeout_ms), opts.max_session_timeout_ms)
        conn.timeout = timeout
        session_id = conn.session_id = request.sessionId
        previous = self.by_session.pop(session_id, None)
        if previous is not None and previous is not conn:
            previous.close()
        if request.passwd != session_password(session_id):
            conn.session_established(False)
            return

        def answered(valid: bool) -> None:
            if valid:
                self.by_session[session_id] = conn
                self.ctx.sessions.touch(session_id, int(self.ctx.now_ms()), timeout)
            self.release_batch(lambda: conn.session_established(valid))

        self.learner.revalidate(session_id, timeout, answered)

    def _due_sessions(self, now_ms: int) -> list[int]:
        """Only the leader expires global sessions; a learner expires its local ones."""
        return self.sessions.expire_local(now_ms)
