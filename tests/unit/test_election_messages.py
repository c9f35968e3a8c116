"""Tests for zabd.election.messages: golden bytes, legacy forms, rejections, vote order."""
from __future__ import annotations

import struct

import pytest
from hypothesis import given
from hypothesis import strategies as st

from zabd.election.messages import (
    CURRENT_VERSION,
    MAX_ADDRESS_LENGTH,
    PROTOCOL_VERSION_V1,
    PROTOCOL_VERSION_V2,
    ElectionWireError,
    InitialMessage,
    Notification,
    PeerState,
    initial_length,
    newer_vote,
    parse_initial,
    parse_notification,
)

LONGS = st.integers(min_value=-(1 << 63), max_value=(1 << 63) - 1)
CONFIG = b"server.1=127.0.0.1:22881:23881:participant\nversion=0"


def initial_bytes(version: int, sid: int, addr: bytes, length: int | None = None) -> bytes:
    """Section 5.1 field by field: long version, long sid, int len, addr."""
    n = len(addr) if length is None else length
    return struct.pack(">q", version) + struct.pack(">q", sid) + struct.pack(">i", n) + addr


def vote_bytes(state: int, leader: int, zxid: int, epoch: int) -> bytes:
    """The 28-byte prefix every notification form shares (section 5.2 offsets 0..28)."""
    return (
        struct.pack(">i", state) + struct.pack(">q", leader)
        + struct.pack(">q", zxid) + struct.pack(">q", epoch)
    )


# ------------------------------------------------------------------ initial message


def test_initial_golden_from_doc() -> None:
    raw = bytes.fromhex("ffffffffffff0000" "0000000000000003" "0000000f" "3132372e302e302e313a3233383833")
    msg = InitialMessage(3, "127.0.0.1:23883")
    assert msg.encode() == raw
    assert initial_bytes(PROTOCOL_VERSION_V1, 3, b"127.0.0.1:23883") == raw
    assert parse_initial(raw) == msg
    assert msg.endpoints() == [("127.0.0.1", 23883)]
    assert initial_length(raw[:20]) == len(raw)
    assert initial_length(raw[:19]) is None


def test_initial_v2_multi_address_and_ipv6() -> None:
    raw = initial_bytes(PROTOCOL_VERSION_V2, 7, b"[::1]:3888|host-b:3889|0.0.0.0:3890")
    msg = parse_initial(raw)
    assert msg == InitialMessage(7, "[::1]:3888|host-b:3889|0.0.0.0:3890", PROTOCOL_VERSION_V2)
    assert msg.endpoints() == [("::1", 3888), ("host-b", 3889)]  # wildcard dropped
    assert msg.encode() == raw


def test_initial_legacy_bare_sid() -> None:
    raw = struct.pack(">q", 5)
    msg = parse_initial(raw)
    assert msg == InitialMessage(5, "", None)
    assert msg.encode() == raw
    assert msg.endpoints() == []
    assert initial_length(raw) == 8


def test_initial_observer_sid_max_long() -> None:
    msg = InitialMessage((1 << 63) - 1, "h:1")
    assert parse_initial(msg.encode()) == msg


