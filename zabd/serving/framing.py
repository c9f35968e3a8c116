# -*- test-case-name: tests.unit.test_server_connection -*-
"""The client port's framing, sans-IO: a byte stream cut into frames under the port's limits.

Each frame is a 4-byte big-endian length and that many bytes. A length over
jute.maxbuffer (or negative) refuses the stream, and so does a large
request's length the large-request budget cannot take (3.8 looks at it once,
as it arrives). At globalOutstandingLimit a whole request waits unread.
That is why this walks the frames one at a time rather than cutting them all
with :func:`zabd.jute.framing.cut_frames`: each may be held or refused.
"""
from __future__ import annotations

from enum import Enum
from typing import Callable

from twisted.logger import Logger

from zabd.jute.framing import LENGTH
from zabd.jute.opcodes import OpCode
from zabd.pipeline.stats import ServerStats
from zabd.serving.effects import ConnectionLimits
from zabd.serving.overload import LargeRequests

log = Logger()


class Fed(Enum):
    """What became of the bytes fed in."""

    #: Every whole frame went on; a partial one may wait for more.
    READ = "read"
    #: A whole request waits at globalOutstandingLimit: stop reading until the server is below it.
    HELD = "held"
    #: The stream broke a limit: close the connection.
    REFUSED = "refused"


def _is_ping(data: bytes, start: int, length: int) -> bool:
    # A request frame: xid, then the op type.
    return length >= 8 and LENGTH.unpack_from(data, start + 4)[0] == OpCode.ping


class RequestFramer:
    """Cuts one connection's input into frames; what cannot go on yet stays buffered.

    :param limits: jute.maxbuffer and globalOutstandingLimit.
    :param stats: the server's counters (requests outstanding and queued).
    :param large: the server's large-request budget.
    :param peer: who sends, for the logs.
    """

    def __init__(self, limits: ConnectionLimits, stats: ServerStats, large: LargeRequests, peer: str) -> None:
        self.limits = limits
        self._stats = stats
        self._large = large
        self._peer = peer
        #: Bytes not yet handed on: a partial frame, or whole ones held at the outstanding limit.
        self.unprocessed = b""
        #: The length of the frame held back in ``unprocessed`` passed the large-request check.
        self._length_checked = False

    def feed(self, data: bytes, deliver: Callable[[bytes], bool]) -> Fed:
        """Hand the whole frames of the buffer and ``data`` to ``deliver`` (False from it: stop reading).

        A ping goes on at the limit: it holds no memory, and a session must not
        expire behind a flood. 3.8 hands on what it has read before it looks,
        so every connection that sends at the limit adds requests: 1,000
        flooding connections took a limit of 100 to over 1,000 requests in
        flight, and memory with it.
        """
        if self.unprocessed:
            data = self.unprocessed + data
        end = len(data)
        pos = 0
        limit = self.limits.max_buffer
        outstanding_limit = self.limits.outstanding_limit
        stats = self._stats
        large = self._large
        checked = self._length_checked
        self._length_checked = False
        while end - pos >= 4:
            (length,) = LENGTH.unpack_from(data, pos)
            if not 0 <= length <= limit:
                log.info("Closing {peer}: frame length {length} out of range (jute.maxbuffer {limit})",
                         peer=self._peer, length=length, limit=limit)
                self.unprocessed = b""
                return Fed.REFUSED
            if length > large.above and not checked and not large.receiving(length):
                log.warn("Closing {peer}: rejecting a large request of {length} bytes (largeRequestMaxBytes)",
                         peer=self._peer, length=length)
                self.unprocessed = b""
                return Fed.REFUSED
            start = pos + 4
            if start + length > end:
                self._length_checked = True
                break
            if (stats.outstanding >= outstanding_limit or stats.queued >= outstanding_limit) \
                    and not _is_ping(data, start, length):
                self._length_checked = True
                self.unprocessed = data[pos:]
                return Fed.HELD
            checked = False
            pos = start + length
            if not deliver(data[start:pos]):
                break
        self.unprocessed = data[pos:] if pos < end else b""
        return Fed.READ
