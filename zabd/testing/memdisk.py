# -*- test-case-name: tests.unit.test_simulation -*-
"""An in-memory disk that loses what was not synced when its node crashes, and a txn log on it.

What :class:`MemoryDisk` models, after POSIX rather than any one file system:

- A file's bytes as written are what the running process reads; ``fsync(path)``
  makes them durable. A crash brings every file back to its durable bytes.
  With ``torn_writes`` a file that only grew keeps a random prefix of its
  unsynced tail instead (a torn write); overwritten or shortened files do not.
- Names (create, ``rename``, ``unlink``) are durable only after
  ``fsync_dir`` of their directory: a crash brings back the directory as of
  its last fsync. ``rename`` is atomic. Directories exist implicitly.
- ``inject`` arms one I/O error (EIO, ENOSPC) for a later write or fsync: it
  raises :class:`DiskFault`, an OSError. A failed write may leave a prefix of
  its bytes (ENOSPC); a failed fsync makes nothing durable (later fsyncs of
  the same file may still succeed). A crash disarms what did not fire.

:class:`SimTxnLog` is a TxnLog (zabd.pipeline.sync) writing ZooKeeper's log
format onto a MemoryDisk with group commit, like zabd.persist.disklog's
GroupCommitLog; :class:`MemoryEpochStore` keeps acceptedEpoch/currentEpoch.
"""
from __future__ import annotations

import errno
import os
import posixpath
import random
import struct
import zlib
from dataclasses import dataclass, field
from typing import Callable

from zabd.jute.txns import Txn
from zabd.storage.epochs import TEMP_SUFFIX
from zabd.storage.layout import LOG_PREFIX, VERSION_DIR, log_name, zxid_in_name
from zabd.storage.logformat import (
    END_OF_RECORD, FILE_VERSION, HEADER_SIZE, LOG_MAGIC, RECORD_PREFIX, TXN_HEADER_SIZE, TXN_ZXID_OFFSET,
    CorruptLogError, LogRecord, encode_record, file_header,
)
from zabd.testing.simulation import Scope, Simulation

_HEADER = struct.Struct(">iiq")
_PREFIX = struct.Struct(">qi")
_LONG = struct.Struct(">q")


#: What ``MemoryDisk.inject`` can make fail: "write" (write, append) or "fsync" (fsync, fsync_dir).
DISK_OPS = ("write", "fsync")
DISK_ERRORS = (errno.EIO, errno.ENOSPC)


class DiskFault(OSError):
    """An I/O error injected on a MemoryDisk (``inject``); ``disk`` is the disk it came from."""

    def __init__(self, error: int, op: str, path: str, disk: MemoryDisk) -> None:
        super().__init__(error, f"{os.strerror(error)} (injected on {op})", path)
        self.op = op
        self.disk = disk


@dataclass(slots=True)
class _ArmedFault:
    op: str
    error: int
    countdown: int


@dataclass(eq=False, slots=True)
class _Inode:
    written: bytearray = field(default_factory=bytearray)
    durable: bytes = b""


