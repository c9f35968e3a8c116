# -*- test-case-name: tests.unit.test_recovery -*-
"""Rebuild the database from disk: the newest valid snapshot, then the logs.

ZooKeeper's rules (FileTxnSnapLog.restore), made stricter where they could
serve a silently shorter history:

- a torn last record is cut, but any other damage stops startup with the
  file and offset;
- replay must be contiguous: a missing txn between the snapshot and the logs,
  or inside the logs, stops startup instead of being skipped;
- the recovered zxid must reach every snapshot file's zxid, damaged or not,
  so falling back to an older snapshot never hides lost logs.
"""
from __future__ import annotations

import os
from dataclasses import dataclass, field
from typing import Callable

from twisted.logger import Logger

from zabd.core.datatree import DataTree
from zabd.core.zxid import counter_of, epoch_of
from zabd.jute.codec import JuteError
from zabd.jute.opcodes import OpCode
from zabd.jute.txns import CloseSessionTxn, CreateSessionTxn, Txn, TxnHeader
from zabd.storage.layout import SNAPSHOTS_TRIED, DataDirs
from zabd.storage.logformat import CorruptLogError, scan_log
from zabd.storage.snapformat import CorruptSnapshotError, LoadedSnapshot, load_snapshot, looks_like_snapshot

log = Logger()

EMPTY_SNAPSHOT = "No snapshot found, but there are log entries. Something is broken!"


class RecoveryError(Exception):
    """The data directory cannot be trusted: zabd must not serve from it."""


@dataclass
class Recovered:
    """The database rebuilt from disk: the tree, the sessions and how far the files reach."""

    tree: DataTree
    #: Global sessions and their timeouts (ms), as of the last applied txn.
    sessions: dict[int, int]
    #: zxid of the snapshot loaded, or -1 when recovery began from nothing.
    snapshot_zxid: int
    replayed: int = 0
    #: Sessions that owned ephemerals but were no longer open.
    dead_sessions: list[int] = field(default_factory=list)
    #: ZooKeeper's empty-database bootstrap: write snapshot.0 before serving.
    fresh: bool = False
    #: Replayed txns whose logged tree digest differs from the tree's (mntr's digest_mismatches_count).
    digest_mismatches: int = 0

    @property
    def needs_snapshot(self) -> bool:
        """Save the state before serving: it is not yet all on disk.

        The dead sessions' ephemerals are removed without a txn, so only a
        snapshot makes their removal durable (as ZooKeeper's loadData does).
        ZooKeeper snapshots at every start; when the state is the snapshot
        plus the logs, zabd snapshots in the background instead (see
        ``replayed``), which keeps a restart of a large tree short.
        """
        return self.fresh or bool(self.dead_sessions)


Progress = Callable[[int, int, int], None]


def recover(
    dirs: DataDirs,
    *,
    autocreate: bool = True,
    trust_empty_snapshot: bool = False,
    progress: Progress | None = None,
) -> Recovered:
    """Load the database, or raise RecoveryError naming what is wrong."""
    snapshot_files = dirs.snapshots()
    loaded, snap_zxid = _newest_valid_snapshot(snapshot_files, progress)
    if loaded is None:
        recovered = _without_snapshot(dirs, autocreate, trust_empty_snapshot)
    else:
        loaded.tree.last_processed_zxid = snap_zxid
        recovered = Recovered(loaded.tree, dict(loaded.sessions), snap_zxid)
    if not recovered.fresh:
        Replay(recovered, loaded.digest if loaded else None).run(dirs)
    last = recovered.tree.last_processed_zxid
    for zxid, path in snapshot_files:
        if zxid > last:
            raise RecoveryError(
                f"{path} names zxid 0x{zxid:x}, but the readable snapshots and logs end at 0x{last:x}: "
                "refusing to serve an older state")
    _drop_dead_sessions(recovered)
    return recovered


def _newest_valid_snapshot(
    files: list[tuple[int, str]], progress: Progress | None
) -> tuple[LoadedSnapshot | None, int]:
    candidates = [(zxid, path) for zxid, path in files if looks_like_snapshot(path)][:SNAPSHOTS_TRIED]
    failures = []
    for zxid, path in candidates:
        log.info("Reading snapshot {path}", path=path)
        try:
            return load_snapshot(path, progress), zxid
        except (CorruptSnapshotError, OSError) as e:
            log.warn("Problem reading snapshot {path}: {error}", path=path, error=str(e))
            failures.append(str(e))
    if failures:
        raise RecoveryError("No valid snapshot could be read; " + "; ".join(failures))
    return None, -1


