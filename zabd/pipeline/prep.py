# -*- test-case-name: tests.unit.test_pipeline -*-
"""The prep stage: give each write a zxid and a txn, check sessions of the rest.

A write that fails validation still consumes a zxid: it becomes an error txn,
logged like any other, exactly as ZooKeeper does.
"""
from __future__ import annotations

from typing import Any, Callable

from twisted.logger import Logger

from zabd.jute import multi
from zabd.jute.codec import JuteError, Reader
from zabd.jute.errors import Code, KeeperError
from zabd.jute.opcodes import OpCode
from zabd.jute.records import (
    CheckVersionRequest,
    CreateRequest,
    CreateTTLRequest,
    DeleteRequest,
    ReconfigRequest,
    SetACLRequest,
    SetDataRequest,
)
from zabd.jute.schema import Record
from zabd.jute.txns import CreateSessionTxn, ErrorTxn, MultiTxn, SingleBody, Txn, TxnBody, TxnHeader
from zabd.pipeline.context import ServerContext
from zabd.pipeline.request import Request, Stage
from zabd.pipeline.txnsize import may_exceed, txn_size
from zabd.pipeline.writes import Prepared, TxnBuilder

log = Logger()

TXN_TYPES = frozenset({
    OpCode.create, OpCode.create2, OpCode.createContainer, OpCode.createTTL,
    OpCode.delete, OpCode.deleteContainer, OpCode.setData, OpCode.setACL,
    OpCode.check, OpCode.multi, OpCode.reconfig,
    OpCode.createSession, OpCode.closeSession,
})


Prepare = Callable[[TxnBuilder, int, Any], Prepared]

#: The single writes (a multi's write ops, plus setACL): request record and builder step.
_SINGLE_WRITES: dict[int, tuple[type[Record], Prepare]] = {
    OpCode.create: (CreateRequest, TxnBuilder.create),
    OpCode.create2: (CreateRequest, TxnBuilder.create),
    OpCode.createContainer: (CreateRequest, TxnBuilder.create),
    OpCode.createTTL: (CreateTTLRequest, TxnBuilder.create),
    OpCode.delete: (DeleteRequest, TxnBuilder.delete),
    OpCode.setData: (SetDataRequest, TxnBuilder.set_data),
    OpCode.check: (CheckVersionRequest, TxnBuilder.check),
    OpCode.setACL: (SetACLRequest, TxnBuilder.set_acl),
}
assert all(_SINGLE_WRITES[kind][0] is record for kind, record in multi.WRITE_OPS.items())


