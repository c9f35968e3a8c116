# -*- test-case-name: tests.unit.test_truncate -*-
"""Cutting the txn log back to a zxid (a learner's TRUNC, protocol doc 6.5).

ZooKeeper 3.8 (FileTxnLog.truncate) opens its log iterator at the target,
cuts the file after the first record whose zxid is at or above it and
deletes every later log file. It keeps that record even when its zxid is
above the target (the target was never logged), and it leaves snapshots
newer than the target, so the reload can come from a state past the cut.
zabd is stricter on both counts:

- the target must be something a reload lands on exactly: a logged txn, or
  a valid snapshot's zxid; and a valid snapshot at or below it must remain.
  Anything else raises TruncateError before a file is touched;
- every snapshot newer than the target is deleted.

The steps run in an order where a crash part-way leaves a directory that
recovers to a prefix of the old history: snapshots first, then the later
log files newest first, then the cut. Blocking I/O, like the rest of
``zabd.storage``.
"""
from __future__ import annotations

import os
from dataclasses import dataclass

from twisted.logger import Logger

from zabd.storage.layout import DataDirs, fsync_directory
from zabd.storage.logformat import RECORD_PREFIX, scan_log
from zabd.storage.snapformat import looks_like_snapshot

__all__ = ["TruncateError", "Truncation", "carry_out", "drop_after", "plan_truncation", "truncate_log"]

log = Logger()


class TruncateError(Exception):
    """The log cannot be truncated to that zxid; nothing was changed."""

    def __init__(self, path: str, zxid: int, reason: str) -> None:
        super().__init__(path, zxid, reason)
        self.path = path
        self.zxid = zxid
        self.reason = reason

    def __str__(self) -> str:
        return f"cannot truncate the txn log to 0x{self.zxid:x} ({self.path}): {self.reason}"


@dataclass(frozen=True, slots=True)
class Truncation:
    """What a truncation changes: decided first, then carried out."""

    zxid: int
    #: The log file holding the last txn kept, and the length it is cut to (None: no cut).
    cut: tuple[str, int] | None
    #: Log files removed whole (every txn in them is above ``zxid``), newest first.
    removed_logs: tuple[str, ...]
    #: Snapshots named above ``zxid``.
    removed_snapshots: tuple[str, ...]
    #: A txn with exactly ``zxid`` is in the log.
    logged: bool


def truncate_log(dirs: DataDirs, zxid: int) -> Truncation:
    """Keep exactly the history up to ``zxid`` (TRUNC), or raise TruncateError.

    After it, recovery of ``dirs`` ends at ``zxid``.
    """
    plan = plan_truncation(dirs, zxid)
    _check_reload_lands_on_target(dirs, plan)
    carry_out(dirs, plan)
    return plan


def drop_after(dirs: DataDirs, zxid: int) -> Truncation:
    """Remove every logged txn and every snapshot above ``zxid``, without the target checks.

    For a SNAP from the leader: what this server logged past the leader's
    state is not in the leader's history, so it was never committed.
    """
    plan = plan_truncation(dirs, zxid)
    carry_out(dirs, plan)
    return plan


def plan_truncation(dirs: DataDirs, zxid: int) -> Truncation:
    """Read the logs and decide what goes (CorruptLogError if one is damaged)."""
    if zxid < 0:
        raise TruncateError(dirs.log_dir, zxid, "a zxid cannot be negative")
    holder: str | None = None  # the newest log starting at or before zxid: the one that can hold it
    later: list[str] = []
    for start, path in dirs.logs():
        if start <= zxid:
            holder = path
        else:
            later.append(path)
    cut: tuple[str, int] | None = None
    logged = False
    if holder is not None:
        scan = scan_log(holder)
        kept = [record for record in scan.records if record.zxid <= zxid]
        if not kept:
            later.insert(0, holder)  # empty, or only newer txns: nothing of it stays
        else:
            last = kept[-1]
            logged = last.zxid == zxid
            if len(kept) < len(scan.records) or scan.torn:
                # Cut right after the last txn kept, preallocated zeros and all, as 3.8 does.
                cut = (holder, last.offset + RECORD_PREFIX + len(last.txn) + 1)
    snapshots = tuple(path for snap_zxid, path in dirs.snapshots() if snap_zxid > zxid)
    return Truncation(zxid, cut, tuple(reversed(later)), snapshots, logged)


def carry_out(dirs: DataDirs, plan: Truncation) -> None:
    """Make the plan durable, in the crash-safe order of the module doc."""
    for path in plan.removed_snapshots:
        _remove(path)
    if plan.removed_snapshots:
        fsync_directory(dirs.snap_dir)
    for path in plan.removed_logs:
        # One directory sync each: a crash must not leave a later file without an earlier one.
        _remove(path)
        fsync_directory(dirs.log_dir)
    if plan.cut is not None:
        path, length = plan.cut
        with open(path, "r+b") as f:
            f.truncate(length)
            os.fsync(f.fileno())
        log.info("Truncated {path} to {length} bytes: its last txn is now 0x{zxid:x}",
                 path=path, length=length, zxid=plan.zxid)


def drop_through(dirs: DataDirs, zxid: int) -> list[str]:
    """Remove every log file that holds only txns at or below ``zxid``, oldest first.

    After a SNAP, once the snapshot at ``zxid`` is durable: what the log holds
    below it is this server's old history, which may differ from the leader's
    (an uncommitted txn of an older epoch). Left in place, a sync served from
    the log could send a DIFF from it (ZOOKEEPER-3911's kind).
    """
    removed = []
    for _start, path in dirs.logs():
        if any(record.zxid > zxid for record in scan_log(path).records):
            break
        _remove(path)
        fsync_directory(dirs.log_dir)  # oldest first, one at a time: a crash leaves a suffix
        removed.append(path)
    if removed:
        log.info("Removed {count} log files below the snapshot at 0x{zxid:x}", count=len(removed), zxid=zxid)
    return removed


def _check_reload_lands_on_target(dirs: DataDirs, plan: Truncation) -> None:
    zxid = plan.zxid
    valid = [(snap_zxid, path) for snap_zxid, path in dirs.snapshots() if looks_like_snapshot(path)]
    base = next(((snap_zxid, path) for snap_zxid, path in valid if snap_zxid <= zxid), None)
    if base is None:
        oldest = valid[-1][1] if valid else dirs.snap_dir
        raise TruncateError(oldest, zxid, "no valid snapshot at or below it would remain to load")
    if plan.logged or base[0] == zxid:
        return
    holder = plan.cut[0] if plan.cut is not None else _holder_name(dirs, zxid)
    raise TruncateError(holder, zxid, "no txn with that zxid was logged and no snapshot is named after it")


def _holder_name(dirs: DataDirs, zxid: int) -> str:
    """The log file a missing txn would be in, for the error message."""
    files = dirs.logs()
    starting_before = [path for start, path in files if start <= zxid]
    if starting_before:
        return starting_before[-1]
    return files[0][1] if files else dirs.log_dir


def _remove(path: str) -> None:
    try:
        os.remove(path)
    except FileNotFoundError:
        return
    log.info("Removed {path}: it is past the truncation point", path=path)

