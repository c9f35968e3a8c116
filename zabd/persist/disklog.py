# -*- test-case-name: tests.unit.test_disklog -*-
"""The txn log on disk, with group commit through the one syncer thread.

Appends collect on the reactor thread.  One batch at a time goes to the
syncer, which writes and fsyncs it; appends that arrive meanwhile form the
next batch.  Only when a batch is durable does the sync stage hear of its
last zxid.  A failed write or fsync halts the server: nothing is answered
after it, since a retried fsync can report success over lost pages.
"""
from __future__ import annotations

import sys
from typing import Any, Callable

from twisted.internet.threads import deferToThreadPool
from twisted.logger import Logger
from twisted.python.failure import Failure
from twisted.python.threadpool import ThreadPool

from zabd.jute.txns import Txn
from zabd.logs import SLOW_FSYNC
from zabd.metrics.server import ServerMetrics
from zabd.storage.logwriter import LogWriter

log = Logger()

#: The process exit status after a failed write or fsync.
SYNC_FAILED_EXIT = 14


class GroupCommitLog:
    """A TxnLog (see zabd.pipeline.sync) over a LogWriter run in ``pool``."""

    def __init__(
        self,
        writer: LogWriter,
        pool: ThreadPool,
        reactor: Any,
        halt: Callable[[int], None],
        fsync_warning_ms: int = 1000,
        metrics: ServerMetrics | None = None,
    ) -> None:
        self.writer = writer
        self.pool = pool
        self.reactor = reactor
        self.halt = halt
        self.fsync_warning_ms = fsync_warning_ms
        self.metrics = metrics if metrics is not None else ServerMetrics()
        self._durable: Callable[[int], None] = lambda zxid: None
        self._pending: list[tuple[int, bytes]] = []
        self._roll_before_next = False
        self._flushing = False
        self._scheduled = False
        self.failed = False
        #: Called once more than ``roll_due_after`` txns were appended since the
        #: last roll (the snapshot trigger; a plain count, checked per append).
        self.on_roll_due: Callable[[], None] = lambda: None
        self.roll_due_after = sys.maxsize
        self.since_roll = 0

    def set_durable_callback(self, durable: Callable[[int], None]) -> None:
        self._durable = durable

    def append(self, txn: Txn) -> None:
        self.append_bytes(txn.header.zxid, txn.to_bytes())

    def append_bytes(self, zxid: int, txn: bytes) -> None:
        """Append a txn entry already serialized (a Zab proposal)."""
        if self.failed:
            return
        self._pending.append((zxid, txn))
        self.since_roll += 1
        if not self._flushing and not self._scheduled:
            # Wait for the end of this reactor turn, so that every txn that
            # arrived in the same burst shares one fsync.
            self._scheduled = True
            self.reactor.callLater(0, self._flush)
        if self.since_roll > self.roll_due_after:
            self.on_roll_due()

    def restart_at(self, zxid: int) -> None:
        """After a TRUNC or SNAP rewrote the files: the next txn is ``zxid`` + 1, in a
        new file. Only while nothing is in flight (the writer belongs to the syncer)."""
        self.writer.last_zxid = zxid
        self.roll()

    def roll(self) -> None:
        """Start a new log file with the next txn appended (a snapshot is beginning)."""
        self._roll_before_next = True
        self.since_roll = 0

    def run_in_syncer(self, work: Callable[[], Any]) -> Any:
        """Run other disk work (snapshot files, purge) in order with the log's batches."""
        return deferToThreadPool(self.reactor, self.pool, work)

    def _flush(self) -> None:
        self._scheduled = False
        if self._flushing or not self._pending or self.failed:
            return
        batch, self._pending = self._pending, []
        roll, self._roll_before_next = self._roll_before_next, False
        self._flushing = True
        d = deferToThreadPool(self.reactor, self.pool, self._write, batch, roll)
        d.addCallbacks(self._written, self._write_failed, callbackArgs=(batch[-1][0], len(batch)))

    def _write(self, batch: list[tuple[int, bytes]], roll: bool) -> float:
        # In the syncer thread.
        writer = self.writer
        if roll:
            writer.roll()
        for zxid, data in batch:
            writer.append(zxid, data)
        return writer.commit()

    def _written(self, fsync_seconds: float, zxid: int, count: int) -> None:
        self._flushing = False
        fsync_ms = int(fsync_seconds * 1000.0)
        metrics = self.metrics
        metrics.fsync_time.add(fsync_ms)
        metrics.sync_batch_size.add(count)
        if fsync_ms > self.fsync_warning_ms:
            log.warn(
                "fsync-ing the write ahead log took {duration_ms}ms, which will adversely affect "
                "operation latency ({txns} txns up to zxid 0x{zxid:x}; warning threshold {threshold_ms}ms)",
                event=SLOW_FSYNC, duration_ms=fsync_ms, threshold_ms=self.fsync_warning_ms, txns=count, zxid=zxid,
            )
        if self._pending:
            # The next batch first: its write and fsync then overlap with
            # answering this one, which is most of the reactor's work.
            self._flush()
        self._durable(zxid)

    def _write_failed(self, failure: Failure) -> None:
        self.failed = True
        self.metrics.unrecoverable_errors.add()
        log.failure("Severe unrecoverable error writing the txn log, exiting", failure)
        self.halt(SYNC_FAILED_EXIT)
