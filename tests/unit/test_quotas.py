"""Quotas as ZooKeeper 3.8 keeps them: the StatsTrack text, the trie, the stats
bookkeeping as txns apply and when a snapshot loads, and the prep-time check."""
from __future__ import annotations

from pathlib import Path
from typing import Iterator

import pytest
from twisted.logger import LogEvent, LogLevel, capturedLogs

from tests.unit.fakes import OPEN_ACL, FakeClient, assert_consistent, connected_client, make_server
from tests.unit.test_snapformat import Live, write
from zabd.core.quotas import (
    MalformedStats,
    QuotaBreach,
    QuotaTrie,
    StatsTrack,
    check_quota,
    limit_path,
    needs_usage,
    stat_path,
)
from zabd.jute import multi
from zabd.jute.errors import Code
from zabd.jute.opcodes import OpCode
from zabd.jute.records import CreateRequest, Record, SetDataRequest
from zabd.pipeline.context import Settings
from zabd.serving.standalone import StandaloneServer
from zabd.storage.snapformat import load_snapshot, snapshot_chunks

# What zkCli's setquota writes: "-n 3" alone, then the same with "-B 10" added.
SOFT_COUNT_3 = b"count=3,bytes=-1=;byteHardLimit=-1;countHardLimit=-1"
PLUS_HARD_BYTES_10 = b"count=3,bytes=-1=;byteHardLimit=10;countHardLimit=-1"


# ---- StatsTrack --------------------------------------------------------------


@pytest.mark.parametrize("text, values", [
    (b"", {}),
    (b"count=2,bytes=8", {"count": 2, "bytes": 8}),
    (SOFT_COUNT_3, {"count": 3, "bytes": -1, "byteHardLimit": -1, "countHardLimit": -1}),
    (b"count==5,bytes=5", {"count": -1, "bytes": 5}),  # an empty value is -1
    (b"count=1;;bytes=2,,", {"count": 1, "bytes": 2}),  # runs of separators; trailing ones dropped
    (b"count=1=7,bytes=+2", {"count": 1, "bytes": 2}),  # Java's split and parseLong
    (b"zeta=1,count=4", {"zeta": 1, "count": 4}),
])  # fmt: skip
def test_stats_text_is_read_as_3_8_reads_it(text: bytes, values: dict[str, int]) -> None:
    assert StatsTrack.parse(text).values == values


@pytest.mark.parametrize("text", [b",count=1", b"count", b"count=", b"=", b"count=x", b"count= 1", b"count=9223372036854775808"])
def test_text_3_8_throws_on_is_malformed(text: bytes) -> None:
    with pytest.raises(MalformedStats):
        StatsTrack.parse(text)


def test_missing_values_read_as_minus_one_and_the_text_keeps_3_8s_layout() -> None:
    empty = StatsTrack.parse(None)
    assert (empty.count, empty.bytes, empty.count_hard_limit, empty.byte_hard_limit) == (-1, -1, -1, -1)
    assert empty.encode() == b"count=-1,bytes=-1"
    limits = empty.replace(count=3, bytes=-1, countHardLimit=-1, byteHardLimit=-1)
    assert limits.encode() == SOFT_COUNT_3
    assert StatsTrack.parse(SOFT_COUNT_3).replace(byteHardLimit=10).encode() == PLUS_HARD_BYTES_10
    assert str(StatsTrack.parse(b"zeta=1,count=4")) == "count=4,bytes=-1=;zeta=1"


# ---- the trie and the check ----------------------------------------------------


def test_the_deepest_quota_holding_a_path_is_found_by_whole_components() -> None:
    trie = QuotaTrie()
    trie.add("/a")
    trie.add("/a/b/c")
    assert trie.max_prefix("/a") == "/a"
    assert trie.max_prefix("/a/b") == "/a"
    assert trie.max_prefix("/a/b/c/d") == "/a/b/c"
    assert trie.max_prefix("/ab") is None and trie.max_prefix("/") is None
    trie.delete("/a")  # keeps the node for /a/b/c, without its quota
    assert trie.max_prefix("/a/x") is None and trie.max_prefix("/a/b/c") == "/a/b/c"
    trie.delete("/a/b/c")
    trie.delete("/missing")
    assert not trie.root.children
    trie.add("")  # a limits node right under /zookeeper/quota: 3.8 throws, zabd ignores it
    trie.add("/")  # marks the root, which is never a quota
    assert trie.max_prefix("/x") is None and not trie.root.children


