"""A Zab replica (zabd.quorum.roles.Replica) on the simulated disk.

The tree lives in memory; the txn log is a SimTxnLog, the epochs are epoch
files, and a snapshot is the SNAP stream of the tree in a file named after
its zxid, all on one MemoryDisk. A crash of that disk followed by a new
``SimReplica`` on it is a restart: the newest snapshot plus the durable log.
"""
from __future__ import annotations

import posixpath
from collections.abc import Callable, Iterator

from zabd.core.datatree import DataTree
from zabd.quorum.replicastate import ReplicaState
from zabd.quorum.snapstream import SnapshotStream, SnapshotStreamDecoder, snapshot_stream_chunks
from zabd.storage.epochs import (
    ACCEPTED_EPOCH,
    CURRENT_EPOCH,
    TEMP_SUFFIX,
    UPDATING_EPOCH,
    EpochFileError,
    epoch_of,
)
from zabd.storage.layout import SNAPSHOT_PREFIX, VERSION_DIR, snapshot_name, zxid_in_name
from zabd.storage.truncate import TruncateError
from zabd.testing.memdisk import MemoryDisk, MemoryEpochStore
from zabd.testing.memlog import SimTxnLog
from zabd.testing.simulation import Scope


class SimReplica(ReplicaState):
    """A Replica (zabd.quorum.roles) on a MemoryDisk: its txn log, epochs and snapshots survive crashes as a disk's
    would."""

    def __init__(self, scope: Scope, disk: MemoryDisk, *, commit_log_count: int = 500,
                 fsync_ms: tuple[int, int] = (1, 10)) -> None:
        super().__init__(commit_log_count)
        self.disk = disk
        self.txn_log = SimTxnLog(scope, disk, fsync_ms=fsync_ms)
        self.epochs = MemoryEpochStore(disk)
        self._durable: Callable[[int], None] = lambda zxid: None
        self.txn_log.set_durable_callback(lambda zxid: self._durable(zxid))
        self._load()
        last_epoch = epoch_of(self._last_logged)
        self._current = self._read_epoch(CURRENT_EPOCH, last_epoch)
        self._check_current_epoch(last_epoch)
        self._accepted = self._read_epoch(ACCEPTED_EPOCH, last_epoch)

    # -- loading ---------------------------------------------------------------

    def _load(self) -> None:
        self.tree, self._sessions = DataTree(), {}
        snapshots = sorted(
            (zxid, name) for name in self.disk.listdir(VERSION_DIR)
            if (zxid := zxid_in_name(name, SNAPSHOT_PREFIX)) is not None
        )
        if snapshots:
            zxid, name = snapshots[-1]
            decoder = SnapshotStreamDecoder()
            decoder.feed(self.disk.read(posixpath.join(VERSION_DIR, name)))
            assert decoder.result is not None, f"{name} is not a whole snapshot"
            self.tree, self._sessions = decoder.result.tree, dict(decoder.result.sessions)
            self.tree.last_processed_zxid = zxid
        records = self.txn_log.records()
        self.committed.clear()
        for zxid, txn in records:
            if zxid > self.tree.last_processed_zxid:
                self._replay(txn)
        self.committed.refill(records[-self.committed.capacity:])
        self._unapplied.clear()
        self._last_logged = max(self.tree.last_processed_zxid, records[-1][0] if records else 0)

    def _check_current_epoch(self, last_epoch: int) -> None:
        """zabd.storage.epochs.read_epochs's rules: the marker, the temp file, or a startup error."""
        marker = posixpath.join(VERSION_DIR, UPDATING_EPOCH)
        if self.disk.exists(marker):
            if last_epoch > self._current:
                self._store_epoch(CURRENT_EPOCH, last_epoch)
                self._current = last_epoch
            self._store_updating_epoch(False)
        if last_epoch > self._current:
            path = posixpath.join(VERSION_DIR, CURRENT_EPOCH)
            temp = path + TEMP_SUFFIX
            if not self.disk.exists(temp):
                raise EpochFileError(path, f"the current epoch {self._current} is older than the last zxid's "
                                     f"epoch {last_epoch}")
            self._current = int(self.disk.read(temp).decode("ascii"))
            self._store_epoch(CURRENT_EPOCH, self._current)

    def _read_epoch(self, name: str, default: int) -> int:
        value = self.epochs.read_epoch(name)
        if value is None:
            self.epochs.write_epoch(name, default)
            return default
        return value

    # -- the Replica protocol --------------------------------------------------

    def _store_epoch(self, name: str, epoch: int) -> None:
        self.epochs.write_epoch(name, epoch)

    def _store_updating_epoch(self, present: bool) -> None:
        path = posixpath.join(VERSION_DIR, UPDATING_EPOCH)
        if present:
            self.disk.write(path, b"")
            self.disk.fsync(path)
        elif self.disk.exists(path):
            self.disk.unlink(path)
        else:
            return
        self.disk.fsync_dir(VERSION_DIR)

    @property
    def appends_in_flight(self) -> bool:
        return self.txn_log.in_flight

    def set_durable_callback(self, durable: Callable[[int], None]) -> None:
        self._durable = durable

    def log(self, zxid: int, txn: bytes) -> None:
        self.txn_log.append_bytes(zxid, txn)
        self._logged(zxid, txn)

    def truncate(self, zxid: int) -> None:
        self.txn_log.truncate_after(zxid)
        for name in self.disk.listdir(VERSION_DIR):
            snap_zxid = zxid_in_name(name, SNAPSHOT_PREFIX)
            if snap_zxid is not None and snap_zxid > zxid:
                self.disk.unlink(posixpath.join(VERSION_DIR, name))
        self.disk.fsync_dir(VERSION_DIR)
        self._load()
        self._installed_zxid = -1
        if self.tree.last_processed_zxid != zxid:
            # As DiskReplica: the files cannot land on zxid (below a SNAP's snapshot); the sync ends.
            raise TruncateError(VERSION_DIR, zxid, f"the files reload to 0x{self.tree.last_processed_zxid:x}")

    def install(self, snapshot: SnapshotStream, zxid: int) -> None:
        self._take_snapshot(snapshot, zxid)

    def reload(self) -> None:
        if self.txn_log.in_flight:
            raise RuntimeError("reload with appends still in flight")
        self._load()
        self._installed_zxid = -1
        self.txn_log.roll()
        self.txn_log.last_zxid = self._last_logged

    def save_snapshot(self) -> None:
        zxid = self.tree.last_processed_zxid
        path = posixpath.join(VERSION_DIR, snapshot_name(zxid))
        self.disk.write(path, b"".join(snapshot_stream_chunks(self.tree, self._sessions)))
        self.disk.fsync(path)
        self.disk.fsync_dir(VERSION_DIR)
        self._snapshot_saved()

    def _snapshot_saved(self) -> None:
        """After a SNAP's snapshot: the log below it is this peer's old history (DiskReplica does the same)."""
        if self._installed_zxid >= 0:
            self.txn_log.drop_through(self._installed_zxid)
            self._installed_zxid = -1

    def snapshot_stream(self) -> tuple[int, Iterator[bytes]]:
        return self.tree.last_processed_zxid, snapshot_stream_chunks(self.tree, self._sessions)

    def on_disk_history(self) -> None:
        return None  # learners behind the committed log get a SNAP
