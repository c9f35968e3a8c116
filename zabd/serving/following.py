# -*- test-case-name: tests.unit.test_ensemble_clients -*-
"""The client side of a following or observing peer: follower-request → commit → final.

Reads are answered here from the local tree. Writes, syncs, createSession
and closeSession go to the leader as REQUEST packets and wait in arrival
order; when the leader's COMMIT (or INFORM) of a txn arrives, the txn is
applied through the final stage, which answers the client that asked for it
(matched on session id and cxid, as ZooKeeper's CommitProcessor matches) or
just applies it when the write came from elsewhere. A read that arrived
behind a waiting write waits with it, so no reply overtakes an earlier one.

Sessions belong to the leader: this peer only reports which ones its
clients touched (in the PING answers) and asks the leader about a
reconnecting client's session (REVALIDATE). It never expires a session.
"""
from __future__ import annotations

from collections import deque
from collections.abc import Callable

from twisted.logger import Logger

from zabd.core.sessions import SessionTracker, session_password
from zabd.jute.opcodes import OpCode
from zabd.jute.records import ConnectRequest
from zabd.jute.txns import Txn
from zabd.pipeline.prep import TXN_TYPES
from zabd.pipeline.request import Request
from zabd.quorum.learner import Learner
from zabd.quorum.packets import RequestForward
from zabd.serving.connection import ServerConnection
from zabd.serving.standalone import ServerOptions, StandaloneServer

log = Logger()

#: What a learner sends to the leader instead of answering itself.
FORWARDED = TXN_TYPES | {OpCode.sync}


class TouchedSessions(SessionTracker):
    """A learner's session table: touches are remembered for the next PING, never expired here."""

    def __init__(self, tick_ms: int, server_id: int, now_ms: int) -> None:
        super().__init__(tick_ms, server_id, now_ms)
        self._touched: dict[int, int] = {}

    def touch(self, session_id: int, now_ms: int, timeout_ms: int | None = None) -> bool:
        known = super().touch(session_id, now_ms, timeout_ms)
        if known:
            self._touched[session_id] = timeout_ms or self.timeout_of(session_id) or 0
        return known

    def drain(self) -> list[tuple[int, int]]:
        touched, self._touched = self._touched, {}
        return list(touched.items())


class FollowerServer(StandaloneServer):
    def __init__(self, options: ServerOptions, clock: Callable[[], float], learner: Learner) -> None:
        replica = learner.replica
        super().__init__(options, clock, None, replica.tree, replica.sessions())
        self.learner = learner
        now = int(self.ctx.now_ms())
        tracker = TouchedSessions(options.tick_ms, options.server_id, now)
        for session_id, timeout in replica.sessions().items():
            tracker.add(session_id, timeout, now)
        self.ctx.sessions = tracker
        self.waiting: deque[Request] = deque()
        learner.touches = tracker.drain
        learner.on_sync = self._synced
        replica.on_commit = self._committed

    # -- requests ------------------------------------------------------------

    def submit(self, request: Request) -> None:
        self.ctx.stats.outstanding += 1
        if request.type in FORWARDED:
            self.waiting.append(request)
            self.learner.forward(
                RequestForward(request.session_id, request.xid, request.type, request.payload),
                list(request.auth_ids) if request.client is not None and request.type != OpCode.createSession else [],
            )
        elif self.waiting:
            self.waiting.append(request)
        else:
            self.final.process(request)

    def _committed(self, zxid: int, txn_bytes: bytes) -> None:
        txn = Txn.from_bytes(txn_bytes)
        header = txn.header
        waiting = self.waiting
        head = waiting[0] if waiting else None
        if (head is not None and head.type in TXN_TYPES
                and head.session_id == header.clientId and head.xid == header.cxid):
            waiting.popleft()
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
        while waiting and waiting[0].type not in FORWARDED:
            self._release(waiting.popleft())

    # -- sessions ------------------------------------------------------------

    def connect(self, conn: ServerConnection, request: ConnectRequest) -> None:
        if request.sessionId == 0:
            super().connect(conn, request)  # a new id here, created by the leader's txn
            return
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

    def expire_sessions(self) -> None:
        """Only the leader expires sessions."""
