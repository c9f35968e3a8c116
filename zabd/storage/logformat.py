# -*- test-case-name: tests.unit.test_logformat -*-
"""ZooKeeper 3.8's txn log file format: encoding, and a scan that tells a torn tail from corruption.

A log file is a 16-byte FileHeader (magic "ZKLG", version 2, dbid) and then
records ``long adler32 | int len | txn[len] | 'B'``, then zero padding up to
the preallocated size (protocol doc section 6.1).

ZooKeeper stops reading at the first record that looks incomplete, whatever
follows it.  That can silently drop committed records after a damaged one, so
``scan_log`` only calls a bad record a torn tail when nothing valid follows it
and its checksum does not fit a complete record with a damaged length or 'B'.
Everything else is a CorruptLogError naming the file and the offset.
"""
from __future__ import annotations

import mmap
import os
import struct
import zlib
from dataclasses import dataclass

from zabd.core.zxid import epoch_of, first_zxid_of
from zabd.jute.codec import DEFAULT_MAX_BUFFER
from zabd.storage.layout import LOG_PREFIX, zxid_in_name
from zabd.storage.sparse import nonzero_end

LOG_MAGIC = 0x5A4B4C47  # "ZKLG"
FILE_VERSION = 2
HEADER_SIZE = 16
#: checksum (long) and length (int) before each txn.
RECORD_PREFIX = 12
END_OF_RECORD = 0x42  # 'B'
#: A serialized txn starts with the 32-byte TxnHeader; its zxid is at byte 12.
TXN_HEADER_SIZE = 32
TXN_ZXID_OFFSET = 12
#: Like the jute Reader: a buffer longer than jute.maxbuffer + extrasize is insane.
MAX_TXN_SIZE = DEFAULT_MAX_BUFFER * 2

_HEADER = struct.Struct(">iiq")
_PREFIX = struct.Struct(">qi")
_LONG = struct.Struct(">q")
_INT = struct.Struct(">i")
_ADLER_MOD = 65521
#: How many zxids past a known one to look for when checking for records after a bad one.
_ZXID_LOOKAHEAD = 8
#: The end of one record and the start of the next: an Adler32 fits in the low half of its long.
_RECORD_BOUNDARY = b"B\0\0\0\0"


class CorruptLogError(Exception):
    """A txn log is damaged somewhere other than a torn last record."""

    def __init__(self, path: str, offset: int, reason: str) -> None:
        super().__init__(path, offset, reason)
        self.path = path
        self.offset = offset
        self.reason = reason

    def __str__(self) -> str:
        return f"corrupt txn log {self.path} at offset {self.offset}: {self.reason}"


def file_header(dbid: int = 0) -> bytes:
    return _HEADER.pack(LOG_MAGIC, FILE_VERSION, dbid)


def encode_record(txn: bytes) -> bytes:
    return b"".join((_PREFIX.pack(zlib.adler32(txn), len(txn)), txn, b"B"))


@dataclass(frozen=True, slots=True)
class LogRecord:
    """One txn as the log holds it: where it starts in the file, its zxid and its bytes."""

    offset: int
    zxid: int
    txn: bytes

    def __init__(self, offset: int, zxid: int, txn: bytes) -> None:
        # Through the slot descriptors: a scan builds one per record, and a
        # frozen dataclass's own __init__ costs nearly twice as much.
        _set_offset(self, offset)
        _set_zxid(self, zxid)
        _set_txn(self, txn)


_set_offset = getattr(LogRecord, "offset").__set__
_set_zxid = getattr(LogRecord, "zxid").__set__
_set_txn = getattr(LogRecord, "txn").__set__


@dataclass
class LogScan:
    path: str
    #: Whole, checksum-valid records in file order (zxid <= skip_through left out).
    records: list[LogRecord]
    #: Offset just past the last whole record: 16 for a header-only file, 0 without a header.
    end: int
    #: The bytes after ``end`` are a torn last record that may be cut at ``end``.
    torn: bool
    #: False when the file is shorter than its 16-byte header, or all zeros.
    header_ok: bool


