# -*- test-case-name: tests.unit.test_jute -*-
"""multi (14) and multiRead (22): a MultiHeader before every op and every result."""
from __future__ import annotations

from dataclasses import dataclass

from zabd.jute.codec import JuteError, Reader, Writer
from zabd.jute.opcodes import OpCode
from zabd.jute.records import (
    CheckVersionRequest,
    CreateRequest,
    CreateTTLRequest,
    DeleteRequest,
    IntResponse,
    MultiHeader,
    PathWatchRequest,
    SetDataRequest,
)
from zabd.jute.schema import Record

WRITE_OPS: dict[int, type[Record]] = {
    OpCode.create: CreateRequest,
    OpCode.create2: CreateRequest,
    OpCode.createContainer: CreateRequest,
    OpCode.createTTL: CreateTTLRequest,
    OpCode.delete: DeleteRequest,
    OpCode.setData: SetDataRequest,
    OpCode.check: CheckVersionRequest,
}
READ_OPS: dict[int, type[Record]] = {
    OpCode.getChildren: PathWatchRequest,
    OpCode.getData: PathWatchRequest,
}
_END = MultiHeader(-1, True, -1)


def read_ops(payload: bytes, allowed: dict[int, type[Record]]) -> list[tuple[int, Record]]:
    """Decode a MultiOperationRecord; an op outside ``allowed`` is a JuteError."""
    r = Reader(payload)
    ops: list[tuple[int, Record]] = []
    while True:
        header = MultiHeader.read(r)
        if header.done:
            return ops
        record = allowed.get(header.type)
        if record is None:
            raise JuteError(f"invalid op type {header.type} in multi")
        ops.append((header.type, record.read(r)))


def write_ops(ops: list[tuple[int, Record]]) -> bytes:
    w = Writer()
    for kind, record in ops:
        MultiHeader(kind, False, -1).write(w)
        record.write(w)
    _END.write(w)
    return bytes(w.buf)


@dataclass(frozen=True, slots=True)
class OpResult:
    """One result of a multi: its type, error code and body (None for none)."""

    type: int
    err: int
    body: Record | None


@dataclass(frozen=True, slots=True)
class MultiResponse(Record):
    """A multi's results, each behind its MultiHeader, then the closing header."""

    results: tuple[OpResult, ...]

    def write(self, w: Writer) -> None:
        for result in self.results:
            if result.type == OpCode.error:
                MultiHeader(OpCode.error, False, result.err).write(w)
                IntResponse(result.err).write(w)
                continue
            MultiHeader(result.type, False, 0).write(w)
            if result.body is not None:
                result.body.write(w)
        _END.write(w)
