# -*- test-case-name: tests.unit.test_diskreplica -*-
"""A Zab replica (zabd.quorum.roles.Replica) on the real data directory.

The tree and session table live in memory; txns go to the txn log through
the GroupCommitLog (whose syncer thread reports them durable on the reactor
thread); the epochs, snapshots and truncations are ZooKeeper 3.8's files.
It is what ``zabd.testing.simreplica.SimReplica`` is on the simulated disk.

A few calls block the reactor on purpose, as ZooKeeper blocks the thread
that makes them: the epoch files (QuorumPeer writes them synchronously),
``save_snapshot`` (the learner snapshots in its own thread at NEWLEADER,
before it acknowledges), and TRUNC's truncate-and-reload. Each is rare and
happens while the peer is not serving.
"""
from __future__ import annotations

import os
from collections.abc import Callable, Iterator

from twisted.logger import Logger

from zabd.core.datatree import DataTree
from zabd.quorum.committedlog import DEFAULT_COMMIT_LOG_COUNT
from zabd.quorum.replicastate import ReplicaState
from zabd.quorum.snapstream import SnapshotStream, snapshot_stream_chunks
from zabd.persist.disklog import GroupCommitLog
from zabd.storage.epochs import mark_updating_epoch, read_epochs, write_epoch
from zabd.storage.history import DiskHistory, recent_records
from zabd.storage.layout import DataDirs, snapshot_name
from zabd.storage.recovery import Recovered, recover
from zabd.storage.snapfile import write_snapshot
from zabd.storage.snapformat import snapshot_chunks
from zabd.storage.truncate import TruncateError, drop_after, drop_through, truncate_log

__all__ = ["AppendsInFlightError", "DiskReplica"]

log = Logger()


class AppendsInFlightError(RuntimeError):
    """The log cannot be rewritten while appends are still on their way to the disk."""


