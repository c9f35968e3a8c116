"""Tests for zabd.core.datatree, nodes, digest and containers: applying txns to the tree."""
from __future__ import annotations

from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from tests.unit.fakes import assert_consistent
from zabd.core.containers import expired_nodes
from zabd.core.datatree import CONFIG_NODE, DataTree
from zabd.core.paths import parent_of
from zabd.core.digest import HISTORY_INTERVAL
from zabd.core.nodes import CONTAINER_OWNER, ttl_of, ttl_owner
from zabd.jute.errors import Code
from zabd.jute.opcodes import EventType, OpCode, Perms
from zabd.jute.records import ACL, Id
from zabd.jute.txns import (
    CheckVersionTxn,
    CloseSessionTxn,
    CreateContainerTxn,
    CreateTTLTxn,
    CreateTxn,
    DeleteTxn,
    ErrorTxn,
    MultiTxn,
    SetACLTxn,
    SetDataTxn,
    Txn,
    TxnHeader,
)

OPEN = [ACL(Perms.ALL, Id("world", "anyone"))]
READ_ONLY = [ACL(Perms.READ, Id("world", "anyone"))]
SESSION = 0x0100000FFE0F0000
OTHER = SESSION + 1


class Applier:
    """Applies txns to a tree with increasing zxids and times."""

    def __init__(self, tree: DataTree | None = None) -> None:
        self.tree = tree or DataTree()
        self.zxid = self.tree.last_processed_zxid

    def apply(self, kind: int, body: Any, session: int = SESSION, zxid: int | None = None, time: int | None = None) -> Any:
        if zxid is None:
            self.zxid += 1
            zxid = self.zxid
        header = TxnHeader(session, 1, zxid, 1000 * zxid if time is None else time, kind)
        return self.tree.apply(Txn(header, body))

    def create(self, path: str, data: bytes = b"", ephemeral: bool = False, session: int = SESSION,
               parent_cversion: int = -1, **kw: Any) -> Any:
        return self.apply(OpCode.create, CreateTxn(path, data, OPEN, ephemeral, parent_cversion), session, **kw)

    def delete(self, path: str, **kw: Any) -> Any:
        return self.apply(OpCode.delete, DeleteTxn(path), **kw)

    def set_data(self, path: str, data: bytes, version: int, **kw: Any) -> Any:
        return self.apply(OpCode.setData, SetDataTxn(path, data, version), **kw)


def kinds(result: Any) -> list[tuple[int, str]]:
    """The (event type, path) pairs of a TxnResult's events."""
    return [(event[0], event[1]) for event in result.events]


# ---- the built-in nodes and the digest vectors ---------------------------------------


def test_fresh_tree_has_the_builtin_nodes() -> None:
    tree = DataTree()
    assert set(tree.nodes) == {"/", "/zookeeper", "/zookeeper/quota", CONFIG_NODE}
    assert list(tree.get("/").children) == ["zookeeper"]  # type: ignore[union-attr]
    config = tree.get(CONFIG_NODE)
    assert config is not None and config.aversion == -1 and config.acl == READ_ONLY
    # /zookeeper exists without ever having been created: the root shows cversion -1.
    assert tree.get("/").stat().cversion == -1  # type: ignore[union-attr]
    assert tree.node_count() == 5  # ZooKeeper counts the root twice ("" and "/")
    assert_consistent(tree)


def test_fresh_tree_digest_vector() -> None:
    assert DataTree().digest.value == 1371985504


def test_digest_vector_after_create_of_a() -> None:
    tree = DataTree()
    header = TxnHeader(SESSION, 1, 2, 0x000001A20110EADD, OpCode.create)
    result = tree.apply(Txn(header, CreateTxn("/a", b"hello", OPEN, False, 1)))
    assert result.err == 0
    assert tree.digest.value == 0x94673047
    assert_consistent(tree)


def test_nodes_below_zookeeper_do_not_count_in_the_digest() -> None:
    a = Applier()
    before = a.tree.digest.value
    a.set_data("/zookeeper/quota", b"q", 1)
    assert a.tree.digest.value == before
    a.set_data("/zookeeper", b"z", 1)
    assert a.tree.digest.value != before
    assert_consistent(a.tree)


