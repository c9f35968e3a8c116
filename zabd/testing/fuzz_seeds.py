"""The fuzzers' inputs (zabd.testing.fuzz): seed corpora, and the mutator that starts from them.

Each target reads its first byte as a selector (which decoder, which port
mode) and the rest as the bytes to feed; the seeds here are built with
zabd's own encoders, plus the ZooKeeper 3.8 quorum captures of
tests/unit/data when the source tree is at hand.
"""
from __future__ import annotations

import dataclasses
import inspect
import random
import struct
from pathlib import Path
from typing import Any

from zabd.core.datatree import DataTree
from zabd.election.messages import InitialMessage, Notification, PeerState
from zabd.jute import records, txns
from zabd.jute.multi import MultiResponse, OpResult, write_ops
from zabd.jute.opcodes import OpCode
from zabd.jute.records import (
    ACL, AuthPacket, CheckVersionRequest, ConnectRequest, CreateRequest, CreateTTLRequest, DeleteRequest, Id,
    PathRequest, PathWatchRequest, ReconfigRequest, SetACLRequest, SetDataRequest, SetWatches, SetWatches2, Stat,
    WatchTypeRequest,
)
from zabd.jute.schema import Record, Vector, encode
from zabd.jute.txns import CreateTxn, DeleteTxn, MultiTxn, SetDataTxn, Txn, TxnDigest, TxnHeader
from zabd.quorum.packets import (
    LearnerInfo, PacketType, QuorumPacket, RequestForward, encode_ack_epoch, encode_activation, encode_leader_info,
    encode_packet, encode_revalidate_reply, encode_revalidate_request, encode_touches,
)
from zabd.quorum.snapstream import snapshot_stream_chunks

_INT32 = (0, 1, -1, 2, 7, 16, 0x7F, 0x80, 0xFF, 0x100, 0x7FFF, 0xFFFF, 0xFFFFF, 0x100000, 0x7FFFFFFF, -0x80000000)
_INT64 = (0, -1, 1, 1 << 32, (1 << 32) + 1, (1 << 63) - 1, -(1 << 63), 0xFFFFFFFF)
CAPTURES = Path(__file__).resolve().parents[2] / "tests" / "unit" / "data"
OPEN = [ACL(31, Id("world", "anyone"))]
EPOCH1 = 1 << 32

#: Every jute record with a schema, in a fixed order (the jute target's selector indexes it).
RECORDS: list[type[Record]] = sorted(
    {cls for module in (records, txns) for _, cls in inspect.getmembers(module, inspect.isclass)
     if issubclass(cls, Record) and cls is not Record and cls.SCHEMA},
    key=lambda cls: cls.__name__)
#: What the jute target decodes besides the records.
JUTE_EXTRA = ("txn", "multi_write", "multi_read", "multi_response")

_SAMPLE: dict[str, object] = {"int": 7, "long": EPOCH1 + 3, "byte": 1, "bool": True, "buffer": b"data",
                              "ustring": "/fuzz/a"}


def sample(spec: object) -> Any:
    """A small valid value of a schema entry."""
    if isinstance(spec, str):
        return _SAMPLE[spec]
    if isinstance(spec, Vector):
        return [sample(spec.item), sample(spec.item)]
    assert isinstance(spec, type) and issubclass(spec, Record)
    return spec(*(sample(item) for item in spec.SCHEMA))


def frame(body: bytes) -> bytes:
    return struct.pack(">i", len(body)) + body