def test_a_hard_limit_replaces_the_soft_one_of_its_measure() -> None:
    limits = StatsTrack.parse(PLUS_HARD_BYTES_10)
    used = StatsTrack.parse(b"count=3,bytes=8")
    assert check_quota("/q", limits, used, 1, 3) == [
        QuotaBreach("/q", "count", 4, 3, False),
        QuotaBreach("/q", "bytes", 11, 10, True),
    ]
    assert [b.limit_name for b in check_quota("/q", limits, used, 1, 3)] == ["softCountLimit", "hardByteLimit"]
    assert check_quota("/q", limits, used, 0, 2) == []  # 10 bytes is not over 10
    both = StatsTrack.parse(b"count=1,bytes=-1=;countHardLimit=5")
    assert check_quota("/q", both, used, 1, 0) == []  # the soft count of 1 no longer applies
    assert not needs_usage(limits, 0, 0) and not needs_usage(StatsTrack.parse(b"count=-1,bytes=-1"), 1, 1)
    assert needs_usage(limits, 0, -1)


# ---- the tree's bookkeeping ------------------------------------------------------


def set_quota(live: Live, path: str, limits: bytes) -> None:
    """What zkCli's setquota does for a new quota: the path's nodes under
    /zookeeper/quota, the limits node, then a stats node of zeros."""
    parts = path.strip("/").split("/")
    for depth in range(1, len(parts) + 1):
        live.create("/zookeeper/quota/" + "/".join(parts[:depth]))
    live.create(limit_path(path), limits)
    live.create(stat_path(path), b"count=0,bytes=0")


def stats(live: Live, path: str) -> bytes | None:
    return live.tree.nodes[stat_path(path)].data


@pytest.fixture
def live() -> Live:
    live = Live()
    live.create("/qp", b"abc")
    live.create("/qp/a", b"12345")
    return live


def test_creating_the_stats_node_counts_the_subtree_and_writes_keep_it_current(live: Live) -> None:
    set_quota(live, "/qp", SOFT_COUNT_3)
    assert stats(live, "/qp") == b"count=2,bytes=8"
    stat_version = live.tree.nodes[stat_path("/qp")].version
    live.create("/qp/b")
    live.create("/qp/c", None)
    live.set_data("/qp/a", b"1234")
    assert stats(live, "/qp") == b"count=4,bytes=7"
    live.delete("/qp/c")
    live.create("/elsewhere", b"xyz")
    assert stats(live, "/qp") == b"count=3,bytes=7"
    # Only the data changes: the stats node's version and mzxid stay.
    assert live.tree.nodes[stat_path("/qp")].version == stat_version
    assert_consistent(live.tree)


def test_other_keys_in_the_stats_survive_updates(live: Live) -> None:
    set_quota(live, "/qp", SOFT_COUNT_3)
    live.set_data(stat_path("/qp"), b"count=2,bytes=8,note=7")
    live.create("/qp/b", b"xy")
    assert stats(live, "/qp") == b"count=3,bytes=10=;note=7"


def test_quota_bookkeeping_never_moves_the_digest(live: Live) -> None:
    before = live.tree.digest.value
    set_quota(live, "/qp", SOFT_COUNT_3)
    assert live.tree.digest.value == before  # /zookeeper/... is outside the digest
    live.create("/qp/b", b"more")
    live.set_data("/qp/a", b"")
    assert stats(live, "/qp") == b"count=3,bytes=7"
    assert_consistent(live.tree)


def test_deleting_the_limits_node_ends_the_bookkeeping(live: Live) -> None:
    set_quota(live, "/qp", SOFT_COUNT_3)
    live.delete(limit_path("/qp"))
    live.create("/qp/b", b"more")
    assert stats(live, "/qp") == b"count=2,bytes=8"
    assert live.tree.quota_breaches("/qp/x", 1, 1) == []


def test_nested_quotas_count_the_deepest_only(live: Live) -> None:
    set_quota(live, "/qp", SOFT_COUNT_3)
    set_quota(live, "/qp/a", SOFT_COUNT_3)
    live.create("/qp/a/x", b"1")
    assert stats(live, "/qp") == b"count=2,bytes=8"  # as in 3.8: /qp misses /qp/a/x
    assert stats(live, "/qp/a") == b"count=2,bytes=6"


def test_unreadable_stats_and_a_quota_on_nothing_do_not_stop_txns(live: Live) -> None:
    set_quota(live, "/qp", SOFT_COUNT_3)
    live.set_data(stat_path("/qp"), b"garbage")
    live.create("/zookeeper/quota/zookeeper_limits", b"count=1")  # 3.8 throws here
    with capturedLogs() as events:
        live.create("/qp/b", b"1")
        live.delete("/zookeeper/quota/zookeeper_limits")
    assert stats(live, "/qp") == b"garbage"
    assert "/qp/b" in live.tree.nodes and any(e["log_level"] == LogLevel.error for e in events)
    assert_consistent(live.tree)