def test_digest_history_keeps_every_128th_zxid() -> None:
    tree = DataTree()
    for zxid in (1, HISTORY_INTERVAL, HISTORY_INTERVAL + 1, 2 * HISTORY_INTERVAL):
        tree.digest.record(zxid)
    assert [z for z, _ in tree.digest.history] == [HISTORY_INTERVAL, 2 * HISTORY_INTERVAL]
    assert tree.digest.history[0][1] == tree.digest.signed()


# ---- create / delete / setData / setACL -------------------------------------------------


def test_create_sets_stats_and_touches_the_parent() -> None:
    a = Applier()
    result = a.create("/a", b"data", zxid=7, time=5555)
    assert (result.err, result.path) == (0, "/a")
    assert kinds(result) == [(EventType.NodeCreated, "/a")]
    node = a.tree.get("/a")
    assert node is not None
    stat = node.stat()
    assert (stat.czxid, stat.mzxid, stat.pzxid, stat.ctime, stat.mtime) == (7, 7, 7, 5555, 5555)
    assert (stat.version, stat.cversion, stat.aversion, stat.ephemeralOwner) == (0, 0, 0, 0)
    assert (stat.dataLength, stat.numChildren) == (4, 0)
    assert result.node is not None and result.node.stat() == stat
    root = a.tree.get("/")
    assert root is not None and root.cversion == 1 and root.pzxid == 7
    assert a.tree.last_processed_zxid == 7
    assert_consistent(a.tree)


def test_client_cversion_is_two_c_minus_n() -> None:
    a = Applier()
    a.create("/p")
    for name in "abc":
        a.create(f"/p/{name}")
    a.delete("/p/b")
    node = a.tree.get("/p")
    assert node is not None
    assert node.cversion == 3  # stored: creations only
    assert node.stat().cversion == 2 * 3 - 2  # creates + deletes = 4
    assert node.stat().numChildren == 2


def test_delete_moves_parent_pzxid_but_not_cversion() -> None:
    a = Applier()
    a.create("/p")
    a.create("/p/c")
    result = a.delete("/p/c", zxid=50)
    assert result.err == 0
    assert kinds(result) == [(EventType.NodeDeleted, "/p/c")]
    parent = a.tree.get("/p")
    assert parent is not None and parent.pzxid == 50 and parent.cversion == 1
    assert a.tree.get("/p/c") is None and "c" not in parent.children
    # An older zxid never moves pzxid back.
    a.create("/p/d", zxid=60)
    a.delete("/p/d", zxid=55)
    assert parent.pzxid == 60
    assert_consistent(a.tree)


def test_set_data_and_set_acl() -> None:
    a = Applier()
    a.create("/n", b"old", zxid=3, time=30)
    result = a.set_data("/n", b"newer", 1, zxid=4, time=40)
    assert result.err == 0 and kinds(result) == [(EventType.NodeDataChanged, "/n")]
    node = a.tree.get("/n")
    assert node is not None
    assert (node.data, node.version, node.mzxid, node.mtime, node.czxid) == (b"newer", 1, 4, 40, 3)
    assert result.node is not None and result.node.stat().dataLength == 5
    acl_result = a.apply(OpCode.setACL, SetACLTxn("/n", READ_ONLY, 1))
    assert acl_result.err == 0 and kinds(acl_result) == []
    assert node.acl == READ_ONLY and node.aversion == 1
    assert acl_result.node is not None and acl_result.node.stat().aversion == 1
    # Null data has length 0 (it may be kept as null, for getData to return).
    a.set_data("/n", None, 2)  # type: ignore[arg-type]
    assert not node.data and node.stat().dataLength == 0
    assert_consistent(a.tree)


def test_explicit_parent_cversion_is_used_and_never_moves_back() -> None:
    a = Applier()
    a.create("/p")
    a.create("/p/a", parent_cversion=5)
    parent = a.tree.get("/p")
    assert parent is not None and parent.cversion == 5
    pzxid = parent.pzxid
    a.create("/p/b", parent_cversion=3)
    assert parent.cversion == 5 and parent.pzxid == pzxid
    assert "b" in parent.children
    assert_consistent(a.tree)


# ---- ephemerals, containers, TTL ---------------------------------------------------------


