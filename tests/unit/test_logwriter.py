"""Tests for zabd.storage.logwriter: ZooKeeper's bytes, preallocation, rolling and fsync."""
from __future__ import annotations

import os
from pathlib import Path
from typing import Callable

import pytest

from tests.unit.test_logformat import sample_txn
from zabd.jute.opcodes import OpCode
from zabd.jute.txns import CreateSessionTxn, Txn, TxnDigest, TxnHeader
from zabd.storage import logwriter
from zabd.storage.logformat import HEADER_SIZE, CorruptLogError, encode_record, file_header, scan_log
from zabd.storage.logwriter import LogWriter, padded_size

MiB = 1024 * 1024


@pytest.fixture
def syncs(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """Records every fdatasync (of a log) and fsync (of a directory) by the path synced."""
    calls: list[str] = []

    def record(kind: str, real: Callable[[int], None]) -> Callable[[int], None]:
        def sync(fd: int) -> None:
            calls.append(f"{kind} {os.path.basename(os.readlink(f'/proc/self/fd/{fd}'))}")
            real(fd)

        return sync

    monkeypatch.setattr(logwriter.os, "fdatasync", record("data", os.fdatasync))
    monkeypatch.setattr(logwriter.os, "fsync", record("dir", os.fsync))
    return calls


def test_first_entry_matches_zookeeper_bytes(tmp_path: Path) -> None:
    """Protocol doc 6.1: the first entry of a real ZooKeeper 3.8 log, and its preallocated size."""
    header = TxnHeader(0x0100000FFE0F0000, 0, 1, 0x000001A20110EAD2, OpCode.createSession)
    txn = Txn(header, CreateSessionTxn(40000), TxnDigest(2, 0x51C6D660)).to_bytes()
    writer = LogWriter(str(tmp_path))
    writer.append(1, txn)
    writer.commit()
    writer.close()
    data = (tmp_path / "log.1").read_bytes()
    assert len(data) == 16 + 64 * MiB
    expected = bytes.fromhex(
        "5a4b4c47 00000002 0000000000000000"
        "00000000c2b00aad 00000030"
        "0100000ffe0f0000 00000000 0000000000000001 000001a20110ead2 fffffff6"
        "00009c40"
        "00000002 0000000051c6d660"
        "42"
    )
    assert data[: len(expected)] == expected
    assert data.count(0, len(expected)) == len(data) - len(expected)


@pytest.mark.parametrize(
    ("position", "allocated", "prealloc", "grown"),
    [
        (16, 16, 64 * MiB, 16 + 64 * MiB),  # a fresh file
        (1000, 16 + 64 * MiB, 64 * MiB, 16 + 64 * MiB),  # far from the end
        (16 + 64 * MiB - 4096, 16 + 64 * MiB, 64 * MiB, 16 + 128 * MiB),  # within 4096 bytes
        (16 + 64 * MiB - 4097, 16 + 64 * MiB, 64 * MiB, 16 + 64 * MiB),
        (200 * MiB + 5, 16 + 64 * MiB, 64 * MiB, 256 * MiB),  # past the end: blocks restart
        (100, 16, 0, 16),  # preallocation off
    ],
)
def test_padded_size_follows_zookeeper(position: int, allocated: int, prealloc: int, grown: int) -> None:
    assert padded_size(position, allocated, prealloc) == grown


def test_file_grows_by_prealloc_steps(tmp_path: Path) -> None:
    writer = LogWriter(str(tmp_path), prealloc_bytes=8192, force_sync=False)
    path = tmp_path / "log.1"
    position, allocated = HEADER_SIZE, HEADER_SIZE
    sizes = set()
    for zxid in range(1, 200):
        txn = sample_txn(zxid)
        writer.append(zxid, txn)
        allocated = padded_size(position, allocated, 8192)
        position += len(encode_record(txn))
        writer.commit()
        assert path.stat().st_size == allocated
        sizes.add(allocated)
    writer.close()
    assert sorted(sizes)[:3] == [16 + 8192, 16 + 2 * 8192, 16 + 3 * 8192]
    scan = scan_log(str(path))
    assert len(scan.records) == 199 and scan.end == position and not scan.torn


def test_one_batch_larger_than_a_prealloc_step(tmp_path: Path) -> None:
    writer = LogWriter(str(tmp_path), prealloc_bytes=4096, force_sync=False)
    for zxid in range(1, 300):
        writer.append(zxid, sample_txn(zxid))
    writer.commit()
    writer.close()
    scan = scan_log(str(tmp_path / "log.1"))
    assert [r.zxid for r in scan.records] == list(range(1, 300))
    assert (tmp_path / "log.1").stat().st_size >= scan.end


def test_commit_syncs_the_file_and_its_directory_once(tmp_path: Path, syncs: list[str]) -> None:
    writer = LogWriter(str(tmp_path), prealloc_bytes=8192)
    assert writer.commit() == 0.0 and syncs == []
    writer.append(5, sample_txn(5))
    writer.append(6, sample_txn(6))
    assert syncs == [] and writer.current_path == str(tmp_path / "log.5")
    assert writer.commit() >= 0.0
    assert syncs == ["data log.5", f"dir {tmp_path.name}"]
    writer.append(7, sample_txn(7))
    writer.commit()
    assert syncs[2:] == ["data log.5"]  # an existing file: no directory sync
    writer.commit()
    assert len(syncs) == 3  # nothing new to sync
    writer.close()
    assert [r.zxid for r in scan_log(str(tmp_path / "log.5")).records] == [5, 6, 7]


def test_roll_starts_a_file_named_after_its_first_zxid(tmp_path: Path, syncs: list[str]) -> None:
    writer = LogWriter(str(tmp_path), prealloc_bytes=8192)
    first = (1 << 32) + 0xAB
    writer.append(first, sample_txn(first))
    writer.commit()
    writer.roll()
    assert writer.current_path is None
    writer.append(first + 1, sample_txn(first + 1))
    # Rolled with appends still buffered: both files are written and synced by one commit.
    writer.roll()
    writer.append((2 << 32) + 1, sample_txn((2 << 32) + 1))
    writer.commit()
    writer.close()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["log.1000000ab", "log.1000000ac", "log.200000001"]
    assert syncs[2:] == ["data log.1000000ac", "data log.200000001", f"dir {tmp_path.name}"]
    assert writer.last_zxid == (2 << 32) + 1
    for path in tmp_path.iterdir():
        scan = scan_log(str(path))
        assert [f"log.{r.zxid:x}" for r in scan.records] == [path.name]


def test_rolled_files_are_closed_after_commit(tmp_path: Path) -> None:
    writer = LogWriter(str(tmp_path), prealloc_bytes=8192, force_sync=False)
    before = len(os.listdir("/proc/self/fd"))
    for zxid in range(1, 20):
        writer.append(zxid, sample_txn(zxid))
        writer.roll()
        if zxid % 4 == 0:
            writer.commit()
    writer.commit()
    assert len(os.listdir("/proc/self/fd")) == before
    writer.close()


def test_force_sync_off_writes_but_never_syncs(tmp_path: Path, syncs: list[str]) -> None:
    writer = LogWriter(str(tmp_path), prealloc_bytes=8192, force_sync=False)
    for zxid in range(1, 4):
        writer.append(zxid, sample_txn(zxid))
    assert writer.commit() == 0.0
    writer.roll()
    writer.append(4, sample_txn(4))
    assert writer.commit() == 0.0
    writer.close()
    assert syncs == []
    assert len(scan_log(str(tmp_path / "log.1")).records) == 3
    assert len(scan_log(str(tmp_path / "log.4")).records) == 1


def test_close_drops_uncommitted_appends(tmp_path: Path) -> None:
    writer = LogWriter(str(tmp_path), prealloc_bytes=8192, force_sync=False)
    writer.append(1, sample_txn(1))
    writer.commit()
    writer.append(2, sample_txn(2))
    writer.close()
    assert writer.current_path is None
    scan = scan_log(str(tmp_path / "log.1"))
    assert [r.zxid for r in scan.records] == [1] and not scan.torn
    assert scan.end == HEADER_SIZE + len(encode_record(sample_txn(1)))


def test_append_rejects_txns_the_scan_would_refuse(tmp_path: Path) -> None:
    writer = LogWriter(str(tmp_path), prealloc_bytes=8192, force_sync=False)
    writer.append(3, sample_txn(3))
    with pytest.raises(ValueError):
        writer.append(3, sample_txn(3))
    with pytest.raises(ValueError):
        writer.append(9, sample_txn(8))  # the header carries another zxid
    with pytest.raises(ValueError):
        writer.append(10, b"short")
    writer.close()


def test_a_log_with_records_is_never_overwritten(tmp_path: Path) -> None:
    kept = file_header() + encode_record(sample_txn(7))
    bad = b"ZKSN" + bytes(40)
    for name, data in (("log.7", kept), ("log.8", bad)):
        (tmp_path / name).write_bytes(data)
    writer = LogWriter(str(tmp_path), force_sync=False)
    with pytest.raises(FileExistsError):
        writer.append(7, sample_txn(7))
    with pytest.raises(CorruptLogError):
        writer.append(8, sample_txn(8))
    writer.close()
    assert (tmp_path / "log.7").read_bytes() == kept
    assert (tmp_path / "log.8").read_bytes() == bad


@pytest.mark.parametrize(
    "leftover", [b"", b"ZKLG", file_header(), file_header() + encode_record(sample_txn(7))[:30] + bytes(100)]
)
def test_a_log_without_records_is_replaced(tmp_path: Path, leftover: bytes) -> None:
    """A file whose header or first record never fully reached the disk."""
    (tmp_path / "log.7").write_bytes(leftover)
    writer = LogWriter(str(tmp_path), prealloc_bytes=8192, force_sync=False)
    writer.append(7, sample_txn(7))
    writer.commit()
    writer.close()
    scan = scan_log(str(tmp_path / "log.7"))
    assert [r.zxid for r in scan.records] == [7] and not scan.torn


def test_write_errors_propagate(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError):
        LogWriter(str(tmp_path / "missing")).append(1, sample_txn(1))
