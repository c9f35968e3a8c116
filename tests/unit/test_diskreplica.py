"""DiskReplica on a real data directory, with the syncer thread and the reactor run by hand."""
from __future__ import annotations

import os
from pathlib import Path

import pytest

from tests.unit.test_disklog import ReactorByHand, SyncerByHand
from zabd.core.datatree import DataTree
from zabd.jute.opcodes import OpCode
from zabd.jute.records import ACL, Id
from zabd.jute.txns import CloseSessionTxn, CreateSessionTxn, CreateTxn, SetDataTxn, Txn, TxnHeader
from zabd.quorum.roles import Replica
from zabd.quorum.snapstream import SnapshotStream, SnapshotStreamDecoder
from zabd.persist.disklog import GroupCommitLog
from zabd.persist.diskreplica import AppendsInFlightError, DiskReplica
from zabd.storage.epochs import ACCEPTED_EPOCH, CURRENT_EPOCH, EpochFileError, write_epoch
from zabd.storage.layout import DataDirs, snapshot_name
from zabd.storage.truncate import TruncateError
from zabd.storage.logformat import scan_log
from zabd.storage.logwriter import LogWriter
from zabd.storage.recovery import recover
from zabd.storage.snapfile import write_snapshot
from zabd.storage.snapformat import snapshot_chunks

OPEN = [ACL(31, Id("world", "anyone"))]
SESSION = 0x5A
EPOCH1 = 1 << 32


def session_txn(zxid: int, session: int = SESSION) -> bytes:
    return Txn(TxnHeader(session, 0, zxid, zxid, OpCode.createSession), CreateSessionTxn(30000)).to_bytes()


def close_txn(zxid: int, session: int = SESSION) -> bytes:
    return Txn(TxnHeader(session, 0, zxid, zxid, OpCode.closeSession), CloseSessionTxn([])).to_bytes()


def create_txn(zxid: int, path: str, data: bytes = b"v") -> bytes:
    body = CreateTxn(path, data, OPEN, False, -1)
    return Txn(TxnHeader(SESSION, 1, zxid, zxid, OpCode.create), body).to_bytes()


def set_txn(zxid: int, path: str, data: bytes, version: int) -> bytes:
    return Txn(TxnHeader(SESSION, 1, zxid, zxid, OpCode.setData), SetDataTxn(path, data, version)).to_bytes()


class Node:
    """One server's data directory, replica, log and hand-run threads; ``restart`` is a new process."""

    def __init__(self, root: Path, commit_log_count: int = 500) -> None:
        self.dirs = DataDirs.of(str(root))
        self.commit_log_count = commit_log_count
        self.durable: list[int] = []
        self.reloads: list[tuple[DataTree, dict[int, int]]] = []
        self.start()

    def start(self) -> None:
        self.dirs.create()
        recovered = recover(self.dirs)
        if recovered.needs_snapshot:  # as open_database does
            path = os.path.join(self.dirs.snap_dir, snapshot_name(recovered.tree.last_processed_zxid))
            write_snapshot(path, snapshot_chunks(recovered.tree, recovered.sessions))
        self.pool, self.reactor = SyncerByHand(), ReactorByHand()
        self.halted: list[int] = []
        self.writer = LogWriter(self.dirs.log_dir, prealloc_bytes=4096)
        self.txn_log = GroupCommitLog(self.writer, self.pool, self.reactor, self.halted.append)  # type: ignore[arg-type]
        self.replica = DiskReplica(self.dirs, recovered, self.txn_log, commit_log_count=self.commit_log_count)
        self.replica.set_durable_callback(self.durable.append)
        self.replica.on_reload = lambda tree, sessions: self.reloads.append((tree, sessions))

    def restart(self) -> None:
        self.writer.close()
        self.start()

    def flush(self) -> None:
        self.reactor.advance(0)
        self.pool.run_all()

    def commit(self, *txns: bytes) -> None:
        """Log, make durable and apply, as a follower does in BROADCAST."""
        for txn in txns:
            self.replica.log(Txn.from_bytes(txn).header.zxid, txn)
        self.flush()
        for txn in txns:
            self.replica.apply(Txn.from_bytes(txn).header.zxid, txn)


def history(count: int, start: int = 1) -> list[bytes]:
    """A session, then nodes: ``count`` txns from zxid ``start``."""
    txns = [session_txn(start)]
    txns += [create_txn(zxid, f"/n{zxid:x}", b"x" * (zxid % 5)) for zxid in range(start + 1, start + count)]
    return txns


def as_replica(replica: DiskReplica) -> Replica:
    return replica  # mypy checks that DiskReplica implements the protocol


