# -*- test-case-name: tests.unit.test_standalone -*-
"""The processor chain of a standalone server or a leader: prep → sync → final."""
from __future__ import annotations

from zabd.pipeline.context import ServerContext
from zabd.pipeline.prep import PrepStage
from zabd.pipeline.request import Request, Stage
from zabd.pipeline.sync import MemoryTxnLog, SyncStage, TxnLog
from zabd.serving.clients import ClientTable


class Chain:
    """Prep, then the sync stage that waits for ``txn_log`` to make each txn durable, then ``final``.

    A txn reported durable releases its replies (and those queued behind it)
    through ``clients.release_batch``: each connection gets them in one write.
    """

    def __init__(self, ctx: ServerContext, final: Stage, clients: ClientTable,
                 txn_log: TxnLog | None = None) -> None:
        self.ctx = ctx
        self._clients = clients
        txn_log = txn_log or MemoryTxnLog()
        self.sync = SyncStage(txn_log, final)
        txn_log.set_durable_callback(self._durable)
        self.prep = PrepStage(ctx, self.sync)

    def submit(self, request: Request) -> None:
        self.ctx.stats.outstanding += 1
        self.prep.process(request)

    def _durable(self, zxid: int) -> None:
        self._clients.release_batch(lambda: self.sync.durable(zxid))


class PrepFinal:
    """Prep straight into the final stage: a chain with no log (the read-only server's)."""

    def __init__(self, ctx: ServerContext, final: Stage) -> None:
        self.ctx = ctx
        self.prep = PrepStage(ctx, final)

    def submit(self, request: Request) -> None:
        self.ctx.stats.outstanding += 1
        self.prep.process(request)
