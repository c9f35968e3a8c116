# -*- test-case-name: tests.unit.test_pipeline -*-
"""The final stage: apply a txn to the tree, deliver watch events, then reply.

Watch events go out before the reply of the write that caused them, and the
reply carries the zxid of the last applied txn, as ZooKeeper's
FinalRequestProcessor does.
"""
from __future__ import annotations

from typing import Callable

from twisted.logger import Logger

from zabd.core.acl import has_perm
from zabd.core.datatree import TxnResult
from zabd.core.digest import HISTORY_INTERVAL
from zabd.jute import multi
from zabd.jute.codec import JuteError
from zabd.jute.errors import Code, KeeperError
from zabd.jute.opcodes import EventType, OpCode, Perms, PING_XID
from zabd.jute.records import Create2Response, CreateResponse, GetDataResponse, StatResponse
from zabd.jute.schema import Record
from zabd.jute.txns import CreateSessionTxn, ErrorTxn, Txn
from zabd.pipeline.context import ServerContext
from zabd.pipeline.reads import Reads
from zabd.pipeline.request import Client, Reply, Request

log = Logger()

_CREATE2_TYPES = (OpCode.create2, OpCode.createContainer, OpCode.createTTL)


class FinalStage:
    """The last stage: applies a request's txn, fires its watches and answers its client."""

    def __init__(self, ctx: ServerContext, session_closed: Callable[[int], None]) -> None:
        self.ctx = ctx
        self.reads = Reads(ctx)
        #: Called after a closeSession applies, to drop the session's connection.
        self.session_closed = session_closed

    def process(self, request: Request) -> None:
        ctx = self.ctx
        result = self.apply(request.txn) if request.txn is not None else None
        client = request.client
        ctx.stats.finished(request)
        if client is None or not client.connected:
            # Nothing to answer, and no watch may be left behind for a
            # connection that is gone (ZooKeeper ignores dead watchers).
            if client is not None and _stale_reply(request, ctx.settings.stale_connection_check):
                ctx.metrics.stale_replies.add()
            return
        now = ctx.now_ms()
        # ZooKeeper measures latency in whole milliseconds; srvr's figures read these two summaries.
        metrics = ctx.metrics
        (metrics.update_latency if result is not None else metrics.read_latency).add(int(now - request.received_ms))
        zxid = ctx.tree.last_processed_zxid
        kind = request.type
        if kind == OpCode.ping:
            client.send_reply(PING_XID, zxid, 0, None, now)
            return
        if kind == OpCode.createSession:
            client.session_established(True)
            return
        # A write's outcome is all in its txn and result; the rest are reads.
        err, body = self._write_reply(request, result) if result is not None else self._read_reply(request, client)
        client.send_reply(request.xid, zxid, err, body, now)
        if kind == OpCode.closeSession:
            client.close()

    def apply(self, txn: Txn) -> TxnResult:
        """Apply one committed txn: tree, sessions, outstanding changes, watches."""
        ctx = self.ctx
        header = txn.header
        if header.type == OpCode.createSession and isinstance(txn.body, CreateSessionTxn):
            if header.clientId not in ctx.sessions:
                ctx.sessions.add(header.clientId, txn.body.timeOut, int(ctx.now_ms()))
        result = ctx.tree.apply(txn)
        # From the leader's txn time (wall clocks of two hosts: skew can make it negative).
        propagation = ctx.wall_ms() - header.time
        if propagation >= 0:
            ctx.metrics.propagation_latency.add(propagation)
        if header.zxid % HISTORY_INTERVAL == 0:
            ctx.tree.digest.record(header.zxid)
        ctx.pending.applied(header.zxid)
        if result.events and ctx.watches:
            self._deliver(result)
        if header.type == OpCode.closeSession:
            ctx.sessions.remove(header.clientId)
            self.session_closed(header.clientId)
        return result

    def _deliver(self, result: TxnResult) -> None:
        ctx = self.ctx
        watches = ctx.watches
        for event_type, path, acl, parent_acl in result.events:
            if event_type == EventType.NodeCreated:
                fired = watches.node_created(path)
            elif event_type == EventType.NodeDeleted:
                fired = watches.node_deleted(path)
            else:
                fired = watches.data_changed(path)
            for watcher, fired_type, fired_path in fired:
                node_acl = parent_acl if fired_type == EventType.NodeChildrenChanged else acl
                # A watcher hears only of nodes it may read, as ZooKeeper
                # 3.8.4 and Debian's 3.8.0 do (CVE-2024-23944).
                if has_perm(node_acl, Perms.READ, watcher.auth_ids, ctx.providers, ctx.settings.skip_acl):
                    watcher.send_event(fired_type, fired_path)

    def _read_reply(self, request: Request, client: Client) -> tuple[int, Reply]:
        if request.throttled:
            # It waited past throttled_op_wait_time; prep let it through untouched.
            return Code.THROTTLEDOP, None
        try:
            if request.error is not None:
                raise request.error
            return 0, self.reads.handle(request, client)
        except KeeperError as e:
            return e.code, None
        except (JuteError, ValueError) as e:
            log.warn("Session 0x{session:x}: bad request of type {type}: {error}",
                     session=request.session_id, type=request.type, error=str(e))
            return Code.MARSHALLINGERROR, None

    def _write_reply(self, request: Request, result: TxnResult) -> tuple[int, Reply]:
        txn = request.txn
        assert txn is not None
        if isinstance(txn.body, ErrorTxn) and txn.header.type == OpCode.error:
            return txn.body.err, None
        kind = request.type
        if kind == OpCode.multi:
            # A failed multi still answers err 0, with per-op results.
            return 0, _multi_response(result)
        if result.err:
            return result.err, None
        if kind == OpCode.create:
            return 0, CreateResponse(result.path or "")
        if kind in _CREATE2_TYPES:
            assert result.node is not None
            return 0, Create2Response(result.path or "", result.node.stat())
        if kind == OpCode.setData or kind == OpCode.setACL:
            assert result.node is not None
            return 0, result.node.stat_bytes()
        if kind == OpCode.reconfig:
            # The config now in force, as /zookeeper/config holds it (3.8 prints its verifier).
            assert result.node is not None
            return 0, GetDataResponse(result.node.data, result.node.stat())
        if kind == OpCode.check:
            node = self.ctx.tree.get(getattr(txn.body, "path", ""))
            return (0, StatResponse(node.stat())) if node is not None else (Code.NONODE, None)
        return 0, None


