# -*- test-case-name: tests.unit.test_disklog -*-
"""The data directory at startup, and the syncer thread while serving.

Startup is blocking on purpose: nothing is served until the database is
loaded and, if it differs from the newest snapshot, saved again.  After that
every disk operation goes through ``Storage.pool``, the one syncer thread.
"""
from __future__ import annotations

import gc
import os
import random
import sys
from typing import Any, Callable

from twisted.application.internet import TimerService
from twisted.application.service import MultiService
from twisted.logger import Logger
from twisted.python.threadpool import ThreadPool

from zabd.core.datatree import DataTree
from zabd.config.zoocfg import ZabdConfig
from zabd.metrics.server import ServerMetrics
from zabd.persist.disklog import GroupCommitLog
from zabd.persist.snapshots import SnapshotPolicy, Snapshotter
from zabd.storage.layout import DataDirs, snapshot_name
from zabd.storage.logwriter import LogWriter
from zabd.storage.purge import purge
from zabd.storage.recovery import Recovered, recover
from zabd.storage.snapfile import remove_temporaries, write_snapshot
from zabd.storage.snapformat import snapshot_chunks

log = Logger()

_MB = 1024 * 1024
#: Every write allocates a few objects that refcounting frees; the cyclic
#: collector's default (700, 10, 10) walks the young generations thousands
#: of times a second and the whole growing tree every few seconds.
GC_THRESHOLDS = (50_000, 50, 100)
#: The syncer needs the GIL after every blocking call (wake-up, write, fsync),
#: and with the reactor busy it waits a whole switch interval each time: at
#: CPython's default 5 ms, most of a group commit's latency.
SWITCH_INTERVAL_S = 0.0005


def data_dirs(config: ZabdConfig) -> DataDirs:
    return DataDirs.of(config.data_dir, config.data_log_dir)


def open_database(config: ZabdConfig) -> Recovered:
    """Load the database from disk (raising RecoveryError if it is damaged)."""
    dirs = data_dirs(config)
    dirs.create()
    remove_temporaries(dirs.snap_dir)
    recovered = recover(
        dirs,
        autocreate=config.db_autocreate,
        trust_empty_snapshot=config.trust_empty_snapshot,
        progress=_log_progress,
    )
    tree = recovered.tree
    log.info("Loaded database: {nodes} znodes, {sessions} sessions, last zxid 0x{zxid:x}",
             nodes=tree.node_count(), sessions=len(recovered.sessions), zxid=tree.last_processed_zxid)
    if recovered.needs_snapshot:
        path = os.path.join(dirs.snap_dir, snapshot_name(tree.last_processed_zxid))
        size = write_snapshot(path, snapshot_chunks(tree, recovered.sessions))
        log.info("Snapshot {path} written: {size} bytes", path=path, size=size)
    # The loaded tree holds no reference cycles: keep the collector from
    # rescanning millions of nodes for the life of the process.
    gc.collect()
    gc.freeze()
    gc.set_threshold(*GC_THRESHOLDS)
    return recovered


def _log_progress(nodes: int, read: int, total: int) -> None:
    log.info("Loading snapshot: {nodes} nodes, {read_mb:.1f} of {total_mb:.1f} MB ({percent}%)",
             nodes=nodes, read_mb=read / _MB, total_mb=total / _MB,
             percent=int(100 * read / total) if total else 100)


class Storage(MultiService):
    """The syncer thread, the txn log, snapshots and autopurge."""

    def __init__(
        self,
        config: ZabdConfig,
        reactor: Any,
        state: Callable[[], tuple[DataTree, dict[int, int]]],
        halt: Callable[[int], None],
        rng: random.Random | None = None,
        metrics: ServerMetrics | None = None,
    ) -> None:
        super().__init__()
        #: The process's metrics (fsync and snapshot times).
        self.metrics = metrics if metrics is not None else ServerMetrics()
        self.dirs = data_dirs(config)
        # The one thread zabd runs besides the reactor.
        self.pool = ThreadPool(minthreads=1, maxthreads=1, name="zabd-syncer")
        self.writer = LogWriter(
            self.dirs.log_dir,
            prealloc_bytes=config.pre_alloc_size_kb * 1024,
            force_sync=config.force_sync,
        )
        self.log = GroupCommitLog(self.writer, self.pool, reactor, halt,
                                  fsync_warning_ms=config.fsync_warning_threshold_ms,
                                  metrics=self.metrics)
        self.snapshotter = Snapshotter(self.dirs, self.log, state,
                                       SnapshotPolicy(config.snap_count, rng or random.Random()))
        self.retain = config.snap_retain_count
        if config.purge_interval_hours > 0:
            purger = TimerService(config.purge_interval_hours * 3600, self.purge)
            purger.clock = reactor
            purger.setServiceParent(self)

    def loaded(self, recovered: Recovered) -> None:
        """Record what loading the database found (startup_txns_loaded, digest_mismatches_count)."""
        self.metrics.startup_txns_loaded.add(recovered.replayed)
        self.metrics.digest_mismatches.add(recovered.digest_mismatches)

    def purge(self) -> Any:
        return self.log.run_in_syncer(lambda: purge(self.dirs, self.retain))

    def startService(self) -> None:
        sys.setswitchinterval(SWITCH_INTERVAL_S)
        self.pool.start()
        super().startService()

    def stopService(self) -> Any:
        d = super().stopService()
        # Joins the syncer once the batches already queued are written.
        self.pool.stop()
        self.writer.close()
        return d

