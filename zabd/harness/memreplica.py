# -*- test-case-name: tests.interop.test_loopback_ensemble -*-
"""A Replica whose log lives in memory, for peers that need no disk (zabd.harness.loopback_ensemble)."""
from __future__ import annotations

from collections.abc import Callable, Iterator

from zabd.core.datatree import DataTree
from zabd.ensemble.transport import Scheduler
from zabd.quorum.replicastate import ReplicaState
from zabd.quorum.snapstream import SnapshotStream, SnapshotStreamDecoder, snapshot_stream_chunks


class MemoryReplica(ReplicaState):
    """A Replica (zabd.quorum.roles) with its log in memory; each turn's appends are durable on the next turn.

    ``save_snapshot`` does nothing, as nothing here outlives the process; a
    TRUNC rebuilds from the last installed SNAP (kept as bytes) or the empty tree.
    """

    def __init__(self, scheduler: Scheduler, commit_log_count: int = 500) -> None:
        super().__init__(commit_log_count)
        self._scheduler = scheduler
        self._base: tuple[int, bytes] | None = None
        self._log: list[tuple[int, bytes]] = []  # after the base, in zxid order
        self._durable: Callable[[int], None] = lambda zxid: None
        self._flush_scheduled = False

    def set_durable_callback(self, durable: Callable[[int], None]) -> None:
        self._durable = durable

    def log(self, zxid: int, txn: bytes) -> None:
        self._log.append((zxid, txn))
        self._logged(zxid, txn)
        if not self._flush_scheduled:
            self._flush_scheduled = True  # one "fsync" for all appends of this turn
            self._scheduler.call_later(0, self._flush)

    def _flush(self) -> None:
        self._flush_scheduled = False
        if self._log:
            self._durable(self._log[-1][0])

    def truncate(self, zxid: int) -> None:
        if self._base is not None and zxid < self._base[0]:
            raise RuntimeError(f"cannot truncate to {zxid:#x}, below the snapshot at {self._base[0]:#x}")
        self._log = [(z, txn) for z, txn in self._log if z <= zxid]
        self._last_logged = self._log[-1][0] if self._log else 0
        self._unapplied.clear()
        self.tree, self._sessions = DataTree(), {}
        if self._base is not None:
            base_zxid, stream = self._base
            decoder = SnapshotStreamDecoder()
            decoder.feed(stream)
            assert decoder.result is not None
            self.tree, self._sessions = decoder.result.tree, dict(decoder.result.sessions)
            self.tree.last_processed_zxid = base_zxid
        self.committed.clear()
        for _zxid, txn in self._log:
            self._replay(txn)
        self.committed.refill(self._log[-self.committed.capacity:])

    def install(self, snapshot: SnapshotStream, zxid: int) -> None:
        self.tree, self._sessions = snapshot.tree, dict(snapshot.sessions)
        self.tree.last_processed_zxid = zxid
        self._base = (zxid, b"".join(snapshot_stream_chunks(self.tree, self._sessions)))
        self._log.clear()
        self._last_logged = zxid
        self._unapplied.clear()
        self.committed.clear()

    def save_snapshot(self) -> None:
        """Nothing to do: a memory replica has no disk to recover from."""

    def reload(self) -> None:
        """Nothing to do: what memory holds is all there is."""

    @property
    def appends_in_flight(self) -> bool:
        return self._flush_scheduled

    def snapshot_stream(self) -> tuple[int, Iterator[bytes]]:
        return self.tree.last_processed_zxid, snapshot_stream_chunks(self.tree, self._sessions)

    def on_disk_history(self) -> None:
        return None  # learners behind the committed log get a SNAP
