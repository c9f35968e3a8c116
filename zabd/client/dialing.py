# -*- test-case-name: tests.unit.test_client_session -*-
"""A client session's connection phases, which server it dials next, and how long it backs off (sans-IO).

Hosts are tried in the ring's order. After a whole round in which some
attempt failed, the session waits before the next round; the wait doubles
with each failed round up to a ceiling, with jitter, so that many clients
cut off together do not come back in step.
"""
from __future__ import annotations

import random
from enum import Enum

from zabd.client.hosts import HostPort, HostRing


class Phase(Enum):
    """Where the session's current connection (or the wait for the next) is."""

    IDLE = "idle"
    BACKOFF = "backoff"
    DIALING = "dialing"
    HANDSHAKE = "handshake"
    CONNECTED = "connected"
    CLOSING = "closing"
    CLOSED = "closed"


class DialPlan:
    """The host ring, the attempt counter and the backoff of one session."""

    def __init__(self, ring: HostRing, rng: random.Random, initial_backoff_ms: int, max_backoff_ms: int) -> None:
        self.ring = ring
        self._rng = rng
        self._initial_backoff_ms = initial_backoff_ms
        self._max_backoff_ms = max_backoff_ms
        #: Numbers connection attempts: inputs about an older one are stale.
        self.attempt = 0
        self._failed_rounds = 0
        self._failures_this_round = 0

    def new_attempt(self) -> int:
        self.attempt += 1
        return self.attempt

    def reset(self) -> None:
        """A fresh start or a connection made: the next failure starts the backoff over."""
        self._failed_rounds = self._failures_this_round = 0

    def failed(self) -> None:
        self._failures_this_round += 1

    def next(self, now_ms: int, backing_off: bool) -> tuple[HostPort, int | None]:
        """The next host, and when a failed round has just ended (and we are not already
        waiting), the time to wait until before dialing again."""
        host, wrapped = self.ring.next()
        if wrapped and self._failures_this_round:
            self._failed_rounds += 1
            self._failures_this_round = 0
            if not backing_off:
                base = min(self._max_backoff_ms, self._initial_backoff_ms * 2 ** (self._failed_rounds - 1))
                self.ring.rewind()
                return host, now_ms + int(base * (0.5 + self._rng.random() / 2))
        return host, None
