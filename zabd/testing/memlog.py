# -*- test-case-name: tests.unit.test_simulation -*-
"""ZooKeeper's txn log on a :class:`~zabd.testing.memdisk.MemoryDisk`.

:class:`SimTxnLog` is a TxnLog (zabd.pipeline.sync) writing ZooKeeper's log
format onto a MemoryDisk with group commit in virtual time, like
zabd.persist.disklog's GroupCommitLog; :func:`parse_log` reads a log file's
bytes back, as recovery does; :class:`SimDiskHistory` is a leader's view of
the logs on the disk (zabd.storage.history.DiskHistory).
"""
from __future__ import annotations

import posixpath
import struct
import zlib
from collections.abc import Callable, Iterator

from zabd.jute.txns import Txn
from zabd.storage.history import txn_log_storage_size
from zabd.storage.layout import LOG_PREFIX, SNAPSHOT_PREFIX, VERSION_DIR, log_name, zxid_in_name
from zabd.storage.logformat import (
    END_OF_RECORD, FILE_VERSION, HEADER_SIZE, LOG_MAGIC, RECORD_PREFIX, TXN_HEADER_SIZE, TXN_ZXID_OFFSET,
    CorruptLogError, LogRecord, encode_record, file_header,
)
from zabd.testing.memdisk import MemoryDisk
from zabd.testing.simulation import Scope, Simulation

_HEADER = struct.Struct(">iiq")
_PREFIX = struct.Struct(">qi")
_LONG = struct.Struct(">q")


def parse_log(data: bytes, path: str = "<memory>") -> tuple[list[LogRecord], int]:
    """The whole records of one log file's bytes, and the offset after the last one.

    An incomplete last record is a torn tail, left out (zabd's recovery cuts
    it); a complete record that does not check out raises CorruptLogError.
    A file shorter than its header has no records and ends at 0.
    """
    if len(data) < HEADER_SIZE:
        return [], 0
    magic, version, _dbid = _HEADER.unpack_from(data, 0)
    if magic != LOG_MAGIC or version != FILE_VERSION:
        raise CorruptLogError(path, 0, f"not a version {FILE_VERSION} txn log")
    records: list[LogRecord] = []
    pos = HEADER_SIZE
    while pos + RECORD_PREFIX <= len(data):
        checksum, length = _PREFIX.unpack_from(data, pos)
        stop = pos + RECORD_PREFIX + length
        if stop >= len(data):
            break  # torn: the record's end never reached the disk
        txn = data[pos + RECORD_PREFIX:stop]
        if length < TXN_HEADER_SIZE or data[stop] != END_OF_RECORD or zlib.adler32(txn) != checksum:
            raise CorruptLogError(path, pos, "damaged record")
        records.append(LogRecord(pos, _LONG.unpack_from(txn, TXN_ZXID_OFFSET)[0], txn))
        pos = stop + 1
    return records, pos


#: From an fsync's end to its durable report (the syncer-to-reactor hop).
REPORT_DELAY_MS = 1


