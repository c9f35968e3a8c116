# -*- test-case-name: tests.unit.test_pipeline -*-
"""The sync stage: where txns are made durable before anything after them is answered.

Requests leave in arrival order.  A write waits until the log reports its
zxid durable; a read that arrived behind a waiting write waits with it, so a
client never sees a reply that overtakes an earlier one.  The log reports
durability by calling ``durable(zxid)``, whenever and from wherever its
adapter learns it: ordering comes from this queue, not from callback order.
"""
from __future__ import annotations

from collections import deque
from typing import Callable, Protocol

from zabd.jute.txns import Txn
from zabd.pipeline.request import Request, Stage


class TxnLog(Protocol):
    """Where txns go to become durable (the seam for the on-disk log)."""

    def append(self, txn: Txn) -> None: ...

    def set_durable_callback(self, durable: Callable[[int], None]) -> None: ...


class MemoryTxnLog:
    """A log that keeps nothing and calls every txn durable at once."""

    def __init__(self) -> None:
        self._durable: Callable[[int], None] = lambda zxid: None
        self.appended = 0

    def set_durable_callback(self, durable: Callable[[int], None]) -> None:
        self._durable = durable

    def append(self, txn: Txn) -> None:
        self.appended += 1
        self._durable(txn.header.zxid)


class SyncStage:
    """Holds requests in arrival order until the txns before them are durable; see the module docstring."""

    def __init__(self, txn_log: TxnLog, next_stage: Stage) -> None:
        self.log = txn_log
        self.next = next_stage
        self.waiting: deque[Request] = deque()
        self.durable_zxid = -1
        txn_log.set_durable_callback(self.durable)

    def process(self, request: Request) -> None:
        if request.txn is None and not self.waiting:
            self.next.process(request)
            return
        self.waiting.append(request)
        if request.txn is not None:
            self.log.append(request.txn)

    def durable(self, zxid: int) -> None:
        if zxid > self.durable_zxid:
            self.durable_zxid = zxid
        waiting = self.waiting
        while waiting:
            txn = waiting[0].txn
            if txn is not None and txn.header.zxid > self.durable_zxid:
                return
            self.next.process(waiting.popleft())