def test_ephemeral_index_and_stat() -> None:
    a = Applier()
    a.create("/e1", ephemeral=True, session=SESSION)
    a.create("/e2", ephemeral=True, session=OTHER)
    assert a.tree.ephemerals_of(SESSION) == {"/e1"}
    assert a.tree.ephemeral_count() == 2
    assert a.tree.get("/e1").stat().ephemeralOwner == SESSION  # type: ignore[union-attr]
    a.delete("/e1")
    assert a.tree.ephemerals_of(SESSION) == set()
    assert SESSION not in a.tree.ephemerals
    assert_consistent(a.tree)


def test_close_session_deletes_listed_and_unlisted_ephemerals_of_that_session_only() -> None:
    a = Applier()
    a.create("/p")
    for path in ("/p/e1", "/p/e2", "/e3"):
        a.create(path, ephemeral=True, session=SESSION)
    a.create("/other", ephemeral=True, session=OTHER)
    a.create("/plain")
    result = a.apply(OpCode.closeSession, CloseSessionTxn(["/p/e2", "/other", "/plain", "/missing"]),
                     session=SESSION, zxid=100)
    assert result.err == 0
    assert sorted(p for _, p in kinds(result)) == ["/e3", "/p/e1", "/p/e2"]
    assert all(t == EventType.NodeDeleted for t, _ in kinds(result))
    assert kinds(result)[0] == (EventType.NodeDeleted, "/p/e2")  # the listed ones first
    assert a.tree.ephemerals_of(SESSION) == set()
    assert {p for p in ("/other", "/plain", "/p") if a.tree.get(p)} == {"/other", "/plain", "/p"}
    assert a.tree.get("/p").pzxid == 100  # type: ignore[union-attr]
    assert_consistent(a.tree)


def test_close_session_without_body_deletes_all_its_ephemerals() -> None:
    a = Applier()
    a.create("/e", ephemeral=True)
    result = a.apply(OpCode.closeSession, None)
    assert kinds(result) == [(EventType.NodeDeleted, "/e")]
    assert a.tree.get("/e") is None
    assert_consistent(a.tree)


def test_container_and_ttl_owners_and_indexes() -> None:
    a = Applier()
    a.apply(OpCode.createContainer, CreateContainerTxn("/c", b"", OPEN, -1))
    a.apply(OpCode.createTTL, CreateTTLTxn("/t", b"", OPEN, -1, 1234))
    c, t = a.tree.get("/c"), a.tree.get("/t")
    assert c is not None and t is not None
    assert c.ephemeral_owner == CONTAINER_OWNER
    assert t.ephemeral_owner == ttl_owner(1234) and ttl_of(t.ephemeral_owner) == 1234
    assert t.ephemeral_owner & 0xFFFFFFFFFFFFFFFF == 0xFF00000000000000 | 1234
    # Clients see 0 for both.
    assert c.stat().ephemeralOwner == 0 and t.stat().ephemeralOwner == 0
    assert a.tree.containers == {"/c"} and a.tree.ttls == {"/t"}
    assert a.tree.ephemerals == {}
    a.delete("/c")
    a.delete("/t")
    assert a.tree.containers == set() and a.tree.ttls == set()
    assert_consistent(a.tree)


def test_expired_nodes_containers_and_ttls() -> None:
    a = Applier()
    a.apply(OpCode.createContainer, CreateContainerTxn("/never-used", b"", OPEN, -1))
    a.apply(OpCode.createContainer, CreateContainerTxn("/used", b"", OPEN, -1))
    a.apply(OpCode.createContainer, CreateContainerTxn("/busy", b"", OPEN, -1))
    a.create("/used/x")
    a.delete("/used/x")
    a.create("/busy/x")
    a.apply(OpCode.createTTL, CreateTTLTxn("/ttl", b"", OPEN, -1, 1000), time=10_000)
    a.apply(OpCode.createTTL, CreateTTLTxn("/ttl-parent", b"", OPEN, -1, 1000), time=10_000)
    a.create("/ttl-parent/x")
    assert expired_nodes(a.tree, 11_000, ttl_enabled=True) == ["/used"]
    assert expired_nodes(a.tree, 11_001, ttl_enabled=True) == ["/used", "/ttl"]
    assert expired_nodes(a.tree, 99_999, ttl_enabled=False) == ["/used"]


# ---- multi ------------------------------------------------------------------------------


