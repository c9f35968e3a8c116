"""Tests for zabd.storage.snapformat / snapload and zabd.core.treeload: ZooKeeper 3.8 snapshot files."""
from __future__ import annotations

import gzip
import os
import random
import shutil
import struct
import zlib
from pathlib import Path
from typing import Any, Iterator

import pytest

from tests.unit.fakes import assert_consistent
from zabd.core.datatree import DataTree
from zabd.core.nodes import DataNode
from zabd.core.paths import parent_of
from zabd.jute.opcodes import OpCode, Perms
from zabd.jute.records import ACL, Id
from zabd.jute.txns import (
    CloseSessionTxn,
    CreateContainerTxn,
    CreateSessionTxn,
    CreateTTLTxn,
    CreateTxn,
    DeleteTxn,
    MultiTxn,
    SetACLTxn,
    SetDataTxn,
    Txn,
    TxnHeader,
)
from zabd.storage import snapload
from zabd.storage.snapformat import (
    NO_ACCESS,
    SNAP_MAGIC,
    CorruptSnapshotError,
    load_snapshot,
    looks_like_snapshot,
    snapshot_chunks,
)

OPEN = [ACL(Perms.ALL, Id("world", "anyone"))]
READ_ONLY = [ACL(Perms.READ, Id("world", "anyone"))]
DIGEST_ACL = [ACL(Perms.ALL, Id("digest", "u:Jq7wMyA/w2Vd5WIDAKdu4OIIFEQ="))]
MIXED_ACL = [ACL(Perms.READ, Id("world", "anyone")), ACL(Perms.ALL, Id("ip", "10.0.0.1"))]
S1, S2 = 0x0100000FFE0F0000, 0x0100000FFE0F0001
ZOOKEEPER_CP = "/usr/share/java/zookeeper.jar:/usr/share/java/slf4j-simple.jar"


class Live:
    """A tree fed with valid txns, as a server's final stage would make them."""

    def __init__(self, tree: DataTree | None = None) -> None:
        self.tree = tree or DataTree()
        self.zxid = self.tree.last_processed_zxid
        self.log: list[Txn] = []
        self.sessions: dict[int, int] = {}

    def apply(self, kind: int, body: Any, session: int = S1) -> None:
        self.zxid += 1
        txn = Txn(TxnHeader(session, 1, self.zxid, 1_700_000_000_000 + self.zxid, kind), body)
        self.log.append(txn)
        self.tree.apply(txn)
        if kind == OpCode.createSession:
            self.sessions[session] = body.timeOut
        elif kind == OpCode.closeSession:
            self.sessions.pop(session, None)

    def create(self, path: str, data: bytes | None = b"", acl: list[ACL] = OPEN, mode: str = "",
               session: int = S1, sequential: bool = False, kind: int = OpCode.create) -> str:
        parent = self.tree.nodes[parent_of(path)]
        if sequential:
            path += f"{parent.cversion:010d}"
        pcv = parent.cversion + 1
        if mode == "container":
            self.apply(OpCode.createContainer, CreateContainerTxn(path, data, acl, pcv), session)
        elif mode == "ttl":
            self.apply(OpCode.createTTL, CreateTTLTxn(path, data, acl, pcv, 60_000), session)
        else:
            self.apply(kind, CreateTxn(path, data, acl, mode == "ephemeral", pcv), session)
        return path

    def set_data(self, path: str, data: bytes) -> None:
        self.apply(OpCode.setData, SetDataTxn(path, data, self.tree.nodes[path].version + 1))

    def set_acl(self, path: str, acl: list[ACL]) -> None:
        self.apply(OpCode.setACL, SetACLTxn(path, acl, self.tree.nodes[path].aversion + 1))

    def delete(self, path: str) -> None:
        self.apply(OpCode.delete, DeleteTxn(path))


def state(tree: DataTree) -> dict[str, Any]:
    """Everything a snapshot must carry over, in comparable form."""
    nodes = {
        path: (node.data, node.acl, node.czxid, node.mzxid, node.ctime, node.mtime, node.version,
               node.cversion, node.aversion, node.ephemeral_owner, node.pzxid, node.digest,
               sorted(node.children))
        for path, node in tree.nodes.items()
    }
    return {"nodes": nodes, "digest": tree.digest.value, "data_size": tree.data_size,
            "ephemerals": tree.ephemerals, "containers": tree.containers, "ttls": tree.ttls}


