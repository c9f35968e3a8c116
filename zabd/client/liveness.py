# -*- test-case-name: tests.unit.test_client_session -*-
"""When a client session pings, drops a silent connection, and gives the session up (sans-IO).

Timing follows the Java client: the read timeout is 2/3 of the negotiated
session timeout; a ping goes out after half the read timeout (a third of
the session timeout) with nothing sent, and at least every 10 s; a
connection silent for the read timeout is dropped. Unlike 3.8's client,
which waits for a server to say so, zabd's declares the session lost by
itself once it has heard nothing from any server for the whole negotiated
timeout: by then the ensemble has expired it (or will at any moment), and a
lock holder must not keep believing otherwise.
"""
from __future__ import annotations

from dataclasses import dataclass

#: ClientCnxn pings at least every 10 s, whatever the session timeout.
MAX_SEND_PING_INTERVAL_MS = 10_000


@dataclass
class Liveness:
    """What a session last sent and heard, against its negotiated timeout."""

    negotiated_timeout_ms: int = 0
    last_sent_ms: int = 0
    #: The last frame from any server of this session.
    last_heard_ms: int = 0

    @property
    def read_timeout_ms(self) -> int:
        return self.negotiated_timeout_ms * 2 // 3

    @property
    def ping_due_ms(self) -> int:
        return self.last_sent_ms + min(self.read_timeout_ms // 2, MAX_SEND_PING_INTERVAL_MS)

    @property
    def silent_at_ms(self) -> int:
        """When the connection counts as dead if nothing more is heard."""
        return self.last_heard_ms + self.read_timeout_ms

    @property
    def lost_at_ms(self) -> int:
        """When the session counts as expired if no server is heard from."""
        return self.last_heard_ms + self.negotiated_timeout_ms
