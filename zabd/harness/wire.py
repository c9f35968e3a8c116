# -*- test-case-name: tests.unit.test_bench -*-
"""The few ZooKeeper client frames the load generator sends and reads, encoded by hand.

Kept apart from :mod:`zabd.tools._loadgen` (which drives connections and
worker processes) and deliberately independent of zabd's own jute codec: the
benchmark must measure any server, a broken zabd included, and these
hand-packed structs are cheap enough that the client is not the bottleneck.
"""
from __future__ import annotations

import struct

from zabd.jute.framing import cut_frames

OP_CREATE = 1
OP_DELETE = 2
OP_GET_DATA = 4
OP_SET_DATA = 5
OP_PING = 11
OP_CLOSE_SESSION = -11
PING_XID = -2
PERM_ALL = 31

INT = struct.Struct(">i")
REQUEST_HEADER = struct.Struct(">iii")  # frame length, xid, type
REPLY_HEADER = struct.Struct(">iqi")  # xid, zxid, err (after the frame length)
CONNECT = struct.Struct(">iqiq")  # protocolVersion, lastZxidSeen, timeOut, sessionId
CONNECT_RESPONSE = struct.Struct(">iiq")  # protocolVersion, timeOut, sessionId

Request = tuple[int, bytes]  # (opcode, encoded request body)


def ustring(text: str) -> bytes:
    raw = text.encode()
    return INT.pack(len(raw)) + raw


def jute_buffer(raw: bytes) -> bytes:
    return INT.pack(len(raw)) + raw


# vector<ACL> holding the single entry world:anyone with every permission.
OPEN_ACL = INT.pack(1) + INT.pack(PERM_ALL) + ustring("world") + ustring("anyone")


def create_body(path: str, data: bytes, flags: int = 0) -> bytes:
    return ustring(path) + jute_buffer(data) + OPEN_ACL + INT.pack(flags)


def set_data_body(path: str, data: bytes, version: int = -1) -> bytes:
    return ustring(path) + jute_buffer(data) + INT.pack(version)


def get_data_body(path: str) -> bytes:
    return ustring(path) + b"\x00"  # watch=false


def delete_body(path: str, version: int = -1) -> bytes:
    return ustring(path) + INT.pack(version)


def request_frame(xid: int, opcode: int, body: bytes = b"") -> bytes:
    return REQUEST_HEADER.pack(8 + len(body), xid, opcode) + body


def connect_frame(timeout_ms: int) -> bytes:
    """A framed ConnectRequest for a new session (no RequestHeader)."""
    body = CONNECT.pack(0, 0, timeout_ms, 0) + jute_buffer(bytes(16)) + b"\x00"
    return INT.pack(len(body)) + body


def parse_connect_response(body: bytes) -> tuple[int, int]:
    """Return (negotiated timeout ms, session id); timeout 0 means refused."""
    _, timeout_ms, session_id = CONNECT_RESPONSE.unpack_from(body, 0)
    return timeout_ms, session_id


def split_frames(buf: bytearray) -> list[bytes]:
    """Remove and return every complete length-prefixed frame at the front of buf.

    :raises FrameLengthError: on a negative length, which no server sends.
    """
    frames, offset, error = cut_frames(buf)
    del buf[:offset]
    if error is not None:
        raise error
    return frames