class MemoryDisk:
    """Files by path, each with its written and its durable bytes; see the module docstring."""

    def __init__(self, rng: random.Random | None = None, *, torn_writes: bool = False) -> None:
        if torn_writes and rng is None:
            raise ValueError("torn writes need an rng to choose what survives")
        self.rng = rng
        self.torn_writes = torn_writes
        #: Goes up by one per crash: whatever was opened before it belongs to a dead process.
        self.generation = 0
        self._names: dict[str, _Inode] = {}
        self._durable_names: dict[str, _Inode] = {}
        self._armed: list[_ArmedFault] = []
        #: The injected faults that fired, oldest first.
        self.fired: list[DiskFault] = []

    def inject(self, op: str, error: int, *, after: int = 0) -> None:
        """Make the ``op`` after the next ``after`` ones ("write" or "fsync") fail once with ``error``."""
        if op not in DISK_OPS or after < 0:
            raise ValueError(f"bad fault {op} after {after}")
        self._armed.append(_ArmedFault(op, error, after))

    def disarm(self) -> None:
        """Forget every injected fault that has not fired."""
        self._armed.clear()

    def _fault(self, op: str, path: str) -> DiskFault | None:
        """The fault due for this ``op`` now, if one is armed (each armed fault counts its op down)."""
        if not self._armed:
            return None
        due = None
        for armed in self._armed:
            if armed.op == op:
                if armed.countdown == 0 and due is None:
                    due = armed
                elif armed.countdown > 0:
                    armed.countdown -= 1
        if due is None:
            return None
        self._armed.remove(due)
        fault = DiskFault(due.error, op, path, self)
        self.fired.append(fault)
        return fault

    def _short(self, fault: DiskFault, data: bytes) -> bytes:
        """What a failed write leaves: a prefix when the disk is full, nothing on EIO."""
        if fault.errno != errno.ENOSPC or not data or self.rng is None:
            return b""
        return data[:self.rng.randint(0, len(data) - 1)]

    def exists(self, path: str) -> bool:
        return path in self._names

    def read(self, path: str, *, durable: bool = False) -> bytes:
        """The bytes the process sees, or with ``durable`` those a crash now would leave."""
        names = self._durable_names if durable else self._names
        inode = names.get(path)
        if inode is None:
            raise FileNotFoundError(path)
        return inode.durable if durable else bytes(inode.written)

    def listdir(self, directory: str, *, durable: bool = False) -> list[str]:
        names = self._durable_names if durable else self._names
        return sorted(posixpath.basename(path) for path in names if posixpath.dirname(path) == directory)

    def write(self, path: str, data: bytes) -> None:
        """Create or empty the file, then write ``data``."""
        inode = self._names.get(path)
        if inode is None:
            inode = self._names[path] = _Inode()
        fault = self._fault("write", path) if self._armed else None
        if fault is not None:
            inode.written[:] = self._short(fault, data)
            raise fault
        inode.written[:] = data

    def append(self, path: str, data: bytes) -> None:
        inode = self._inode(path)
        fault = self._fault("write", path) if self._armed else None
        if fault is not None:
            inode.written += self._short(fault, data)
            raise fault
        inode.written += data

    def truncate(self, path: str, size: int) -> None:
        del self._inode(path).written[size:]

    def fsync(self, path: str) -> None:
        inode = self._inode(path)
        fault = self._fault("fsync", path) if self._armed else None
        if fault is not None:
            raise fault
        inode.durable = bytes(inode.written)

    def fsync_dir(self, directory: str) -> None:
        """Make the directory's entries as they are now durable (new, renamed and removed names)."""
        fault = self._fault("fsync", directory) if self._armed else None
        if fault is not None:
            raise fault
        for path in sorted(set(self._names) | set(self._durable_names)):  # sorted: str hashes vary per run
            if posixpath.dirname(path) == directory:
                if path in self._names:
                    self._durable_names[path] = self._names[path]
                else:
                    del self._durable_names[path]

    def rename(self, source: str, target: str) -> None:
        self._names[target] = self._inode(source)
        del self._names[source]

    def unlink(self, path: str) -> None:
        self._inode(path)
        del self._names[path]

    def crash(self) -> None:
        """Power loss: names and bytes go back to what was durable (with torn tails, if modelled)."""
        self.generation += 1
        self._armed.clear()
        self._names = dict(sorted(self._durable_names.items()))  # a fixed order of RNG draws per file
        for inode in {id(inode): inode for inode in self._names.values()}.values():
            tail = self._torn_tail(inode)
            inode.durable = inode.durable + tail
            inode.written = bytearray(inode.durable)

    def _torn_tail(self, inode: _Inode) -> bytes:
        durable, written = inode.durable, inode.written
        if self.rng is None or not self.torn_writes or len(written) <= len(durable):
            return b""
        if written[:len(durable)] != durable:
            return b""
        tail = bytes(written[len(durable):])
        return tail[:self.rng.randint(0, len(tail))]

    def _inode(self, path: str) -> _Inode:
        inode = self._names.get(path)
        if inode is None:
            raise FileNotFoundError(path)
        return inode


class MemoryEpochStore:
    """acceptedEpoch / currentEpoch on a MemoryDisk, written as ZooKeeper does: temp, fsync, rename, dir fsync."""

    def __init__(self, disk: MemoryDisk, directory: str = VERSION_DIR) -> None:
        self.disk = disk
        self.directory = directory

    def read_epoch(self, name: str) -> int | None:
        """The stored epoch, or None when the file does not exist."""
        path = posixpath.join(self.directory, name)
        if not self.disk.exists(path):
            return None
        return int(self.disk.read(path).decode("ascii"))

    def write_epoch(self, name: str, value: int) -> None:
        path = posixpath.join(self.directory, name)
        temp = path + TEMP_SUFFIX
        self.disk.write(temp, str(value).encode("ascii"))
        self.disk.fsync(temp)
        self.disk.rename(temp, path)
        self.disk.fsync_dir(self.directory)


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
