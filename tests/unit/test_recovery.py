"""Recovery from snapshots and logs, and autopurge, on real files in a temporary directory."""
from __future__ import annotations

import os
from pathlib import Path

import pytest

from zabd.core.datatree import DataTree
from zabd.jute.opcodes import OpCode
from zabd.jute.records import ACL, Id
from zabd.jute.txns import (
    CloseSessionTxn,
    CreateSessionTxn,
    CreateTxn,
    SetDataTxn,
    Txn,
    TxnDigest,
    TxnHeader,
)
from zabd.storage.layout import DataDirs, log_name, snapshot_name, zxid_in_name
from zabd.storage.logformat import CorruptLogError
from zabd.storage.logwriter import LogWriter
from zabd.storage.purge import purge
from zabd.storage.recovery import EMPTY_SNAPSHOT, RecoveryError, recover
from zabd.storage.snapfile import write_snapshot
from zabd.storage.snapformat import snapshot_chunks

OPEN = [ACL(31, Id("world", "anyone"))]
SESSION = 0x100
PREALLOC = 4096


class History:
    """A live tree and session table, with every txn logged and snapshots on demand."""

    def __init__(self, root: Path, data_log_dir: Path | None = None) -> None:
        self.dirs = DataDirs.of(str(root), str(data_log_dir) if data_log_dir else None)
        self.dirs.create()
        self.tree = DataTree()
        self.sessions: dict[int, int] = {}
        self.writer = LogWriter(self.dirs.log_dir, prealloc_bytes=PREALLOC)
        self.zxid = 0

    def txn(self, session: int, kind: int, body: object) -> Txn:
        self.zxid += 1
        header = TxnHeader(session, 1, self.zxid, 1000 + self.zxid, kind)
        plain = Txn(header, body)  # type: ignore[arg-type]
        self.tree.apply(plain)
        if kind == OpCode.createSession:
            assert isinstance(body, CreateSessionTxn)
            self.sessions[session] = body.timeOut
        elif kind == OpCode.closeSession:
            self.sessions.pop(session, None)
        txn = Txn(header, body, TxnDigest(2, self.tree.digest.signed()))  # type: ignore[arg-type]
        self.writer.append(self.zxid, txn.to_bytes())
        self.writer.commit()
        return txn

    def open_session(self, session: int = SESSION) -> None:
        self.txn(session, OpCode.createSession, CreateSessionTxn(30000))

    def create(self, path: str, data: bytes = b"v", ephemeral_of: int = 0) -> None:
        self.txn(ephemeral_of or SESSION, OpCode.create, CreateTxn(path, data, OPEN, bool(ephemeral_of), -1))

    def set(self, path: str, data: bytes) -> None:
        version = self.tree.nodes[path].version + 1
        self.txn(SESSION, OpCode.setData, SetDataTxn(path, data, version))

    def close_session(self, session: int) -> None:
        self.txn(session, OpCode.closeSession, CloseSessionTxn(sorted(self.tree.ephemerals_of(session))))

    def snapshot(self) -> str:
        self.writer.roll()
        path = os.path.join(self.dirs.snap_dir, snapshot_name(self.tree.last_processed_zxid))
        write_snapshot(path, snapshot_chunks(self.tree, dict(self.sessions)))
        return path


def assert_same_tree(a: DataTree, b: DataTree) -> None:
    assert sorted(a.nodes) == sorted(b.nodes)
    for path, node in a.nodes.items():
        other = b.nodes[path]
        assert (node.data, node.acl, node.stat_bytes()) == (other.data, other.acl, other.stat_bytes()), path
    assert a.digest.value == b.digest.value
    assert a.ephemerals == b.ephemerals
    assert a.last_processed_zxid == b.last_processed_zxid


def test_file_names_are_lowercase_hex_zxids() -> None:
    assert log_name(0x100000001) == "log.100000001" and snapshot_name(0) == "snapshot.0"
    assert zxid_in_name("snapshot.1a.gz", "snapshot") == 0x1A
    assert zxid_in_name("log.xyz", "log") is None and zxid_in_name("log", "log") is None


