# -*- test-case-name: tests.unit.test_ensemble_clients -*-
"""A learner's parts on the client side: its session table, and where its clients' requests go.

Reads are answered from the local tree; writes, syncs, createSession and
closeSession go to the leader and wait in arrival order until its COMMIT
(or INFORM, or SYNC) arrives (zabd.serving.following).
"""
from __future__ import annotations

from collections import deque

from twisted.logger import Logger

from zabd.core.localsessions import UpgradeableSessions
from zabd.jute.opcodes import OpCode
from zabd.jute.txns import ErrorTxn, Txn
from zabd.pipeline.context import ServerContext
from zabd.pipeline.final import FinalStage
from zabd.pipeline.prep import TXN_TYPES
from zabd.pipeline.request import Request
from zabd.quorum.learner import Learner
from zabd.quorum.packets import RequestForward
from zabd.serving.clients import ClientTable
from zabd.serving.localsessions import is_local_session_op, upgrade_request

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


class FollowerRequests:
    """A learner's request path: forwarded to the leader, or answered here in arrival order.

    A request is matched to the leader's COMMIT on session id and cxid, as
    ZooKeeper's CommitProcessor matches; a txn from elsewhere is just applied.
    """

    def __init__(self, ctx: ServerContext, final: FinalStage, learner: Learner, sessions: TouchedSessions,
                 clients: ClientTable) -> None:
        self.ctx = ctx
        self.final = final
        self.learner = learner
        self.sessions = sessions
        self.clients = clients
        self.waiting: deque[Request] = deque()
        #: Requests in ``waiting`` answered here, not by the leader (a local session's own).
        self.answered_here: set[Request] = set()

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

    def committed(self, zxid: int, txn_bytes: bytes) -> None:
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

    def synced(self) -> None:
        waiting = self.waiting
        if not waiting or waiting[0].type != OpCode.sync:
            log.warn("SYNC from the leader with no sync waiting")
            return
        self._release(waiting.popleft())
        self._release_reads()

    def _release(self, request: Request) -> None:
        self.clients.release_batch(lambda: self.final.process(request))

    def _release_reads(self) -> None:
        waiting = self.waiting
        while waiting and (waiting[0].type not in FORWARDED or waiting[0] in self.answered_here):
            request = waiting.popleft()
            self.answered_here.discard(request)
            self._release(request)
