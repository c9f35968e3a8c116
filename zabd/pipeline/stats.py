# -*- test-case-name: tests.unit.test_pipeline -*-
"""Server-wide request counters that are not metrics: packets, outstanding requests, auth failures,
and what the overload limits count (requests in process and queued, large-request bytes).

Request latency is not kept here: the final stage records it once, into the
read and update latency summaries of the metrics registry, and srvr's
min/avg/max are read from those (zabd.views.stats_view).
"""
from __future__ import annotations

from typing import TYPE_CHECKING, Callable

if TYPE_CHECKING:
    from zabd.pipeline.request import Request


class ServerStats:
    """One server's request counters, and the overload limits' figures (outstanding, in process, queued)."""

    __slots__ = ("packets_received", "packets_sent", "outstanding", "auth_failed", "throttle_at", "on_drained",
                 "in_process", "queued", "large_request_bytes", "on_in_process_fell")

    def __init__(self) -> None:
        self.outstanding = 0
        #: While ``on_drained`` is set, it is called once ``outstanding`` and ``queued`` are
        #: below this (globalOutstandingLimit: the client port stopped reading at it).
        self.throttle_at = 0
        self.on_drained: Callable[[], None] | None = None
        #: Client requests the request throttler let into the chain and not yet answered (3.8's inProcess).
        self.in_process = 0
        #: Requests waiting in the request throttler (3.8's inflight).
        self.queued = 0
        #: Bytes that admitted large requests hold (3.8's currentLargeRequestBytes).
        self.large_request_bytes = 0
        #: Called when ``in_process`` falls (the request throttler's wake-up).
        self.on_in_process_fell: Callable[[], None] | None = None
        self.reset()

    def finished(self, request: Request | None = None) -> None:
        """One request is done; a throttled client port reads again once the server is below its limit."""
        self.outstanding -= 1
        if request is not None and (request.large_size >= 0 or request.in_process):
            self.request_finished(request)
        if self.on_drained is not None:
            self._check_drained()

    def request_finished(self, request: Request) -> None:
        """Give back what ``request`` held: its place in process and its large-request bytes (once)."""
        if request.large_size >= 0:
            self.large_request_bytes -= request.large_size
            request.large_size = -1
        if request.in_process:
            request.in_process = False
            self.in_process -= 1
            fell = self.on_in_process_fell
            if fell is not None:
                fell()

    def queue_changed(self, queued: int) -> None:
        """The request throttler now holds ``queued`` requests."""
        self.queued = queued
        if self.on_drained is not None:
            self._check_drained()

    def _check_drained(self) -> None:
        drained = self.on_drained
        if drained is not None and self.outstanding < self.throttle_at and self.queued < self.throttle_at:
            self.on_drained = None
            drained()

    def reset(self) -> None:
        self.packets_received = 0
        self.packets_sent = 0
        self.auth_failed = 0
