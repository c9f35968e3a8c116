"""Tests for zabd.quorum.snapstream: the snapshot a leader streams after SNAP."""
from __future__ import annotations

import random
import struct

import pytest

from tests.unit.fakes import assert_consistent
from tests.unit.test_snapformat import S1, S2, Live, RandomTxns, replay, state, varied_tree
from zabd.core.datatree import DataTree
from zabd.quorum.snapstream import (
    SIGNATURE,
    QuorumWireError,
    SnapshotStream,
    SnapshotStreamDecoder,
    snapshot_stream_chunks,
)
from zabd.storage.snapformat import snapshot_chunks

_SIG = struct.pack(">i", len(SIGNATURE)) + SIGNATURE


def decode_in_pieces(stream: bytes, cuts: list[int]) -> tuple[SnapshotStream, int]:
    """Feed ``stream`` cut at ``cuts``, as a connection would deliver it; the
    result and the position the decoder stopped at."""
    decoder = SnapshotStreamDecoder()
    buf = bytearray()
    pos = 0
    for begin, end in zip([0, *cuts], [*cuts, len(stream)]):
        buf += stream[begin:end]
        pos = decoder.feed(buf, pos)
        if end < len(stream):
            assert decoder.result is None
    assert decoder.result is not None
    return decoder.result, pos


def random_cuts(size: int, rng: random.Random, count: int) -> list[int]:
    return sorted(rng.sample(range(1, size), min(count, size - 1)))


@pytest.mark.parametrize("nodes_per_chunk", [1000, 1, 3])
def test_stream_round_trip_keeps_tree_digest_indexes_and_sessions(nodes_per_chunk: int) -> None:
    live = varied_tree()
    stream = b"".join(snapshot_stream_chunks(live.tree, live.sessions, nodes_per_chunk))
    result, pos = decode_in_pieces(stream, [])
    assert pos == len(stream)
    assert state(result.tree) == state(live.tree)
    assert result.tree.digest.value == live.tree.digest.value
    assert result.sessions == {S1: 30_000, S2: 10_000}
    assert result.tree.ephemerals == {S1: {"/app/e1"}, S2: {"/app/e2"}}
    assert result.tree.containers == {"/box"} and result.tree.ttls == {"/ttl"}
    assert result.tree.nodes["/app/mixed"].data is None
    assert result.tree.last_processed_zxid == 0  # the learner sets it from the SNAP packet
    assert_consistent(result.tree)


@pytest.mark.parametrize("seed", range(6))
def test_random_splits_decode_to_the_same_tree(seed: int) -> None:
    live = varied_tree()
    stream = b"".join(snapshot_stream_chunks(live.tree, live.sessions))
    rng = random.Random(seed)
    result, pos = decode_in_pieces(stream, random_cuts(len(stream), rng, rng.randrange(1, 60)))
    assert pos == len(stream)
    assert state(result.tree) == state(live.tree)
    assert result.sessions == live.sessions


def test_every_byte_fed_alone_decodes_the_same() -> None:
    live = varied_tree()
    stream = b"".join(snapshot_stream_chunks(live.tree, live.sessions))
    result, _ = decode_in_pieces(stream, list(range(1, len(stream))))
    assert state(result.tree) == state(live.tree)


def test_stream_is_the_snapshot_file_body_plus_the_signature() -> None:
    live = varied_tree()
    file_bytes = b"".join(snapshot_chunks(live.tree, live.sessions))
    stream = b"".join(snapshot_stream_chunks(live.tree, live.sessions))
    # No 16-byte file header; no checksums, seals or digest after the "/" marker.
    assert stream == file_bytes[16:-46] + _SIG
    assert stream.endswith(b"\x00\x00\x00\x01/" + b"\x00\x00\x00\x0aBenWasHere")


def test_empty_tree_stream_layout() -> None:
    tree = DataTree()
    stream = b"".join(snapshot_stream_chunks(tree, {}))
    assert stream[:4] == b"\x00\x00\x00\x00"  # no sessions
    # One ACL map entry: /zookeeper/config's read-only list gets id 1.
    assert stream[4:20] == bytes.fromhex("00000001" "0000000000000001" "00000001")
    result, _ = decode_in_pieces(stream, [])
    assert sorted(result.tree.nodes) == ["/", "/zookeeper", "/zookeeper/config", "/zookeeper/quota"]
    assert result.sessions == {}


