# -*- test-case-name: tests.unit.test_quorum_packets -*-
"""Quorum-port packets (protocol doc 4.1, 4.2, 4.8, 4.9), sans-IO.

``QuorumPacket { int type; long zxid; buffer data; vector<Id> authinfo }``
records follow one another with no length prefix; after a SNAP packet the
leader writes a raw snapshot stream (``snapstream``) before the next packet.
``PacketStreamDecoder`` turns the bytes of one connection into packets and
decoded snapshots. The payload helpers encode and parse the ``data`` of each
packet type the way 3.8's LearnerHandler and Learner read it.
"""
from __future__ import annotations

import struct
from dataclasses import dataclass
from enum import IntEnum

from zabd.jute.codec import DEFAULT_MAX_BUFFER, JuteError, Writer
from zabd.jute.framing import StreamBuffer
from zabd.jute.records import Id
from zabd.quorum.snapstream import (
    IncompleteItem,
    QuorumWireError,
    SnapshotStream,
    SnapshotStreamDecoder,
    StreamReader,
)

#: Zab 1.0, sent in LearnerInfo and LEADERINFO.
PROTOCOL_VERSION = 0x10000
#: What LearnerHandler assumes when a LearnerInfo has no protocol version.
LEGACY_PROTOCOL_VERSION = 0x1

_INT = struct.Struct(">i")
_PACKET_HEAD = struct.Struct(">iq")  # type, zxid
_PACKET_WITH_DATA = struct.Struct(">iqi")  # type, zxid, data length
_BARE_PACKET = struct.Struct(">iqii")  # type, zxid, no data, no authinfo
_NO_AUTHINFO = _INT.pack(-1)
_LONG = struct.Struct(">q")
_TOUCH = struct.Struct(">qi")  # session id, timeout
_REQUEST_HEAD = struct.Struct(">qii")  # session id, cxid, op type
_VALIDITY = struct.Struct(">q?")  # session id, valid
_SID_VERSION = struct.Struct(">qi")  # LearnerInfo's first two fields


class PacketType(IntEnum):
    """Leader.java's packet type constants."""

    REQUEST = 1
    PROPOSAL = 2
    ACK = 3
    COMMIT = 4
    PING = 5
    REVALIDATE = 6
    SYNC = 7
    INFORM = 8
    COMMITANDACTIVATE = 9
    NEWLEADER = 10
    FOLLOWERINFO = 11
    UPTODATE = 12
    DIFF = 13
    TRUNC = 14
    SNAP = 15
    OBSERVERINFO = 16
    LEADERINFO = 17
    ACKEPOCH = 18
    INFORMANDACTIVATE = 19


@dataclass(frozen=True, slots=True)
class QuorumPacket:
    """One packet; ``type`` stays a plain int so unknown types still decode."""

    type: int
    zxid: int
    data: bytes | None = None
    authinfo: list[Id] | None = None


def encode_packet(packet: QuorumPacket) -> bytes:
    """The packet's bytes; an absent data or authinfo goes out as -1, as ZooKeeper writes it."""
    if packet.authinfo is None:
        # Every packet but REQUEST: one struct call (ACK, COMMIT and PROPOSAL are per txn).
        data = packet.data
        if data is None:
            return _BARE_PACKET.pack(packet.type, packet.zxid, -1, -1)
        return _PACKET_WITH_DATA.pack(packet.type, packet.zxid, len(data)) + data + _NO_AUTHINFO
    w = Writer()
    w.buf += _PACKET_HEAD.pack(packet.type, packet.zxid)
    w.write_buffer(packet.data)
    w.write_vector(packet.authinfo, _write_id)
    return bytes(w.buf)


def _write_id(w: Writer, ident: Id) -> None:
    ident.write(w)


def _read_packet(reader: StreamReader) -> QuorumPacket:
    packet_type = reader.read_int()
    zxid = reader.read_long()
    data = reader.read_buffer()
    authinfo = reader.read_vector(Id.read)
    return QuorumPacket(packet_type, zxid, data, authinfo)


class PacketStreamDecoder:
    """Splits one quorum connection's bytes into packets and SNAP streams.

    ``feed`` returns every item completed by the new bytes; a SnapshotStream
    item comes right after its SNAP packet. A StreamBuffer holds the bytes,
    so decoding stays linear however the stream is split.
    """

    __slots__ = ("max_length", "max_packet", "_in", "_snapshot")

    def __init__(self, max_length: int = DEFAULT_MAX_BUFFER * 2, max_packet: int | None = None) -> None:
        #: The longest data buffer, string or vector count accepted.
        self.max_length = max_length
        #: The most bytes one unfinished packet may hold back (data plus authinfo).
        self.max_packet = max_length * 2 if max_packet is None else max_packet
        self._in = StreamBuffer()
        self._snapshot: SnapshotStreamDecoder | None = None

    def feed(self, data: bytes) -> list[QuorumPacket | SnapshotStream]:
        stream = self._in
        stream.append(data)
        buf = stream.buf
        items: list[QuorumPacket | SnapshotStream] = []
        while True:
            snapshot = self._snapshot
            if snapshot is not None:
                stream.pos = snapshot.feed(buf, stream.pos)
                if snapshot.result is None:
                    break
                items.append(snapshot.result)
                self._snapshot = None
                continue
            quick = self._quick_packet(buf)
            if quick is not None:
                items.append(quick)
                if quick.type == PacketType.SNAP:
                    self._snapshot = SnapshotStreamDecoder(self.max_length)
                continue
            reader = StreamReader(buf, stream.pos, len(buf), self.max_length)  # type: ignore[arg-type]
            try:
                packet = _read_packet(reader)
            except IncompleteItem:
                if stream.pending() > self.max_packet:
                    raise QuorumWireError(f"a packet longer than {self.max_packet} bytes") from None
                break
            except JuteError as e:
                raise QuorumWireError(f"bad quorum packet: {e}") from None
            stream.pos = reader.pos
            items.append(packet)
            if packet.type == PacketType.SNAP:
                self._snapshot = SnapshotStreamDecoder(self.max_length)
        return items

    def _quick_packet(self, buf: bytearray) -> QuorumPacket | None:
        """The next packet when it is whole and carries no authinfo (all but REQUEST).

        One struct call instead of a field-by-field read; anything else (a
        REQUEST, a partial packet, an insane length) goes the careful way.
        """
        pos = self._in.pos
        end = len(buf)
        if end - pos < _BARE_PACKET.size:
            return None
        kind, zxid, length = _PACKET_WITH_DATA.unpack_from(buf, pos)
        if length == -1:
            data = None
            at = pos + _PACKET_WITH_DATA.size
        elif 0 <= length <= self.max_length and pos + _BARE_PACKET.size + length <= end:
            at = pos + _PACKET_WITH_DATA.size + length
            data = bytes(buf[at - length:at])
        else:
            return None
        if _INT.unpack_from(buf, at)[0] != -1:
            return None
        self._in.pos = at + 4
        return QuorumPacket(kind, zxid, data)

    def pending(self) -> int:
        """Bytes received but not yet part of a whole item."""
        return self._in.pending()


# --------------------------------------------------------------------------- payloads


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
