# -*- test-case-name: tests.unit.test_local_sessions -*-
"""Local sessions in the request path of an ensemble peer (3.8's QuorumZooKeeperServer parts).

With localSessionsEnabled every new session is local to the peer its client
connected to: its createSession and closeSession write no txn and are
answered here, in order with the client's other requests. A local session
may read and write, but an ephemeral node needs a session every peer knows,
so a create of one (create, create2, or a multi holding one) first upgrades
the session: the peer sends a createSession for it to the leader ahead of
the create (``upgrade_request``, 3.8's checkUpgradeSession and
makeUpgradeRequest), or, with localSessionsUpgradingEnabled off, the create
answers EPHEMERALONLOCALSESSION.
"""
from __future__ import annotations

import struct

from twisted.logger import Logger

from zabd.core.localsessions import UpgradeableSessions
from zabd.jute import multi
from zabd.jute.codec import JuteError, Reader
from zabd.jute.errors import Code, KeeperError
from zabd.jute.opcodes import CreateMode, OpCode
from zabd.jute.records import CreateRequest
from zabd.pipeline.final import FinalStage
from zabd.pipeline.request import Request

log = Logger()

#: The requests 3.8 looks into for an ephemeral create (TTL nodes and containers never are).
_UPGRADE_CHECKED = frozenset({OpCode.create, OpCode.create2, OpCode.multi})
_CREATES = frozenset({OpCode.create, OpCode.create2})
_EPHEMERAL_FLAGS = frozenset({CreateMode.EPHEMERAL.value, CreateMode.EPHEMERAL_SEQUENTIAL.value})
_SESSION_OPS = frozenset({OpCode.createSession, OpCode.closeSession})


def creates_ephemeral(request: Request) -> bool:
    """Whether a create, create2 or multi creates an ephemeral node.

    A request that does not decode is not one: prep answers it as usual.
    """
    try:
        if request.type == OpCode.multi:
            ops = multi.read_ops(request.payload, multi.WRITE_OPS)
            return any(kind in _CREATES and isinstance(record, CreateRequest) and record.flags in _EPHEMERAL_FLAGS
                       for kind, record in ops)
        if request.type in _CREATES:
            return CreateRequest.read(Reader(request.payload)).flags in _EPHEMERAL_FLAGS
    except JuteError:
        return False
    return False


def needs_global_session(request: Request) -> bool:
    return request.type in _UPGRADE_CHECKED and creates_ephemeral(request)


def is_local_session_op(request: Request, sessions: UpgradeableSessions) -> bool:
    """A createSession or closeSession of a session local to this peer: no txn, answered here."""
    return request.type in _SESSION_OPS and sessions.is_local(request.session_id)


def upgrade_request(request: Request, sessions: UpgradeableSessions, upgrading_enabled: bool,
                    now_ms: float) -> Request | None:
    """The createSession to send ahead of ``request`` if it needs its local session made global.

    With upgrading off the request is marked EPHEMERALONLOCALSESSION instead
    and still goes on, as in 3.8 (where it costs an error txn).
    """
    session_id = request.session_id
    if request.type not in _UPGRADE_CHECKED or not sessions.is_local(session_id):
        return None
    if not creates_ephemeral(request):
        return None
    if not upgrading_enabled:
        request.error = KeeperError(Code.EPHEMERALONLOCALSESSION)
        return None
    timeout = sessions.upgrade(session_id, int(now_ms))
    if timeout is None:
        return None
    log.info("Upgrading session 0x{session:x} to a global session", session=session_id)
    return Request(session_id, 0, OpCode.createSession, struct.pack(">i", timeout), None, received_ms=now_ms)


class LocalSessionFinal(FinalStage):
    """The final stage of a leader or a learner: a local session's closeSession ends here, txn-less.

    It leaves in order with the client's other requests, as 3.8's
    CommitProcessor passes it on (needCommit is false for it) to
    FinalRequestProcessor, which drops the session and answers err 0.
    """

    def process(self, request: Request) -> None:
        if request.type != OpCode.closeSession or request.txn is not None:
            super().process(request)
            return
        ctx = self.ctx
        session_id = request.session_id
        ctx.sessions.remove(session_id)
        self.session_closed(session_id)
        ctx.stats.finished(request)
        client = request.client
        if client is None or not client.connected:
            return
        now = ctx.now_ms()
        # No txn: timed as a read, as 3.8 times a request without a txn header.
        ctx.metrics.read_latency.add(int(now - request.received_ms))
        client.send_reply(request.xid, ctx.tree.last_processed_zxid, 0, None, now)
        client.close()