class SimTxnLog:
    """A TxnLog on a MemoryDisk with group commit in virtual time.

    Appends collect until the end of the current instant, then go to the
    disk as one batch (written, not yet durable); its fsync completes after a
    delay drawn from the RNG, and only then is its last zxid reported durable,
    so zxids are reported in order. Appends meanwhile form the next batch.
    A new log file (named after its first zxid) starts per instance, as
    ZooKeeper starts one per run, and on :meth:`roll`. The constructor does
    what recovery does to the files: it cuts torn tails.
    """

    def __init__(
        self, scheduler: Simulation | Scope, disk: MemoryDisk, directory: str = VERSION_DIR, *,
        fsync_ms: tuple[int, int] = (1, 10), dbid: int = 0,
    ) -> None:
        self.scheduler = scheduler
        self.disk = disk
        self.directory = directory
        self.fsync_ms = fsync_ms
        self.dbid = dbid
        self._generation = disk.generation
        self._durable: Callable[[int], None] = lambda zxid: None
        self._pending: list[tuple[int, bytes]] = []
        self._path: str | None = None
        self._flushing = False
        self._scheduled = False
        self._unreported = 0  # batches fsynced whose durable report has not reached the owner yet
        self.last_zxid = self._recover()

    def set_durable_callback(self, durable: Callable[[int], None]) -> None:
        self._durable = durable

    def append(self, txn: Txn) -> None:
        self.append_bytes(txn.header.zxid, txn.to_bytes())

    def append_bytes(self, zxid: int, txn: bytes) -> None:
        if self._dead():
            return
        self._pending.append((zxid, encode_record(txn)))
        self.last_zxid = zxid
        if not self._flushing and not self._scheduled:
            self._scheduled = True  # every append of this instant shares the fsync
            self.scheduler.call_later(0, self._flush)

    def roll(self) -> None:
        """The next append starts a new log file."""
        self._path = None

    def log_files(self, *, durable: bool = False) -> list[str]:
        """Paths of the log files, oldest first."""
        names = [(zxid_in_name(name, LOG_PREFIX), name) for name in self.disk.listdir(self.directory, durable=durable)]
        return [posixpath.join(self.directory, name) for zxid, name in sorted((z, n) for z, n in names if z is not None)]

    def records(self) -> list[tuple[int, bytes]]:
        """(zxid, txn bytes) of every durable whole record: what a restart after a crash now would read."""
        found: list[tuple[int, bytes]] = []
        for path in self.log_files(durable=True):
            records, _end = parse_log(self.disk.read(path, durable=True), path)
            found.extend((record.zxid, record.txn) for record in records)
        return found

    @property
    def in_flight(self) -> bool:
        """Appends not yet reported durable."""
        return bool(self._pending) or self._flushing or self._unreported > 0

    def drop_through(self, zxid: int) -> None:
        """Remove every log file holding only txns at or below ``zxid``, oldest first (zabd.storage.truncate)."""
        for path in self.log_files():
            records, _end = parse_log(self.disk.read(path), path)
            if any(record.zxid > zxid for record in records):
                break
            self.disk.unlink(path)
            self.disk.fsync_dir(self.directory)
            if path == self._path:
                self._path = None

    def truncate_after(self, zxid: int) -> None:
        """Remove every record above ``zxid`` durably (FileTxnLog.truncate); the next append starts a new file."""
        if self.in_flight:
            raise RuntimeError("truncate_after with appends still in flight")
        for path in self.log_files():
            records, _end = parse_log(self.disk.read(path), path)
            kept = [record for record in records if record.zxid <= zxid]
            if not kept:
                self.disk.unlink(path)
            elif len(kept) < len(records):
                self.disk.truncate(path, records[len(kept)].offset)
                self.disk.fsync(path)
        self.disk.fsync_dir(self.directory)
        self._path = None
        self.last_zxid = min(self.last_zxid, zxid)

    def _dead(self) -> bool:
        """The disk crashed since this log was opened: its process is gone and does nothing more."""
        return self.disk.generation != self._generation

    def _recover(self) -> int:
        last_zxid = -1
        for path in self.log_files():
            records, end = parse_log(self.disk.read(path), path)
            if not records:
                self.disk.unlink(path)  # created, but no whole record reached the disk
            elif end < len(self.disk.read(path)):
                self.disk.truncate(path, end)
                self.disk.fsync(path)
            if records:
                last_zxid = max(last_zxid, records[-1].zxid)
        self.disk.fsync_dir(self.directory)
        return last_zxid

    def _flush(self) -> None:
        self._scheduled = False
        if self._flushing or not self._pending or self._dead():
            return
        batch, self._pending = self._pending, []
        new_file = self._path is None
        if self._path is None:
            self._path = posixpath.join(self.directory, log_name(batch[0][0]))
            if self.disk.exists(self._path):
                raise RuntimeError(f"{self._path} already holds txns; refusing to overwrite it")
            self.disk.write(self._path, file_header(self.dbid))
        self.disk.append(self._path, b"".join(record for _zxid, record in batch))
        self._flushing = True
        delay = self.scheduler.rng.randint(*self.fsync_ms)
        self.scheduler.call_later(delay, self._synced, self._path, new_file, batch[-1][0])

    def _synced(self, path: str, new_file: bool, zxid: int) -> None:
        if self._dead():
            return
        self.disk.fsync(path)
        if new_file:
            self.disk.fsync_dir(self.directory)
        self._flushing = False
        if self._pending:
            self._flush()  # the next batch's fsync overlaps with answering this one
        # The report reaches the owner a moment later, as the syncer thread's callFromThread
        # does: a crash in between leaves txns durable that their process never heard of.
        self._unreported += 1
        self.scheduler.call_later(REPORT_DELAY_MS, self._report, zxid)

    def _report(self, zxid: int) -> None:
        if self._dead():
            return
        self._unreported -= 1
        self._durable(zxid)


class SimDiskHistory:
    """zabd.storage.history.DiskHistory over a MemoryDisk's files (as the process sees them)."""

    def __init__(self, disk: MemoryDisk) -> None:
        self.disk = disk

    def _logs(self) -> list[tuple[int, str]]:
        names = [(zxid_in_name(name, LOG_PREFIX), name) for name in self.disk.listdir(VERSION_DIR)]
        return sorted((zxid, posixpath.join(VERSION_DIR, name)) for zxid, name in names if zxid is not None)

    @property
    def first_zxid(self) -> int | None:
        files = self._logs()
        return files[0][0] if files else None

    def size_bytes_from(self, zxid: int) -> int:
        return txn_log_storage_size([(start, len(self.disk.read(path))) for start, path in self._logs()], zxid)

    def snapshot_size(self) -> int:
        snapshots = [(zxid_in_name(name, SNAPSHOT_PREFIX), name) for name in self.disk.listdir(VERSION_DIR)]
        newest = max(((zxid, name) for zxid, name in snapshots if zxid is not None), default=None)
        return len(self.disk.read(posixpath.join(VERSION_DIR, newest[1]))) if newest else 0

    def proposals_from(self, zxid: int) -> Iterator[tuple[int, bytes]]:
        files = self._logs()
        floor = max((start for start, _ in files if start <= zxid), default=0)
        for start, path in files:
            if start < floor:
                continue
            try:
                records, _end = parse_log(self.disk.read(path), path)
            except CorruptLogError:
                return
            for record in records:
                yield record.zxid, record.txn
