"""Tests for zabd.storage.logformat: record layout, and scans of torn, zeroed and bit-flipped logs.

The rule under test: a damaged log scans either to its last whole record (a
torn tail) or to a CorruptLogError, never to a silently shorter history.
"""
from __future__ import annotations

import os
import pickle
import struct
import zlib
from pathlib import Path
from typing import Callable

import pytest

from zabd.jute.opcodes import OpCode, Perms
from zabd.jute.records import ACL, Id
from zabd.jute.txns import (
    CloseSessionTxn,
    CreateSessionTxn,
    CreateTxn,
    MultiTxn,
    SetDataTxn,
    Txn,
    TxnDigest,
    TxnHeader,
)
from zabd.storage.logformat import (
    HEADER_SIZE,
    LOG_MAGIC,
    CorruptLogError,
    LogRecord,
    LogScan,
    encode_record,
    file_header,
    scan_log,
)
from zabd.storage.logwriter import LogWriter

SESSION = 0x0100000FFE0F0000
OPEN_ACL = [ACL(Perms.ALL, Id("world", "anyone"))]


def sample_txn(zxid: int) -> bytes:
    """A real serialized txn, cycling through the kinds a log holds."""
    def header(kind: int) -> TxnHeader:
        return TxnHeader(SESSION, zxid & 0xFF, zxid, 1_700_000_000_000 + zxid, kind)

    digest = TxnDigest(2, zxid * 7919)
    path = f"/n{zxid % 5}"
    match zxid % 5:
        case 0:
            return Txn(header(OpCode.createSession), CreateSessionTxn(30000), digest).to_bytes()
        case 1:
            body = CreateTxn(path, b"value-%d" % zxid, OPEN_ACL, False, 1)
            return Txn(header(OpCode.create), body, digest).to_bytes()
        case 2:
            return Txn(header(OpCode.setData), SetDataTxn(path, b"\0" * (zxid % 7), 2), digest).to_bytes()
        case 3:
            ops = ((OpCode.create, CreateTxn(path + "m", None, OPEN_ACL, True, 3)),
                   (OpCode.setData, SetDataTxn(path, b"m", 4)))
            return Txn(header(OpCode.multi), MultiTxn(ops), digest).to_bytes()
        case _:
            return Txn(header(OpCode.closeSession), CloseSessionTxn([path]), digest).to_bytes()


def write_log(directory: Path, zxids: list[int], prealloc_bytes: int = 16384) -> tuple[Path, list[LogRecord]]:
    """A log written by LogWriter, a few records per commit, and the records it must scan to."""
    writer = LogWriter(str(directory), prealloc_bytes=prealloc_bytes, force_sync=False)
    expected = []
    offset = HEADER_SIZE
    for i, zxid in enumerate(zxids):
        txn = sample_txn(zxid)
        writer.append(zxid, txn)
        expected.append(LogRecord(offset, zxid, txn))
        offset += len(encode_record(txn))
        if i % 3 == 2:
            writer.commit()
    writer.commit()
    path = writer.current_path
    assert path is not None
    writer.close()
    return Path(path), expected


SmallLog = tuple[Path, list[LogRecord]]


@pytest.fixture
def small_log(tmp_path: Path) -> SmallLog:
    return write_log(tmp_path, list(range(1, 13)))


def scan_bytes(path: Path, data: bytes) -> LogScan:
    path.write_bytes(data)
    return scan_log(str(path))


def record_end(record: LogRecord) -> int:
    return record.offset + len(encode_record(record.txn))


def test_encoding() -> None:
    assert file_header() == bytes.fromhex("5a4b4c47 00000002 0000000000000000")
    assert file_header(-1)[8:] == b"\xff" * 8
    txn = sample_txn(1)
    record = encode_record(txn)
    assert record[:12] == struct.pack(">qi", zlib.adler32(txn), len(txn))
    assert record[12:-1] == txn and record[-1:] == b"B"
    assert struct.unpack(">i", file_header()[:4])[0] == LOG_MAGIC


def test_round_trip(tmp_path: Path) -> None:
    zxids = list(range(1, 40)) + [(2 << 32) + 1, (2 << 32) + 2]
    path, expected = write_log(tmp_path, zxids)
    scan = scan_log(str(path))
    assert scan == LogScan(str(path), expected, record_end(expected[-1]), False, True)
    assert [Txn.from_bytes(r.txn).zxid for r in scan.records] == zxids


