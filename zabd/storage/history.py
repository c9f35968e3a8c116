# -*- test-case-name: tests.unit.test_diskreplica -*-
"""The txn log and snapshots as history: what a leader sends a learner from disk.

:class:`DiskHistory` is the :class:`zabd.quorum.syncplan.OnDiskHistory` of a
data directory (rule 5 of protocol doc 4.5, ZKDatabase.getProposalsFromTxnLog
in 3.8); :func:`recent_records` gives the txns a committed log is refilled
with after a load. Both read the files with ``scan_log``.

The leader reads the log while its syncer thread may be appending to the
newest file. A half-written record there looks torn and ends the read; a
file that fails to scan (or that a purge removed) ends the history early,
which the sync planner treats as a gap and answers with a SNAP. Blocking
I/O: 3.8 reads it in the learner handler's thread, zabd where it is asked.
"""
from __future__ import annotations

import os
from collections.abc import Iterable, Iterator

from twisted.logger import Logger

from zabd.storage.layout import DataDirs
from zabd.storage.logformat import CorruptLogError, scan_log
from zabd.storage.snapformat import looks_like_snapshot

__all__ = ["DiskHistory", "recent_records"]

log = Logger()

#: (zxid, serialized txn entry): what a PROPOSAL packet carries.
Proposal = tuple[int, bytes]


def txn_log_storage_size(log_files: Iterable[tuple[int, int]], zxid: int) -> int:
    """3.8's ``FileTxnIterator.getStorageSize()`` for a read from ``zxid``.

    ``log_files`` are ``(zxid in the file name, size in bytes)``. The
    iterator picks the newest file starting at or before ``zxid`` (or the
    oldest file if none does) plus every later file, and has already opened
    the first by the time the size is asked, so only the later files count:
    with a single log file the size is 0 and the limit never applies.
    """
    starts = sorted(log_files)
    first = 0
    for index, (start, _size) in enumerate(starts):
        if start <= zxid:
            first = index
    return sum(size for _start, size in starts[first + 1:])


class DiskHistory:
    """A data directory's txn log and newest snapshot, read afresh on every call."""

    def __init__(self, dirs: DataDirs) -> None:
        self.dirs = dirs

    @property
    def first_zxid(self) -> int | None:
        """The zxid in the oldest log file's name (its first txn), None without a log."""
        files = self.dirs.logs()
        return files[0][0] if files else None

    def size_bytes_from(self, zxid: int) -> int:
        sizes = []
        for start, path in self.dirs.logs():
            try:
                sizes.append((start, os.path.getsize(path)))
            except FileNotFoundError:  # purged meanwhile
                continue
        return txn_log_storage_size(sizes, zxid)

    def snapshot_size(self) -> int:
        """The newest valid snapshot's size (FileSnap.findMostRecentSnapshot), 0 without one."""
        for _zxid, path in self.dirs.snapshots():
            if looks_like_snapshot(path):
                try:
                    return os.path.getsize(path)
                except FileNotFoundError:
                    continue
        return 0

    def proposals_from(self, zxid: int) -> Iterator[Proposal]:
        """Every txn from the start of the file holding ``zxid`` (or the oldest file), then
        every later file's, each as the serialized txn entry a PROPOSAL carries.

        A generator: the planner's ``close()`` stops it between files.
        """
        for _start, path in self.dirs.logs_from(zxid):
            try:
                records = scan_log(path).records
            except (CorruptLogError, OSError) as e:
                log.warn("Txn log history ends before {path}: {error}", path=path, error=str(e))
                return
            for record in records:
                yield record.zxid, record.txn


def recent_records(dirs: DataDirs, after: int, through: int, count: int) -> list[Proposal]:
    """The last ``count`` logged txns in ``(after, through]``, oldest first.

    What a load replays after its snapshot is what 3.8 puts in the committed
    log; only the newest files are read, back until ``count`` are found.
    """
    found: list[list[Proposal]] = []
    total = 0
    for _start, path in reversed(dirs.logs_from(after)):
        if total >= count:
            break
        wanted = [(r.zxid, r.txn) for r in scan_log(path, skip_through=after).records if r.zxid <= through]
        found.append(wanted)
        total += len(wanted)
    records = [record for chunk in reversed(found) for record in chunk]
    return records[-count:] if count else []