def test_an_empty_directory_is_a_fresh_database(tmp_path: Path) -> None:
    recovered = recover(DataDirs.of(str(tmp_path)))
    assert recovered.fresh and recovered.needs_snapshot and recovered.tree.last_processed_zxid == 0


def test_an_empty_directory_without_autocreate_is_refused(tmp_path: Path) -> None:
    with pytest.raises(RecoveryError, match="db.autocreate"):
        recover(DataDirs.of(str(tmp_path)), autocreate=False)
    (tmp_path / "initialize").write_text("")
    assert recover(DataDirs.of(str(tmp_path)), autocreate=False).fresh
    assert not (tmp_path / "initialize").exists()


@pytest.mark.parametrize("separate_log_dir", [False, True])
def test_snapshot_plus_logs_gives_back_the_tree_and_sessions(tmp_path: Path, separate_log_dir: bool) -> None:
    history = History(tmp_path / "data", tmp_path / "logs" if separate_log_dir else None)
    history.snapshot()
    history.open_session()
    history.open_session(0x200)
    history.create("/a")
    history.create("/a/e", ephemeral_of=0x200)
    history.snapshot()
    history.set("/a", b"w")
    history.create("/b")
    recovered = recover(history.dirs)
    assert_same_tree(recovered.tree, history.tree)
    assert recovered.sessions == {SESSION: 30000, 0x200: 30000}
    assert recovered.replayed == 2 and not recovered.needs_snapshot


def test_ephemerals_of_closed_sessions_are_gone_and_survivors_keep_theirs(tmp_path: Path) -> None:
    history = History(tmp_path)
    history.snapshot()
    history.open_session()
    history.open_session(0x200)
    history.create("/mine", ephemeral_of=SESSION)
    history.create("/theirs", ephemeral_of=0x200)
    history.close_session(0x200)
    recovered = recover(history.dirs)
    assert "/mine" in recovered.tree.nodes and "/theirs" not in recovered.tree.nodes
    assert recovered.sessions == {SESSION: 30000}


def test_ephemerals_of_sessions_missing_from_the_table_are_removed(tmp_path: Path) -> None:
    history = History(tmp_path)
    history.open_session(0x300)
    history.create("/orphan", ephemeral_of=0x300)
    history.sessions.clear()  # as if the session's close never made it into the snapshot's table
    history.snapshot()
    recovered = recover(history.dirs)
    assert "/orphan" not in recovered.tree.nodes and recovered.dead_sessions == [0x300]
    assert recovered.needs_snapshot


def test_logs_without_any_snapshot_are_refused_unless_trusted(tmp_path: Path) -> None:
    history = History(tmp_path)
    history.open_session()
    history.create("/a")
    with pytest.raises(RecoveryError, match=EMPTY_SNAPSHOT.split(",")[0]):
        recover(history.dirs)
    recovered = recover(history.dirs, trust_empty_snapshot=True)
    assert_same_tree(recovered.tree, history.tree)


def test_a_gap_between_snapshot_and_logs_is_refused(tmp_path: Path) -> None:
    history = History(tmp_path)
    history.snapshot()
    history.open_session()
    history.create("/a")
    history.snapshot()
    history.create("/b")
    history.snapshot()
    history.create("/c")
    # Lose the newest snapshot and the log it needed: only snapshot.0 and log.4 remain.
    zxid, newest = history.dirs.snapshots()[0]
    os.remove(newest)
    os.remove(history.dirs.snapshots()[0][1])
    for start, path in history.dirs.logs()[:-1]:
        os.remove(path)
    with pytest.raises((CorruptLogError, RecoveryError)) as raised:
        recover(history.dirs)
    assert "missing" in str(raised.value) or "refusing" in str(raised.value)