def test_multi_applies_every_sub_txn_under_one_zxid() -> None:
    a = Applier()
    body = MultiTxn((
        (OpCode.create, CreateTxn("/m", b"", OPEN, False, 1)),
        (OpCode.create, CreateTxn("/m/x", b"", OPEN, False, 1)),
        (OpCode.setData, SetDataTxn("/m", b"v", 1)),
        (OpCode.check, CheckVersionTxn("/m", 2)),
    ))
    result = a.apply(OpCode.multi, body, zxid=9)
    assert result.err == 0 and result.multi is not None
    assert [r.type for r in result.multi] == [OpCode.create, OpCode.create, OpCode.setData, OpCode.check]
    assert kinds(result) == [(EventType.NodeCreated, "/m"), (EventType.NodeCreated, "/m/x"),
                             (EventType.NodeDataChanged, "/m")]
    m = a.tree.get("/m")
    assert m is not None and m.czxid == m.mzxid == m.pzxid == 9 and m.version == 1
    assert_consistent(a.tree)


def test_failed_multi_changes_nothing() -> None:
    a = Applier()
    a.create("/exists")
    digest = a.tree.digest.value
    body = MultiTxn((
        (OpCode.create, CreateTxn("/new", b"", OPEN, False, 2)),
        (OpCode.error, ErrorTxn(Code.NODEEXISTS)),
        (OpCode.error, ErrorTxn(Code.RUNTIMEINCONSISTENCY)),
    ))
    result = a.apply(OpCode.multi, body, zxid=20)
    assert result.multi is not None
    assert [(r.type, r.err) for r in result.multi] == [
        (OpCode.error, 0), (OpCode.error, Code.NODEEXISTS), (OpCode.error, Code.RUNTIMEINCONSISTENCY)]
    assert kinds(result) == []
    assert a.tree.get("/new") is None
    assert a.tree.digest.value == digest
    assert a.tree.last_processed_zxid == 20


def test_error_txn_only_moves_the_zxid() -> None:
    a = Applier()
    digest = a.tree.digest.value
    result = a.apply(OpCode.error, ErrorTxn(Code.NONODE), zxid=4)
    assert (result.err, kinds(result)) == (Code.NONODE, [])
    assert a.tree.digest.value == digest and a.tree.last_processed_zxid == 4


# ---- re-application (fuzzy snapshots) ------------------------------------------------------


def test_reapplied_create_is_nodeexists_and_changes_nothing() -> None:
    a = Applier()
    a.create("/a", b"x", zxid=5)
    digest, stat = a.tree.digest.value, a.tree.get("/a").stat()  # type: ignore[union-attr]
    result = a.create("/a", b"y", zxid=5)
    assert result.err == Code.NODEEXISTS and kinds(result) == []
    assert a.tree.get("/a").stat() == stat  # type: ignore[union-attr]
    assert a.tree.get("/a").data == b"x"  # type: ignore[union-attr]
    assert a.tree.digest.value == digest
    assert_consistent(a.tree)


def test_reapplied_ops_on_missing_nodes_are_errors() -> None:
    a = Applier()
    assert a.delete("/missing").err == Code.NONODE
    assert a.set_data("/missing", b"", 1).err == Code.NONODE
    assert a.apply(OpCode.setACL, SetACLTxn("/missing", OPEN, 1)).err == Code.NONODE
    assert a.create("/no/parent").err == Code.NONODE
    assert a.delete("/").err == Code.NONODE
    assert_consistent(a.tree)


def test_last_processed_zxid_never_moves_back() -> None:
    a = Applier()
    a.create("/a", zxid=10)
    a.create("/b", zxid=3)
    assert a.tree.last_processed_zxid == 10


def test_replay_of_delete_recreate_sequence_over_fuzzy_snapshot() -> None:
    # Log: create /a (1), delete /a (2), create /a (3), create /a/c (4), delete /a/c (5).
    # A fuzzy snapshot taken during that run may hold /a and /a/c; replay all five.
    a = Applier()
    a.create("/a", zxid=3)
    a.create("/a/c", zxid=4)
    a.create("/a", zxid=1)
    a.delete("/a", zxid=2)
    a.create("/a", zxid=3)
    a.create("/a/c", zxid=4)
    a.delete("/a/c", zxid=5)
    assert a.tree.get("/a/c") is None and a.tree.get("/a") is not None
    assert_consistent(a.tree)


