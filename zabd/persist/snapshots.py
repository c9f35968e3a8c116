# -*- test-case-name: tests.unit.test_disklog -*-
"""Fuzzy snapshots that never block the reactor for a whole serialisation.

The walk of the tree runs on the reactor thread one chunk at a time, with
client requests served between chunks; each chunk is written by the syncer
thread before the next is made, so at most one chunk is held in memory.
Replay makes the result exact: the snapshot is named after the last zxid
applied when it began, and every later txn is in the logs.
"""
from __future__ import annotations

import os
import random
from collections import deque
from functools import partial
from typing import Callable

from twisted.internet.defer import Deferred
from twisted.logger import Logger

from zabd.core.datatree import DataTree
from zabd.logs import SNAPSHOT
from zabd.persist.disklog import GroupCommitLog
from zabd.storage.layout import DataDirs, snapshot_name
from zabd.storage.snapfile import SnapshotFile
from zabd.storage.snapformat import snapshot_chunks

log = Logger()

#: Snapshot chunks (about 1 MiB each) handed to the syncer and not yet written.
CHUNKS_IN_FLIGHT = 8


class SnapshotPolicy:
    """ZooKeeper's trigger: after snapCount/2 + rand(snapCount/2) logged txns."""

    def __init__(self, snap_count: int, rng: random.Random) -> None:
        self.snap_count = max(snap_count, 2)
        self.rng = rng
        self.threshold = 0
        self.reset()

    def reset(self) -> None:
        half = self.snap_count // 2
        self.threshold = half + self.rng.randrange(half)


class Snapshotter:
    """Takes fuzzy snapshots as the log grows: the tree walked in chunks on the reactor, each written by the syncer."""

    def __init__(
        self,
        dirs: DataDirs,
        disk: GroupCommitLog,
        state: Callable[[], tuple[DataTree, dict[int, int]]],
        policy: SnapshotPolicy,
    ) -> None:
        self.dirs = dirs
        self.disk = disk
        self.state = state
        self.policy = policy
        self.running: Deferred[None] | None = None
        self.taken = 0
        self._abandoned = False
        disk.on_roll_due = self._due
        disk.roll_due_after = policy.threshold

    def _due(self) -> None:
        self.policy.reset()
        self.disk.roll_due_after = self.policy.threshold
        self.disk.roll()
        if self.running is not None:
            log.warn("Too busy to snap, skipping")
            return
        self.take()

    def abandon(self) -> None:
        """Drop the snapshot under way, if any: the log is about to be rewritten (TRUNC, SNAP).

        It is checked before each chunk and, in the syncer, right before the
        rename, so no snapshot of the state before the rewrite can appear after it.
        """
        if self.running is not None:
            self._abandoned = True

    def take(self) -> Deferred[None]:
        """Start a snapshot; the Deferred fires once it is durable under its name."""
        d = Deferred.fromCoroutine(self._take())
        self.running = d

        def done(result: object) -> object:
            self.running = None
            return result

        d.addBoth(done)
        return d

    def _finish(self, snap: SnapshotFile) -> None:
        """In the syncer: name the snapshot, unless it was abandoned meanwhile."""
        if self._abandoned:
            raise _Abandoned()
        snap.finish()

    async def _take(self) -> None:
        self._abandoned = False
        tree, sessions = self.state()
        # The reactor's clock (the log's), so tests time snapshots with a fake one.
        clock = self.disk.reactor.seconds
        started = clock()
        nodes = tree.node_count()
        zxid = tree.last_processed_zxid
        path = os.path.join(self.dirs.snap_dir, snapshot_name(zxid))
        snap = SnapshotFile(path)
        log.info("Creating new snapshot {path}", path=path)
        run = self.disk.run_in_syncer
        await run(snap.open)
        writing: deque[Deferred[None]] = deque()
        try:
            for chunk in snapshot_chunks(tree, sessions):
                if self._abandoned:
                    raise _Abandoned()
                # A few chunks in flight: the walk need not wait out every
                # log fsync queued before each write, yet memory stays bounded.
                if len(writing) >= CHUNKS_IN_FLIGHT:
                    await writing.popleft()
                writing.append(run(partial(snap.write, chunk)))
            while writing:
                await writing.popleft()
            await run(partial(self._finish, snap))
        except _Abandoned:
            log.info("Snapshot {path} abandoned: the log is being rewritten", path=path)
            for pending in writing:
                pending.addErrback(lambda failure: None)
            await run(snap.abort)
            return
        except Exception:
            log.failure("Snapshot {path} failed", path=path)
            for pending in writing:
                pending.addErrback(lambda failure: None)  # the first failure is logged
            await run(snap.abort)
            return
        self.taken += 1
        took_ms = int((clock() - started) * 1000)
        self.disk.metrics.snapshot_time.add(took_ms)
        log.info("Snapshot {path} written: {bytes} bytes, {nodes} nodes up to zxid 0x{zxid:x} in {duration_ms} ms",
                 event=SNAPSHOT, path=path, bytes=snap.size, nodes=nodes, zxid=zxid, duration_ms=took_ms)


class _Abandoned(Exception):
    pass
