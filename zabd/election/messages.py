# -*- test-case-name: tests.unit.test_election_messages -*-
"""Wire messages of the leader-election port 3888 (protocol doc section 5).

Sans-IO: bytes in, values out. Two messages live here: the initial message the
dialling peer sends once after the TCP connect (QuorumCnxManager) and the
FastLeaderElection notification that travels inside the ``int len`` frame
afterwards. Acceptance follows 3.8's receivers, so zabd drops exactly what a
stock server would drop and reads the legacy forms a stock server still reads.
"""
from __future__ import annotations

import ipaddress
import struct
from dataclasses import dataclass
from enum import IntEnum

from zabd.core.zxid import epoch_of
from zabd.java.compat import java_decode, java_parse_int, java_split

PROTOCOL_VERSION_V1 = -65536  # 0xffffffffffff0000: what 3.8 sends by default
PROTOCOL_VERSION_V2 = -65535  # only with multiAddress.enabled=true ("h1:p1|h2:p2")
MAX_ADDRESS_LENGTH = 2048  # QuorumCnxManager.maxBuffer: caps the address string
MAX_FRAME = 512 * 1024  # QuorumCnxManager.PACKETMAXSIZE: notification frame cap
CURRENT_VERSION = 2  # Notification.CURRENTVERSION: the first version carrying config

_LONG = struct.Struct(">q")
_INT = struct.Struct(">i")
_INITIAL_HEAD = struct.Struct(">qqi")  # protocol version, sid, address length
_VOTE = struct.Struct(">iqqqq")  # state, leader, zxid, electionEpoch, peerEpoch
_VERSIONED = struct.Struct(">iqqqqii")  # ... plus version and config length

_SHORT_FORM = 28  # before ZOOKEEPER-107: no peerEpoch
_NO_VERSION_FORM = 40  # peerEpoch but no version: the last 4 bytes are ignored


class ElectionWireError(ValueError):
    """Bytes a 3.8 peer would refuse: the caller drops the message or the connection."""


class PeerState(IntEnum):
    """QuorumPeer.ServerState ordinals, as sent in the notification's first int."""

    LOOKING = 0
    FOLLOWING = 1
    LEADING = 2
    OBSERVING = 3


# --------------------------------------------------------------------------- initial message


@dataclass(frozen=True, slots=True)
class InitialMessage:
    """Who is dialling: sid and election address(es) of the connecting peer.

    ``protocol_version`` None is the pre-3.5 form, a bare non-negative sid with
    nothing after it; ``address`` is then empty.
    """

    sid: int
    address: str
    protocol_version: int | None = PROTOCOL_VERSION_V1

    def encode(self) -> bytes:
        """The bytes written right after connect; nothing is framed around them."""
        if self.protocol_version is None:
            if self.sid < 0:
                raise ElectionWireError("legacy initial message needs a sid >= 0")
            return _LONG.pack(self.sid)
        raw = self.address.encode("utf-8")
        return _INITIAL_HEAD.pack(self.protocol_version, self.sid, len(raw)) + raw

    def endpoints(self) -> list[tuple[str, int]]:
        """The (host, port) pairs the receiver keeps: wildcard hosts are dropped, as 3.8 does."""
        if self.protocol_version is None:
            return []
        return [hp for hp in _parse_addresses(self.address) if not _is_wildcard(hp[0])]


def initial_length(prefix: bytes) -> int | None:
    """How many bytes the initial message starting ``prefix`` takes, or None if not known yet.

    Lets a stream reader cut the message off before the framed notifications
    begin. For a bad version or address length it returns the bytes already
    seen, so :func:`parse_initial` rejects at once instead of waiting for data
    that a broken peer will never send.
    """
    if len(prefix) < _LONG.size:
        return None
    first = _LONG.unpack_from(prefix)[0]
    if first >= 0 or first not in (PROTOCOL_VERSION_V1, PROTOCOL_VERSION_V2):
        return _LONG.size
    if len(prefix) < _INITIAL_HEAD.size:
        return None
    length = _INITIAL_HEAD.unpack_from(prefix)[2]
    if length <= 0 or length > MAX_ADDRESS_LENGTH:
        return _INITIAL_HEAD.size
    return _INITIAL_HEAD.size + length


def parse_initial(data: bytes) -> InitialMessage:
    """Read one whole initial message, refusing what QuorumCnxManager.InitialMessage.parse refuses."""
    if len(data) < _LONG.size:
        raise ElectionWireError(f"truncated initial message: {len(data)} bytes")
    first = _LONG.unpack_from(data)[0]
    if first >= 0:  # a pre-3.5 peer sends only its sid
        _no_trailing(data, _LONG.size)
        return InitialMessage(first, "", None)
    if first not in (PROTOCOL_VERSION_V1, PROTOCOL_VERSION_V2):
        raise ElectionWireError(f"unrecognized protocol version {first}")
    if len(data) < _INITIAL_HEAD.size:
        raise ElectionWireError(f"truncated initial message: {len(data)} bytes")
    _, sid, length = _INITIAL_HEAD.unpack_from(data)
    if length <= 0 or length > MAX_ADDRESS_LENGTH:
        raise ElectionWireError(f"unreasonable address length {length} (1..{MAX_ADDRESS_LENGTH})")
    end = _INITIAL_HEAD.size + length
    if len(data) < end:
        raise ElectionWireError(f"truncated address: {len(data) - _INITIAL_HEAD.size} of {length} bytes")
    _no_trailing(data, end)
    address = java_decode(data[_INITIAL_HEAD.size:end])
    _parse_addresses(address)  # validate now: 3.8 refuses the connection on a bad address
    return InitialMessage(sid, address, first)