def test_logged_txns_are_reported_durable_in_order_once_fsynced(tmp_path: Path) -> None:
    node = Node(tmp_path)
    replica = as_replica(node.replica)
    for zxid, txn in enumerate(history(3), start=1):
        replica.log(zxid, txn)
    assert node.durable == [] and node.replica.appends_in_flight
    assert replica.last_logged_zxid == 3 and replica.last_processed_zxid == 0
    node.flush()
    assert node.durable == [3] and not node.replica.appends_in_flight
    replica.log(4, create_txn(4, "/d"))
    node.flush()
    assert node.durable == [3, 4]
    (_, path), = node.dirs.logs()
    assert [record.zxid for record in scan_log(path).records] == [1, 2, 3, 4]


def test_apply_updates_tree_sessions_and_committed_log(tmp_path: Path) -> None:
    node = Node(tmp_path)
    node.commit(session_txn(1), create_txn(2, "/a"), set_txn(3, "/a", b"b", 1), session_txn(4, session=7))
    replica = node.replica
    assert replica.tree.nodes["/a"].data == b"b" and replica.last_processed_zxid == 4
    assert replica.sessions() == {SESSION: 30000, 7: 30000}
    assert [zxid for zxid, _ in replica.committed] == [1, 2, 3, 4]
    node.commit(close_txn(5, session=7))
    assert replica.sessions() == {SESSION: 30000}


def test_a_server_hook_applies_the_txn_while_the_replica_keeps_the_sessions(tmp_path: Path) -> None:
    node = Node(tmp_path)
    seen: list[tuple[int, int]] = []
    node.replica.on_commit = lambda zxid, txn: seen.append((zxid, Txn.from_bytes(txn).header.type))
    node.commit(session_txn(1), create_txn(2, "/a"))
    assert seen == [(1, OpCode.createSession), (2, OpCode.create)]
    assert "/a" not in node.replica.tree.nodes, "the hook applies, not the replica"
    assert node.replica.sessions() == {SESSION: 30000} and len(node.replica.committed) == 2


def test_catch_up_applies_what_was_logged_and_never_committed(tmp_path: Path) -> None:
    node = Node(tmp_path)
    txns = history(4)
    for zxid, txn in enumerate(txns, start=1):
        node.replica.log(zxid, txn)
    node.flush()
    node.replica.apply(1, txns[0])
    node.replica.catch_up()
    assert node.replica.last_processed_zxid == 4 and [z for z, _ in node.replica.committed] == [1, 2, 3, 4]
    node.replica.catch_up()
    assert node.replica.last_processed_zxid == 4


def test_truncate_reloads_the_tree_a_fresh_recovery_agrees_with(tmp_path: Path) -> None:
    node = Node(tmp_path)
    node.commit(*history(6))
    node.replica.save_snapshot()  # snapshot.6: truncation below it deletes it
    node.commit(*history(3, start=7))
    replica = node.replica
    replica.truncate(4)
    assert replica.last_processed_zxid == replica.last_logged_zxid == 4
    assert node.reloads == [(replica.tree, replica.sessions())]
    assert not os.path.exists(os.path.join(node.dirs.snap_dir, snapshot_name(6)))
    fresh = recover(node.dirs)
    assert (fresh.tree.digest.value, fresh.tree.last_processed_zxid) == (replica.tree.digest.value, 4)
    assert [zxid for zxid, _ in replica.committed] == [1, 2, 3, 4]
    # The log goes on from the truncation point, in a new file.
    node.commit(set_txn(5, "/n2", b"new", 1))
    assert node.halted == [] and os.path.basename(node.txn_log.writer.current_path or "") == "log.5"
    again = recover(node.dirs)
    assert again.tree.nodes["/n2"].data == b"new" and again.tree.digest.value == replica.tree.digest.value


def test_truncate_refuses_while_appends_are_in_flight(tmp_path: Path) -> None:
    node = Node(tmp_path)
    node.commit(*history(3))
    node.replica.log(4, create_txn(4, "/late"))
    with pytest.raises(AppendsInFlightError):
        node.replica.truncate(2)
    node.flush()
    node.replica.truncate(2)
    assert node.replica.last_processed_zxid == 2


def snap_from_leader(tmp_path: Path, *txns: bytes) -> tuple[SnapshotStream, DataTree]:
    leader = Node(tmp_path / "leader")
    leader.commit(*txns)
    _, chunks = leader.replica.snapshot_stream()
    decoder = SnapshotStreamDecoder()
    decoder.feed(b"".join(chunks))
    assert decoder.result is not None
    return decoder.result, leader.replica.tree