def test_skip_through_omits_records_but_still_checks_them(tmp_path: Path) -> None:
    path, expected = write_log(tmp_path, list(range(1, 13)))
    scan = scan_log(str(path), skip_through=7)
    assert scan.records == expected[7:] and scan.end == record_end(expected[-1])
    data = bytearray(path.read_bytes())
    data[expected[2].offset + 40] ^= 1
    with pytest.raises(CorruptLogError) as caught:
        scan_bytes(path, bytes(data))
    assert caught.value.offset == expected[2].offset


def test_empty_partial_and_header_only_files(tmp_path: Path) -> None:
    path = tmp_path / "log.1"
    for size in range(HEADER_SIZE):
        assert scan_bytes(path, file_header()[:size]) == LogScan(str(path), [], 0, False, False)
    assert scan_bytes(path, bytes(5000)) == LogScan(str(path), [], 0, False, False)
    assert scan_bytes(path, file_header()) == LogScan(str(path), [], HEADER_SIZE, False, True)
    assert scan_bytes(path, file_header() + bytes(5000)) == LogScan(str(path), [], HEADER_SIZE, False, True)


def test_bad_magic_and_version(tmp_path: Path) -> None:
    path = tmp_path / "log.1"
    with pytest.raises(CorruptLogError) as caught:
        scan_bytes(path, b"ZKSN" + file_header()[4:] + encode_record(sample_txn(1)))
    assert caught.value.offset == 0 and caught.value.path == str(path)
    assert str(path) in str(caught.value) and "offset 0" in str(caught.value)
    with pytest.raises(CorruptLogError):
        scan_bytes(path, file_header()[:7] + b"\x03" + file_header()[8:])


def test_error_pickles() -> None:
    error = pickle.loads(pickle.dumps(CorruptLogError("/x/log.1", 42, "CRC check failed")))
    assert (error.path, error.offset, error.reason) == ("/x/log.1", 42, "CRC check failed")
    assert str(error) == "corrupt txn log /x/log.1 at offset 42: CRC check failed"


def test_zxids_must_increase(tmp_path: Path) -> None:
    path = tmp_path / "log.1"
    records = [encode_record(sample_txn(z)) for z in (1, 2, 2)]
    with pytest.raises(CorruptLogError, match="does not follow") as caught:
        scan_bytes(path, file_header() + b"".join(records))
    assert caught.value.offset == HEADER_SIZE + len(records[0]) + len(records[1])


def test_truncation_at_every_offset_of_the_last_three_records(small_log: SmallLog) -> None:
    path, expected = small_log
    data = path.read_bytes()
    for cut in range(expected[-3].offset, record_end(expected[-1]) + 1):
        scan = scan_bytes(path, data[:cut])
        assert_cut_cleanly(scan, expected, data, cut)


def test_zero_fill_from_every_offset_of_the_last_three_records(small_log: SmallLog) -> None:
    path, expected = small_log
    data = path.read_bytes()
    for start in range(expected[-3].offset, record_end(expected[-1]) + 1):
        scan = scan_bytes(path, data[:start] + bytes(len(data) - start))
        assert_cut_cleanly(scan, expected, data, start)


def assert_cut_cleanly(scan: LogScan, expected: list[LogRecord], data: bytes, cut: int) -> None:
    """Scanned to the last whole record before cut; torn unless only zeros of the next one survived."""
    whole = [r for r in expected if record_end(r) <= cut]
    assert (scan.records, scan.end) == (whole, record_end(whole[-1])), cut
    assert scan.torn == any(data[scan.end : cut]), cut


def test_cut_at_the_reported_end_scans_clean(small_log: SmallLog) -> None:
    path, expected = small_log
    data = path.read_bytes()
    torn = scan_bytes(path, data[: expected[-1].offset + 30])
    assert torn.torn and torn.end == expected[-1].offset
    assert scan_bytes(path, data[: torn.end]) == LogScan(str(path), expected[:-1], torn.end, False, True)


def scan_flipped(path: Path, bit: int) -> LogScan:
    """Scan the log with one bit flipped in place; the file is restored afterwards."""
    fd = os.open(path, os.O_RDWR)
    try:
        at = bit // 8
        original = os.pread(fd, 1, at)
        os.pwrite(fd, bytes([original[0] ^ (0x80 >> (bit % 8))]), at)
        try:
            return scan_log(str(path))
        finally:
            os.pwrite(fd, original, at)
    finally:
        os.close(fd)


