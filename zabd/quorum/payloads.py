# -*- test-case-name: tests.unit.test_quorum_packets -*-
"""The ``data`` of each quorum packet type, encoded and parsed as 3.8's LearnerHandler and Learner do.

:mod:`zabd.quorum.packets` frames the packets; this module reads what they
carry. A payload too short for its type is a :class:`QuorumWireError`.
"""
from __future__ import annotations

import struct
from dataclasses import dataclass

from zabd.quorum.snapstream import QuorumWireError

#: Zab 1.0, sent in LearnerInfo and LEADERINFO.
PROTOCOL_VERSION = 0x10000
#: What LearnerHandler assumes when a LearnerInfo has no protocol version.
LEGACY_PROTOCOL_VERSION = 0x1

_INT = struct.Struct(">i")
_LONG = struct.Struct(">q")
_TOUCH = struct.Struct(">qi")  # session id, timeout
_REQUEST_HEAD = struct.Struct(">qii")  # session id, cxid, op type
_VALIDITY = struct.Struct(">q?")  # session id, valid
_SID_VERSION = struct.Struct(">qi")  # LearnerInfo's first two fields


def _at_least(data: bytes | None, size: int, what: str) -> bytes:
    if data is None or len(data) < size:
        raise QuorumWireError(f"{what}: need {size} bytes, got {None if data is None else len(data)}")
    return data


@dataclass(frozen=True, slots=True)
class LearnerInfo:
    """FOLLOWERINFO/OBSERVERINFO data. ``config_version`` None is the older
    12-byte form, whose leader skips the configuration check."""

    sid: int
    protocol_version: int = PROTOCOL_VERSION
    config_version: int | None = 0

    def encode(self) -> bytes:
        head = _SID_VERSION.pack(self.sid, self.protocol_version)
        return head if self.config_version is None else head + _LONG.pack(self.config_version)


def parse_learner_info(data: bytes | None) -> LearnerInfo | None:
    """As LearnerHandler reads it: None for absent data (the leader then makes
    up a negative sid), fields read while the bytes last, extra bytes ignored."""
    if data is None:
        return None
    if len(data) < _LONG.size:
        raise QuorumWireError(f"LearnerInfo of {len(data)} bytes has no sid")
    if len(data) < _SID_VERSION.size:
        return LearnerInfo(_LONG.unpack_from(data)[0], LEGACY_PROTOCOL_VERSION, None)
    sid, version = _SID_VERSION.unpack_from(data)
    if len(data) < _SID_VERSION.size + _LONG.size:
        return LearnerInfo(sid, version, None)
    return LearnerInfo(sid, version, _LONG.unpack_from(data, _SID_VERSION.size)[0])


def encode_leader_info(protocol_version: int = PROTOCOL_VERSION) -> bytes:
    return _INT.pack(protocol_version)


def parse_leader_info(data: bytes | None) -> int:
    """LEADERINFO's protocol version (Learner reads one int; more bytes are ignored)."""
    return int(_INT.unpack_from(_at_least(data, _INT.size, "LEADERINFO"))[0])


def encode_ack_epoch(current_epoch: int | None) -> bytes:
    """None (sent as -1): the learner had already accepted this epoch. Java sends
    the epoch cast to int, so only the low 32 bits go out."""
    if current_epoch is None:
        return _INT.pack(-1)
    return _INT.pack(((current_epoch + (1 << 31)) & 0xFFFFFFFF) - (1 << 31))


def parse_ack_epoch(data: bytes | None) -> int | None:
    epoch = int(_INT.unpack_from(_at_least(data, _INT.size, "ACKEPOCH"))[0])
    return None if epoch == -1 else epoch


@dataclass(frozen=True, slots=True)
class RequestForward:
    """REQUEST data: a client request a learner forwards; ``body`` is the record
    that followed the RequestHeader on the client wire (may be empty)."""

    session_id: int
    cxid: int
    op_type: int
    body: bytes = b""

    def encode(self) -> bytes:
        return _REQUEST_HEAD.pack(self.session_id, self.cxid, self.op_type) + self.body


def parse_request_forward(data: bytes | None) -> RequestForward:
    raw = _at_least(data, _REQUEST_HEAD.size, "REQUEST")
    session_id, cxid, op_type = _REQUEST_HEAD.unpack_from(raw)
    return RequestForward(session_id, cxid, op_type, bytes(raw[_REQUEST_HEAD.size:]))


def encode_touches(touches: list[tuple[int, int]]) -> bytes:
    """A learner's PING reply: (session id, timeout ms) of sessions active since the last ping."""
    return b"".join(_TOUCH.pack(session_id, timeout) for session_id, timeout in touches)


def parse_touches(data: bytes | None) -> list[tuple[int, int]]:
    """The leader reads pairs until the data ends; a partial pair kills its
    LearnerHandler. None (the leader's own PING) has no touches."""
    if not data:
        return []
    if len(data) % _TOUCH.size:
        raise QuorumWireError(f"PING touches of {len(data)} bytes: not whole (long, int) pairs")
    return [(int(s), int(t)) for s, t in _TOUCH.iter_unpack(data)]


def encode_revalidate_request(session_id: int, timeout_ms: int) -> bytes:
    return _TOUCH.pack(session_id, timeout_ms)


def parse_revalidate_request(data: bytes | None) -> tuple[int, int]:
    session_id, timeout = _TOUCH.unpack_from(_at_least(data, _TOUCH.size, "REVALIDATE request"))
    return int(session_id), int(timeout)


def encode_revalidate_reply(session_id: int, valid: bool) -> bytes:
    return _VALIDITY.pack(session_id, valid)


def parse_revalidate_reply(data: bytes | None) -> tuple[int, bool]:
    """DataInputStream.readBoolean: any non-zero byte is true."""
    raw = _at_least(data, _VALIDITY.size, "REVALIDATE reply")
    return int(_LONG.unpack_from(raw)[0]), raw[_LONG.size] != 0


def encode_activation(designated_leader_sid: int, txn: bytes = b"") -> bytes:
    """COMMITANDACTIVATE data (no txn) or INFORMANDACTIVATE data (the txn entry after the sid)."""
    return _LONG.pack(designated_leader_sid) + txn


def parse_activation(data: bytes | None) -> tuple[int, bytes]:
    """(designated leader sid, the bytes after it: the txn entry of an INFORMANDACTIVATE)."""
    raw = _at_least(data, _LONG.size, "activation")
    return int(_LONG.unpack_from(raw)[0]), bytes(raw[_LONG.size:])