def scan_log(path: str, skip_through: int = -1) -> LogScan:
    """Read and validate every record of one log file; raise CorruptLogError on damage."""
    with open(path, "rb") as f:
        size = os.fstat(f.fileno()).st_size
        if size < HEADER_SIZE:
            return LogScan(path, [], 0, False, False)
        with mmap.mmap(f.fileno(), 0, access=mmap.ACCESS_READ) as mm:
            data_end = nonzero_end(f.fileno(), mm, 0, size)
            if data_end == 0:
                # Only zeros: the file was created and grown, but its header never reached the disk.
                return LogScan(path, [], 0, False, False)
            magic, version, _dbid = _HEADER.unpack_from(mm, 0)
            if magic != LOG_MAGIC:
                raise CorruptLogError(path, 0, f"bad magic {magic & 0xFFFFFFFF:#010x}, not a txn log")
            if version != FILE_VERSION:
                raise CorruptLogError(path, 4, f"unknown txn log version {version}")
            return _Scanner(path, mm, size, data_end, skip_through).run()


class _Scanner:
    def __init__(self, path: str, mm: mmap.mmap, size: int, data_end: int, skip_through: int) -> None:
        self.path = path
        self.mm = mm
        self.size = size
        self.data_end = data_end  # one past the last nonzero byte
        self.skip_through = skip_through

    def run(self) -> LogScan:
        mm, size, data_end, skip = self.mm, self.size, self.data_end, self.skip_through
        view = memoryview(mm)
        records: list[LogRecord] = []
        unpack_prefix = _PREFIX.unpack_from
        unpack_long = _LONG.unpack_from
        adler32 = zlib.adler32
        last_zxid: int | None = None
        pos = HEADER_SIZE
        try:
            # Only zeros from pos on: the logical end (preallocated padding, or EOF).
            while pos < data_end:
                body = pos + RECORD_PREFIX
                if body > size:
                    return self._bad(pos, last_zxid, records, "partial record header")
                checksum, length = unpack_prefix(mm, pos)
                stop = body + length
                if not TXN_HEADER_SIZE <= length <= MAX_TXN_SIZE or stop >= size or mm[stop] != END_OF_RECORD:
                    return self._bad(pos, last_zxid, records, f"incomplete record (len {length})")
                zxid = unpack_long(mm, body + TXN_ZXID_OFFSET)[0]
                if zxid > skip:
                    txn = mm[body:stop]
                    if adler32(txn) != checksum:
                        raise CorruptLogError(self.path, pos, "CRC check failed")
                    records.append(LogRecord(pos, zxid, txn))
                elif adler32(view[body:stop]) != checksum:
                    raise CorruptLogError(self.path, pos, "CRC check failed")
                if last_zxid is not None and zxid <= last_zxid:
                    raise CorruptLogError(self.path, pos, f"zxid {zxid:#x} does not follow {last_zxid:#x}")
                last_zxid = zxid
                pos = stop + 1
            return LogScan(self.path, records, pos, False, True)
        finally:
            view.release()

    def _bad(self, pos: int, last_zxid: int | None, records: list[LogRecord], why: str) -> LogScan:
        """A record that is not whole: a torn tail if it really is the last thing in the file."""
        follower = self._valid_record_after(pos, last_zxid)
        if follower is not None:
            raise CorruptLogError(self.path, pos, f"{why}, yet a valid record follows at offset {follower}")
        length = self._complete_length(pos)
        if length is not None:
            reason = f"{why}, but its checksum fits a whole record of length {length}: damaged, not torn"
            raise CorruptLogError(self.path, pos, reason)
        return LogScan(self.path, records, pos, True, True)

    def _valid_record_after(self, pos: int, last_zxid: int | None) -> int | None:
        """Offset of a checksum-valid record starting after pos, if a cheap search finds one.

        It looks for a 'B' and the zero high half of the next checksum, which
        finds every record whose predecessor's last byte survived; for the
        zxids that could come next; and for a record ending the data.
        """
        # Each candidate is an offset and the distance from it to the record start.
        needles = [(_RECORD_BOUNDARY, 1)]
        for zxid in sorted(self._next_zxids(pos, last_zxid)):
            needles.append((_LONG.pack(zxid), -(RECORD_PREFIX + TXN_ZXID_OFFSET)))
        mm, data_end = self.mm, self.data_end
        for needle, to_start in needles:
            hit = mm.find(needle, pos + 1 - to_start, data_end)
            while hit >= 0:
                if self._is_valid_record(hit + to_start):
                    return hit + to_start
                hit = mm.find(needle, hit + 1, data_end)
        return self._record_ending_the_data(pos)

    def _record_ending_the_data(self, pos: int) -> int | None:
        """A valid record after pos whose 'B' is the last nonzero byte: the one case the
        searches above miss is a single record left after a hole ending on a record boundary."""
        mm, last = self.mm, self.data_end - 1
        if mm[last] != END_OF_RECORD:
            return None
        unpack_int = _INT.unpack_from
        longest = min(MAX_TXN_SIZE, last - RECORD_PREFIX - (pos + 1))
        for length in range(TXN_HEADER_SIZE, longest + 1):
            start = last - RECORD_PREFIX - length
            if unpack_int(mm, start + 8)[0] == length and self._is_valid_record(start):
                return start
        return None

    def _next_zxids(self, pos: int, last_zxid: int | None) -> set[int]:
        zxids: set[int] = set()
        for base in self._zxid_bases(pos, last_zxid):
            next_epoch = first_zxid_of(epoch_of(base) + 1)
            for step in range(1, _ZXID_LOOKAHEAD + 1):
                zxids.update((base + step, next_epoch + step))
        return {zxid for zxid in zxids if 0 < zxid < 1 << 63}

    def _zxid_bases(self, pos: int, last_zxid: int | None) -> set[int]:
        bases: set[int] = set()
        if last_zxid is not None:
            bases.add(last_zxid)
        else:
            first = zxid_in_name(os.path.basename(self.path), LOG_PREFIX)
            if first is not None:  # the file is named after its first zxid
                bases.add(first - 1)
        zxid_at = pos + RECORD_PREFIX + TXN_ZXID_OFFSET
        if zxid_at + 8 <= self.size:  # the bad record's own zxid, if it got that far
            bases.add(_LONG.unpack_from(self.mm, zxid_at)[0])
        return bases

    def _is_valid_record(self, start: int) -> bool:
        if start < HEADER_SIZE or start + RECORD_PREFIX > self.size:
            return False
        checksum, length = _PREFIX.unpack_from(self.mm, start)
        stop = start + RECORD_PREFIX + length
        if not TXN_HEADER_SIZE <= length <= MAX_TXN_SIZE or stop >= self.size:
            return False
        if self.mm[stop] != END_OF_RECORD:
            return False
        return zlib.adler32(self.mm[start + RECORD_PREFIX : stop]) == checksum

    def _complete_length(self, pos: int) -> int | None:
        """A length at which the stored checksum fits the txn and a nonzero end byte follows.

        A bit flip in the length or in the 'B' of a whole record lands here; a
        record whose end was never written (zeros, or EOF) does not.
        """
        body = pos + RECORD_PREFIX
        if body > self.size:
            return None
        checksum = _PREFIX.unpack_from(self.mm, pos)[0]
        if not 0 <= checksum <= 0xFFFFFFFF:
            return None
        limit = min(self.data_end - 1 - body, MAX_TXN_SIZE)  # the end byte must be nonzero
        if limit < TXN_HEADER_SIZE:
            return None
        tail = self.mm[body : body + limit + 1]
        return _prefix_with_adler32(tail, checksum, TXN_HEADER_SIZE, limit)


def _prefix_with_adler32(data: bytes, checksum: int, shortest: int, longest: int) -> int | None:
    """The first length in [shortest, longest] whose prefix of data has this Adler32
    and is followed by a nonzero byte."""
    want_a, want_b = checksum & 0xFFFF, checksum >> 16
    running = zlib.adler32(data[:shortest - 1])
    a, b = running & 0xFFFF, running >> 16
    for length in range(shortest, longest + 1):
        a = (a + data[length - 1]) % _ADLER_MOD
        b = (b + a) % _ADLER_MOD
        if a == want_a and b == want_b and data[length]:
            return length
    return None
