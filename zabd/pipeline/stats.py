# -*- test-case-name: tests.unit.test_pipeline -*-
"""Server-wide request figures, the one source the 4lw and admin commands read."""
from __future__ import annotations


class ServerStats:
    __slots__ = ("packets_received", "packets_sent", "min_latency", "max_latency",
                 "total_latency", "count", "outstanding", "auth_failed")

    def __init__(self) -> None:
        self.outstanding = 0
        self.reset()

    def reset(self) -> None:
        self.packets_received = 0
        self.packets_sent = 0
        self.min_latency = 0.0
        self.max_latency = 0.0
        self.total_latency = 0.0
        self.count = 0
        self.auth_failed = 0

    def record_latency(self, ms: float) -> None:
        if self.count == 0 or ms < self.min_latency:
            self.min_latency = ms
        if ms > self.max_latency:
            self.max_latency = ms
        self.total_latency += ms
        self.count += 1

    @property
    def avg_latency(self) -> float:
        return self.total_latency / self.count if self.count else 0.0