def test_a_damaged_newest_snapshot_falls_back_when_the_logs_cover_it(tmp_path: Path) -> None:
    history = History(tmp_path)
    history.snapshot()
    history.open_session()
    history.create("/a")
    newest = history.snapshot()
    history.create("/b")
    data = bytearray(Path(newest).read_bytes())
    data[40] ^= 0x10
    Path(newest).write_bytes(bytes(data))
    recovered = recover(history.dirs)
    assert_same_tree(recovered.tree, history.tree)
    assert recovered.snapshot_zxid == 0


def test_a_damaged_only_snapshot_stops_startup_naming_it(tmp_path: Path) -> None:
    history = History(tmp_path)
    history.open_session()
    history.create("/a")
    only = history.snapshot()
    data = bytearray(Path(only).read_bytes())
    data[30] ^= 0x01
    Path(only).write_bytes(bytes(data))
    with pytest.raises(RecoveryError, match=os.path.basename(only)):
        recover(history.dirs)


def test_a_damaged_snapshot_the_logs_do_not_reach_is_refused(tmp_path: Path) -> None:
    history = History(tmp_path)
    history.snapshot()
    history.open_session()
    history.create("/a")
    newest = history.snapshot()
    # The logs after snapshot.0 are lost, and the newest snapshot is torn.
    for _, path in history.dirs.logs():
        os.remove(path)
    Path(newest).write_bytes(Path(newest).read_bytes()[:-3])
    with pytest.raises(RecoveryError, match="refusing"):
        recover(history.dirs)


def test_a_torn_last_record_is_cut_and_the_next_start_is_clean(tmp_path: Path) -> None:
    history = History(tmp_path)
    history.snapshot()
    history.open_session()
    history.create("/a")
    _, log_path = history.dirs.logs()[-1]
    whole = Path(log_path).read_bytes().rstrip(b"\0")
    history.create("/b", b"x" * 50)
    torn_at = len(whole) + 30
    Path(log_path).write_bytes(Path(log_path).read_bytes()[:torn_at])
    recovered = recover(history.dirs)
    assert "/a" in recovered.tree.nodes and "/b" not in recovered.tree.nodes
    assert os.path.getsize(log_path) == len(whole)
    assert recover(history.dirs).tree.last_processed_zxid == recovered.tree.last_processed_zxid


def test_an_empty_newest_log_is_removed(tmp_path: Path) -> None:
    history = History(tmp_path)
    history.snapshot()
    history.open_session()
    empty = Path(history.dirs.log_dir) / log_name(99)
    empty.write_bytes(b"")
    partial = Path(history.dirs.log_dir) / log_name(98)
    partial.write_bytes(b"ZKLG\x00\x00")
    recovered = recover(history.dirs)
    assert recovered.tree.last_processed_zxid == 1 and not empty.exists()


def test_purge_keeps_the_newest_snapshots_and_the_logs_they_need(tmp_path: Path) -> None:
    history = History(tmp_path)
    for i in range(6):
        history.snapshot()
        history.open_session(0x1000 + i)
        history.create(f"/n{i}")
    removed = purge(history.dirs, 2)  # below the minimum: 3 are kept
    assert sum(os.path.basename(p).startswith("snapshot.") for p in removed) == 3
    kept_snaps = [zxid for zxid, _ in history.dirs.snapshots()]
    assert len(kept_snaps) == 3
    oldest = kept_snaps[-1]
    logs = [zxid for zxid, _ in history.dirs.logs()]
    assert min(logs) <= oldest + 1 and all(z >= min(logs) for z in logs)
    recovered = recover(history.dirs)
    assert_same_tree(recovered.tree, history.tree)


def test_a_damaged_only_snapshot_without_logs_is_refused_not_served_empty(tmp_path: Path) -> None:
    history = History(tmp_path)
    history.open_session()
    history.create("/a")
    only = history.snapshot()
    for _, path in history.dirs.logs():
        os.remove(path)
    Path(only).write_bytes(Path(only).read_bytes()[:-5])  # no longer looks like a snapshot
    with pytest.raises(RecoveryError, match=os.path.basename(only)):
        recover(history.dirs)
