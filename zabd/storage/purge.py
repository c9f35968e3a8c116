# -*- test-case-name: tests.unit.test_recovery -*-
"""Autopurge: keep the newest snapshots and the logs they need, delete the rest.

The rule is ZooKeeper's PurgeTxnLog: everything named below the oldest kept
snapshot goes, except the newest log that starts at or below it, since a log
is named after its first txn and that one may hold the txns after the snapshot.
"""
from __future__ import annotations

import os

from twisted.logger import Logger

from zabd.storage.layout import DataDirs
from zabd.storage.snapformat import looks_like_snapshot

log = Logger()

MIN_RETAIN = 3


def purge(dirs: DataDirs, retain: int) -> list[str]:
    """Delete what ``retain`` newest valid snapshots do not need; return the paths removed."""
    retain = max(retain, MIN_RETAIN)
    kept = [(zxid, path) for zxid, path in dirs.snapshots() if looks_like_snapshot(path)][:retain]
    if len(kept) < retain:
        return []
    oldest_kept = kept[-1][0]
    needed_logs = {path for _, path in dirs.logs_from(oldest_kept)}
    doomed = [path for zxid, path in dirs.snapshots() if zxid < oldest_kept]
    doomed += [path for zxid, path in dirs.logs() if zxid < oldest_kept and path not in needed_logs]
    for path in doomed:
        try:
            os.remove(path)
        except FileNotFoundError:
            continue
        log.info("Purged {path}", path=path)
    return doomed
