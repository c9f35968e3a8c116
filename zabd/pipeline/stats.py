# -*- test-case-name: tests.unit.test_pipeline -*-
"""Server-wide request counters that are not metrics: packets, outstanding requests, auth failures.

Request latency is not kept here: the final stage records it once, into the
read and update latency summaries of the metrics registry, and srvr's
min/avg/max are read from those (zabd.server.stats_view).
"""
from __future__ import annotations

from typing import Callable


class ServerStats:
    __slots__ = ("packets_received", "packets_sent", "outstanding", "auth_failed", "throttle_at", "on_drained")

    def __init__(self) -> None:
        self.outstanding = 0
        #: While ``on_drained`` is set, it is called once ``outstanding`` falls below this
        #: (globalOutstandingLimit: the client port stopped reading at it).
        self.throttle_at = 0
        self.on_drained: Callable[[], None] | None = None
        self.reset()

    def finished(self) -> None:
        """One request is done; a throttled client port reads again once the server is below its limit."""
        self.outstanding -= 1
        drained = self.on_drained
        if drained is not None and self.outstanding < self.throttle_at:
            self.on_drained = None
            drained()

    def reset(self) -> None:
        self.packets_received = 0
        self.packets_sent = 0
        self.auth_failed = 0
