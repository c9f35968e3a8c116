"""Tests for zabd.storage.snapnode: the one node-record walk of snapshots and SNAP streams."""
from __future__ import annotations

import struct

import pytest

from zabd.core.datatree import OPEN_ACL
from zabd.core.treeload import TreeLoader
from zabd.storage.snapnode import NODE_TAIL, NodeRecordError, NodeWalk, Rule, read_nodes


def record(path: bytes, data: bytes | None, acl_id: int = -1, czxid: int = 5) -> bytes:
    data_part = struct.pack(">i", -1) if data is None else struct.pack(">i", len(data)) + data
    tail = NODE_TAIL.pack(acl_id, czxid, czxid, 7, 7, 0, 0, 0, 0, czxid)
    return struct.pack(">i", len(path)) + path + data_part + tail


END = struct.pack(">i", 1) + b"/"
BODY = record(b"", b"") + record(b"/a", b"x") + record(b"/a/b", None) + END


def walk(buf: bytes | bytearray, pos: int = 0, limit: int = -1,
         loader: TreeLoader | None = None) -> tuple[TreeLoader, NodeWalk]:
    loader = loader or TreeLoader()
    return loader, read_nodes(buf, pos, len(buf), 1 << 20, {-1: OPEN_ACL}, loader.add,
                              lambda raw: bytes(raw).decode("utf-8"), limit)


@pytest.mark.parametrize("buffer_type", [bytes, bytearray])
def test_nodes_are_read_up_to_the_end_marker(buffer_type: type) -> None:
    loader, result = walk(buffer_type(BODY + b"after"))
    assert (result.done, result.count, result.pos, result.short) == (True, 3, len(BODY), None)
    tree = loader.finish()
    node = tree.nodes["/a"]
    assert node.data == b"x" and type(node.data) is bytes and node.czxid == node.mzxid == 5
    assert tree.nodes["/a/b"].data is None


def test_a_limit_stops_after_whole_records_and_the_walk_resumes() -> None:
    loader, first = walk(BODY, limit=2)
    assert (first.done, first.count) == (False, 2)
    _, rest = walk(BODY, first.pos, loader=loader)
    assert (rest.done, rest.count, rest.pos) == (True, 1, len(BODY))


@pytest.mark.parametrize("cut, field", [(2, "path length"), (5, "path"), (8, "data length"), (10, "data"),
                                        (14, "stat")])
def test_running_out_says_where_and_points_at_the_record(cut: int, field: str) -> None:
    second = len(record(b"", b""))
    _, result = walk(BODY[:second + cut])
    assert (result.done, result.count, result.pos) == (False, 1, second)
    assert result.short is not None and result.short.field == field


@pytest.mark.parametrize("buf, rule, offset, value", [
    (struct.pack(">i", -2), Rule.PATH_LENGTH, 0, -2),
    (struct.pack(">i", 0) + struct.pack(">i", -3), Rule.DATA_LENGTH, 4, -3),
    (record(b"", b"", acl_id=9), Rule.UNKNOWN_ACL, 8, 9),
    (record(b"", b"") + record(b"/a/b", b""), Rule.TREE, len(record(b"", b"")),
     "node '/a/b' comes before its parent '/a'"),
    (record(b"\xff", b""), Rule.PATH_ENCODING, 0, b"\xff"),
])
def test_broken_records_name_the_rule_and_the_offset(buf: bytes, rule: Rule, offset: int, value: object) -> None:
    with pytest.raises(NodeRecordError) as caught:
        walk(buf)
    assert (caught.value.rule, caught.value.offset, caught.value.value) == (rule, offset, value)