class DiskReplica(ReplicaState):
    """The local database as the Zab roles drive it, on ``dirs``."""

    def __init__(
        self,
        dirs: DataDirs,
        recovered: Recovered,
        txn_log: GroupCommitLog,
        *,
        commit_log_count: int = DEFAULT_COMMIT_LOG_COUNT,
    ) -> None:
        super().__init__(commit_log_count)
        self.dirs = dirs
        self.txn_log = txn_log
        # The newest zxid handed to the log and the newest it reported durable:
        # equal when nothing is in flight (a batch reports its last zxid only).
        self._appended = self._synced = -1
        self._durable: Callable[[int], None] = lambda zxid: None
        txn_log.set_durable_callback(self._log_durable)
        #: Told of the new tree and sessions after truncate or install.
        self.on_reload: Callable[[DataTree, dict[int, int]], None] = lambda tree, sessions: None
        #: Called before the files are rewritten (truncate, install): a
        #: background snapshot of the old state must not land after it.
        self.before_rewrite: Callable[[], None] = lambda: None
        self._history = DiskHistory(dirs)
        self._load(recovered)
        epochs = read_epochs(dirs.snap_dir, self._last_logged)
        self._accepted, self._current = epochs.accepted, epochs.current

    def _load(self, recovered: Recovered) -> None:
        self.tree, self._sessions = recovered.tree, recovered.sessions
        zxid = self.tree.last_processed_zxid
        # 3.8 refills its committed log with the txns replayed after the snapshot.
        self.committed.refill(recent_records(self.dirs, recovered.snapshot_zxid, zxid, self.committed.capacity + 1))
        self._unapplied.clear()
        self._last_logged = zxid

    # -- state ------------------------------------------------------------------

    def _store_epoch(self, name: str, epoch: int) -> None:
        # Synchronous on the reactor, as QuorumPeer.setAcceptedEpoch is on its thread.
        write_epoch(self.dirs.snap_dir, name, epoch)

    def _store_updating_epoch(self, present: bool) -> None:
        mark_updating_epoch(self.dirs.snap_dir, present)

    def on_disk_history(self) -> DiskHistory:
        return self._history

    @property
    def appends_in_flight(self) -> bool:
        return self._appended != self._synced

    # -- the log ------------------------------------------------------------------

    def set_durable_callback(self, durable: Callable[[int], None]) -> None:
        self._durable = durable

    def _log_durable(self, zxid: int) -> None:
        self._synced = zxid
        self._durable(zxid)

    def log(self, zxid: int, txn: bytes) -> None:
        self.txn_log.append_bytes(zxid, txn)
        self._appended = zxid
        self._logged(zxid, txn)

    # -- rewriting history ----------------------------------------------------------

    def truncate(self, zxid: int) -> None:
        """TRUNC: cut the files back to ``zxid`` and reload from them (blocks the reactor).

        When the files cannot land exactly on ``zxid`` (it lies below the snapshot
        of a SNAP, whose history they do not hold), everything above it still
        goes and the reload takes the newest state below it; TruncateError then
        ends the sync, and the next one starts from what the peer really holds.
        """
        self._check_idle("truncate")
        self.before_rewrite()
        unreachable: TruncateError | None = None
        try:
            truncate_log(self.dirs, zxid)
        except TruncateError as e:
            unreachable = e
            drop_after(self.dirs, zxid)
        recovered = recover(self.dirs)
        self._restart_log_at(recovered.tree.last_processed_zxid)
        self._load(recovered)
        self._installed_zxid = -1
        log.info("Truncated the txn log to 0x{zxid:x} and reloaded: tree at 0x{tree_zxid:x}",
                 zxid=zxid, tree_zxid=self.tree.last_processed_zxid)
        self.on_reload(self.tree, self._sessions)
        if unreachable is not None:
            raise unreachable

    def install(self, snapshot: SnapshotStream, zxid: int) -> None:
        """SNAP: the leader's tree as of ``zxid`` replaces ours.

        What we logged past ``zxid`` is not in the leader's history, so it
        goes (3.8 leaves it, and may replay it after a restart); the log
        restarts at ``zxid`` + 1. The NEWLEADER snapshot makes it durable.
        """
        self._check_idle("install a snapshot")
        self.before_rewrite()
        drop_after(self.dirs, zxid)
        self._restart_log_at(zxid)
        self._take_snapshot(snapshot, zxid)
        self.on_reload(self.tree, self._sessions)

    def reload(self) -> None:
        """Back to what the files hold (blocks the reactor): a sync's changes in memory were never saved."""
        self._check_idle("reload")
        self.before_rewrite()
        recovered = recover(self.dirs)
        self._restart_log_at(recovered.tree.last_processed_zxid)
        self._load(recovered)
        self._installed_zxid = -1
        log.info("Reloaded from the files after an unfinished sync: tree at 0x{zxid:x}",
                 zxid=self.tree.last_processed_zxid)
        self.on_reload(self.tree, self._sessions)

    def _check_idle(self, what: str) -> None:
        if self.appends_in_flight:
            raise AppendsInFlightError(
                f"cannot {what}: txns up to 0x{self._appended:x} are still being written "
                f"(durable up to 0x{self._synced:x})")

    def _restart_log_at(self, zxid: int) -> None:
        # The syncer is idle (checked above): zxids may now go back to zxid + 1.
        self.txn_log.restart_at(zxid)

    # -- snapshots ------------------------------------------------------------------

    def save_snapshot(self) -> None:
        """Write ``snapshot.<zxid>`` of the tree now, durably (blocks the reactor, as
        ZooKeeper's learner blocks at NEWLEADER), then start a new log file."""
        zxid = self.tree.last_processed_zxid
        path = os.path.join(self.dirs.snap_dir, snapshot_name(zxid))
        size = write_snapshot(path, snapshot_chunks(self.tree, self._sessions))
        log.info("Snapshot {path} written: {size} bytes", path=path, size=size)
        self.txn_log.roll()
        if self._installed_zxid >= 0:
            drop_through(self.dirs, self._installed_zxid)
            self._installed_zxid = -1

    def snapshot_stream(self) -> tuple[int, Iterator[bytes]]:
        return self.tree.last_processed_zxid, snapshot_stream_chunks(self.tree, self._sessions)