def jute_seeds() -> list[bytes]:
    seeds = [bytes([i]) + encode(sample(cls)) for i, cls in enumerate(RECORDS)]
    base = len(RECORDS)
    stat = sample(Stat)
    header = TxnHeader(0x1234, 5, EPOCH1 + 9, 1_700_000_000_000, OpCode.create)
    txn_list = [
        Txn(header, CreateTxn("/a", b"v", OPEN, False, 1), TxnDigest(2, 99)),
        Txn(dataclasses.replace(header, type=OpCode.multi), MultiTxn((
            (OpCode.create, CreateTxn("/m", b"", OPEN, True, 0)), (OpCode.setData, SetDataTxn("/m", b"x", 1)),
            (OpCode.delete, DeleteTxn("/m")))), None),
        Txn(dataclasses.replace(header, type=OpCode.closeSession), None),
    ]
    seeds += [bytes([base]) + t.to_bytes() for t in txn_list]
    nested = struct.pack(">i", 0)  # multis inside multis: a decoder that recurses runs out of stack
    for _ in range(400):
        nested = struct.pack(">iii", 1, OpCode.multi, len(nested)) + nested
    seeds.append(bytes([base]) + encode(dataclasses.replace(header, type=OpCode.multi)) + nested)
    ops = [(OpCode.create, CreateRequest("/a", b"", OPEN, 0)), (OpCode.delete, DeleteRequest("/a", -1)),
           (OpCode.check, CheckVersionRequest("/", 0)), (OpCode.setData, SetDataRequest("/", b"", -1)),
           (OpCode.createTTL, CreateTTLRequest("/t", b"", OPEN, 5, 100))]
    seeds.append(bytes([base + 1]) + write_ops(ops))
    seeds.append(bytes([base + 2]) + write_ops([(OpCode.getData, PathWatchRequest("/", False)),
                                                 (OpCode.getChildren, PathWatchRequest("/", True))]))
    results = (OpResult(OpCode.create, 0, records.CreateResponse("/a")),
               OpResult(OpCode.create2, 0, records.Create2Response("/b", stat)),
               OpResult(OpCode.setData, 0, stat), OpResult(OpCode.delete, 0, None),
               OpResult(OpCode.getData, 0, records.GetDataResponse(b"d", stat)),
               OpResult(OpCode.getChildren, 0, records.GetChildrenResponse(["x"])),
               OpResult(OpCode.error, -101, None))
    seeds.append(bytes([base + 3]) + encode(MultiResponse(results)))
    return seeds


def connect_frame(session_id: int = 0, read_only: bool | None = False) -> bytes:
    body = encode(ConnectRequest(0, 0, 10000, session_id, bytes(16)))
    return frame(body + (b"" if read_only is None else bytes([read_only])))


def request(xid: int, op: int, body: Record | bytes = b"") -> bytes:
    return frame(struct.pack(">ii", xid, op) + (body if isinstance(body, bytes) else encode(body)))


def client_requests() -> list[bytes]:
    multi = write_ops([(OpCode.create, CreateRequest("/f", b"1", OPEN, 0)),
                       (OpCode.check, CheckVersionRequest("/f", 0)), (OpCode.delete, DeleteRequest("/f", -1))])
    return [
        request(1, OpCode.create, CreateRequest("/f", b"x", OPEN, 0)),
        request(2, OpCode.create2, CreateRequest("/f/e", b"", OPEN, 3)),
        request(3, OpCode.createContainer, CreateRequest("/c", b"", OPEN, 4)),
        request(4, OpCode.createTTL, CreateTTLRequest("/t", b"", OPEN, 5, 1000)),
        request(5, OpCode.getData, PathWatchRequest("/f", True)),
        request(6, OpCode.setData, SetDataRequest("/f", b"y", -1)),
        request(7, OpCode.exists, PathWatchRequest("/g", True)),
        request(8, OpCode.getChildren2, PathWatchRequest("/", True)),
        request(9, OpCode.setACL, SetACLRequest("/f", [ACL(1, Id("digest", "u:x"))], -1)),
        request(10, OpCode.getACL, PathRequest("/f")),
        request(11, OpCode.multi, multi),
        request(12, OpCode.multiRead, write_ops([(OpCode.getData, PathWatchRequest("/", False))])),
        request(13, OpCode.sync, PathRequest("/")),
        request(-2, OpCode.ping),
        request(14, OpCode.removeWatches, WatchTypeRequest("/f", 3)),
        request(15, OpCode.addWatch, WatchTypeRequest("/", 1)),
        request(-8, OpCode.setWatches, SetWatches(0, ["/f"], ["/g"], ["/"])),
        request(-8, OpCode.setWatches2, SetWatches2(0, ["/f"], ["/g"], ["/"], ["/"], ["/"])),
        request(-4, OpCode.auth, AuthPacket(0, "digest", b"u:p")),
        request(16, OpCode.getEphemerals, PathRequest("/")),
        request(17, OpCode.getAllChildrenNumber, PathRequest("/")),
        request(18, OpCode.whoAmI),
        request(19, OpCode.reconfig, ReconfigRequest("server.4=h:1:2", None, None, -1)),
        request(20, OpCode.delete, DeleteRequest("/f", -1)),
        request(21, OpCode.checkWatches, WatchTypeRequest("/f", 1)),
        request(22, OpCode.closeSession),
    ]


