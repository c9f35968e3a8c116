"""The storage side of replication on real files: TRUNC's log truncation, and the
txn log read back as history for a learner's sync."""
from __future__ import annotations

import os
from pathlib import Path

import pytest

from tests.unit.test_recovery import History
from zabd.jute.txns import Txn
from zabd.quorum.committedlog import CommittedLog
from zabd.quorum.syncplan import plan_sync
from zabd.storage.history import DiskHistory, recent_records, txn_log_storage_size
from zabd.storage.layout import log_name, snapshot_name
from zabd.storage.logformat import scan_log
from zabd.storage.recovery import recover
from zabd.storage.truncate import TruncateError, drop_after, truncate_log


class Recorded(History):
    """A History that remembers the tree's digest and nodes after every txn."""

    def __init__(self, root: Path) -> None:
        super().__init__(root)
        self.states: dict[int, tuple[int, list[str]]] = {}
        self.logged: dict[int, bytes] = {}

    def txn(self, session: int, kind: int, body: object) -> Txn:
        txn = super().txn(session, kind, body)
        self.states[self.zxid] = (self.tree.digest.value, sorted(self.tree.nodes))
        self.logged[self.zxid] = txn.to_bytes()
        return txn

    def creates(self, count: int) -> None:
        for _ in range(count):
            self.create(f"/n{self.zxid + 1:x}", b"x" * (self.zxid % 7))

    def roll(self) -> None:
        self.writer.roll()


def build(tmp_path: Path, *rolls_and_snaps: str) -> Recorded:
    """snapshot.0, then for each word: "t<n>" n txns, "roll", "snap"."""
    h = Recorded(tmp_path)
    h.snapshot()
    h.open_session()
    for word in rolls_and_snaps:
        if word == "roll":
            h.roll()
        elif word == "snap":
            h.snapshot()
        else:
            h.creates(int(word[1:]))
    h.writer.close()
    return h


def names(directory: str) -> list[str]:
    return sorted(name for name in os.listdir(directory) if not name.startswith(("accepted", "current")))


def assert_recovers_to(h: Recorded, zxid: int) -> None:
    recovered = recover(h.dirs)
    assert recovered.tree.last_processed_zxid == zxid
    assert (recovered.tree.digest.value, sorted(recovered.tree.nodes)) == h.states[zxid]
    for _, path in h.dirs.logs():
        scan = scan_log(path)
        assert scan.header_ok and not scan.torn, path
        assert all(record.zxid <= zxid for record in scan.records)


# -- truncation -----------------------------------------------------------------


def test_truncate_in_the_middle_of_a_file_cuts_after_the_record(tmp_path: Path) -> None:
    h = build(tmp_path, "t9")  # zxids 1..10 in log.1, preallocated
    log1 = os.path.join(h.dirs.log_dir, log_name(1))
    assert os.path.getsize(log1) >= 4096
    plan = truncate_log(h.dirs, 5)
    assert plan.logged and plan.cut is not None and plan.cut[0] == log1
    assert [r.zxid for r in scan_log(log1).records] == [1, 2, 3, 4, 5]
    assert os.path.getsize(log1) == plan.cut[1], "the preallocated zeros go too"
    assert_recovers_to(h, 5)


def test_truncate_at_a_file_boundary_deletes_the_later_files(tmp_path: Path) -> None:
    h = build(tmp_path, "t4", "roll", "t3", "roll", "t3")  # log.1: 1..5, log.6: 6..8, log.9: 9..11
    assert [name for name in names(h.dirs.log_dir) if name.startswith("log")] == ["log.1", "log.6", "log.9"]
    plan = truncate_log(h.dirs, 5)
    assert plan.removed_logs == (os.path.join(h.dirs.log_dir, "log.9"), os.path.join(h.dirs.log_dir, "log.6"))
    assert names(h.dirs.log_dir) == ["log.1", "snapshot.0"]
    assert_recovers_to(h, 5)


