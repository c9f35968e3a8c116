"""Damaged data directories: a torn tail recovers to the last whole record; anything else is refused.

Each case ends in ZooKeeper's outcome or a safer one: the whole history, or a
refusal naming the file, never a silently shorter history or a different tree.
"""
from __future__ import annotations

import os
import random
import shutil
from pathlib import Path

import pytest

from tests.unit.test_recovery import History, assert_same_tree
from zabd.core.datatree import DataTree
from zabd.storage.layout import DataDirs
from zabd.storage.logformat import CorruptLogError, scan_log
from zabd.storage.recovery import RecoveryError, recover
from zabd.storage.snapformat import CorruptSnapshotError

REFUSALS = (RecoveryError, CorruptLogError, CorruptSnapshotError)
FLIPS = 1000


def build(root: Path) -> tuple[History, list[DataTree]]:
    """A history with two snapshots and two logs; trees[z] is the tree after zxid z."""
    history = History(root)
    trees: list[DataTree] = []

    def keep() -> None:
        while len(trees) <= history.zxid:
            trees.append(_copy(history))

    history.snapshot()
    keep()
    steps = [history.open_session, lambda: history.open_session(0x200)]
    steps += [lambda i=i: history.create(f"/n{i}", b"value %d" % i) for i in range(6)]
    steps += [lambda: history.create("/e", ephemeral_of=0x200), history.snapshot]
    steps += [lambda i=i: history.set(f"/n{i}", b"changed %d" % i) for i in range(6)]
    steps += [lambda: history.create("/last", b"L" * 40)]
    for step in steps:
        step()
        keep()
    return history, trees


def _copy(history: History) -> DataTree:
    # Recovering the directory as it stands is the simplest faithful copy of the tree.
    return recover(history.dirs).tree


def _fresh_copy(src: Path, dst: Path) -> DataDirs:
    if dst.exists():
        shutil.rmtree(dst)
    shutil.copytree(src, dst)
    return DataDirs.of(str(dst))


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, History, list[DataTree]]:
    root = tmp_path_factory.mktemp("history")
    history, trees = build(root)
    return root, history, trees


def test_cutting_the_newest_log_anywhere_in_its_last_three_records_recovers_the_last_whole_one(
    built: tuple[Path, History, list[DataTree]], tmp_path: Path
) -> None:
    root, history, trees = built
    _, newest = history.dirs.logs()[-1]
    records = scan_log(newest).records
    first_cut = records[-3].offset
    end = records[-1].offset + 12 + len(records[-1].txn) + 1
    name = os.path.basename(newest)
    for cut in range(first_cut, end + 1):
        dirs = _fresh_copy(root, tmp_path / "case")
        path = os.path.join(dirs.log_dir, name)
        os.truncate(path, cut)
        whole = [r for r in records if r.offset + 12 + len(r.txn) + 1 <= cut]
        expected = trees[whole[-1].zxid]
        recovered = recover(dirs)
        assert_same_tree(recovered.tree, expected)
        assert recover(dirs).tree.last_processed_zxid == expected.last_processed_zxid, "a second start differs"


def test_random_bit_flips_are_detected_or_harmless(
    built: tuple[Path, History, list[DataTree]], tmp_path: Path
) -> None:
    root, history, trees = built
    full = trees[-1]
    rng = random.Random(3)
    files = [path for _, path in history.dirs.logs()] + [path for _, path in history.dirs.snapshots()]
    used = {path: len(Path(path).read_bytes().rstrip(b"\0")) for path in files}
    outcomes = {"refused": 0, "whole": 0}
    for _ in range(FLIPS):
        path = rng.choice(files)
        offset = rng.randrange(used[path])
        bit = rng.randrange(8)
        dirs = _fresh_copy(root, tmp_path / "case")
        target = Path(dirs.snap_dir) / os.path.basename(path)
        data = bytearray(target.read_bytes())
        data[offset] ^= 1 << bit
        target.write_bytes(bytes(data))
        try:
            recovered = recover(dirs)
        except REFUSALS as e:
            assert os.path.basename(path) in str(e) or "snapshot" in str(e), str(e)
            outcomes["refused"] += 1
            continue
        where = f"{os.path.basename(path)} byte {offset} bit {bit}"
        assert recovered.tree.last_processed_zxid == full.last_processed_zxid, where
        assert_same_tree(recovered.tree, full)
        outcomes["whole"] += 1
    assert outcomes["refused"] > 0 and outcomes["whole"] > 0, outcomes


@pytest.mark.parametrize("size", [0, 1, 7, 15])
def test_an_empty_or_partial_newest_snapshot_falls_back(
    built: tuple[Path, History, list[DataTree]], tmp_path: Path, size: int
) -> None:
    root, history, trees = built
    dirs = _fresh_copy(root, tmp_path / "case")
    _, newest = dirs.snapshots()[0]
    os.truncate(newest, size)
    # The older snapshot and the logs still hold everything.
    assert_same_tree(recover(dirs).tree, trees[-1])


@pytest.mark.parametrize("size", [0, 7, 15])
def test_an_empty_or_partial_header_newest_log_is_harmless(
    built: tuple[Path, History, list[DataTree]], tmp_path: Path, size: int
) -> None:
    root, history, trees = built
    dirs = _fresh_copy(root, tmp_path / "case")
    later = os.path.join(dirs.log_dir, f"log.{trees[-1].last_processed_zxid + 1:x}")
    Path(later).write_bytes(b"ZKLG\0\0\0\2\0\0\0\0\0\0\0\0"[:size])
    assert_same_tree(recover(dirs).tree, trees[-1])


def test_logs_without_their_snapshots_are_refused(
    built: tuple[Path, History, list[DataTree]], tmp_path: Path
) -> None:
    root, _, _ = built
    dirs = _fresh_copy(root, tmp_path / "case")
    for _, path in dirs.snapshots():
        os.remove(path)
    with pytest.raises(RecoveryError, match="No snapshot found"):
        recover(dirs)


def test_a_missing_middle_log_is_refused(built: tuple[Path, History, list[DataTree]], tmp_path: Path) -> None:
    root, _, _ = built
    dirs = _fresh_copy(root, tmp_path / "case")
    newest_snapshot = dirs.snapshots()[0][1]
    os.remove(newest_snapshot)  # replay must now start from snapshot.0 and needs the first log
    os.remove(dirs.logs()[0][1])
    with pytest.raises(REFUSALS):
        recover(dirs)