class PrepStage:
    """The first stage: gives each write its zxid and txn (an error txn if it fails), then passes it on."""

    def __init__(self, ctx: ServerContext, next_stage: Stage) -> None:
        self.ctx = ctx
        self.next = next_stage

    def process(self, request: Request) -> None:
        if request.throttled:
            # 3.8's pRequest: a throttled request gets no txn and no checks; final answers THROTTLEDOP.
            self.next.process(request)
            return
        if request.type in TXN_TYPES:
            request.txn = self._txn_for(request)
        elif request.type != OpCode.ping and not self.ctx.sessions.is_alive(request.session_id):
            request.error = KeeperError(Code.SESSIONEXPIRED)
        self.next.process(request)

    def _txn_for(self, request: Request) -> Txn:
        zxid = self.ctx.next_zxid()
        # The txn's wall-clock time: when the request arrived, read off the
        # same clock, saves reading it again on the write path.
        time = int(request.received_ms) if request.received_ms else self.ctx.wall_ms()
        builder = TxnBuilder(self.ctx, request.session_id, request.auth_ids, zxid, time)
        kind = request.type
        body: TxnBody | None
        try:
            if request.error is not None:
                raise request.error  # refused before prep (a session that moved)
            single = _SINGLE_WRITES.get(kind)
            if single is not None:
                record_type, prepare = single
                sub_kind, body = prepare(builder, kind, record_type.read(Reader(request.payload)))
                # A create2 stays create2 in the header; its body is a CreateTxn.
                if sub_kind != OpCode.create:
                    kind = sub_kind
            else:
                kind, body = self._body(request, builder)
        except KeeperError as e:
            kind, body = OpCode.error, ErrorTxn(e.code)
            if e.code > Code.APIERROR:
                log.info("Session 0x{session:x} got {error} for type {type}", session=request.session_id,
                         error=e, type=request.type)
        except JuteError as e:
            log.warn("Session 0x{session:x}: cannot decode request of type {type}: {error}",
                     session=request.session_id, type=request.type, error=str(e))
            kind, body = OpCode.error, ErrorTxn(Code.MARSHALLINGERROR)
        except Exception:
            # As ZooKeeper's PrepRequestProcessor: log it, answer MARSHALLINGERROR,
            # and never leave changes prepared under this zxid.
            log.failure("Session 0x{session:x}: failed to prepare request of type {type}",
                        session=request.session_id, type=request.type)
            self.ctx.pending.rollback(zxid)
            kind, body = OpCode.error, ErrorTxn(Code.MARSHALLINGERROR)
        txn = Txn(TxnHeader(request.session_id, request.xid, zxid, time, kind), body)
        limit = self.ctx.settings.max_txn_bytes
        if may_exceed(kind, len(request.payload), request.auth_ids, limit):
            txn = self._readable(txn, limit)
        return txn

    def _readable(self, txn: Txn, limit: int) -> Txn:
        """``txn``, or one every peer can read back when it is longer than ``limit`` (see zabd.pipeline.txnsize)."""
        size = txn_size(txn)
        if size <= limit:
            return txn
        header = txn.header
        if header.type == OpCode.closeSession:
            # A session must be able to close: without the list of its ephemerals,
            # peers delete what it owns themselves (3.8's pre-CloseSessionTxn form).
            log.warn("Session 0x{session:x}: closeSession txn of {size} bytes is over {limit}; "
                     "logging it without its ephemeral paths", session=header.clientId, size=size, limit=limit)
            return Txn(header, None)
        log.warn("Session 0x{session:x}: refusing a txn of {size} bytes for type {type}: over {limit} "
                 "(jute.maxbuffer + jute.maxbuffer.extrasize), which peers cannot read",
                 session=header.clientId, size=size, type=header.type, limit=limit)
        self.ctx.pending.rollback(header.zxid)
        error_header = TxnHeader(header.clientId, header.cxid, header.zxid, header.time, OpCode.error)
        return Txn(error_header, ErrorTxn(Code.MARSHALLINGERROR))

    def _body(self, request: Request, builder: TxnBuilder) -> tuple[int, TxnBody | None]:
        kind = request.type
        if kind == OpCode.createSession:
            return kind, CreateSessionTxn(Reader(request.payload).read_int())
        if kind == OpCode.closeSession:
            self.ctx.sessions.set_closing(request.session_id)
            closing = builder.close_session()
            return kind, closing if self.ctx.settings.close_session_txn else None
        if kind == OpCode.multi:
            return kind, self._multi(request, builder)
        if kind == OpCode.reconfig:
            return builder.reconfig(ReconfigRequest.read(Reader(request.payload)))
        if kind == OpCode.deleteContainer:
            if request.client is not None:
                # Only the container sweep may send this.  ZooKeeper 3.8 reads
                # a client's path together with the request header, whose NUL
                # bytes always make it BADARGUMENTS; zabd answers the same.
                raise KeeperError(Code.BADARGUMENTS)
            return builder.delete_container(request.payload.decode("utf-8", "replace"))
        raise JuteError(f"no txn for op {kind}")

    def _multi(self, request: Request, builder: TxnBuilder) -> MultiTxn:
        ops = multi.read_ops(request.payload, multi.WRITE_OPS)
        txns: list[tuple[int, SingleBody]] = []
        failed = False
        for kind, record in ops:
            if failed:
                txns.append((OpCode.error, ErrorTxn(Code.RUNTIMEINCONSISTENCY)))
                continue
            try:
                txns.append(_SINGLE_WRITES[kind][1](builder, kind, record))
            except KeeperError as e:
                failed = True
                txns.append((OpCode.error, ErrorTxn(e.code)))
                self.ctx.pending.rollback(builder.zxid)
        return MultiTxn(tuple(txns))