def test_truncate_to_the_first_txn_of_a_file_keeps_only_that_txn_of_it(tmp_path: Path) -> None:
    h = build(tmp_path, "t4", "roll", "t3", "roll", "t3")
    truncate_log(h.dirs, 6)
    assert [r.zxid for r in scan_log(os.path.join(h.dirs.log_dir, "log.6")).records] == [6]
    assert "log.9" not in names(h.dirs.log_dir)
    assert_recovers_to(h, 6)


def test_snapshots_after_the_point_are_deleted(tmp_path: Path) -> None:
    h = build(tmp_path, "t3", "snap", "t4", "snap", "t2")  # snapshot.0, .4, .8; logs 1, 5, 9
    assert [name for name in names(h.dirs.snap_dir) if name.startswith("snap")] == [
        "snapshot.0", "snapshot.4", "snapshot.8"]
    plan = truncate_log(h.dirs, 6)
    assert plan.removed_snapshots == (os.path.join(h.dirs.snap_dir, snapshot_name(8)),)
    assert names(h.dirs.snap_dir) == ["log.1", "log.5", "snapshot.0", "snapshot.4"]
    recovered = recover(h.dirs)
    assert recovered.snapshot_zxid == 4
    assert_recovers_to(h, 6)


def test_a_target_that_only_a_snapshot_names_is_accepted(tmp_path: Path) -> None:
    h = build(tmp_path, "t4", "snap", "t3")  # snapshot.5, log.6: 6..8
    os.remove(os.path.join(h.dirs.log_dir, "log.1"))
    os.remove(os.path.join(h.dirs.snap_dir, "snapshot.0"))
    plan = truncate_log(h.dirs, 5)
    assert not plan.logged and plan.removed_logs == (os.path.join(h.dirs.log_dir, "log.6"),)
    assert_recovers_to(h, 5)


def test_a_target_before_the_logs_and_every_snapshot_is_refused_untouched(tmp_path: Path) -> None:
    h = build(tmp_path, "t4", "snap", "t3")
    os.remove(os.path.join(h.dirs.log_dir, "log.1"))
    os.remove(os.path.join(h.dirs.snap_dir, "snapshot.0"))
    before = {name: os.path.getsize(os.path.join(h.dirs.snap_dir, name)) for name in names(h.dirs.snap_dir)}
    with pytest.raises(TruncateError) as caught:
        truncate_log(h.dirs, 3)
    assert caught.value.path.endswith("snapshot.5") and "snapshot" in str(caught.value)
    assert {name: os.path.getsize(os.path.join(h.dirs.snap_dir, name)) for name in names(h.dirs.snap_dir)} == before


def test_a_target_that_was_never_logged_is_refused_naming_the_log(tmp_path: Path) -> None:
    h = build(tmp_path, "t2")  # 1..3
    h.zxid = 1 << 32  # a new epoch: the next txn is 0x100000001
    h.writer = type(h.writer)(h.dirs.log_dir, prealloc_bytes=4096)
    h.creates(2)
    h.writer.close()
    with pytest.raises(TruncateError) as caught:
        truncate_log(h.dirs, 1 << 32)
    assert caught.value.path.endswith("log.1") and "0x100000000" in str(caught.value)
    assert_recovers_to(h, (1 << 32) + 2)
    with pytest.raises(TruncateError):
        truncate_log(h.dirs, -1)


def test_drop_after_keeps_what_is_at_or_below_any_zxid(tmp_path: Path) -> None:
    h = build(tmp_path, "t4", "snap", "t3")  # snapshot.5, logs 1 and 6
    plan = drop_after(h.dirs, 100)
    assert plan.cut is None and plan.removed_logs == () and plan.removed_snapshots == ()
    drop_after(h.dirs, 2)
    assert names(h.dirs.snap_dir) == ["log.1", "snapshot.0"]
    assert_recovers_to(h, 2)


