# -*- test-case-name: tests.unit.test_client_session -*-
"""A session's requests between the caller and the server's reply (sans-IO).

Requests made while there is no connection wait in ``queued`` and go out,
in order, on the next one. Those sent are answered in send order (a
session is FIFO), so a reply must match the oldest one in flight; when a
connection drops, every request in flight fails, since none can be known to
have been applied or not.
"""
from __future__ import annotations

from collections import deque

from zabd.java.limits import INT_MAX
from zabd.client.effects import Complete, Effect, Outcome, Request
from zabd.client.errors import ZookeeperError
from zabd.jute.codec import JuteError

MAX_XID = INT_MAX


class InFlight:
    """A session's requests waiting for a connection, and those sent and due a reply, in order."""

    def __init__(self) -> None:
        self._xid = 0
        #: Not yet sent: waiting for a connection.
        self.queued: deque[Request] = deque()
        #: Sent, reply due, in send order.
        self._sent: deque[Request] = deque()

    def sent(self, request: Request) -> int:
        """Number ``request`` (xids wrap, skipping the special negative ones) and expect its reply."""
        self._xid = self._xid + 1 if self._xid < MAX_XID else 1
        request.xid = self._xid
        self._sent.append(request)
        return request.xid

    def answered(self, xid: int) -> Request:
        """The request a reply with ``xid`` answers: the oldest in flight, or the connection is broken."""
        if not self._sent or self._sent[0].xid != xid:
            due = self._sent[0].xid if self._sent else None
            raise JuteError(f"reply xid {xid} where {due} was due")
        return self._sent.popleft()

    def take_queued(self) -> deque[Request]:
        queued, self.queued = self.queued, deque()
        return queued

    def fail_sent(self, error: type[ZookeeperError]) -> list[Effect]:
        sent, self._sent = self._sent, deque()
        return [Complete(request.on_done, Outcome(0, b"", error())) for request in sent]

    def fail_all(self, error: type[ZookeeperError]) -> list[Effect]:
        """Fail what is in flight, then what waits for a connection: the session is over."""
        failed = self.fail_sent(error) + [Complete(r.on_done, Outcome(0, b"", error())) for r in self.queued]
        self.queued.clear()
        return failed
