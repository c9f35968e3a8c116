# -*- test-case-name: tests.unit.test_large_requests -*-
"""The large-request byte budget: 3.8's largeRequestMaxBytes and largeRequestThreshold, held.

Each server (standalone, leader, follower, read-only) keeps its own
throttles and budget, as each 3.8 ZooKeeperServer does.
"""
from __future__ import annotations

from zabd.config.overload_settings import LargeRequestSettings
from zabd.metrics.registry import Counter
from zabd.pipeline.stats import ServerStats


class LargeRequests:
    """
    One server's budget for large requests (3.8's currentLargeRequestBytes).

    A request is large when its length is above the threshold. The client
    port asks :meth:`receiving` when a frame's length arrives, and the
    connection :meth:`admit` once the frame is whole; the bytes admitted
    are given back by ``ServerStats.request_finished`` when the request is
    answered or dropped. A refusal counts ``large_requests_rejected``, and
    the caller closes the connection, as 3.8 does.

    :param settings: the threshold and the budget.
    :param stats: where the bytes in use are kept.
    :param rejected: the ``large_requests_rejected`` counter.
    """

    def __init__(self, settings: LargeRequestSettings, stats: ServerStats, rejected: Counter) -> None:
        self.settings = settings
        self.above = settings.above
        self._stats = stats
        self._rejected = rejected

    def receiving(self, length: int) -> bool:
        """Whether a frame of ``length`` bytes may be read (3.8's checkRequestSizeWhenReceivingMessage)."""
        if length <= self.above or self._stats.large_request_bytes + length <= self.settings.max_bytes:
            return True
        self._rejected.add()
        return False

    def admit(self, length: int) -> bool:
        """Take ``length`` bytes of the budget for a large request, or refuse it.

        3.8's checkRequestSizeWhenMessageReceived.
        """
        if length <= self.above:
            return True
        stats = self._stats
        if stats.large_request_bytes + length > self.settings.max_bytes:
            self._rejected.add()
            return False
        stats.large_request_bytes += length
        return True