def client_seeds() -> list[bytes]:
    reqs = client_requests()
    seeds = [b"\x00" + connect_frame() + b"".join(reqs[i:i + 4]) for i in range(0, len(reqs), 3)]
    seeds += [b"\x01" + r for r in reqs]
    seeds += [b"\x00" + connect_frame(read_only=None), b"\x00" + connect_frame(0x1234, True) + reqs[4]]
    seeds += [b"\x00" + w for w in (b"ruok", b"srvr", b"stat", b"mntr", b"cons", b"dump", b"wchc", b"wchp",
                                    b"conf", b"isro", b"gtmk", b"stmk" + struct.pack(">q", 0x7ff))]
    return seeds


def _packet(kind: int, zxid: int, data: bytes | None = None, auth: list[Id] | None = None) -> bytes:
    return encode_packet(QuorumPacket(kind, zxid, data, auth))


def _captures(name: str) -> list[bytes]:
    found = []
    for path in sorted(CAPTURES.glob(f"quorum_capture_*_to_{name}.hex")):
        found.append(bytes.fromhex("".join(l for l in path.read_text().splitlines() if not l.startswith("#"))))
    return found


def _txn(zxid: int, path: str) -> bytes:
    return Txn(TxnHeader(0x99, 1, zxid, 1_700_000_000_000, OpCode.create), CreateTxn(path, b"v", OPEN, False, 1),
               TxnDigest(2, 1)).to_bytes()


def quorum_seeds() -> list[bytes]:
    """Selector 0: the bare decoder; 1: a learner talking to a serving leader; 2: a leader talking to a
    learner; 3: a learner talking to a leader still in discovery."""
    info = _packet(PacketType.FOLLOWERINFO, EPOCH1, LearnerInfo(2).encode())
    forward = RequestForward(0x77, 1, OpCode.create, encode(CreateRequest("/q", b"", OPEN, 0))).encode()
    to_leader = [
        info + _packet(PacketType.ACKEPOCH, EPOCH1, encode_ack_epoch(1)) + _packet(PacketType.ACK, EPOCH1 * 2),
        info + _packet(PacketType.PING, 5, encode_touches([(0x77, 4000)])) + _packet(PacketType.ACK, EPOCH1 + 1),
        _packet(PacketType.OBSERVERINFO, 0, LearnerInfo(4, config_version=None).encode())
        + _packet(PacketType.REQUEST, -1, forward, [Id("ip", "10.0.0.1")])
        + _packet(PacketType.REVALIDATE, -1, encode_revalidate_request(0x77, 4000)),
    ] + _captures("leader")
    tree = DataTree()
    snap = b"".join(snapshot_stream_chunks(tree, {0x77: 4000}))
    head = _packet(PacketType.LEADERINFO, EPOCH1, encode_leader_info())
    tail = _packet(PacketType.NEWLEADER, EPOCH1, b"version=0") + _packet(PacketType.UPTODATE, -1)
    to_learner = [
        head + _packet(PacketType.DIFF, 0) + _packet(PacketType.PROPOSAL, EPOCH1 + 1, _txn(EPOCH1 + 1, "/p"))
        + _packet(PacketType.COMMIT, EPOCH1 + 1) + tail + _packet(PacketType.PROPOSAL, EPOCH1 + 2,
                                                                  _txn(EPOCH1 + 2, "/p/q"))
        + _packet(PacketType.COMMIT, EPOCH1 + 2) + _packet(PacketType.PING, 9)
        + _packet(PacketType.REVALIDATE, -1, encode_revalidate_reply(0x77, True)),
        head + _packet(PacketType.TRUNC, 0) + tail + _packet(PacketType.SYNC, -1),
        head + _packet(PacketType.SNAP, EPOCH1) + snap + tail
        + _packet(PacketType.COMMITANDACTIVATE, EPOCH1 + 1, encode_activation(1)),
        head + _packet(PacketType.SNAP, 0) + snap + _packet(PacketType.INFORM, EPOCH1 + 1, _txn(EPOCH1 + 1, "/i"))
        + tail + _packet(PacketType.INFORMANDACTIVATE, EPOCH1 + 2, encode_activation(1, _txn(EPOCH1 + 2, "/j"))),
    ] + _captures("learner")
    seeds = [b"\x00" + s for s in to_leader + to_learner]
    seeds += [b"\x03" + s for s in to_leader] + [b"\x03" + to_leader[0] + _packet(PacketType.ACK, EPOCH1 * 2 + 1)]
    return seeds + [b"\x01" + s for s in to_leader] + [b"\x02" + s for s in to_learner]