@pytest.mark.parametrize(
    ("raw", "reason"),
    [
        (initial_bytes(-2, 1, b"h:1"), "unrecognized protocol version"),
        (initial_bytes(PROTOCOL_VERSION_V1, 1, b"", 0), "unreasonable address length"),
        (initial_bytes(PROTOCOL_VERSION_V1, 1, b"", -1), "unreasonable address length"),
        (initial_bytes(PROTOCOL_VERSION_V1, 1, b"", MAX_ADDRESS_LENGTH + 1), "unreasonable address length"),
        (initial_bytes(PROTOCOL_VERSION_V1, 1, b"h:1", 10), "truncated address"),
        (initial_bytes(PROTOCOL_VERSION_V1, 1, b"h:1")[:15], "truncated initial message"),
        (b"\x00\x00\x00", "truncated initial message"),
        (initial_bytes(PROTOCOL_VERSION_V1, 1, b"h:1") + b"x", "trailing bytes"),
        (initial_bytes(PROTOCOL_VERSION_V1, 1, b"localhost"), "no port"),
        (initial_bytes(PROTOCOL_VERSION_V1, 1, b"[::1]"), "no port"),
        (initial_bytes(PROTOCOL_VERSION_V1, 1, b"[::1]:"), "no port"),
        (initial_bytes(PROTOCOL_VERSION_V1, 1, b"[::1:80"), "badly formed"),
        (initial_bytes(PROTOCOL_VERSION_V1, 1, b"::1:80"), "badly formed"),
        (initial_bytes(PROTOCOL_VERSION_V1, 1, b"h:x"), "bad port"),
        (initial_bytes(PROTOCOL_VERSION_V1, 1, b"h:70000"), "bad port"),
        (initial_bytes(PROTOCOL_VERSION_V2, 1, b"a:1|b"), "no port"),
    ],
)
def test_initial_rejections(raw: bytes, reason: str) -> None:
    with pytest.raises(ElectionWireError, match=reason):
        parse_initial(raw)


@pytest.mark.parametrize(
    ("raw", "reason"),
    [
        (initial_bytes(-2, 1, b"h:1"), "unrecognized protocol version"),
        (initial_bytes(PROTOCOL_VERSION_V1, 1, b"", 0x7FFFFFFF), "unreasonable address length"),
        (initial_bytes(PROTOCOL_VERSION_V1, 1, b"", -5), "unreasonable address length"),
    ],
)
def test_initial_length_fails_fast(raw: bytes, reason: str) -> None:
    """A stream reader must not wait for 2 GiB a broken peer announced."""
    size = initial_length(raw)
    assert size is not None
    with pytest.raises(ElectionWireError, match=reason):
        parse_initial(raw[:size])


def test_initial_max_address_length_accepted() -> None:
    addr = b"h" * (MAX_ADDRESS_LENGTH - 2) + b":1"
    assert parse_initial(initial_bytes(PROTOCOL_VERSION_V1, 1, addr)).address.endswith(":1")


def test_wire_error_is_value_error() -> None:
    assert issubclass(ElectionWireError, ValueError)


# ------------------------------------------------------------------ notification


def test_peer_state_ordinals() -> None:
    assert [(s.name, s.value) for s in PeerState] == [
        ("LOOKING", 0), ("FOLLOWING", 1), ("LEADING", 2), ("OBSERVING", 3),
    ]


def test_notification_golden_layout() -> None:
    n = Notification(PeerState.FOLLOWING, 2, 0, 1, 1, CURRENT_VERSION, CONFIG)
    expected = (
        vote_bytes(1, 2, 0, 1) + struct.pack(">q", 1) + struct.pack(">i", 2)
        + struct.pack(">i", len(CONFIG)) + CONFIG
    )
    assert n.encode() == expected
    assert len(expected) == 44 + len(CONFIG)
    assert expected[:44].hex() == (
        "00000001" "0000000000000002" "0000000000000000" "0000000000000001"
        "0000000000000001" "00000002" f"{len(CONFIG):08x}"
    )
    assert parse_notification(expected) == n


def test_notification_negative_longs() -> None:
    n = Notification(PeerState.OBSERVING, -(1 << 63), -1, 3, -(1 << 63))
    assert parse_notification(n.encode()) == n


def test_legacy_28_bytes_takes_epoch_from_zxid() -> None:
    raw = vote_bytes(0, 3, 0x0000000500000007, 9)
    assert len(raw) == 28
    assert parse_notification(raw) == Notification(PeerState.LOOKING, 3, 0x500000007, 9, 5, 0)


def test_legacy_40_bytes_ignores_version_slot() -> None:
    raw = vote_bytes(2, 3, 7, 9) + struct.pack(">q", 4) + struct.pack(">i", 0x1234)
    assert len(raw) == 40
    assert parse_notification(raw) == Notification(PeerState.LEADING, 3, 7, 9, 4, 0)


def test_version_1_without_config() -> None:
    raw = vote_bytes(0, 3, 7, 9) + struct.pack(">q", 4) + struct.pack(">i", 1) + b"\x00\x00"
    assert parse_notification(raw) == Notification(PeerState.LOOKING, 3, 7, 9, 4, 1)


