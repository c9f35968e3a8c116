# -*- test-case-name: tests.unit.test_server_connection -*-
"""The frames a server sends a client: the ConnectResponse, replies and watch events, length first."""
from __future__ import annotations

import struct

from zabd.jute.codec import Writer
from zabd.jute.opcodes import KeeperState, NOTIFICATION_XID
from zabd.jute.records import ConnectResponse, WatcherEvent
from zabd.pipeline.request import Reply

_REPLY = struct.Struct(">iiqi")


def connect_response(timeout: int, session_id: int, password: bytes, read_only: bool | None) -> bytes:
    """A ConnectResponse frame; ``read_only`` None leaves the byte out, for a client that sent none."""
    w = Writer()
    w.write_int(0)
    ConnectResponse(0, timeout, session_id, password).write(w)
    if read_only is not None:
        w.write_bool(read_only)
    struct.pack_into(">i", w.buf, 0, len(w.buf) - 4)
    return bytes(w.buf)


def reply_frame(xid: int, zxid: int, err: int, body: Reply) -> bytes:
    """A ReplyHeader and its body; an error has none."""
    if body is None or err:
        return _REPLY.pack(16, xid, zxid, err)
    if isinstance(body, bytes):
        return _REPLY.pack(16 + len(body), xid, zxid, 0) + body
    w = Writer()
    body.write(w)
    return _REPLY.pack(16 + len(w.buf), xid, zxid, 0) + w.buf


def event_frame(event_type: int, path: str) -> bytes:
    """A watch notification (xid -1, zxid -1)."""
    w = Writer()
    WatcherEvent(event_type, KeeperState.SyncConnected, path).write(w)
    return _REPLY.pack(16 + len(w.buf), NOTIFICATION_XID, -1, 0) + w.buf
