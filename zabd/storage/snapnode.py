# -*- test-case-name: tests.unit.test_snapnode -*-
"""The node records of a snapshot, read once for files and SNAP streams alike.

A snapshot file (:mod:`zabd.storage.snapload`) and a leader's SNAP stream
(:mod:`zabd.quorum.snapstream`) hold the same records, ended by the path
``/``::

    {ustring path; buffer data; long aclId; StatPersisted}*  ustring "/"

:func:`read_nodes` walks them into a :class:`TreeLoader`. It stops at the
end marker, after ``limit`` nodes, or where the bytes run out; what to make
of running out (a truncated file, or a stream still arriving) and how to word
a broken rule are the caller's. The loop is the hot path of loading a
database, so it decodes each record's tail with one ``struct`` call.
"""
from __future__ import annotations

import mmap
import struct
from collections.abc import Callable
from dataclasses import dataclass
from enum import Enum
from typing import Union

from zabd.core.nodes import DataNode
from zabd.core.treeload import MalformedTree
from zabd.jute.records import ACL

#: A DataNode after its data: the ACL id, then StatPersisted (czxid, mzxid,
#: ctime, mtime, version, cversion, aversion, ephemeralOwner, pzxid).
NODE_TAIL = struct.Struct(">qqqqqiiiqq")
_INT = struct.Struct(">i")

Buffer = Union[bytes, bytearray, mmap.mmap]


class Rule(Enum):
    """Which rule a node record broke."""

    PATH_LENGTH = "path length"
    DATA_LENGTH = "data length"
    UNKNOWN_ACL = "ACL id"
    PATH_ENCODING = "path encoding"
    TREE = "tree"


class NodeRecordError(Exception):
    """A node record that no reader accepts.

    :param rule: the rule broken.
    :param offset: where the fault is: the record's start, or the length or
        ACL id at fault.
    :param value: the length or ACL id at fault, or what the tree refused.
    """

    def __init__(self, rule: Rule, offset: int, value: object) -> None:
        super().__init__(rule, offset, value)
        self.rule = rule
        self.offset = offset
        self.value = value


@dataclass(frozen=True, slots=True)
class Shortfall:
    """The part of a record the bytes ran out in: ``field`` starts at ``offset``
    (for ``path`` and ``data``, the length before it, which is ``length``)."""

    field: str
    offset: int
    length: int = 0


@dataclass(frozen=True, slots=True)
class NodeWalk:
    """Where a walk stopped: ``pos`` is past the end marker when ``done``, else
    the start of the first record not read; ``start`` is where the last record
    looked at begins."""

    pos: int
    start: int
    count: int
    done: bool
    short: Shortfall | None = None


def read_nodes(buf: Buffer, pos: int, end: int, max_length: int, acls: dict[int, list[ACL]],
               add: Callable[[str, DataNode], None], decode: Callable[[bytes], str],
               limit: int = -1) -> NodeWalk:
    """Read node records from ``buf[pos:end]`` into ``add`` (a TreeLoader's).

    :param acls: the snapshot's ACL map; a node naming another id is refused.
    :param decode: the path's bytes to text (a UnicodeDecodeError refuses it).
    :param limit: stop after this many nodes (-1: no limit).
    :raises NodeRecordError: on a length out of range, an unknown ACL id, a
        path ``decode`` refuses, or a node the tree refuses.
    """
    unpack_int, unpack_tail, tail_size = _INT.unpack_from, NODE_TAIL.unpack_from, NODE_TAIL.size
    copy = isinstance(buf, bytearray)  # a DataNode holds bytes
    count = 0
    start = pos
    while count != limit:
        start = pos
        if pos + 4 > end:
            return NodeWalk(start, start, count, False, Shortfall("path length", pos))
        (n,) = unpack_int(buf, pos)
        pos += 4
        if n < 0 or n > max_length:
            raise NodeRecordError(Rule.PATH_LENGTH, start, n)
        if pos + n > end:
            return NodeWalk(start, start, count, False, Shortfall("path", start, n))
        raw = buf[pos:pos + n]
        pos += n
        if raw == b"/":
            return NodeWalk(pos, start, count, True)
        if pos + 4 > end:
            return NodeWalk(start, start, count, False, Shortfall("data length", pos))
        (n,) = unpack_int(buf, pos)
        pos += 4
        if n == -1:
            data = None
        elif 0 <= n <= max_length:
            if pos + n > end:
                return NodeWalk(start, start, count, False, Shortfall("data", pos - 4, n))
            data = bytes(buf[pos:pos + n]) if copy else buf[pos:pos + n]
            pos += n
        else:
            raise NodeRecordError(Rule.DATA_LENGTH, pos - 4, n)
        if pos + tail_size > end:
            return NodeWalk(start, start, count, False, Shortfall("stat", pos))
        acl_id, czxid, mzxid, ctime, mtime, version, cversion, aversion, owner, pzxid = unpack_tail(buf, pos)
        acl = acls.get(acl_id)
        if acl is None:
            raise NodeRecordError(Rule.UNKNOWN_ACL, pos, acl_id)
        pos += tail_size
        node = DataNode(data, acl)  # type: ignore[arg-type]
        # Equal zxids and times share one int object: 1M nodes, ~100 MB.
        node.czxid = czxid
        node.mzxid = czxid if mzxid == czxid else mzxid
        node.pzxid = czxid if pzxid == czxid else pzxid
        node.ctime = ctime
        node.mtime = ctime if mtime == ctime else mtime
        node.version = version
        node.cversion = cversion
        node.aversion = aversion
        node.ephemeral_owner = owner
        try:
            add(decode(raw), node)  # type: ignore[arg-type]
        except UnicodeDecodeError:
            raise NodeRecordError(Rule.PATH_ENCODING, start, raw) from None
        except MalformedTree as e:
            raise NodeRecordError(Rule.TREE, start, str(e)) from None
        count += 1
    return NodeWalk(pos, start, count, False)