def election_seeds(config: bytes) -> list[bytes]:
    """Selector 0: an accepted connection; 1: a dialled one; 2: a notification; 3: an initial message."""
    votes = [Notification(PeerState.LOOKING, 2, EPOCH1 + 5, 1, 1, 2, config),
             Notification(PeerState.FOLLOWING, 3, EPOCH1, 2, 1, 2, config.replace(b"version=", b"version=f")),
             Notification(PeerState.LEADING, 3, EPOCH1 * 2, 7, 2, 2, b"")]
    legacy = [struct.pack(">iqqq", 0, 2, 5, 1), struct.pack(">iqqqqi", 1, 3, 5, 1, 1, 0),
              struct.pack(">iqqqqi", 2, 3, 5, 1, 1, 1)]
    payloads = [v.encode() for v in votes] + legacy
    initials = [InitialMessage(2, "127.0.0.1:3889").encode(), InitialMessage(3, "", None).encode(),
                InitialMessage(4, "[::1]:3890|10.0.0.4:3890", -65535).encode(),
                InitialMessage((1 << 63) - 1, "0.0.0.0:3891").encode()]
    frames = [frame(p) for p in payloads]
    seeds = [b"\x00" + i + b"".join(frames[k:k + 2]) for k, i in enumerate(initials)]
    seeds += [b"\x01" + f for f in frames] + [b"\x01" + b"".join(frames)]
    seeds += [b"\x02" + bytes([2 + k % 2]) + p for k, p in enumerate(payloads)]
    return seeds + [b"\x03" + i for i in initials]


class Mutator:
    """Inputs from a corpus: seeds with stacked mutations, sometimes random bytes.

    Mutations: insert random bytes, flip a bit, set an interesting byte, an
    interesting int or long, edit a length field, truncate, delete a range,
    repeat a range, splice the tail of another seed, insert another's head.
    """

    def __init__(self, corpus: list[bytes], seed: int, max_len: int = 8192) -> None:
        self.corpus = corpus
        self.rng = random.Random(seed)
        self.max_len = max_len

    def next(self) -> bytes:
        rng = self.rng
        if rng.random() < 0.02:
            return rng.randbytes(rng.randrange(64))
        buf = bytearray(rng.choice(self.corpus))
        for _ in range(rng.choice((1, 1, 1, 2, 2, 3, 4, 8))):
            self._mutate(buf)
        return bytes(buf[: self.max_len])

    def _mutate(self, buf: bytearray) -> None:
        rng, n = self.rng, len(buf)
        op = rng.randrange(11)
        at = rng.randrange(n) if n else 0
        if n == 0 or op == 0:
            buf[at:at] = rng.randbytes(rng.randrange(1, 9))
        elif op == 1:
            buf[at] ^= 1 << rng.randrange(8)
        elif op == 2:
            buf[at] = rng.choice((0, 1, 0x7F, 0x80, 0xFF, rng.randrange(256)))
        elif op == 3:
            buf[at:at + 4] = rng.choice(_INT32).to_bytes(4, "big", signed=True)
        elif op == 4:
            buf[at:at + 8] = rng.choice(_INT64).to_bytes(8, "big", signed=True)
        elif op == 5:
            self._length_field(buf)
        elif op == 6:
            del buf[rng.randrange(n):]
        elif op == 7:
            del buf[at:at + rng.randrange(1, 17)]
        elif op == 8:
            end = min(n, at + rng.randrange(1, 65))
            buf[at:at] = buf[at:end] * rng.randrange(1, 4)
        elif op == 9:
            other = rng.choice(self.corpus)
            buf[at:] = other[rng.randrange(len(other) + 1):]
        else:
            buf[:] = buf[:at] + rng.choice(self.corpus)[:rng.randrange(64)] + buf[at:]

    def _length_field(self, buf: bytearray) -> None:
        """Change a big-endian int that looks like a length (it fits in the bytes after it)."""
        rng, n = self.rng, len(buf)
        spots = [i for i in range(n - 3) if 0 <= int.from_bytes(buf[i:i + 4], "big", signed=True) <= n - i - 4]
        if not spots:
            return
        i = rng.choice(spots)
        value = int.from_bytes(buf[i:i + 4], "big", signed=True)
        new = rng.choice((value + 1, value - 1, value + rng.randrange(2, 64), -1, -2, 0, 0x7FFFFFFF, 0xFFFFF + 1))
        buf[i:i + 4] = (new & 0xFFFFFFFF).to_bytes(4, "big")
