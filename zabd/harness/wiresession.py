"""One pipelined raw ZooKeeper session over asyncio, and decoders for the replies the crash test reads.

Replies come back in send order (a session is FIFO), so each request only
carries a callback; a lost connection answers every pending one with
CONNECTION_LOSS.
"""

from __future__ import annotations

import asyncio
import struct
from collections import deque
from collections.abc import Callable

from zabd.harness.wire import (
    INT, OP_CLOSE_SESSION, REPLY_HEADER, connect_frame, parse_connect_response, request_frame, split_frames,
)

CONNECTION_LOSS = -4  # ZooKeeper's code; here: the request died with its connection
STAT_VERSION_OFFSET = 32  # czxid, mzxid, ctime, mtime (4 longs), then version

ReplyHandler = Callable[[int, bytes], None]


class WireSession(asyncio.Protocol):
    """One pipelined client session; replies come back in send order (FIFO per session)."""

    def __init__(self, timeout_ms: int) -> None:
        loop = asyncio.get_running_loop()
        self.timeout_ms = timeout_ms  # requested session timeout
        self.session_id: asyncio.Future[int] = loop.create_future()
        self.lost: asyncio.Future[BaseException | None] = loop.create_future()
        self.pending: deque[tuple[int, ReplyHandler]] = deque()
        self.buf = bytearray()
        self.xid = 0
        self.transport: asyncio.Transport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self.transport = transport
        transport.write(connect_frame(self.timeout_ms))

    def send(self, opcode: int, body: bytes, on_reply: ReplyHandler) -> None:
        if self.transport is None or self.lost.done():
            on_reply(CONNECTION_LOSS, b"")
            return
        self.xid += 1
        self.pending.append((self.xid, on_reply))
        self.transport.write(request_frame(self.xid, opcode, body))

    async def request(self, opcode: int, body: bytes) -> tuple[int, bytes]:
        reply: asyncio.Future[tuple[int, bytes]] = asyncio.get_running_loop().create_future()
        self.send(opcode, body, lambda err, data: None if reply.done() else reply.set_result((err, data)))
        return await reply

    def data_received(self, data: bytes) -> None:
        self.buf += data
        for frame in split_frames(self.buf):
            if not self.session_id.done():
                timeout_ms, session_id = parse_connect_response(frame)
                if timeout_ms <= 0:
                    self.session_id.set_exception(ConnectionError("session refused"))
                else:
                    self.session_id.set_result(session_id)
                continue
            xid, _zxid, err = REPLY_HEADER.unpack_from(frame, 0)
            if xid < 0:  # ping reply or watch event
                continue
            expected, on_reply = self.pending.popleft()
            if xid != expected:
                raise ConnectionError(f"reply xid {xid} where {expected} was due (FIFO order broken)")
            on_reply(err, frame[REPLY_HEADER.size :])

    def connection_lost(self, exc: Exception | None) -> None:
        if not self.session_id.done():
            self.session_id.set_exception(ConnectionError(f"connection lost before the session: {exc}"))
        if not self.lost.done():
            self.lost.set_result(exc)
        pending, self.pending = self.pending, deque()
        for _, on_reply in pending:
            on_reply(CONNECTION_LOSS, b"")


async def open_session(host: str, port: int, timeout_ms: int, deadline: float) -> WireSession:
    connecting = asyncio.get_running_loop().create_connection(lambda: WireSession(timeout_ms), host, port)
    _, session = await asyncio.wait_for(connecting, deadline)
    await asyncio.wait_for(session.session_id, deadline)
    return session


async def close_session(session: WireSession) -> None:
    await session.request(OP_CLOSE_SESSION, b"")
    if session.transport is not None:
        session.transport.close()


def strings(body: bytes) -> list[str]:
    (count,) = INT.unpack_from(body, 0)
    offset, items = 4, []
    for _ in range(max(count, 0)):
        (length,) = INT.unpack_from(body, offset)
        items.append(body[offset + 4 : offset + 4 + length].decode())
        offset += 4 + length
    return items


def data_and_version(body: bytes) -> tuple[bytes, int]:
    (length,) = INT.unpack_from(body, 0)
    data = body[4 : 4 + max(length, 0)]
    (version,) = struct.unpack_from(">i", body, 4 + max(length, 0) + STAT_VERSION_OFFSET)
    return data, version