def write(tmp_path: Path, chunks: Iterator[bytes], zxid: int = 0) -> Path:
    path = tmp_path / f"snapshot.{zxid:x}"
    path.write_bytes(b"".join(chunks))
    return path


def varied_tree() -> Live:
    live = Live()
    live.apply(OpCode.createSession, CreateSessionTxn(30_000), S1)
    live.apply(OpCode.createSession, CreateSessionTxn(10_000), S2)
    live.create("/app", b"config")
    live.create("/app/secret", b"s", DIGEST_ACL)
    live.create("/app/ro", b"r", READ_ONLY)
    live.create("/app/mixed", None, MIXED_ACL)
    for _ in range(3):
        live.create("/app/seq-", b"q", sequential=True)
    live.create("/app/e1", b"eph", mode="ephemeral", session=S1)
    live.create("/app/e2", b"", mode="ephemeral", session=S2, kind=OpCode.create2)
    live.create("/box", b"", mode="container")
    live.create("/box/item", b"i" * 300)
    live.create("/ttl", b"t", mode="ttl")
    live.create("/caf\u00e9", b"u")
    live.create("/caf\u00e9/\u2603", b"snowman")
    live.set_data("/app", b"config-2")
    live.set_acl("/app/ro", OPEN)
    live.delete("/app/seq-0000000001")
    live.apply(OpCode.multi, MultiTxn(((OpCode.create, CreateTxn("/m", b"", OPEN, False, 0)),
                                       (OpCode.setData, SetDataTxn("/box/item", b"j", 1)))))
    return live


# ---- round trips ------------------------------------------------------------------------


@pytest.mark.parametrize("nodes_per_chunk", [1000, 1, 4])
def test_round_trip_keeps_nodes_stats_acls_indexes_and_digest(tmp_path: Path, nodes_per_chunk: int) -> None:
    live = varied_tree()
    path = write(tmp_path, snapshot_chunks(live.tree, live.sessions, nodes_per_chunk), live.zxid)
    loaded = load_snapshot(str(path))
    assert state(loaded.tree) == state(live.tree)
    assert loaded.sessions == {S1: 30_000, S2: 10_000}
    assert loaded.digest == (live.zxid, live.tree.digest.signed())
    assert loaded.tree.last_processed_zxid == live.zxid
    assert loaded.tree.ephemerals == {S1: {"/app/e1"}, S2: {"/app/e2"}}
    assert loaded.tree.containers == {"/box"} and loaded.tree.ttls == {"/ttl"}
    assert loaded.tree.nodes["/app/mixed"].data is None
    assert_consistent(loaded.tree)
    # Children keep the live order, so a loaded tree snapshots to the same bytes.
    assert list(loaded.tree.nodes["/app"].children) == list(live.tree.nodes["/app"].children)
    again = b"".join(snapshot_chunks(loaded.tree, loaded.sessions, nodes_per_chunk))
    assert again == path.read_bytes()


def test_acl_ids_are_minus_one_for_open_and_numbered_in_order_of_first_use(tmp_path: Path) -> None:
    live = varied_tree()
    data = b"".join(snapshot_chunks(live.tree, {}))
    reader = snapload._Parser("x", data, len(data), 1 << 20, None)
    reader.pos = 20  # after the header and an empty session table
    acls = reader.read_acl_map()
    assert acls[-1] == OPEN
    firsts = [node.acl for node in live.tree.nodes.values() if node.acl != OPEN]
    distinct: list[list[ACL]] = []
    for acl in firsts:
        if acl not in distinct:
            distinct.append(acl)
    assert [acls[i] for i in range(1, len(distinct) + 1)] == distinct
    assert len(acls) == len(distinct) + 1  # a one-chunk snapshot needs no NO_ACCESS entry


def test_loaded_nodes_share_one_list_per_acl_id(tmp_path: Path) -> None:
    live = Live()
    for i in range(5):
        live.create(f"/n{i}", b"", list(READ_ONLY))
    loaded = load_snapshot(str(write(tmp_path, snapshot_chunks(live.tree, {}))))
    assert len({id(loaded.tree.nodes[f"/n{i}"].acl) for i in range(5)}) == 1


def test_gzip_snapshots_are_read(tmp_path: Path) -> None:
    live = varied_tree()
    path = tmp_path / f"snapshot.{live.zxid:x}.gz"
    path.write_bytes(gzip.compress(b"".join(snapshot_chunks(live.tree, live.sessions))))
    assert looks_like_snapshot(str(path))
    assert state(load_snapshot(str(path)).tree) == state(live.tree)


