# -*- test-case-name: tests.unit.test_pipeline -*-
"""Server-wide request counters that are not metrics: packets, outstanding requests, auth failures.

Request latency is not kept here: the final stage records it once, into the
read and update latency summaries of the metrics registry, and srvr's
min/avg/max are read from those (zabd.server.stats_view).
"""
from __future__ import annotations


class ServerStats:
    __slots__ = ("packets_received", "packets_sent", "outstanding", "auth_failed")

    def __init__(self) -> None:
        self.outstanding = 0
        self.reset()

    def reset(self) -> None:
        self.packets_received = 0
        self.packets_sent = 0
        self.auth_failed = 0