def test_install_then_save_snapshot_is_what_the_next_start_loads(tmp_path: Path) -> None:
    stream, leader_tree = snap_from_leader(tmp_path, *history(5), create_txn(EPOCH1 + 1, "/epoch1"))
    node = Node(tmp_path / "learner")
    node.commit(*history(8))  # its own txns 1..8, past the leader's epoch-0 history
    node.replica.install(stream, EPOCH1 + 1)
    replica = node.replica
    assert replica.last_processed_zxid == replica.last_logged_zxid == EPOCH1 + 1
    assert replica.tree.digest.value == leader_tree.digest.value and len(replica.committed) == 0
    assert node.reloads == [(replica.tree, replica.sessions())] and replica.sessions() == {SESSION: 30000}
    replica.save_snapshot()
    replica.set_accepted_epoch(1)
    replica.set_current_epoch(1)  # NEWLEADER, as the learner does after the snapshot
    node.commit(create_txn(EPOCH1 + 2, "/after"))
    recovered = recover(node.dirs)
    assert recovered.snapshot_zxid == EPOCH1 + 1
    assert recovered.tree.digest.value == replica.tree.digest.value and "/after" in recovered.tree.nodes
    node.restart()
    assert node.replica.last_logged_zxid == EPOCH1 + 2


def test_install_drops_what_was_logged_past_the_leaders_state(tmp_path: Path) -> None:
    stream, _ = snap_from_leader(tmp_path, *history(3))
    node = Node(tmp_path / "learner")
    node.commit(*history(8))
    node.replica.save_snapshot()  # snapshot.8: ahead of the leader's zxid, so it goes
    node.commit(*history(2, start=9))
    node.replica.install(stream, 3)
    assert [os.path.basename(path) for _, path in node.dirs.snapshots()] == ["snapshot.0"]
    assert [record.zxid for _, path in node.dirs.logs() for record in scan_log(path).records] == [1, 2, 3]
    node.replica.save_snapshot()
    node.commit(create_txn(4, "/four"))
    assert node.halted == [] and recover(node.dirs).tree.digest.value == node.replica.tree.digest.value


def test_epochs_are_created_persisted_and_read_back(tmp_path: Path) -> None:
    node = Node(tmp_path)
    assert (node.replica.accepted_epoch, node.replica.current_epoch) == (0, 0)
    assert os.path.exists(os.path.join(node.dirs.snap_dir, ACCEPTED_EPOCH))
    node.replica.set_accepted_epoch(3)
    node.replica.set_current_epoch(2)
    with open(os.path.join(node.dirs.snap_dir, CURRENT_EPOCH), "rb") as f:
        assert f.read() == b"2"
    node.restart()
    assert (node.replica.accepted_epoch, node.replica.current_epoch) == (3, 2)


def test_a_current_epoch_behind_the_log_stops_startup_unless_its_tmp_survived(tmp_path: Path) -> None:
    node = Node(tmp_path)
    node.commit(session_txn(EPOCH1 * 2 + 1))  # a txn of epoch 2; the epoch files still say 0
    with pytest.raises(EpochFileError):
        node.restart()
    write_epoch(node.dirs.snap_dir, ACCEPTED_EPOCH, 2)
    with open(os.path.join(node.dirs.snap_dir, CURRENT_EPOCH + ".tmp"), "wb") as f:
        f.write(b"2")  # a crash between writing the new value and the rename
    node.start()
    assert (node.replica.accepted_epoch, node.replica.current_epoch) == (2, 2)


def test_missing_epoch_files_take_the_last_zxids_epoch(tmp_path: Path) -> None:
    node = Node(tmp_path)
    node.commit(session_txn(EPOCH1 + 1))
    for name in (ACCEPTED_EPOCH, CURRENT_EPOCH):
        os.remove(os.path.join(node.dirs.snap_dir, name))
    node.restart()
    assert (node.replica.accepted_epoch, node.replica.current_epoch) == (1, 1)


def test_the_committed_log_is_refilled_with_the_txns_replayed_after_the_snapshot(tmp_path: Path) -> None:
    node = Node(tmp_path, commit_log_count=3)
    txns = history(10)
    node.commit(*txns[:2])
    node.replica.save_snapshot()
    node.commit(*txns[2:])
    node.restart()
    committed = list(node.replica.committed)
    assert committed == [(zxid, txns[zxid - 1]) for zxid in (7, 8, 9, 10)], "3.8 keeps commitLogCount + 1"
    node.replica.save_snapshot()
    node.restart()
    assert len(node.replica.committed) == 0 and node.replica.last_processed_zxid == 10