def _without_snapshot(dirs: DataDirs, autocreate: bool, trust_empty_snapshot: bool) -> Recovered:
    if any(scan_log(path).records for _, path in dirs.logs()):
        if not trust_empty_snapshot:
            raise RecoveryError(f"{EMPTY_SNAPSHOT} (snapshots in {dirs.snap_dir}, logs in {dirs.log_dir})")
        log.warn("No snapshot found, but there are log entries. This should only be allowed during upgrading.")
        return Recovered(DataTree(), {}, -1)
    marker = dirs.initialize_marker
    if os.path.exists(marker):
        os.remove(marker)
        log.info("Initialize file found, an empty database will not block voting participation")
    elif not autocreate:
        raise RecoveryError(f"{dirs.snap_dir} holds no database and db.autocreate is false")
    return Recovered(DataTree(), {}, 0, fresh=True)


class Replay:
    """Apply the logged txns after the snapshot, checking that none is missing."""

    def __init__(self, recovered: Recovered, snapshot_digest: tuple[int, int] | None) -> None:
        self.recovered = recovered
        self.tree = recovered.tree
        #: The snapshot's digest is only comparable once replay reaches its zxid.
        self.snapshot_digest = snapshot_digest
        self.digest_mismatches = 0

    def run(self, dirs: DataDirs) -> None:
        files = dirs.logs_from(self.tree.last_processed_zxid)
        for _, path in files:
            self._replay_file(path, last_file=path == files[-1][1])
        if self.recovered.replayed:
            log.info("Replayed {count} txns from the logs, up to zxid 0x{zxid:x}",
                     count=self.recovered.replayed, zxid=self.tree.last_processed_zxid)

    def _replay_file(self, path: str, last_file: bool) -> None:
        tree = self.tree
        scan = scan_log(path, skip_through=tree.last_processed_zxid)
        if not scan.header_ok:
            if last_file and os.path.getsize(path) < 16:
                # ZOOKEEPER-2332: a log whose header never reached the disk holds nothing.
                log.warn("Removing {path}: it ends before its header", path=path)
                os.remove(path)
            return
        for record in scan.records:
            if record.zxid <= tree.last_processed_zxid:
                continue
            self._check_contiguous(path, record.offset, record.zxid)
            try:
                txn = Txn.from_bytes(record.txn)
            except (JuteError, ValueError) as e:
                raise CorruptLogError(path, record.offset, f"undecodable txn: {e}") from e
            self._apply(txn)
        if scan.torn:
            log.warn("Cutting a torn last record from {path} at offset {offset}", path=path, offset=scan.end)
            os.truncate(path, scan.end)

    def _check_contiguous(self, path: str, offset: int, zxid: int) -> None:
        last = self.tree.last_processed_zxid
        if zxid == last + 1:
            return
        # A new epoch restarts the counter; its first txn has counter 1.
        if epoch_of(zxid) > epoch_of(last) and counter_of(zxid) == 1:
            return
        raise CorruptLogError(path, offset, f"txn 0x{zxid:x} follows 0x{last:x}: the txns between are missing")

    def _apply(self, txn: Txn) -> None:
        header = txn.header
        sessions = self.recovered.sessions
        if header.type == OpCode.createSession and isinstance(txn.body, CreateSessionTxn):
            sessions[header.clientId] = txn.body.timeOut
        elif header.type == OpCode.closeSession:
            sessions.pop(header.clientId, None)
        self.tree.apply(txn)
        self.recovered.replayed += 1
        self._compare_digest(txn)

    def _compare_digest(self, txn: Txn) -> None:
        # As ZooKeeper does, a mismatch is reported, not fatal: the checksums
        # already vouch for the bytes, so it points at a replay bug.
        zxid = txn.header.zxid
        if self.snapshot_digest is not None:
            if zxid < self.snapshot_digest[0]:
                return
            expected: int | None = self.snapshot_digest[1] if zxid == self.snapshot_digest[0] else None
            self.snapshot_digest = None
            if expected is not None and expected != self.tree.digest.signed():
                self._mismatch(zxid, expected)
                return
        if txn.digest is not None and txn.digest.treeDigest != self.tree.digest.signed():
            self._mismatch(zxid, txn.digest.treeDigest)

    def _mismatch(self, zxid: int, expected: int) -> None:
        self.digest_mismatches += 1
        self.recovered.digest_mismatches += 1
        if self.digest_mismatches <= 10:
            log.error("Digest mismatch after replaying zxid 0x{zxid:x}: logged {expected}, tree {actual}",
                      zxid=zxid, expected=expected, actual=self.tree.digest.signed())


def _drop_dead_sessions(recovered: Recovered) -> None:
    """Remove the ephemerals of sessions that no longer exist (ZooKeeper's loadData)."""
    tree = recovered.tree
    zxid = tree.last_processed_zxid
    for session_id in sorted(tree.ephemerals):
        if session_id in recovered.sessions:
            continue
        recovered.dead_sessions.append(session_id)
        tree.apply(Txn(TxnHeader(session_id, 0, zxid, 0, OpCode.closeSession), CloseSessionTxn([])))
        log.info("Removed the ephemerals of dead session 0x{session:x}", session=session_id)