# -- the log as history ---------------------------------------------------------------


def test_history_of_an_empty_directory(tmp_path: Path) -> None:
    h = Recorded(tmp_path)
    history = DiskHistory(h.dirs)
    assert history.first_zxid is None and history.snapshot_size() == 0
    assert history.size_bytes_from(5) == 0 and list(history.proposals_from(5)) == []


def test_history_sizes_follow_3_8(tmp_path: Path) -> None:
    h = build(tmp_path, "t4", "roll", "t3", "snap", "t3")  # logs 1, 6, 9; snapshot.8
    history = DiskHistory(h.dirs)
    assert history.first_zxid == 1
    sizes = [(start, os.path.getsize(path)) for start, path in h.dirs.logs()]
    assert history.size_bytes_from(3) == txn_log_storage_size(sizes, 3) == sizes[1][1] + sizes[2][1]
    assert history.size_bytes_from(9) == 0
    assert history.snapshot_size() == os.path.getsize(os.path.join(h.dirs.snap_dir, "snapshot.8"))
    with open(os.path.join(h.dirs.snap_dir, "snapshot.20"), "wb") as f:
        f.write(b"not a snapshot")  # the newest *valid* one counts, as findMostRecentSnapshot
    assert history.snapshot_size() == os.path.getsize(os.path.join(h.dirs.snap_dir, "snapshot.8"))


def test_proposals_start_at_the_file_holding_the_zxid(tmp_path: Path) -> None:
    h = build(tmp_path, "t4", "roll", "t3", "roll", "t3")  # logs 1, 6, 9
    history = DiskHistory(h.dirs)
    got = list(history.proposals_from(7))
    assert [zxid for zxid, _ in got] == list(range(6, 12))
    assert all(data == h.logged[zxid] for zxid, data in got)
    assert [zxid for zxid, _ in history.proposals_from(0)][:2] == [1, 2]


def test_a_damaged_file_ends_the_history_early(tmp_path: Path) -> None:
    h = build(tmp_path, "t4", "roll", "t3", "roll", "t3")
    with open(os.path.join(h.dirs.log_dir, "log.9"), "r+b") as f:
        f.seek(30)
        f.write(b"\xff\xff\xff\xff")
    assert [zxid for zxid, _ in DiskHistory(h.dirs).proposals_from(2)] == [1, 2, 3, 4, 5, 6, 7, 8]


def test_a_learner_behind_the_committed_log_is_sent_a_diff_from_disk(tmp_path: Path) -> None:
    h = build(tmp_path, "t4", "roll", "t3", "roll", "t3")
    committed = CommittedLog(500)
    committed.refill((zxid, h.logged[zxid]) for zxid in (9, 10, 11))
    # snapshot.0 is tiny, so the default factor finds the (preallocated) logs too large.
    assert plan_sync(3, 11, committed, on_disk=DiskHistory(h.dirs)).reason == "log too large"
    plan = plan_sync(3, 11, committed, on_disk=DiskHistory(h.dirs), snapshot_size_factor=0)
    assert (plan.mode, plan.zxid, plan.reason) == ("DIFF", 11, "txn log")
    assert [zxid for zxid, _ in plan.history] == list(range(4, 12))
    assert all(data == h.logged[zxid] for zxid, data in plan.history)


def test_recent_records_are_the_newest_after_a_zxid(tmp_path: Path) -> None:
    h = build(tmp_path, "t4", "roll", "t3", "roll", "t3")
    assert [zxid for zxid, _ in recent_records(h.dirs, 0, 11, 4)] == [8, 9, 10, 11]
    assert [zxid for zxid, _ in recent_records(h.dirs, 9, 11, 100)] == [10, 11]
    assert [zxid for zxid, _ in recent_records(h.dirs, 2, 6, 100)] == [3, 4, 5, 6]
    assert recent_records(h.dirs, 0, 11, 0) == []