def test_descendant_count() -> None:
    a = Applier()
    a.create("/d")
    a.create("/d/a")
    a.create("/d/a/b")
    a.create("/d/c")
    assert a.tree.descendant_count("/d") == 3
    assert a.tree.descendant_count("/") == 3 + 1 + 3  # /zookeeper, quota, config
    assert a.tree.descendant_count("/missing") == 0


# ---- random op sequences: the incremental digest equals a recomputation ---------------------

PATHS = ["/a", "/b", "/a/x", "/a/y", "/b/z", "/a/x/q"]
SESSIONS = [SESSION, OTHER]


@st.composite
def operations(draw: st.DrawFn) -> list[tuple[str, Any]]:
    ops = []
    for _ in range(draw(st.integers(1, 40))):
        kind = draw(st.sampled_from(["create", "delete", "set", "acl", "close", "multi"]))
        path = draw(st.sampled_from(PATHS))
        ops.append((kind, (
            path,
            draw(st.sampled_from(["plain", "ephemeral", "container", "ttl"])),
            draw(st.sampled_from(SESSIONS)),
            draw(st.binary(max_size=6) | st.none()),
            draw(st.integers(-1, 5)),
            draw(st.lists(st.sampled_from(PATHS), max_size=3)),
        )))
    return ops


def _create_body(tree: DataTree, path: str, mode: str, data: bytes | None, pcv: int, session: int) -> tuple[int, Any]:
    if mode == "container":
        return OpCode.createContainer, CreateContainerTxn(path, data, OPEN, pcv)
    if mode == "ttl":
        return OpCode.createTTL, CreateTTLTxn(path, data, OPEN, pcv, 500)
    return OpCode.create, CreateTxn(path, data, OPEN, mode == "ephemeral", pcv)


def _under_ephemeral(tree: DataTree, path: str) -> bool:
    parent = tree.get(parent_of(path))
    return parent is not None and parent.stat().ephemeralOwner != 0


@settings(max_examples=120, deadline=None)
@given(ops=operations())
def test_incremental_digest_equals_recomputation(ops: list[tuple[str, Any]]) -> None:
    a = Applier()
    for kind, (path, mode, session, data, number, paths) in ops:
        node = a.tree.get(path)
        if kind in ("create", "multi") and _under_ephemeral(a.tree, path):
            continue  # prep refuses children of ephemerals: no valid log has them
        if kind == "create":
            op, body = _create_body(a.tree, path, mode, data, number - 1 if number > 2 else -1, session)
            a.apply(op, body, session=session)
        elif kind == "delete":
            # A valid log never deletes a node that has children.
            if node is None or not node.children:
                a.delete(path)
        elif kind == "set":
            a.set_data(path, data or b"", number)
        elif kind == "acl":
            a.apply(OpCode.setACL, SetACLTxn(path, READ_ONLY if number % 2 else OPEN, number))
        elif kind == "close":
            a.apply(OpCode.closeSession, CloseSessionTxn(paths), session=session)
        else:
            made: set[str] = set()
            subs: list[tuple[int, Any]] = []
            for p in paths:
                if _under_ephemeral(a.tree, p) or (mode == "ephemeral" and parent_of(p) in made):
                    continue
                made.add(p)
                subs.append(_create_body(a.tree, p, mode, data, -1, session))
            if number == 5:
                subs.append((OpCode.error, ErrorTxn(Code.BADVERSION)))
            a.apply(OpCode.multi, MultiTxn(tuple(subs)), session=session)
        assert_consistent(a.tree)


# ---- loading from a snapshot, and ZooKeeper's replay adjustments ---------------------------