def test_snapshot_stream_and_history_describe_the_replica(tmp_path: Path) -> None:
    node = Node(tmp_path)
    node.commit(*history(4))
    zxid, chunks = node.replica.snapshot_stream()
    decoder = SnapshotStreamDecoder()
    decoder.feed(b"".join(chunks))
    assert zxid == 4 and decoder.result is not None
    assert decoder.result.tree.digest.value == node.replica.tree.digest.value
    assert decoder.result.sessions == {SESSION: 30000}
    history_on_disk = node.replica.on_disk_history()
    assert history_on_disk.first_zxid == 1
    assert [z for z, _ in history_on_disk.proposals_from(2)] == [1, 2, 3, 4]


def test_after_a_snap_the_log_below_it_goes_once_its_snapshot_is_durable(tmp_path: Path) -> None:
    stream, _ = snap_from_leader(tmp_path, *history(5), create_txn(EPOCH1 + 1, "/epoch1"))
    node = Node(tmp_path / "learner")
    node.commit(*history(4))  # its own 1..4: not necessarily the leader's history
    node.replica.install(stream, EPOCH1 + 1)
    assert [start for start, _ in node.dirs.logs()] == [1]  # kept until the snapshot is durable
    node.replica.save_snapshot()
    assert node.dirs.logs() == []
    node.replica.set_accepted_epoch(1)
    node.replica.set_current_epoch(1)
    node.commit(create_txn(EPOCH1 + 2, "/after"))
    assert [start for start, _ in node.dirs.logs()] == [EPOCH1 + 2]
    node.restart()
    assert node.replica.last_logged_zxid == EPOCH1 + 2 and "/epoch1" in node.replica.tree.nodes


def test_reload_after_an_unfinished_sync_goes_back_to_the_files(tmp_path: Path) -> None:
    stream, leader_tree = snap_from_leader(tmp_path, *history(9))
    node = Node(tmp_path / "learner")
    node.commit(*history(4))
    on_disk = node.replica.tree.digest.value
    node.replica.install(stream, 9)
    assert node.replica.tree.digest.value == leader_tree.digest.value
    node.replica.reload()  # the connection broke before NEWLEADER's snapshot
    replica = node.replica
    assert replica.tree.digest.value == on_disk and replica.last_logged_zxid == 4
    assert node.reloads[-1] == (replica.tree, replica.sessions())
    node.commit(create_txn(5, "/five"))  # the log goes on from its files' last txn
    assert node.halted == [] and recover(node.dirs).tree.digest.value == replica.tree.digest.value
    with pytest.raises(AppendsInFlightError):
        replica.log(6, create_txn(6, "/six"))
        replica.reload()


def test_a_restart_between_the_syncs_durable_txns_and_current_epoch_takes_their_epoch(tmp_path: Path) -> None:
    node = Node(tmp_path)
    node.commit(*history(3))
    node.replica.set_accepted_epoch(2)
    node.replica.mark_epoch_update()  # NEWLEADER of epoch 2
    assert os.path.exists(os.path.join(node.dirs.snap_dir, "updatingEpoch"))
    node.commit(create_txn(EPOCH1 * 2 + 1, "/epoch2"))  # durable; killed before currentEpoch is written
    node.restart()
    assert (node.replica.accepted_epoch, node.replica.current_epoch) == (2, 2)
    assert not os.path.exists(os.path.join(node.dirs.snap_dir, "updatingEpoch"))
    node.replica.mark_epoch_update()
    node.replica.set_current_epoch(2)  # the normal end: the marker goes with the write
    assert not os.path.exists(os.path.join(node.dirs.snap_dir, "updatingEpoch"))


def test_a_trunc_below_a_snaps_snapshot_reloads_what_the_files_hold_and_fails(tmp_path: Path) -> None:
    stream, _ = snap_from_leader(tmp_path, *history(9))
    node = Node(tmp_path / "learner")
    node.commit(*history(4))
    node.replica.install(stream, 9)  # a leader's tree that held txns it never committed
    node.replica.save_snapshot()  # snapshot.9, and the log below it goes
    with pytest.raises(TruncateError):
        node.replica.truncate(6)  # the next leader's history ends at 6: no file lands there
    replica = node.replica
    assert replica.last_processed_zxid == replica.last_logged_zxid == 0  # snapshot.0: all the files hold
    assert [os.path.basename(path) for _, path in node.dirs.snapshots()] == ["snapshot.0"]
    assert recover(node.dirs).tree.digest.value == replica.tree.digest.value
    node.commit(*history(2))  # a SNAP or DIFF from 0 can follow
    assert node.halted == []