def _stale_reply(request: Request, connection_check: bool) -> bool:
    """Whether 3.8 counts ``stale_replies`` for a request whose connection is gone.

    It counts once the request is past its error checks: not for an error
    txn, a moved session, or another error of a request other than a multi,
    and never for a closeSession (which is never stale).
    """
    if not connection_check or request.type == OpCode.closeSession:
        return False
    txn = request.txn
    if txn is not None and txn.header.type == OpCode.error:
        return False
    error = request.error
    return error is None or (request.type == OpCode.multi and error.code != Code.SESSIONMOVED)


def _multi_response(result: TxnResult) -> multi.MultiResponse:
    out = []
    for sub in result.multi or ():
        body: Record | None = None
        if sub.type == OpCode.error:
            out.append(multi.OpResult(OpCode.error, sub.err, None))
            continue
        kind = sub.type
        if kind == OpCode.create:
            body = CreateResponse(sub.path or "")
        elif kind in (OpCode.createContainer, OpCode.createTTL):
            assert sub.stat is not None
            kind, body = OpCode.create2, Create2Response(sub.path or "", sub.stat)
        elif kind == OpCode.setData:
            assert sub.stat is not None
            body = StatResponse(sub.stat)
        elif kind == OpCode.deleteContainer:
            kind = OpCode.delete
        out.append(multi.OpResult(kind, 0, body))
    return multi.MultiResponse(tuple(out))