def test_trailing_bytes_after_config_ignored() -> None:
    n = Notification(PeerState.LOOKING, 1, 2, 3, 4, CURRENT_VERSION, b"version=0")
    assert parse_notification(n.encode() + b"junk") == n


def test_empty_config() -> None:
    n = Notification(PeerState.LOOKING, 1, 2, 3, 4)
    assert len(n.encode()) == 44
    assert parse_notification(n.encode()) == n


def test_encode_refuses_old_versions() -> None:
    with pytest.raises(ElectionWireError, match="version"):
        Notification(PeerState.LOOKING, 1, 2, 3, 4, 1).encode()


def _full(config_len: int, config: bytes, state: int = 0) -> bytes:
    """A version-2 payload with a chosen config length field and config bytes."""
    head = vote_bytes(state, 1, 2, 3) + struct.pack(">q", 4) + struct.pack(">i", 2)
    return head + struct.pack(">i", config_len) + config


@pytest.mark.parametrize(
    ("raw", "reason"),
    [
        (b"", "short notification"),
        (vote_bytes(0, 1, 2, 3)[:27], "short notification"),
        (vote_bytes(0, 1, 2, 3) + b"\x00", "truncated notification"),
        (vote_bytes(0, 1, 2, 3) + b"\x00" * 8, "truncated notification"),  # 36: no version
        (vote_bytes(0, 1, 2, 3) + b"\x00" * 11, "truncated notification"),  # 39
        (vote_bytes(0, 1, 2, 3) + struct.pack(">qi", 4, 2) + b"\x00", "without config length"),  # 41
        (_full(-1, b""), "invalid config length"),
        (_full(10_000, b"abc"), "invalid config length"),
        (_full(10, b"abc"), "truncated config"),
        (_full(0, b"", state=4), "unknown peer state"),
        (vote_bytes(-1, 1, 2, 3), "unknown peer state"),
    ],
)
def test_notification_rejections(raw: bytes, reason: str) -> None:
    with pytest.raises(ElectionWireError, match=reason):
        parse_notification(raw)


@given(
    st.sampled_from(PeerState), LONGS, LONGS, LONGS, LONGS,
    st.integers(min_value=2, max_value=(1 << 31) - 1), st.binary(max_size=300),
)
def test_notification_round_trip(
    state: PeerState, leader: int, zxid: int, epoch: int, peer_epoch: int, version: int, config: bytes
) -> None:
    n = Notification(state, leader, zxid, epoch, peer_epoch, version, config)
    raw = n.encode()
    assert len(raw) == 44 + len(config)
    assert parse_notification(raw) == n


@given(LONGS, st.text(alphabet="abcdefghijklmnopqrstuvwxyz0123456789.-", min_size=1, max_size=60),
       st.integers(min_value=0, max_value=0xFFFF))
def test_initial_round_trip(sid: int, host: str, port: int) -> None:
    msg = InitialMessage(sid, f"{host}:{port}")
    assert parse_initial(msg.encode()) == msg


# ------------------------------------------------------------------ vote order


@pytest.mark.parametrize(
    ("new", "cur", "expected"),
    [
        ((1, 0, 2), (9, 99, 1), True),  # higher peerEpoch beats higher zxid and sid
        ((9, 99, 1), (1, 0, 2), False),
        ((1, 6, 2), (9, 5, 2), True),  # same epoch: higher zxid beats higher sid
        ((9, 5, 2), (1, 6, 2), False),
        ((3, 5, 2), (2, 5, 2), True),  # same epoch and zxid: higher sid
        ((2, 5, 2), (3, 5, 2), False),
        ((2, 5, 2), (2, 5, 2), False),  # equal votes: not newer
        ((1, -1, 0), (2, -1, -1), True),  # signed comparison, as Java longs
    ],
)
def test_newer_vote(new: tuple[int, int, int], cur: tuple[int, int, int], expected: bool) -> None:
    assert newer_vote(*new, *cur) is expected
