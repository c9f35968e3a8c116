# -*- test-case-name: tests.unit.test_jute -*-
"""Transaction records (txn log entries, PROPOSAL data) and their framing.

A serialized txn is ``TxnHeader + body [+ TxnDigest]``; see the protocol doc
section 3.  ``Txn`` holds the decoded form the data tree applies.
"""
from __future__ import annotations

import struct
from dataclasses import dataclass
from typing import Union

from zabd.jute.codec import JuteError, Reader, Writer
from zabd.jute.opcodes import OpCode
from zabd.jute.records import ACL
from zabd.jute.schema import Record, jute_record, vector


@jute_record("long", "int", "long", "long", "int")
class TxnHeader(Record):
    clientId: int
    cxid: int
    zxid: int
    time: int
    type: int


@jute_record("ustring", "buffer", vector(ACL), "bool", "int")
class CreateTxn(Record):
    path: str
    data: bytes | None
    acl: list[ACL]
    ephemeral: bool
    parentCVersion: int


@jute_record("ustring", "buffer", vector(ACL), "int", "long")
class CreateTTLTxn(Record):
    path: str
    data: bytes | None
    acl: list[ACL]
    parentCVersion: int
    ttl: int


@jute_record("ustring", "buffer", vector(ACL), "int")
class CreateContainerTxn(Record):
    path: str
    data: bytes | None
    acl: list[ACL]
    parentCVersion: int


@jute_record("ustring")
class DeleteTxn(Record):
    path: str


@jute_record("ustring", "buffer", "int")
class SetDataTxn(Record):
    path: str
    data: bytes | None
    version: int


@jute_record("ustring", vector(ACL), "int")
class SetACLTxn(Record):
    path: str
    acl: list[ACL]
    version: int


@jute_record("ustring", "int")
class CheckVersionTxn(Record):
    path: str
    version: int


@jute_record("int")
class ErrorTxn(Record):
    err: int


@jute_record("int")
class CreateSessionTxn(Record):
    timeOut: int


@jute_record(vector("ustring"))
class CloseSessionTxn(Record):
    paths2Delete: list[str]


@jute_record("int", "buffer")
class SubTxn(Record):
    """One entry of a MultiTxn: the sub-record's type and bytes."""

    type: int
    data: bytes


@jute_record("int", "long")
class TxnDigest(Record):
    version: int
    treeDigest: int


SingleBody = Union[
    CreateTxn, CreateTTLTxn, CreateContainerTxn, DeleteTxn, SetDataTxn, SetACLTxn,
    CheckVersionTxn, ErrorTxn, CreateSessionTxn, CloseSessionTxn,
]


@dataclass(frozen=True, slots=True)
class MultiTxn:
    """A multi's sub-txns, kept decoded as ``(type, body)`` pairs."""

    txns: tuple[tuple[int, SingleBody], ...]

    def write(self, w: Writer) -> None:
        w.write_int(len(self.txns))
        for kind, body in self.txns:
            sub = Writer()
            body.write(sub)
            SubTxn(kind, bytes(sub.buf)).write(w)


TxnBody = Union[SingleBody, MultiTxn]

BODY_TYPES: dict[int, type[Record]] = {
    OpCode.create: CreateTxn,
    OpCode.create2: CreateTxn,
    OpCode.createTTL: CreateTTLTxn,
    OpCode.createContainer: CreateContainerTxn,
    OpCode.delete: DeleteTxn,
    OpCode.deleteContainer: DeleteTxn,
    OpCode.setData: SetDataTxn,
    OpCode.reconfig: SetDataTxn,
    OpCode.setACL: SetACLTxn,
    OpCode.check: CheckVersionTxn,
    OpCode.error: ErrorTxn,
    OpCode.createSession: CreateSessionTxn,
    OpCode.closeSession: CloseSessionTxn,
}


@dataclass(frozen=True, slots=True)
class Txn:
    """A decoded transaction: header, body and the tree digest after it."""

    header: TxnHeader
    body: TxnBody | None
    digest: TxnDigest | None = None

    def __init__(self, header: TxnHeader, body: TxnBody | None, digest: TxnDigest | None = None) -> None:
        # Through the slot descriptors: a frozen dataclass's own __init__
        # costs twice as much, and every write builds one of these.
        _set_header(self, header)
        _set_body(self, body)
        _set_digest(self, digest)

    @property
    def zxid(self) -> int:
        return self.header.zxid

    def to_bytes(self) -> bytes:
        # Every write comes here: the header is one struct call, and the
        # writer is made without a Python-level __init__ call.
        h = self.header
        w = _new_writer(Writer)
        w.buf = bytearray(_HEADER.pack(h.clientId, h.cxid, h.zxid, h.time, h.type))
        if self.body is not None:
            self.body.write(w)
        if self.digest is not None:
            self.digest.write(w)
        return bytes(w.buf)

    @classmethod
    def from_bytes(cls, data: bytes) -> Txn:
        r = Reader(data)
        header = TxnHeader.read(r)
        body = _read_body(header.type, r)
        digest = TxnDigest.read(r) if r.remaining() >= 12 else None
        return cls(header, body, digest)


_HEADER = struct.Struct(">qiqqi")  # TxnHeader: clientId, cxid, zxid, time, type
_new_writer = Writer.__new__
_set_header = getattr(Txn, "header").__set__
_set_body = getattr(Txn, "body").__set__
_set_digest = getattr(Txn, "digest").__set__


def _read_body(kind: int, r: Reader) -> TxnBody | None:
    if kind == OpCode.multi:
        subs = r.read_vector(SubTxn.read) or []
        return MultiTxn(tuple((s.type, _decode_single(s.type, s.data)) for s in subs))
    if kind == OpCode.closeSession and r.at_end():
        return None
    record = BODY_TYPES.get(kind)
    if record is None:
        return None
    return record.read(r)  # type: ignore[return-value]


def _decode_single(kind: int, data: bytes | None) -> SingleBody:
    if data is None:
        raise JuteError(f"null data for sub-txn type {kind}")
    if kind == OpCode.multi:  # refused before reading it: nested multis would recurse without bound
        raise JuteError(f"unexpected sub-txn type {kind}")
    body = _read_body(kind, Reader(data))
    if body is None or isinstance(body, MultiTxn):
        raise JuteError(f"unexpected sub-txn type {kind}")
    return body
