# -*- test-case-name: tests.unit.test_logwriter -*-
"""The txn log appender: buffers records, then writes, preallocates and fsyncs them as one batch.

It does blocking file I/O and is meant for one syncer thread.  Any OSError
propagates: the caller must stop the server rather than acknowledge a write
whose sync failed.
"""
from __future__ import annotations

import os
import struct
import time
from dataclasses import dataclass, field

from twisted.logger import Logger

from zabd.storage.layout import fsync_directory, log_name
from zabd.storage.logformat import (
    HEADER_SIZE,
    MAX_TXN_SIZE,
    TXN_HEADER_SIZE,
    TXN_ZXID_OFFSET,
    encode_record,
    file_header,
    scan_log,
)

_log = Logger()

#: ZooKeeper's zookeeper.preAllocSize default (65536 KiB).
DEFAULT_PREALLOC_BYTES = 64 * 1024 * 1024
#: ZooKeeper grows the file when a write starts this close to its allocated end.
_PREALLOC_MARGIN = 4096
_ZXID = struct.Struct(">q")


def padded_size(position: int, allocated: int, prealloc_bytes: int) -> int:
    """The file size ZooKeeper's FilePadding gives before a write at ``position``."""
    if prealloc_bytes > 0 and position + _PREALLOC_MARGIN >= allocated:
        if position > allocated:
            # Written past the preallocated end: restart the blocks after position.
            allocated = position + prealloc_bytes
            return allocated - allocated % prealloc_bytes
        return allocated + prealloc_bytes
    return allocated


@dataclass(eq=False)  # compared by identity
class _OpenLog:
    path: str
    fd: int
    position: int  # where the next record goes
    allocated: int  # file size, including preallocated zeros
    pending: list[bytes] = field(default_factory=list)  # encoded records not written yet
    new: bool = True  # its directory entry has not been synced yet


class LogWriter:
    """Appends txns to ``log_dir/log.<first zxid>`` files in ZooKeeper 3.8's format."""

    def __init__(
        self,
        log_dir: str,
        *,
        prealloc_bytes: int = DEFAULT_PREALLOC_BYTES,
        force_sync: bool = True,
        dbid: int = 0,
    ) -> None:
        self.log_dir = log_dir
        self.prealloc_bytes = prealloc_bytes
        self.force_sync = force_sync
        self.dbid = dbid
        self.last_zxid = -1
        self._current: _OpenLog | None = None
        # Files written (or to be written) since the last commit, the current one last.
        self._unsynced: list[_OpenLog] = []

    @property
    def current_path(self) -> str | None:
        return None if self._current is None else self._current.path

    def append(self, zxid: int, txn: bytes) -> None:
        """Buffer one serialized txn; the first append after a roll creates the next file."""
        if zxid <= self.last_zxid:
            # scan_log rejects a log whose zxids do not increase.
            raise ValueError(f"zxid {zxid:#x} does not follow {self.last_zxid:#x}")
        if not TXN_HEADER_SIZE <= len(txn) <= MAX_TXN_SIZE:
            raise ValueError(f"txn of {len(txn)} bytes cannot be logged")
        if _ZXID.unpack_from(txn, TXN_ZXID_OFFSET)[0] != zxid:
            raise ValueError(f"txn header does not carry zxid {zxid:#x}")
        log = self._current
        if log is None:
            log = self._current = self._create(zxid)
        if not log.pending and log not in self._unsynced:
            self._unsynced.append(log)
        log.pending.append(encode_record(txn))
        self.last_zxid = zxid

    def commit(self) -> float:
        """Write every buffered record, fsync each file touched, close rolled-out files.

        Returns the seconds spent in fsync (0.0 with force_sync off).
        """
        for log in self._unsynced:
            self._write_pending(log)
        synced = 0.0
        if self.force_sync and self._unsynced:
            started = time.perf_counter()
            for log in self._unsynced:
                os.fdatasync(log.fd)
            if any(log.new for log in self._unsynced):
                fsync_directory(self.log_dir)
            synced = time.perf_counter() - started
        for log in self._unsynced:
            log.new = False
            if log is not self._current:
                os.close(log.fd)
        self._unsynced = []
        return synced

    def roll(self) -> None:
        """Make the next append start a new file; the old one is closed by the next commit."""
        log, self._current = self._current, None
        if log is not None and log not in self._unsynced:
            os.close(log.fd)

    def close(self) -> None:
        """Close every file.  Appends not yet committed are dropped: they were never acknowledged."""
        logs = list(self._unsynced)
        if self._current is not None and self._current not in logs:
            logs.append(self._current)
        self._current = None
        self._unsynced = []
        for log in logs:
            os.close(log.fd)

    def _create(self, zxid: int) -> _OpenLog:
        path = os.path.join(self.log_dir, log_name(zxid))
        flags = os.O_WRONLY | os.O_CREAT | getattr(os, "O_CLOEXEC", 0)
        try:
            fd = os.open(path, flags | os.O_EXCL, 0o644)
        except FileExistsError:
            # A crash after creating a file, or recovery cutting a torn first
            # record, leaves a log of this name with no whole record in it.
            # Only such a file may be replaced; one with records never is.
            if scan_log(path).records:
                raise FileExistsError(f"{path} already holds txns; refusing to overwrite it") from None
            fd = os.open(path, flags | os.O_TRUNC, 0o644)
        _log.info("Creating new log file: {path}", path=path)
        try:
            _pwrite_all(fd, file_header(self.dbid), 0)
        except BaseException:
            os.close(fd)
            raise
        return _OpenLog(path, fd, HEADER_SIZE, HEADER_SIZE)

    def _write_pending(self, log: _OpenLog) -> None:
        if not log.pending:
            return
        # Grow before the data, as ZooKeeper pads before each append, by one zero at the new end.
        position, allocated = log.position, log.allocated
        for record in log.pending:
            if position + _PREALLOC_MARGIN >= allocated:  # else padded_size leaves it
                allocated = max(padded_size(position, allocated, self.prealloc_bytes), allocated)
            position += len(record)
        if allocated > log.allocated:
            _pwrite_all(log.fd, b"\0", allocated - 1)
        _pwrite_all(log.fd, b"".join(log.pending), log.position)
        log.pending = []
        log.position = position
        log.allocated = max(allocated, position)


def _pwrite_all(fd: int, data: bytes, offset: int) -> None:
    view = memoryview(data)
    while view:
        written = os.pwrite(fd, view, offset)
        if written <= 0:
            raise OSError(f"short write at offset {offset}")
        view = view[written:]
        offset += written