def test_compressed_snapshots_that_do_not_decode_are_corrupt(tmp_path: Path) -> None:
    path = tmp_path / "snapshot.1.gz"
    path.write_bytes(gzip.compress(b"ZKSN" * 20)[:-3])
    with pytest.raises(CorruptSnapshotError, match="gzip"):
        load_snapshot(str(path))
    path = tmp_path / "snapshot.1.snappy"
    path.write_bytes(b"\x82SNAPPY\x00")
    assert looks_like_snapshot(str(path))  # as ZooKeeper sees it...
    with pytest.raises(CorruptSnapshotError, match="snappy"):  # ...but zabd cannot read it
        load_snapshot(str(path))


def test_chunks_stay_small_when_values_are_large() -> None:
    from zabd.storage.snapformat import CHUNK_BYTES

    live = Live()
    for i in range(6):
        live.create(f"/big{i}", bytes(700_000))
    chunks = list(snapshot_chunks(live.tree, {}, nodes_per_chunk=100))
    assert len(live.tree.nodes) < 100 and len(chunks) > 3
    assert max(len(c) for c in chunks) <= CHUNK_BYTES + 700_100


def test_progress_is_reported_while_loading(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    live = Live()
    for i in range(25):
        live.create(f"/n{i}", b"x" * 10)
    path = write(tmp_path, snapshot_chunks(live.tree, {}))
    monkeypatch.setattr(snapload, "PROGRESS_EVERY", 10)
    calls: list[tuple[int, int, int]] = []
    load_snapshot(str(path), lambda *args: calls.append(args))
    size = path.stat().st_size
    assert [c[0] for c in calls] == [10, 20, 29]  # 25 nodes, the root and three system nodes
    assert all(c[2] == size for c in calls) and calls[0][1] < calls[1][1] < calls[2][1] < size


# ---- the layout of protocol doc 6.2 --------------------------------------------------------


def zookeeper_ordered_empty_tree() -> DataTree:
    """A fresh tree whose /zookeeper children come in ZooKeeper's hash order (config, quota)."""
    fresh = DataTree()
    tree = DataTree(system_nodes=False)
    for path in ("/", "/zookeeper", "/zookeeper/config", "/zookeeper/quota"):
        node = fresh.nodes[path]
        copy = DataNode(node.data, node.acl)
        copy.aversion = node.aversion
        tree.add_loaded_node(path, copy, None if path == "/" else parent_of(path), path.rsplit("/", 1)[1])
    return tree


def test_empty_tree_snapshot_has_the_layout_of_zookeepers_snapshot_0() -> None:
    data = b"".join(snapshot_chunks(DataTree(), {}))
    # Doc 6.2: ZooKeeper's empty standalone snapshot.0 is 457 bytes, checksum1
    # at 0x19b, checksum2 at 0x1bc.
    assert len(data) == 457
    assert struct.unpack_from(">iiqi", data) == (SNAP_MAGIC, 2, -1, 0)
    # One ACL entry: id 1 = [(1, world, anyone)] for /zookeeper/config; the
    # open ACL of the other three nodes is -1 and has no entry.
    assert struct.unpack_from(">iqii", data, 20) == (1, 1, 1, Perms.READ)
    assert data[0x196:0x19b] == b"\x00\x00\x00\x01/"  # end of nodes
    assert struct.unpack_from(">q", data, 0x19b)[0] == zlib.adler32(data[:0x19b])
    assert data[0x1a3:0x1a8] == b"\x00\x00\x00\x01/"
    assert struct.unpack_from(">qiq", data, 0x1a8) == (0, 2, 0)  # no txn yet: 0/2/0
    assert struct.unpack_from(">q", data, 0x1bc)[0] == zlib.adler32(data[:0x1bc])
    assert data[-5:] == b"\x00\x00\x00\x01/"
    # Our /zookeeper lists quota before config; in ZooKeeper's hash order the
    # file is byte for byte the one the doc describes, checksums included.
    same = b"".join(snapshot_chunks(zookeeper_ordered_empty_tree(), {}))
    assert struct.unpack_from(">q", same, 0x19b)[0] == 0xB8A23B49
    assert struct.unpack_from(">q", same, 0x1bc)[0] == 0x95B93D59


def test_a_tree_is_written_in_one_chunk_when_it_fits() -> None:
    live = varied_tree()
    assert len(list(snapshot_chunks(live.tree, {}, nodes_per_chunk=len(live.tree.nodes)))) == 1
    assert len(list(snapshot_chunks(live.tree, {}, nodes_per_chunk=2))) > 5


# ---- fuzzy snapshots ------------------------------------------------------------------------


class RandomTxns:
    """Valid txns chosen at random against the live tree (seeded)."""

    ACLS = [OPEN, READ_ONLY, DIGEST_ACL, MIXED_ACL]

    def __init__(self, live: Live, seed: int) -> None:
        self.live = live
        self.rng = random.Random(seed)
        self.fresh_acls = 0

    def acl(self) -> list[ACL]:
        if self.rng.random() < 0.15:  # a list no node had when the snapshot began
            self.fresh_acls += 1
            return [ACL(Perms.READ, Id("ip", f"10.1.0.{self.fresh_acls}"))]
        return list(self.rng.choice(self.ACLS))

    def step(self) -> None:
        live, rng = self.live, self.rng
        tree = live.tree
        paths = [p for p in tree.nodes if p != "/" and not p.startswith("/zookeeper")]
        op = rng.choice(["create", "create", "create", "set", "acl", "delete", "delete", "session", "multi"])
        if op == "multi" and paths:
            target = rng.choice(paths)
            parent = tree.nodes[target]
            child = f"{target}/m{rng.randrange(3)}"
            if parent.ephemeral_owner == 0 and child not in tree.nodes:
                live.apply(OpCode.multi, MultiTxn((
                    (OpCode.create, CreateTxn(child, b"m", self.acl(), False, parent.cversion + 1)),
                    (OpCode.setData, SetDataTxn(target, b"multi", parent.version + 1)),
                )))
            return
        if op == "session":
            session = rng.choice([S1, S2])
            if session in live.sessions:
                live.apply(OpCode.closeSession, CloseSessionTxn(sorted(tree.ephemerals_of(session))), session)
            else:
                live.apply(OpCode.createSession, CreateSessionTxn(5_000), session)
            return
        if op == "create" or not paths:
            parents = ["/"] + [p for p in paths if tree.nodes[p].ephemeral_owner == 0]
            parent = rng.choice(parents)
            base = ("" if parent == "/" else parent) + f"/n{rng.randrange(6)}"
            if base in tree.nodes and rng.random() < 0.5:
                return
            mode = rng.choice(["", "", "ephemeral", "container", "ttl"])
            session = rng.choice([s for s in (S1, S2) if s in live.sessions] or [0])
            if mode == "ephemeral" and session == 0:
                mode = ""
            sequential = base in tree.nodes or rng.random() < 0.2
            kind = rng.choice([OpCode.create, OpCode.create2])
            live.create(base + ("-" if sequential else ""), rng.randbytes(rng.randrange(20)), self.acl(),
                        mode, session, sequential, kind)
        elif op == "set":
            live.set_data(rng.choice(paths), rng.randbytes(rng.randrange(20)))
        elif op == "acl":
            live.set_acl(rng.choice(paths), self.acl())
        else:
            leaves = [p for p in paths if not tree.nodes[p].children]
            if leaves:
                live.delete(rng.choice(leaves))


def replay(tree: DataTree, txns: list[Txn], after: int, until: int | None = None) -> None:
    for txn in txns:
        if txn.header.zxid > after and (until is None or txn.header.zxid <= until):
            tree.apply(txn)


@pytest.mark.parametrize("seed", range(12))
def test_fuzzy_snapshot_plus_replay_gives_the_live_tree(tmp_path: Path, seed: int) -> None:
    live = Live()
    maker = RandomTxns(live, seed)
    for _ in range(150):
        maker.step()
    sessions = dict(live.sessions)
    chunks = snapshot_chunks(live.tree, live.sessions, nodes_per_chunk=3)
    parts = [next(chunks)]
    start = live.zxid
    live.sessions[0x77] = 1  # the table was copied at the first chunk
    for part in chunks:
        parts.append(part)
        for _ in range(maker.rng.randrange(4)):
            maker.step()
    path = write(tmp_path, iter(parts), start)
    loaded = load_snapshot(str(path))
    assert loaded.sessions == sessions
    assert loaded.digest is not None
    # Replaying up to the digest's zxid reaches the digest the file holds...
    replay(loaded.tree, live.log, start, loaded.digest[0])
    assert loaded.tree.digest.signed() == loaded.digest[1]
    # ...and replaying everything gives the live tree.
    replay(loaded.tree, live.log, loaded.digest[0])
    assert state(loaded.tree) == state(live.tree)
    assert_consistent(loaded.tree)


def test_nodes_with_acls_new_since_the_map_are_left_out_or_fail_closed(tmp_path: Path) -> None:
    live = Live()
    for i in range(10):
        live.create(f"/n{i}", b"old")
    chunks = snapshot_chunks(live.tree, {}, nodes_per_chunk=2)
    parts = [next(chunks)]
    start = live.zxid
    fresh = [ACL(Perms.ALL, Id("ip", "10.9.9.9"))]
    for part in chunks:
        parts.append(part)
        if len(parts) == 3:  # the map is out; the walk has not reached /n9
            live.create("/n0/new", b"child", fresh)  # parent already visited: not in the file
            live.create("/n9/new", b"child", fresh)  # parent not visited: left out
            live.create("/n9/new/deeper", b"grandchild", OPEN)  # with its subtree
            live.set_acl("/n8", fresh)  # an older node: written with NO_ACCESS
    loaded = load_snapshot(str(write(tmp_path, iter(parts), start)))
    assert "/n9/new" not in loaded.tree.nodes and "/n9/new/deeper" not in loaded.tree.nodes
    assert loaded.tree.nodes["/n8"].acl == NO_ACCESS
    replay(loaded.tree, live.log, start)
    assert state(loaded.tree) == state(live.tree)


def test_deleted_before_visit_is_skipped_and_visited_nodes_are_written_as_they_were(tmp_path: Path) -> None:
    live = Live()
    for i in range(6):
        live.create(f"/n{i}", b"v0")
    chunks = snapshot_chunks(live.tree, {}, nodes_per_chunk=1)
    parts = []
    start = live.zxid
    for part in chunks:
        parts.append(part)
        if b"/n0" in b"".join(parts) and "/n5" in live.tree.nodes:
            assert b"/n5" not in b"".join(parts)
            live.set_data("/n0", b"v1")  # /n0 is already written
            live.delete("/n5")  # not reached yet
    loaded = load_snapshot(str(write(tmp_path, iter(parts), start)))
    assert loaded.tree.nodes["/n0"].data == b"v0" and "/n5" not in loaded.tree.nodes
    # The root was written before the delete: replay moves its pzxid on.
    assert loaded.tree.nodes["/"].pzxid == start
    replay(loaded.tree, live.log, start)
    assert state(loaded.tree) == state(live.tree)


# ---- corruption -------------------------------------------------------------------------------


def loads_identically_or_fails(path: Path, expected: dict[str, Any]) -> bool:
    """True when detected; asserts that an undetected change loads the very same tree."""
    try:
        loaded = load_snapshot(str(path))
    except CorruptSnapshotError as error:
        assert error.path == str(path) and 0 <= error.offset <= path.stat().st_size
        return True
    assert state(loaded.tree) == expected
    return False


@pytest.fixture
def sample_snapshot(tmp_path: Path) -> tuple[bytes, dict[str, Any]]:
    live = varied_tree()
    return b"".join(snapshot_chunks(live.tree, live.sessions)), state(live.tree)


def test_every_truncation_is_detected_or_loads_the_same_tree(
    tmp_path: Path, sample_snapshot: tuple[bytes, dict[str, Any]]
) -> None:
    data, expected = sample_snapshot
    path = tmp_path / "snapshot.5"
    undetected = []
    for length in range(len(data)):
        path.write_bytes(data[:length])
        if not loads_identically_or_fails(path, expected):
            undetected.append(length)
    # Only a file that ends right after the first seal (an older snapshot
    # without the digest section) loads, and then without a digest.
    assert undetected == [len(data) - 33]  # zxid, version, digest, checksum2, seal
    path.write_bytes(data[: len(data) - 33])
    assert load_snapshot(str(path)).digest is None


def test_single_bit_flips_are_detected(tmp_path: Path, sample_snapshot: tuple[bytes, dict[str, Any]]) -> None:
    data, expected = sample_snapshot
    path = tmp_path / "snapshot.5"
    rng = random.Random(7)
    spots = sorted({rng.randrange(len(data) * 8) for _ in range(800)} | set(range(0, 64)) |
                   set(range(len(data) * 8 - 320, len(data) * 8)))
    for bit in spots:
        flipped = bytearray(data)
        flipped[bit // 8] ^= 1 << (bit % 8)
        path.write_bytes(flipped)
        assert loads_identically_or_fails(path, expected), f"bit {bit} went unnoticed"


def sealed(body: bytes, digest: tuple[int, int, int] | None = (0, 2, 0)) -> bytes:
    """``body`` (header to the "/" terminator) with valid checksums and seals."""
    out = body + struct.pack(">q", zlib.adler32(body)) + b"\x00\x00\x00\x01/"
    if digest is None:
        return out
    out += struct.pack(">qiq", *digest)
    return out + struct.pack(">q", zlib.adler32(out)) + b"\x00\x00\x00\x01/"


def node(path: str, acl_id: int = -1, data: bytes = b"") -> bytes:
    raw = path.encode()
    return struct.pack(">i", len(raw)) + raw + struct.pack(">i", len(data)) + data + struct.pack(
        ">qqqqqiiiqq", acl_id, 0, 0, 0, 0, 0, 0, 0, 0, 0)


HEAD = struct.pack(">iiqi", SNAP_MAGIC, 2, -1, 0)
NO_ACLS = struct.pack(">i", 0)
END = struct.pack(">i", 1) + b"/"


@pytest.mark.parametrize("body, offset, reason", [
    (HEAD + NO_ACLS + node("") + node("/a/b") + END, 24 + 76, "comes before its parent"),
    (HEAD + NO_ACLS + node("") + node("/a", acl_id=3) + END, 24 + 76 + 4 + 2 + 4, "ACL id 3"),
    (HEAD + NO_ACLS + node("") + node("/a") + node("/a") + END, 24 + 76 + 78, "duplicate"),
    (HEAD + NO_ACLS + node("") + node("") + END, 24 + 76, "second root"),
    (HEAD + NO_ACLS + node("") + node("/a/") + END, 24 + 76, "malformed path"),
    (HEAD + NO_ACLS + node("/a") + END, 24, "comes before its parent"),
    (HEAD + NO_ACLS + END, 24, "no root"),
    (HEAD + struct.pack(">i", -1) + END, 20, "ACL map count"),
    (HEAD[:4] + struct.pack(">i", 3) + HEAD[8:] + NO_ACLS + node("") + END, 4, "version 3"),
    (b"ZKLG" + HEAD[4:] + NO_ACLS + node("") + END, 0, "bad magic"),
    (HEAD[:16] + struct.pack(">iqiqi", 2, 5, 1, 5, 1) + NO_ACLS + node("") + END, 32, "session 0x5 appears twice"),
    (HEAD + NO_ACLS + struct.pack(">i", 1 << 30) + END, 24, "bad path length"),
])
def test_structural_errors_are_reported_with_their_offset(tmp_path: Path, body: bytes, offset: int, reason: str) -> None:
    path = tmp_path / "snapshot.0"
    path.write_bytes(sealed(body))
    with pytest.raises(CorruptSnapshotError) as caught:
        load_snapshot(str(path))
    assert caught.value.offset == offset and reason in caught.value.reason
    assert str(path) in str(caught.value) and f"offset {offset}" in str(caught.value)


def test_trailing_bytes_and_empty_files_are_corrupt(tmp_path: Path) -> None:
    path = tmp_path / "snapshot.0"
    good = sealed(HEAD + NO_ACLS + node("") + END)
    path.write_bytes(good + b"\x00")
    with pytest.raises(CorruptSnapshotError, match="after the final seal"):
        load_snapshot(str(path))
    path.write_bytes(b"")
    with pytest.raises(CorruptSnapshotError, match="empty file"):
        load_snapshot(str(path))
    path.write_bytes(good)
    assert set(load_snapshot(str(path)).tree.nodes) == {"/"}


def test_digest_section_is_read_as_zookeeper_does(tmp_path: Path) -> None:
    body = HEAD + NO_ACLS + node("") + END
    path = tmp_path / "snapshot.10"
    path.write_bytes(sealed(body, (0x12, 2, -5)))
    assert load_snapshot(str(path)).digest == (0x12, -5)
    path.write_bytes(sealed(body, (0, 2, 77)))  # zxid 0: no digest
    assert load_snapshot(str(path)).digest is None
    path.write_bytes(sealed(body, (0x0F, 2, 77)))  # older than the snapshot's own zxid
    assert load_snapshot(str(path)).digest is None
    path.write_bytes(sealed(body, None))  # an older snapshot without the section
    assert load_snapshot(str(path)).digest is None


# ---- looks_like_snapshot ----------------------------------------------------------------------


def test_looks_like_snapshot_follows_zookeepers_is_valid_snapshot(tmp_path: Path) -> None:
    good = sealed(HEAD + NO_ACLS + node("") + END)

    def check(name: str, content: bytes | None) -> bool:
        path = tmp_path / name
        if content is not None:
            path.write_bytes(content)
        return looks_like_snapshot(str(path))

    assert check("snapshot.0", good)
    assert check("snapshot.1f", good)
    assert check("snapshot.1F.old", good)  # ZooKeeper only parses the second part
    assert not check("snapshot", good)
    assert not check("snapshot.zz", good)
    assert not check("snapshot.0x1f", good)
    assert not check("snapshot.-1", good)
    assert not check("snapshot.10000000000000000", good)  # beyond a long
    assert not check("log.1", good)
    assert not check("snapshot.2", good[:-1])
    assert not check("snapshot.3", good[:-5] + b"\x00\x00\x00\x02/")
    assert not check("snapshot.4", b"\x00\x00\x00\x01/")  # shorter than 10 bytes
    assert not check("snapshot.5", None)  # missing
    assert check("snapshot.6.gz", gzip.compress(good))
    assert not check("snapshot.7.gz", good)


# ---- real ZooKeeper ----------------------------------------------------------------------------

HAVE_ZOOKEEPER = shutil.which("java") is not None and os.path.exists("/usr/share/java/zookeeper.jar")


@pytest.mark.skipif(not HAVE_ZOOKEEPER, reason="needs java and Debian's zookeeper.jar")
def test_loads_snapshots_written_by_zookeeper_3_8(tmp_path: Path) -> None:
    from kazoo.client import KazooClient
    from kazoo.security import make_digest_acl

    from zabd.harness.processes import start_zookeeper

    cfg = {"extendedTypesEnabled": "true"}
    with start_zookeeper(tmp_path / "zk", cfg) as server:
        client = KazooClient(hosts=server.address(), connection_retry={"max_tries": 0})
        client.start()
        client.create("/a", b"hello")
        client.create("/a/s-", b"", sequence=True)
        client.create("/a/s-", b"x" * 300, sequence=True)
        client.create("/secret", b"s", acl=[make_digest_acl("u", "p", all=True)])
        client.create("/e", b"eph", ephemeral=True)
        client.set("/a", b"world")
        client.delete("/a/s-0000000000")
        session_id = client.client_id[0]
    # Stopped with the session open: ZooKeeper's startup snapshot keeps it.
    client.stop()
    client.close()
    start_zookeeper(tmp_path / "zk", cfg).stop()
    snaps = sorted((p for p in (tmp_path / "zk" / "data" / "version-2").iterdir() if looks_like_snapshot(str(p))),
                   key=lambda p: int(p.name.split(".")[1], 16))
    assert len(snaps) == 2 and snaps[0].name == "snapshot.0"
    loaded = load_snapshot(str(snaps[-1]))
    tree = loaded.tree
    assert sorted(tree.nodes) == ["/", "/a", "/a/s-0000000001", "/e", "/secret", "/zookeeper",
                                  "/zookeeper/config", "/zookeeper/quota"]
    assert tree.nodes["/a"].data == b"world" and tree.nodes["/a"].version == 1
    assert tree.nodes["/a"].cversion == 2 and tree.nodes["/a/s-0000000001"].data == b"x" * 300
    assert tree.nodes["/secret"].acl == [ACL(Perms.ALL, Id("digest", "u:Jq7wMyA/w2Vd5WIDAKdu4OIIFEQ="))]
    assert tree.nodes["/zookeeper/config"].acl == READ_ONLY and tree.nodes["/a"].acl == OPEN
    assert tree.ephemerals == {session_id: {"/e"}} and session_id in loaded.sessions
    # ZooKeeper's own digest of the tree equals the one zabd's bookkeeping computed.
    assert loaded.digest == (tree.last_processed_zxid, tree.digest.signed())
    assert_consistent(tree)
    # An empty ZooKeeper snapshot, loaded and written again, is the same file.
    empty = load_snapshot(str(snaps[0]))
    assert b"".join(snapshot_chunks(empty.tree, empty.sessions)) == snaps[0].read_bytes()