@pytest.mark.parametrize("seed", range(4))
def test_fuzzy_stream_plus_forwarded_txns_gives_the_live_tree(seed: int) -> None:
    live = Live()
    maker = RandomTxns(live, seed)
    for _ in range(120):
        maker.step()
    sessions = dict(live.sessions)
    chunks = snapshot_stream_chunks(live.tree, live.sessions, nodes_per_chunk=3)
    parts = [next(chunks)]
    snap_zxid = live.zxid  # what the SNAP packet carries
    for part in chunks:
        parts.append(part)
        for _ in range(maker.rng.randrange(4)):
            maker.step()
    assert len(parts) > 3
    result, _ = decode_in_pieces(b"".join(parts), [])
    assert result.sessions == sessions
    replay(result.tree, live.log, snap_zxid)  # the PROPOSAL/COMMITs queued after SNAP
    assert state(result.tree) == state(live.tree)
    assert_consistent(result.tree)


def test_bytes_after_the_signature_are_left_alone() -> None:
    stream = b"".join(snapshot_stream_chunks(DataTree(), {}))
    decoder = SnapshotStreamDecoder()
    assert decoder.feed(stream + b"\x00\x00\x00\x0c", 0) == len(stream)
    assert decoder.result is not None


def test_a_truncated_stream_is_never_finished() -> None:
    live = varied_tree()
    stream = b"".join(snapshot_stream_chunks(live.tree, live.sessions))
    for cut in range(0, len(stream), 7):
        decoder = SnapshotStreamDecoder()
        assert decoder.feed(stream[:cut], 0) <= cut
        assert decoder.result is None


def _body(sessions: bytes = b"\x00\x00\x00\x00", acls: bytes = b"\x00\x00\x00\x00", nodes: bytes = b"") -> bytes:
    return sessions + acls + nodes


def _node(path: bytes, acl_id: int = -1, data: bytes | None = b"") -> bytes:
    encoded = b"\xff\xff\xff\xff" if data is None else struct.pack(">i", len(data)) + data
    return struct.pack(">i", len(path)) + path + encoded + struct.pack(">qqqqqiiiqq", acl_id, *([0] * 9))


_ROOT = _node(b"")
_END = b"\x00\x00\x00\x01/"


@pytest.mark.parametrize("stream, reason", [
    (_body(nodes=_ROOT + _END) + b"\x00\x00\x00\x0aBenWasHerf", "signature"),
    (_body(nodes=_ROOT + _END) + b"\x00\x00\x00\x03abc", "signature"),
    (_body(nodes=_ROOT + _END) + b"\xff\xff\xff\xff", "signature"),
    (_body(sessions=b"\xff\xff\xff\xfe"), "session count"),
    (_body(acls=b"\xff\xff\xff\xfe"), "ACL map count"),
    (_body(acls=b"\x00\x00\x00\x01" + b"\x00" * 8 + b"\xff\xff\xff\xff"), "null"),
    (_body(acls=b"\x00\x00\x00\x01" + b"\x00" * 8 + b"\x7f\xff\xff\xff"), "ACL map entry"),
    (_body(nodes=_ROOT + _node(b"/a", acl_id=7)), "ACL id 7"),
    (_body(nodes=_ROOT + _node(b"/a/b")), "before its parent"),
    (_body(nodes=_node(b"/a")), "before its parent"),
    (_body(nodes=_END), "no root"),
    (_body(nodes=b"\xff\xff\xff\xff"), "path length"),
    (_body(nodes=b"\x00\x00\x00\x02/a\xff\xff\xff\xfe"), "data length"),
    (_body(nodes=_ROOT + _node(b"")), "second root"),
])
def test_garbage_is_refused(stream: bytes, reason: str) -> None:
    with pytest.raises(QuorumWireError, match=reason):
        SnapshotStreamDecoder().feed(stream + b"\x00" * 64, 0)


def test_oversized_fields_are_refused_by_the_configured_limit() -> None:
    stream = _body(nodes=_ROOT + _node(b"/big", data=b"x" * 2000) + _END) + _SIG
    assert SnapshotStreamDecoder(max_length=2000).feed(stream, 0) == len(stream)
    with pytest.raises(QuorumWireError, match="data length 2000"):
        SnapshotStreamDecoder(max_length=1999).feed(stream, 0)