def _no_trailing(data: bytes, end: int) -> None:
    """parse_initial takes exactly one message; use initial_length() to cut a stream."""
    if len(data) != end:
        raise ElectionWireError(f"{len(data) - end} trailing bytes after initial message")


def _parse_addresses(text: str) -> list[tuple[str, int]]:
    """``host:port`` items separated by ``|``; IPv6 hosts come as ``[addr]:port``."""
    return [_host_port(item) for item in java_split(text, "|")]


def _host_port(item: str) -> tuple[str, int]:
    """One address, split like ConfigUtils.getHostAndPort; exactly host and port must remain."""
    if item.startswith("["):
        close = item.find("]")
        if close < 0:
            raise ElectionWireError(f"badly formed address {item!r}: '[' without ']'")
        if close + 2 >= len(item):  # "[h]" or "[h]:": nothing left for a port
            raise ElectionWireError(f"no port in address {item!r}")
        parts = [item[1:close], *java_split(item[close + 2:], ":")]
    else:
        parts = java_split(item, ":")
    if len(parts) == 1:
        raise ElectionWireError(f"no port in address {item!r}")
    if len(parts) != 2:
        raise ElectionWireError(f"badly formed address {item!r}")
    port = java_parse_int(parts[1])
    if port is None or not 0 <= port <= 0xFFFF:  # InetSocketAddress refuses other ports
        raise ElectionWireError(f"bad port number {parts[1]!r} in {item!r}")
    return parts[0], port


def _is_wildcard(host: str) -> bool:
    """0.0.0.0 or ::; names are not resolved here (3.8 resolves them, sans-IO cannot)."""
    try:
        return ipaddress.ip_address(host).is_unspecified
    except ValueError:
        return False


# --------------------------------------------------------------------------- notification


@dataclass(frozen=True, slots=True)
class Notification:
    """One FastLeaderElection vote, as carried inside a 3888 frame.

    ``version`` is 0 for the legacy 28- and 40-byte forms; ``config`` is the
    sender's QuorumVerifier text and is only present when ``version > 1``.
    """

    state: PeerState
    leader: int
    zxid: int
    election_epoch: int
    peer_epoch: int
    version: int = CURRENT_VERSION
    config: bytes = b""

    def encode(self) -> bytes:
        """The 3.8 payload (44 + len(config) bytes), without the 4-byte frame length."""
        if self.version <= 1:
            raise ElectionWireError(f"version {self.version} carries no config; 3.8 sends {CURRENT_VERSION}")
        head = _VERSIONED.pack(
            int(self.state), self.leader, self.zxid, self.election_epoch,
            self.peer_epoch, self.version, len(self.config),
        )
        return head + self.config


def parse_notification(data: bytes) -> Notification:
    """Decode a frame payload the way FastLeaderElection.WorkerReceiver does.

    Accepted: exactly 28 bytes (peerEpoch taken from the zxid's high half),
    exactly 40 bytes (last int ignored, version 0), or 40+ bytes with a version;
    config is read only when that version is above 1. Bytes past what 3.8 reads
    are ignored, as 3.8 ignores them.
    """
    size = len(data)
    if size < _SHORT_FORM:
        raise ElectionWireError(f"short notification: {size} bytes")
    if size == _SHORT_FORM:
        state, leader, zxid, epoch = struct.unpack_from(">iqqq", data)
        return Notification(_state(state), leader, zxid, epoch, epoch_of(zxid), 0)
    if size < _NO_VERSION_FORM:  # 29..39: 3.8 underflows reading peerEpoch or version
        raise ElectionWireError(f"truncated notification: {size} bytes")
    state, leader, zxid, epoch, peer_epoch = _VOTE.unpack_from(data)
    if size == _NO_VERSION_FORM:
        return Notification(_state(state), leader, zxid, epoch, peer_epoch, 0)
    version = _INT.unpack_from(data, _VOTE.size)[0]
    if version <= 1:
        return Notification(_state(state), leader, zxid, epoch, peer_epoch, version)
    if size < _VERSIONED.size:
        raise ElectionWireError(f"version {version} notification without config length: {size} bytes")
    config_len = _INT.unpack_from(data, _VOTE.size + _INT.size)[0]
    if config_len < 0 or config_len > size:  # 3.8's own sanity check, before the underflow one
        raise ElectionWireError(f"invalid config length {config_len} in a {size}-byte notification")
    end = _VERSIONED.size + config_len
    if end > size:
        raise ElectionWireError(f"truncated config: {size - _VERSIONED.size} of {config_len} bytes")
    config = bytes(data[_VERSIONED.size:end])
    return Notification(_state(state), leader, zxid, epoch, peer_epoch, version, config)


def _state(value: int) -> PeerState:
    """3.8 skips a voter's notification whose state is not one of the four ordinals."""
    try:
        return PeerState(value)
    except ValueError:
        raise ElectionWireError(f"unknown peer state {value}") from None


# --------------------------------------------------------------------------- vote order


def newer_vote(
    new_id: int, new_zxid: int, new_epoch: int, cur_id: int, cur_zxid: int, cur_epoch: int
) -> bool:
    """FastLeaderElection.totalOrderPredicate: does the new vote beat the current one?

    Higher peerEpoch wins, then higher zxid, then higher sid. The weight check
    (a candidate of weight 0 never wins) is left out: zabd runs only with
    majority quorums, where every voter has weight 1; the caller must filter
    zero-weight candidates if hierarchical quorums ever appear.
    """
    return (new_epoch, new_zxid, new_id) > (cur_epoch, cur_zxid, cur_id)