def test_a_tree_without_system_nodes_is_filled_by_add_loaded_node() -> None:
    from zabd.core.nodes import DataNode

    live = Applier()
    live.create("/a", b"x")
    live.create("/a/e", b"y", ephemeral=True)
    live.apply(OpCode.createContainer, CreateContainerTxn("/c", b"", OPEN, -1))
    live.apply(OpCode.createTTL, CreateTTLTxn("/t", b"", OPEN, -1, 99))
    empty = DataTree(system_nodes=False)
    assert empty.nodes == {} and empty.digest.value == 0 and empty.data_size == 0
    for path, node in live.tree.nodes.items():  # dict order: parents first
        copy = DataNode(node.data, node.acl)
        for field in ("czxid", "mzxid", "ctime", "mtime", "version", "cversion", "aversion",
                      "ephemeral_owner", "pzxid"):
            setattr(copy, field, getattr(node, field))
        parent = None if path == "/" else parent_of(path)
        empty.add_loaded_node(path, copy, parent, path.rsplit("/", 1)[1])
    assert empty.digest.value == live.tree.digest.value and empty.data_size == live.tree.data_size
    assert empty.ephemerals == {SESSION: {"/a/e"}} and empty.containers == {"/c"} and empty.ttls == {"/t"}
    assert_consistent(empty)


def test_replayed_create_moves_the_parent_cversion_forward_zookeeper_1046() -> None:
    a = Applier()
    a.create("/p")
    a.create("/p/c", parent_cversion=1, zxid=10)
    parent = a.tree.get("/p")
    assert parent is not None and (parent.cversion, parent.pzxid) == (1, 10)
    # create (type 1) of a node that is there: the parent still moves forward.
    assert a.create("/p/c", parent_cversion=3, zxid=12).err == Code.NODEEXISTS
    assert (parent.cversion, parent.pzxid) == (3, 12)
    # ...but never back, and not for create2 or the other create types.
    a.create("/p/c", parent_cversion=2, zxid=13)
    a.apply(OpCode.create2, CreateTxn("/p/c", b"", OPEN, False, 7), zxid=14)
    a.apply(OpCode.createContainer, CreateContainerTxn("/p/c", b"", OPEN, 8), zxid=15)
    # A legacy txn without parentCVersion (-1) changes nothing when re-applied.
    a.create("/p/c", zxid=16)
    assert (parent.cversion, parent.pzxid) == (3, 12)
    # Within a multi, sub-creates are type 1 too.
    a.apply(OpCode.multi, MultiTxn(((OpCode.create, CreateTxn("/p/c", b"", OPEN, False, 5)),)), zxid=17)
    assert (parent.cversion, parent.pzxid) == (5, 17)
    assert_consistent(a.tree)


def test_delete_of_a_missing_node_moves_the_parent_pzxid_forward() -> None:
    a = Applier()
    a.create("/p", zxid=5)
    a.create("/p/c", zxid=6)
    parent = a.tree.get("/p")
    assert parent is not None
    a.delete("/p/c", zxid=9)
    assert a.delete("/p/c", zxid=8).err == Code.NONODE and parent.pzxid == 9  # never back
    assert a.delete("/p/gone", zxid=20).err == Code.NONODE and parent.pzxid == 20
    assert a.delete("/nowhere/x", zxid=21).err == Code.NONODE
    a.apply(OpCode.closeSession, CloseSessionTxn(["/p/left"]), zxid=22)
    assert parent.pzxid == 22 and parent.cversion == 1
    assert_consistent(a.tree)


def test_close_session_deletes_a_later_incarnation_of_a_listed_ephemeral() -> None:
    # Log: 1 create /p, 2 create /p/e (SESSION), 3 closeSession SESSION [/p/e],
    # 4 create /p/e (OTHER). A fuzzy snapshot may hold /p as of 1 and /p/e as of 4.
    a = Applier()
    a.create("/p", zxid=1)
    a.create("/p/e", ephemeral=True, session=OTHER, parent_cversion=2, zxid=4)
    parent = a.tree.get("/p")
    assert parent is not None
    parent.cversion, parent.pzxid = 0, 1  # as the snapshot wrote it, before 2
    a.tree._rehash("/p", parent)
    a.apply(OpCode.create2, CreateTxn("/p/e", b"", OPEN, True, 1), session=SESSION, zxid=2)
    a.apply(OpCode.closeSession, CloseSessionTxn(["/p/e"]), session=SESSION, zxid=3)
    assert a.tree.get("/p/e") is None and a.tree.ephemerals_of(OTHER) == set()
    a.apply(OpCode.create2, CreateTxn("/p/e", b"", OPEN, True, 2), session=OTHER, zxid=4)
    assert (parent.cversion, parent.pzxid) == (2, 4)
    assert a.tree.ephemerals_of(OTHER) == {"/p/e"}
    assert_consistent(a.tree)