def test_a_loaded_snapshot_recounts_every_quota(live: Live, tmp_path: Path) -> None:
    set_quota(live, "/qp", SOFT_COUNT_3)
    set_quota(live, "/qp/a", SOFT_COUNT_3)
    live.create("/qp/a/x", b"1")
    live.set_data(stat_path("/qp/a"), b"count=0,bytes=0,note=1")
    path = write(tmp_path, snapshot_chunks(live.tree, live.sessions, 1000), live.zxid)
    loaded = load_snapshot(str(path)).tree
    # Counted afresh over the whole subtree, with only count and bytes written.
    assert loaded.nodes[stat_path("/qp")].data == b"count=3,bytes=9"
    assert loaded.nodes[stat_path("/qp/a")].data == b"count=2,bytes=6"
    assert loaded.digest.value == live.tree.digest.value
    assert_consistent(loaded)
    reloaded = Live(loaded)
    reloaded.create("/qp/a/y", b"22")
    assert reloaded.tree.nodes[stat_path("/qp/a")].data == b"count=3,bytes=8"


# ---- enforcement in the prep stage ----------------------------------------------------


def serve(enforce: bool) -> Iterator[tuple[StandaloneServer, FakeClient]]:
    server, _ = make_server(settings=Settings(enforce_quota=enforce))
    client = connected_client(server)
    live = Live(server.ctx.tree)
    live.create("/qp", b"abc")
    live.create("/qp/a", b"12345")
    set_quota(live, "/qp", PLUS_HARD_BYTES_10)
    server.ctx.last_zxid = live.zxid
    yield server, client


@pytest.fixture
def enforcing() -> Iterator[tuple[StandaloneServer, FakeClient]]:
    yield from serve(True)


@pytest.fixture
def lenient() -> Iterator[tuple[StandaloneServer, FakeClient]]:
    yield from serve(False)


def quota_warnings(events: list[LogEvent]) -> list[tuple[str, int, int, bool]]:
    return [(e["limit_name"], e["current"], e["limit"], e["enforced"])
            for e in events if e.get("log_level") == LogLevel.warn and "limit_name" in e]


def create(client: FakeClient, path: str, data: bytes = b"") -> int:
    return client.call(OpCode.create, CreateRequest(path, data, OPEN_ACL, 0)).err


def test_a_hard_limit_answers_quotaexceeded_and_a_soft_one_warns(enforcing: tuple[StandaloneServer, FakeClient]) -> None:
    server, client = enforcing
    with capturedLogs() as events:
        assert create(client, "/qp/b") == 0
        assert create(client, "/qp/c", b"1") == 0
        assert create(client, "/qp/d", b"12") == Code.QUOTAEXCEEDED
        assert client.call(OpCode.setData, SetDataRequest("/qp/a", b"1234567", -1)).err == Code.QUOTAEXCEEDED
        assert client.call(OpCode.setData, SetDataRequest("/qp/a", b"123456", -1)).err == 0
    assert quota_warnings(list(events)) == [
        ("softCountLimit", 4, 3, False),
        ("softCountLimit", 5, 3, False), ("hardByteLimit", 11, 10, True),
        ("hardByteLimit", 11, 10, True),
    ]  # fmt: skip
    assert "/qp/d" not in server.ctx.tree.nodes
    assert server.ctx.tree.nodes[stat_path("/qp")].data == b"count=4,bytes=10"


def test_the_quota_check_comes_where_3_8_makes_it(enforcing: tuple[StandaloneServer, FakeClient]) -> None:
    _, client = enforcing
    # After NODEEXISTS for a create; before the version check for a setData.
    assert create(client, "/qp/a", b"123456789") == Code.NODEEXISTS
    assert client.call(OpCode.setData, SetDataRequest("/qp/a", b"123456789", 42)).err == Code.QUOTAEXCEEDED
    assert client.call(OpCode.setData, SetDataRequest("/qp/a", b"1", 42)).err == Code.BADVERSION


def test_a_multi_over_a_hard_limit_fails_whole(enforcing: tuple[StandaloneServer, FakeClient]) -> None:
    server, client = enforcing
    ops: list[tuple[int, Record]] = [
        (OpCode.create, CreateRequest("/qp/m", b"", OPEN_ACL, 0)),
        (OpCode.setData, SetDataRequest("/qp/a", b"1234567890", -1)),
    ]
    result = client.call(OpCode.multi, multi.write_ops(ops))
    assert result.err == 0 and "/qp/m" not in server.ctx.tree.nodes
    assert Code.QUOTAEXCEEDED.to_bytes(4, "big", signed=True) in result.reply.body


def test_without_enforcequota_every_breach_only_warns(lenient: tuple[StandaloneServer, FakeClient]) -> None:
    server, client = lenient
    with capturedLogs() as events:
        assert create(client, "/qp/big", b"0123456789") == 0
    assert quota_warnings(list(events)) == [("hardByteLimit", 18, 10, False)]
    assert server.ctx.tree.nodes[stat_path("/qp")].data == b"count=3,bytes=18"
