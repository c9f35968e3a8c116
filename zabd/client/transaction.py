# -*- test-case-name: tests.unit.test_client_api -*-
"""multi (kazoo's ``transaction()``) and multiRead: building the ops, reading the results.

zabd's jute layer writes MultiResponse but never reads one (the server has
no need to); :func:`read_results` is the client's reader.
"""
from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from zabd.client.errors import RolledBackError, ZookeeperError, error_for
from zabd.client.hosts import Chroot
from zabd.client.states import ZnodeStat
from zabd.jute.codec import Reader
from zabd.jute.multi import write_ops
from zabd.jute.opcodes import CreateMode, OpCode
from zabd.jute.records import (
    ACL, CheckVersionRequest, Create2Response, CreateRequest, CreateResponse, CreateTTLRequest, DeleteRequest,
    GetChildrenResponse, GetDataResponse, IntResponse, MultiHeader, PathWatchRequest, SetDataRequest, Stat,
)
from zabd.jute.schema import Record

if TYPE_CHECKING:
    from twisted.internet.defer import Deferred


def create_mode(ephemeral: bool, sequence: bool, container: bool = False, ttl: int = 0) -> CreateMode:
    """The CreateMode for kazoo's flags (and zabd's container/ttl), refusing impossible mixes."""
    if container and (ephemeral or sequence or ttl):
        raise TypeError("a container node cannot be ephemeral, sequential or have a TTL")
    if ttl and ephemeral:
        raise TypeError("a TTL node cannot be ephemeral")
    if container:
        return CreateMode.CONTAINER
    if ttl:
        return CreateMode.PERSISTENT_SEQUENTIAL_WITH_TTL if sequence else CreateMode.PERSISTENT_WITH_TTL
    return CreateMode(int(ephemeral) | (int(sequence) << 1))


def create_op(path: str, value: bytes, acl: list[ACL], mode: CreateMode, ttl: int,
              include_data: bool) -> tuple[int, Record]:
    """The opcode and request of a create, as the Java client picks them."""
    if mode.is_ttl:
        return OpCode.createTTL, CreateTTLRequest(path, value, acl, mode, ttl)
    if mode is CreateMode.CONTAINER:
        return OpCode.createContainer, CreateRequest(path, value, acl, mode)
    return (OpCode.create2 if include_data else OpCode.create), CreateRequest(path, value, acl, mode)


def read_results(body: bytes, chroot: Chroot) -> list[Any]:
    """A MultiResponse: per op a path, True, a ZnodeStat, (data, ZnodeStat), children, or an exception."""
    r = Reader(body)
    results: list[Any] = []
    while True:
        header = MultiHeader.read(r)
        if header.done:
            return results
        kind = header.type
        if kind == OpCode.error:
            err = IntResponse.read(r).value
            results.append(RolledBackError() if err == 0 else error_for(err))
        elif kind == OpCode.create:
            results.append(chroot.to_client(CreateResponse.read(r).path))
        elif kind == OpCode.create2:
            results.append(chroot.to_client(Create2Response.read(r).path))
        elif kind in (OpCode.delete, OpCode.check):
            results.append(True)
        elif kind == OpCode.setData:
            results.append(ZnodeStat.from_stat(Stat.read(r)))
        elif kind == OpCode.getData:
            reply = GetDataResponse.read(r)
            results.append((reply.data or b"", ZnodeStat.from_stat(reply.stat)))
        elif kind == OpCode.getChildren:
            results.append(list(GetChildrenResponse.read(r).children or []))
        else:
            raise ZookeeperError(None)


class Transaction:
    """kazoo's TransactionRequest: queue ops, then ``commit()`` them as one atomic multi.

    ``commit()`` fires with one result per op: the created path, True for a
    delete or check, a ZnodeStat for set_data. When the multi fails, every
    result is an exception instead (the failing op's own error, RolledBackError
    for the ops before it, RuntimeInconsistency after it), as kazoo reports them.
    """

    def __init__(self, chroot: Chroot, default_acl: list[ACL],
                 send: Callable[[int, bytes], Deferred[list[Any]]]) -> None:
        self._chroot = chroot
        self._default_acl = default_acl
        self._send = send
        self._ops: list[tuple[int, Record]] = []
        self.committed = False

    def create(self, path: str, value: bytes = b"", acl: list[ACL] | None = None, ephemeral: bool = False,
               sequence: bool = False) -> None:
        mode = create_mode(ephemeral, sequence)
        self._add(create_op(self._chroot.to_server(path), value, acl or self._default_acl, mode, 0, False))

    def delete(self, path: str, version: int = -1) -> None:
        self._add((OpCode.delete, DeleteRequest(self._chroot.to_server(path), version)))

    def set_data(self, path: str, value: bytes, version: int = -1) -> None:
        self._add((OpCode.setData, SetDataRequest(self._chroot.to_server(path), value, version)))

    def check(self, path: str, version: int) -> None:
        self._add((OpCode.check, CheckVersionRequest(self._chroot.to_server(path), version)))

    def commit(self) -> Deferred[list[Any]]:
        if self.committed:
            raise ValueError("transaction already committed")
        self.committed = True
        return self._send(OpCode.multi, write_ops(self._ops))

    def _add(self, op: tuple[int, Record]) -> None:
        if self.committed:
            raise ValueError("transaction already committed")
        self._ops.append(op)


@dataclass(frozen=True, slots=True)
class GetData:
    """A multiRead op: the node's data and stat."""

    path: str


@dataclass(frozen=True, slots=True)
class GetChildren:
    """A multiRead op: the node's children."""

    path: str


def multi_read_body(ops: Sequence[GetData | GetChildren], chroot: Chroot) -> bytes:
    return write_ops([(OpCode.getData if isinstance(op, GetData) else OpCode.getChildren,
                       PathWatchRequest(chroot.to_server(op.path), False)) for op in ops])
