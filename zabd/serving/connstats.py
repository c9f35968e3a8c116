# -*- test-case-name: tests.unit.test_connection -*-
"""Per-connection figures for the cons and stat four-letter words."""
from __future__ import annotations


class ConnectionStats:
    """What one connection has received and sent, for the cons and stat four-letter words."""

    __slots__ = ("established_ms", "received", "sent", "last_op", "last_cxid", "last_zxid", "last_response_ms")

    def __init__(self, now_ms: float) -> None:
        self.established_ms = now_ms
        self.reset()

    def reset(self) -> None:
        self.received = 0
        self.sent = 0
        self.last_op = 0
        self.last_cxid = -1
        self.last_zxid = -1
        self.last_response_ms = 0.0
