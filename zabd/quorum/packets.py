# -*- test-case-name: tests.unit.test_quorum_packets -*-
"""Quorum-port packets (protocol doc 4.1, 4.2, 4.8, 4.9), sans-IO.

``QuorumPacket { int type; long zxid; buffer data; vector<Id> authinfo }``
records follow one another with no length prefix; after a SNAP packet the
leader writes a raw snapshot stream (``snapstream``) before the next packet.
``PacketStreamDecoder`` turns the bytes of one connection into packets and
decoded snapshots. The ``data`` of each packet type is read and written by
:mod:`zabd.quorum.payloads`, whose names this module re-exports.
"""
from __future__ import annotations

import struct
from dataclasses import dataclass
from enum import IntEnum

from zabd.jute.codec import DEFAULT_MAX_BUFFER, JuteError, Writer
from zabd.jute.framing import StreamBuffer
from zabd.jute.records import Id
from zabd.quorum.payloads import (
    LEGACY_PROTOCOL_VERSION,
    PROTOCOL_VERSION,
    LearnerInfo,
    RequestForward,
    encode_ack_epoch,
    encode_activation,
    encode_leader_info,
    encode_revalidate_reply,
    encode_revalidate_request,
    encode_touches,
    parse_ack_epoch,
    parse_activation,
    parse_leader_info,
    parse_learner_info,
    parse_request_forward,
    parse_revalidate_reply,
    parse_revalidate_request,
    parse_touches,
)
from zabd.quorum.snapstream import (
    IncompleteItem,
    QuorumWireError,
    SnapshotStream,
    SnapshotStreamDecoder,
    StreamReader,
)

__all__ = [
    "IncompleteItem", "LEGACY_PROTOCOL_VERSION", "LearnerInfo", "PROTOCOL_VERSION",
    "PacketStreamDecoder", "PacketType", "QuorumPacket", "QuorumWireError", "RequestForward",
    "SnapshotStream", "StreamReader", "encode_ack_epoch", "encode_activation", "encode_leader_info",
    "encode_packet", "encode_revalidate_reply", "encode_revalidate_request", "encode_touches",
    "parse_ack_epoch", "parse_activation", "parse_leader_info", "parse_learner_info",
    "parse_request_forward", "parse_revalidate_reply", "parse_revalidate_request", "parse_touches",
]

_INT = struct.Struct(">i")
_PACKET_HEAD = struct.Struct(">iq")  # type, zxid
_PACKET_WITH_DATA = struct.Struct(">iqi")  # type, zxid, data length
_BARE_PACKET = struct.Struct(">iqii")  # type, zxid, no data, no authinfo
_NO_AUTHINFO = _INT.pack(-1)


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
