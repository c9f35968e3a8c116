"""Tests for zabd.quorum.packets: quorum-port packets, the stream decoder, payloads."""
from __future__ import annotations

import random
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from tests.unit.test_snapformat import state, varied_tree
from zabd.jute.records import Id
from zabd.jute.txns import Txn
from zabd.quorum.packets import (
    LEGACY_PROTOCOL_VERSION,
    PROTOCOL_VERSION,
    LearnerInfo,
    PacketStreamDecoder,
    PacketType,
    QuorumPacket,
    QuorumWireError,
    RequestForward,
    SnapshotStream,
    encode_ack_epoch,
    encode_activation,
    encode_leader_info,
    encode_packet,
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
from zabd.quorum.snapstream import SnapshotStreamDecoder, snapshot_stream_chunks

FOLLOWERINFO = bytes.fromhex(
    "0000000b 0000000100000000 00000014 0000000000000003 00010000 0000000000000000 ffffffff")

ids = st.builds(Id, st.text(max_size=8), st.text(max_size=20))
packets = st.builds(
    QuorumPacket,
    st.integers(-(1 << 31), (1 << 31) - 1).filter(lambda t: t != PacketType.SNAP),  # SNAP needs a stream
    st.integers(-(1 << 63), (1 << 63) - 1),
    st.none() | st.binary(max_size=64),
    st.none() | st.lists(ids, max_size=3),
)


def decode_all(stream: bytes, cuts: list[int]) -> list[QuorumPacket | SnapshotStream]:
    decoder = PacketStreamDecoder()
    items: list[QuorumPacket | SnapshotStream] = []
    for begin, end in zip([0, *cuts], [*cuts, len(stream)]):
        items += decoder.feed(stream[begin:end])
    assert decoder.pending() == 0
    return items


# ---- packets ----------------------------------------------------------------------------


def test_followerinfo_golden_bytes() -> None:
    packet = QuorumPacket(PacketType.FOLLOWERINFO, 1 << 32, LearnerInfo(3).encode())
    assert encode_packet(packet) == FOLLOWERINFO
    assert decode_all(FOLLOWERINFO, []) == [packet]
    assert parse_learner_info(packet.data) == LearnerInfo(3, PROTOCOL_VERSION, 0)


def test_leaderinfo_uptodate_and_request_authinfo_bytes() -> None:
    leader_info = QuorumPacket(PacketType.LEADERINFO, 1 << 32, encode_leader_info())
    assert encode_packet(leader_info).hex() == "00000011" "0000000100000000" "00000004" "00010000" "ffffffff"
    assert encode_packet(QuorumPacket(PacketType.UPTODATE, -1)).hex() == "0000000c" + "ff" * 16
    request = QuorumPacket(PacketType.REQUEST, -1, b"", [Id("ip", "127.0.0.1")])
    assert encode_packet(request).hex() == (
        "00000001" + "ff" * 8 + "00000000" "00000001" "00000002" + b"ip".hex() + "00000009" + b"127.0.0.1".hex())
    assert decode_all(encode_packet(request), []) == [request]


def test_packet_types_are_leader_javas() -> None:
    assert [(t.name, t.value) for t in PacketType][:3] == [("REQUEST", 1), ("PROPOSAL", 2), ("ACK", 3)]
    assert PacketType.INFORMANDACTIVATE == 19 and len(PacketType) == 19
    assert PROTOCOL_VERSION == 0x10000


@given(st.lists(packets, max_size=6))
def test_round_trip_any_packets(sent: list[QuorumPacket]) -> None:
    stream = b"".join(encode_packet(p) for p in sent)
    assert decode_all(stream, []) == sent
    assert b"".join(encode_packet(p) for p in decode_all(stream, [])) == stream


@given(st.lists(packets, min_size=1, max_size=4), st.randoms(use_true_random=False))
def test_any_split_of_the_stream_gives_the_same_packets(sent: list[QuorumPacket], rng: random.Random) -> None:
    stream = b"".join(encode_packet(p) for p in sent)
    cuts = sorted(rng.sample(range(1, len(stream)), rng.randrange(min(len(stream) - 1, 12) + 1)))
    assert decode_all(stream, cuts) == sent


def test_one_byte_feeds_give_the_same_packets() -> None:
    sent = [QuorumPacket(PacketType.PING, 5, None), QuorumPacket(PacketType.PROPOSAL, 7, b"t" * 300),
            QuorumPacket(PacketType.REQUEST, -1, b"r", [Id("ip", "1.2.3.4"), Id("digest", "u:p")]),
            QuorumPacket(PacketType.PING, 5, b"")]
    stream = b"".join(encode_packet(p) for p in sent)
    assert decode_all(stream, list(range(1, len(stream)))) == sent


def test_snap_switches_to_the_snapshot_stream_and_back() -> None:
    live = varied_tree()
    snap = QuorumPacket(PacketType.SNAP, live.zxid)
    newleader = QuorumPacket(PacketType.NEWLEADER, 1 << 32, b"version=0")
    uptodate = QuorumPacket(PacketType.UPTODATE, -1)
    stream = (encode_packet(QuorumPacket(PacketType.LEADERINFO, 1 << 32, encode_leader_info()))
              + encode_packet(snap) + b"".join(snapshot_stream_chunks(live.tree, live.sessions))
              + encode_packet(newleader) + encode_packet(uptodate))
    for cuts in ([], list(range(1, len(stream))), sorted(random.Random(3).sample(range(1, len(stream)), 40))):
        items = decode_all(stream, cuts)
        assert [type(i).__name__ for i in items] == [
            "QuorumPacket", "QuorumPacket", "SnapshotStream", "QuorumPacket", "QuorumPacket"]
        assert items[1] == snap and items[3:] == [newleader, uptodate]
        snapshot = items[2]
        assert isinstance(snapshot, SnapshotStream)
        assert state(snapshot.tree) == state(live.tree) and snapshot.sessions == live.sessions


def test_a_bad_signature_after_snap_is_refused() -> None:
    stream = encode_packet(QuorumPacket(PacketType.SNAP, 1)) + b"".join(snapshot_stream_chunks(varied_tree().tree, {}))
    with pytest.raises(QuorumWireError, match="signature"):
        PacketStreamDecoder().feed(stream[:-1] + b"f")


def test_large_streams_are_compacted_and_big_packets_arrive_whole() -> None:
    decoder = PacketStreamDecoder()
    small = encode_packet(QuorumPacket(PacketType.COMMIT, 9))
    got = 0
    for _ in range(5000):
        got += len(decoder.feed(small * 10))
    assert got == 50000
    assert len(decoder._in.buf) < 1 << 17  # consumed bytes were dropped along the way
    big = QuorumPacket(PacketType.PROPOSAL, 10, bytes(1_000_000))
    encoded = encode_packet(big)
    items = []
    for begin in range(0, len(encoded), 4096):
        items += decoder.feed(encoded[begin:begin + 4096])
    assert items == [big]


@pytest.mark.parametrize("stream, reason", [
    (bytes.fromhex("00000003 0000000000000001 fffffffe"), "invalid length -2"),
    (bytes.fromhex("00000003 0000000000000001 00300000"), "invalid length"),
    (bytes.fromhex("00000003 0000000000000001 ffffffff fffffff0"), "vector count"),
    (bytes.fromhex("00000003 0000000000000001 ffffffff 00000001 fffffffe"), "invalid length"),
])
def test_garbage_is_refused(stream: bytes, reason: str) -> None:
    with pytest.raises(QuorumWireError, match=reason):
        PacketStreamDecoder().feed(stream)


def test_limits_are_configurable() -> None:
    packet = encode_packet(QuorumPacket(PacketType.PROPOSAL, 1, bytes(5000)))
    assert len(PacketStreamDecoder(max_length=5000).feed(packet)) == 1
    with pytest.raises(QuorumWireError, match="invalid length 5000"):
        PacketStreamDecoder(max_length=4999).feed(packet)
    decoder = PacketStreamDecoder(max_length=5000, max_packet=100)
    with pytest.raises(QuorumWireError, match="longer than 100"):
        for begin in range(0, len(packet), 50):  # a packet that would hold back too much
            decoder.feed(packet[begin:begin + 50])


# ---- payloads -----------------------------------------------------------------------------


def test_learner_info_forms() -> None:
    assert LearnerInfo(3, config_version=0x100000000).encode().hex() == "0000000000000003" "00010000" "0000000100000000"
    assert parse_learner_info(None) is None
    assert parse_learner_info(LearnerInfo(3, config_version=None).encode()) == LearnerInfo(3, PROTOCOL_VERSION, None)
    assert len(LearnerInfo(3, config_version=None).encode()) == 12
    assert parse_learner_info(bytes.fromhex("0000000000000009")) == LearnerInfo(9, LEGACY_PROTOCOL_VERSION, None)
    assert parse_learner_info(LearnerInfo(2, 5, 7).encode() + b"extra") == LearnerInfo(2, 5, 7)
    with pytest.raises(QuorumWireError):
        parse_learner_info(b"\x00" * 7)


def test_leader_info_and_ack_epoch() -> None:
    assert parse_leader_info(encode_leader_info()) == PROTOCOL_VERSION
    assert parse_leader_info(b"\x00\x01\x00\x00\xff") == PROTOCOL_VERSION
    assert encode_ack_epoch(None) == b"\xff\xff\xff\xff" and parse_ack_epoch(b"\xff\xff\xff\xff") is None
    assert encode_ack_epoch(1) == b"\x00\x00\x00\x01" and parse_ack_epoch(b"\x00\x00\x00\x01") == 1
    assert encode_ack_epoch((1 << 32) + 5) == b"\x00\x00\x00\x05"  # Java's (int) cast
    for bad in (None, b"", b"\x00\x00\x01"):
        with pytest.raises(QuorumWireError):
            parse_leader_info(bad)
        with pytest.raises(QuorumWireError):
            parse_ack_epoch(bad)


def test_request_forward() -> None:
    create_session = RequestForward(0x100, 0, -10, b"\x00\x00\x75\x30")
    raw = create_session.encode()
    assert raw.hex() == "0000000000000100" "00000000" "fffffff6" "00007530"
    assert parse_request_forward(raw) == create_session
    assert parse_request_forward(RequestForward(1, 2, -11).encode()) == RequestForward(1, 2, -11, b"")
    with pytest.raises(QuorumWireError, match="REQUEST"):
        parse_request_forward(raw[:15])


def test_ping_touches() -> None:
    assert encode_touches([]) == b"" and parse_touches(b"") == [] and parse_touches(None) == []
    touches = [(0x0300000000001234, 30_000), (-5, 1)]
    raw = encode_touches(touches)
    assert raw[:12].hex() == "0300000000001234" "00007530"
    assert parse_touches(raw) == touches
    with pytest.raises(QuorumWireError, match="pairs"):
        parse_touches(raw[:-1])


def test_revalidate() -> None:
    reply = bytes.fromhex("030000000000123401")
    assert parse_revalidate_reply(reply) == (0x0300000000001234, True)
    assert encode_revalidate_reply(0x0300000000001234, True) == reply
    assert parse_revalidate_reply(reply[:8] + b"\x00") == (0x0300000000001234, False)
    assert parse_revalidate_reply(reply[:8] + b"\x07") == (0x0300000000001234, True)  # readBoolean
    request = encode_revalidate_request(0x0300000000001234, 30_000)
    assert request.hex() == "0300000000001234" "00007530"
    assert parse_revalidate_request(request) == (0x0300000000001234, 30_000)
    with pytest.raises(QuorumWireError):
        parse_revalidate_reply(reply[:8])
    with pytest.raises(QuorumWireError):
        parse_revalidate_request(request[:11])


def test_activation_payloads() -> None:
    assert encode_activation(3).hex() == "0000000000000003"
    assert parse_activation(encode_activation(3)) == (3, b"")
    assert parse_activation(encode_activation(2, b"txn")) == (2, b"txn")
    with pytest.raises(QuorumWireError):
        parse_activation(b"\x00" * 7)


# ---- golden captures of ZooKeeper 3.8.0 (zabd/harness/quorumcapture.py) -------------------------

DATA = Path(__file__).parent / "data"
CAPTURES = sorted(p.name for p in DATA.glob("quorum_capture_*.hex"))


def load_capture(name: str) -> bytes:
    return bytes.fromhex("".join(line for line in (DATA / name).read_text().splitlines() if not line.startswith("#")))


def packets_of(items: list[QuorumPacket | SnapshotStream]) -> list[QuorumPacket]:
    return [item for item in items if isinstance(item, QuorumPacket)]


def test_all_four_captures_are_present() -> None:
    assert CAPTURES == [f"quorum_capture_{case}_{side}.hex" for case in ("diff", "snap")
                        for side in ("to_leader", "to_learner")]


@pytest.mark.parametrize("name", CAPTURES)
def test_capture_decodes_whole_and_every_packet_reencodes_to_its_bytes(name: str) -> None:
    raw = load_capture(name)
    items = decode_all(raw, [])
    assert len(items) > 5
    # Packets before the snapshot are a prefix of the capture, those after it a suffix.
    cut = next((i for i, item in enumerate(items) if isinstance(item, SnapshotStream)), len(items))
    head = b"".join(encode_packet(p) for p in packets_of(items[:cut]))
    tail = b"".join(encode_packet(p) for p in packets_of(items[cut + 1:]))
    assert raw.startswith(head) and raw.endswith(tail)
    if cut == len(items):
        assert head == raw
    else:  # the middle is exactly one SNAP stream
        middle = raw[len(head):len(raw) - len(tail)]
        decoder = SnapshotStreamDecoder()
        assert decoder.feed(middle, 0) == len(middle) and decoder.result is not None
    again = decode_all(raw, sorted(random.Random(name).sample(range(1, len(raw)), 50)))
    assert packets_of(again) == packets_of(items)
    assert [state(i.tree) for i in again if isinstance(i, SnapshotStream)] == [
        state(i.tree) for i in items if isinstance(i, SnapshotStream)]


def test_snap_capture_handshake_and_tree() -> None:
    items = decode_all(load_capture("quorum_capture_snap_to_learner.hex"), [])
    kinds = [PacketType(i.type).name if isinstance(i, QuorumPacket) else "stream" for i in items]
    assert kinds[:4] == ["LEADERINFO", "SNAP", "stream", "NEWLEADER"] and "UPTODATE" in kinds
    leader_info, snap, snapshot = items[0], items[1], items[2]
    assert isinstance(leader_info, QuorumPacket) and isinstance(snap, QuorumPacket)
    assert isinstance(snapshot, SnapshotStream)
    assert leader_info.zxid == 1 << 32 and parse_leader_info(leader_info.data) == PROTOCOL_VERSION
    tree = snapshot.tree
    assert {"/a", "/a/eph", "/a/seq-0000000000", "/secret", "/zookeeper/config"} <= set(tree.nodes)
    assert tree.nodes["/a"].data == b"alpha"
    [(session, timeout)] = snapshot.sessions.items()
    assert tree.ephemerals == {session: {"/a/eph"}} and timeout == 4000
    assert tree.nodes["/secret"].acl[0].id.scheme == "digest"
    # Each later PROPOSAL carries ZooKeeper's digest of the tree after it:
    # applied to the streamed tree, zabd's digest must agree every time.
    proposals = [Txn.from_bytes(p.data or b"") for p in packets_of(items) if p.type == PacketType.PROPOSAL]
    assert len(proposals) >= 3
    for txn in proposals:
        assert txn.digest is not None and txn.zxid > snap.zxid
        tree.apply(txn)
        assert tree.digest.signed() == txn.digest.treeDigest, hex(txn.zxid)


def test_learner_side_payloads_parse() -> None:
    snap_side = packets_of(decode_all(load_capture("quorum_capture_snap_to_leader.hex"), []))
    diff_side = packets_of(decode_all(load_capture("quorum_capture_diff_to_leader.hex"), []))
    for packets_sent, ack_epoch in ((snap_side, 0), (diff_side, None)):
        info, ack = packets_sent[0], packets_sent[1]
        assert info.type == PacketType.FOLLOWERINFO
        assert parse_learner_info(info.data) == LearnerInfo(1, PROTOCOL_VERSION, 0)
        assert ack.type == PacketType.ACKEPOCH and parse_ack_epoch(ack.data) == ack_epoch
    requests = [parse_request_forward(p.data) for p in snap_side + diff_side if p.type == PacketType.REQUEST]
    assert {r.op_type for r in requests} >= {-10, 1, 5, -11}  # createSession, create, setData, closeSession
    assert all(parse_touches(p.data) is not None for p in snap_side if p.type == PacketType.PING)
    assert any(parse_touches(p.data) for p in snap_side if p.type == PacketType.PING)
    [revalidate] = [p for p in diff_side if p.type == PacketType.REVALIDATE]
    session_id, timeout = parse_revalidate_request(revalidate.data)
    replies = [p for p in packets_of(decode_all(load_capture("quorum_capture_diff_to_learner.hex"), []))
               if p.type == PacketType.REVALIDATE]
    assert [parse_revalidate_reply(p.data) for p in replies] == [(session_id, True)] and timeout == 4000


def test_diff_capture_sends_history_as_proposal_commit_pairs() -> None:
    packets_got = packets_of(decode_all(load_capture("quorum_capture_diff_to_learner.hex"), []))
    kinds = [PacketType(p.type).name for p in packets_got]
    newleader = kinds.index("NEWLEADER")
    assert kinds[:2] == ["LEADERINFO", "DIFF"]
    history = packets_got[2:newleader]
    assert [p.type for p in history] == [PacketType.PROPOSAL, PacketType.COMMIT] * (len(history) // 2)
    assert history[-1].zxid == packets_got[1].zxid  # DIFF carries the last zxid it sends