def assert_raises_at(offset: int, scan: Callable[[], LogScan], case: object) -> None:
    with pytest.raises(CorruptLogError) as caught:
        scan()
    assert caught.value.offset == offset, (case, caught.value)


def test_bit_flips_in_the_last_three_records_are_corruption(small_log: SmallLog) -> None:
    path, expected = small_log
    for record in expected[-3:]:
        for bit in range(record.offset * 8, record_end(record) * 8):
            assert_raises_at(record.offset, lambda: scan_flipped(path, bit), bit)
    assert scan_log(str(path)).records == expected


def test_bit_flips_in_earlier_records_are_corruption(small_log: SmallLog) -> None:
    path, expected = small_log
    for record in expected[:-3]:
        sample = range(record.offset * 8 + record.zxid % 11, record_end(record) * 8, 11)
        # Every bit of the length and of the end marker, where a misread is likeliest.
        length = range((record.offset + 8) * 8, (record.offset + 12) * 8)
        marker = range(record_end(record) * 8 - 8, record_end(record) * 8)
        for bit in [*sample, *length, *marker]:
            assert_raises_at(record.offset, lambda: scan_flipped(path, bit), bit)


def test_bit_flips_in_the_header(small_log: SmallLog) -> None:
    path, expected = small_log
    for bit in range(64):  # magic and version
        assert_raises_at(0 if bit < 32 else 4, lambda: scan_flipped(path, bit), bit)
    for bit in range(64, 128):  # the dbid is not checked, as in ZooKeeper
        assert scan_flipped(path, bit).records == expected


def test_bit_flips_in_the_zero_padding_keep_every_record(small_log: SmallLog) -> None:
    path, expected = small_log
    end, size = record_end(expected[-1]), path.stat().st_size
    for bit in [*range(end * 8, (end + 48) * 8), *range((size - 2) * 8, size * 8)]:
        scan = scan_flipped(path, bit)
        assert scan.records == expected and scan.end == end and scan.torn, bit


def test_garbage_after_the_last_record_is_a_torn_tail(small_log: SmallLog) -> None:
    path, expected = small_log
    end = record_end(expected[-1])
    data = path.read_bytes()[:end]
    for garbage in (b"\xff" * 20, b"\0" * 12 + b"xyz", b"\0\0\0\0\1\2\3\4\0\0\0\x30" + b"\x17" * 30):
        scan = scan_bytes(path, data + garbage + bytes(100))
        assert scan == LogScan(str(path), expected, end, True, True)


def test_a_hole_before_valid_records_is_corruption(tmp_path: Path) -> None:
    """Zeros where a record should be, with whole records after them: not a torn tail."""
    epoch1 = [(1 << 32) + n for n in range(1, 6)]
    epoch2 = [(2 << 32) + n for n in range(1, 4)]
    path, expected = write_log(tmp_path, epoch1 + epoch2)
    data = path.read_bytes()
    for hole in (expected[2], expected[4], expected[0]):
        zeroed = data[: hole.offset] + bytes(record_end(hole) - hole.offset) + data[record_end(hole):]
        assert_raises_at(hole.offset, lambda: scan_bytes(path, zeroed), hole)
    # The same hole over the last epoch-1 records: found by the next epoch's first zxid.
    start, stop = expected[3].offset, record_end(expected[4])
    assert_raises_at(start, lambda: scan_bytes(path, data[:start] + bytes(stop - start) + data[stop:]), stop)


@pytest.mark.parametrize(
    ("first", "last", "ragged", "torn_tail"),
    [(10, 29, 0, False), (10, 29, 37, False), (0, 38, 0, False), (5, 20, -3, False),
     (10, 29, 0, True), (35, 38, 0, True)],
)
def test_a_wide_hole_before_valid_records_is_corruption(
    tmp_path: Path, first: int, last: int, ragged: int, torn_tail: bool
) -> None:
    """Like a page that never reached the disk: many zxids missing, maybe ending mid-record, maybe
    with a torn record at the very end as well."""
    path, expected = write_log(tmp_path, list(range(1, 41)))
    data = path.read_bytes()
    if torn_tail:
        end = record_end(expected[-1])
        partial = encode_record(sample_txn(41))[:50]
        data = data[:end] + partial + data[end + len(partial):]
    start, stop = expected[first].offset, record_end(expected[last]) + ragged
    assert_raises_at(start, lambda: scan_bytes(path, data[:start] + bytes(stop - start) + data[stop:]), stop)
