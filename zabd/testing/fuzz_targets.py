"""Fuzz targets (zabd.testing.fuzz): the jute decoder and the client port, in memory.

A target's ``execute(data)`` feeds one input and raises on a finding: any
exception but the decoders' own refusals, or a broken invariant. ``check()``
runs the costlier invariants every so often, and ``close()`` ends the target.
Long-lived state (a server, a simulated ensemble) is rebuilt every
``REBUILD`` inputs so that memory stays bounded. Everything runs on fake
clocks and in-memory transports; the first byte of an input picks the mode.
The peer ports' targets are in zabd.testing.fuzz_peers.
"""
from __future__ import annotations

import random
import struct
import zlib
from collections.abc import Iterator
from typing import Any, Protocol

from twisted.internet.address import IPv4Address
from twisted.internet.error import ConnectionDone
from twisted.internet.task import Clock
from twisted.internet.testing import StringTransport
from twisted.python.failure import Failure

from zabd.client.errors import ZookeeperError
from zabd.client.hosts import Chroot
from zabd.client.transaction import read_results
from zabd.election.messages import ElectionWireError
from zabd.jute import multi
from zabd.jute.codec import JuteError
from zabd.jute.errors import Code
from zabd.jute.opcodes import OpCode
from zabd.jute.records import AuthPacket, ConnectResponse, CreateRequest, DeleteRequest, PathWatchRequest
from zabd.jute.schema import decode, encode
from zabd.jute.txns import Txn
from zabd.pipeline.context import Settings
from zabd.quorum.snapstream import QuorumWireError
from zabd.server.client_port import ClientPortFactory
from zabd.config.zoocfg import ZabdConfig
from zabd.views.fourletter import COMMANDS
from zabd.views.stats_view import FourLetterWords
from zabd.peer.servers import standalone_server
from zabd.serving.standalone import ServerOptions
from zabd.testing import fuzz_seeds as seeds

try:  # the unit tests' full tree check, when run from a source tree
    from tests.unit.fakes import assert_consistent
except ImportError:  # pragma: no cover - installed without the tests
    from zabd.core.datatree import DataTree
    from zabd.core.digest import node_digest

    def assert_consistent(tree: DataTree) -> None:
        total = sum(node_digest(path, node) for path, node in tree.nodes.items()) & (2**64 - 1)
        assert tree.digest.value == total, "tree digest differs from a recomputation"

#: Inputs between rebuilds of a target's long-lived state.
REBUILD = 2000
#: The probe session's superuser (super:test), whom no ACL a fuzz input sets can lock out.
SUPER = "super:D/InIHSb7yEEbrWz8b9l71RjZJU="
#: What a decoder may raise: its own refusal of the bytes.
DECODE_ERRORS = (JuteError, QuorumWireError, ElectionWireError)
_CODES = frozenset(int(code) for code in Code)


class Target(Protocol):
    """What the fuzzer drives: its seed corpus, one input at a time, and a check that it still works."""

    name: str

    def seeds(self) -> list[bytes]: ...

    def execute(self, data: bytes) -> None: ...

    def check(self) -> None: ...

    def close(self) -> None: ...


def pieces(data: bytes) -> Iterator[bytes]:
    """``data`` cut at up to 8 points chosen from its own checksum (so a replay cuts alike)."""
    rng = random.Random(zlib.crc32(data))
    cuts = sorted(rng.sample(range(1, len(data)), min(len(data) - 1, rng.randrange(9)))) if len(data) > 1 else []
    for start, end in zip([0, *cuts], [*cuts, len(data)]):
        yield data[start:end]


class JuteTarget:
    """Every record type, txns, multi ops and multi results from arbitrary bytes; only JuteError may escape."""

    name = "jute"
    kinds: list[Any] = [*seeds.RECORDS, *seeds.JUTE_EXTRA]

    def seeds(self) -> list[bytes]:
        return seeds.jute_seeds()

    def execute(self, data: bytes) -> None:
        kind: Any = self.kinds[data[0] % len(self.kinds)] if data else "txn"
        raw = data[1:]
        try:
            if kind == "txn":
                Txn.from_bytes(raw).to_bytes()
            elif kind in ("multi_write", "multi_read"):
                multi.read_ops(raw, multi.WRITE_OPS if kind == "multi_write" else multi.READ_OPS)
            elif kind == "multi_response":
                for prefix in ("", "/chroot"):
                    try:
                        read_results(raw, Chroot(prefix))
                    except ZookeeperError:
                        pass  # a result type the client does not know: refused on purpose
            else:
                value = decode(kind, raw)
                assert decode(kind, encode(value)) == value, f"{kind.__name__} does not survive a re-encoding"
        except JuteError:
            pass

    def check(self) -> None:
        pass

    def close(self) -> None:
        pass


class ClientTarget:
    """Bytes into a ClientPortProtocol before a StandaloneServer; a well-behaved session must work afterwards."""

    name = "client"

    def __init__(self, data_dir: str) -> None:
        self.data_dir = data_dir
        self.count = 0
        self.port = 1
        self._build()

    def _build(self) -> None:
        self.clock = Clock()
        self.clock.advance(1_700_000_000)
        odd = self.count // REBUILD % 2 == 1  # every other server has TTL nodes and quotas on
        options = ServerOptions(settings=Settings(extended_types=odd, enforce_quota=odd), super_digest=SUPER)
        self.server = standalone_server(options, self.clock.seconds)
        config = ZabdConfig(four_letter_words=frozenset(COMMANDS.values()), data_dir=self.data_dir, tick_time=2000)
        words = FourLetterWords(self.server, config)
        self.factory = ClientPortFactory(self.server, words.answer, COMMANDS, 0xFFFFF, 0)

    def seeds(self) -> list[bytes]:
        return seeds.client_seeds()

    def _open(self) -> tuple[Any, StringTransport]:
        self.port += 1
        address = IPv4Address("TCP", "10.0.0.1", self.port % 60000 + 1)
        proto = self.factory.buildProtocol(address)
        assert proto is not None
        transport = StringTransport(peerAddress=address)
        proto.makeConnection(transport)
        return proto, transport

    def execute(self, data: bytes) -> None:
        self.count += 1
        if self.count % REBUILD == 0:
            self.check()
            self._build()
        stream = (seeds.connect_frame() if data[:1] == b"\x01" else b"") + data[1:]
        proto, transport = self._open()
        for piece in pieces(stream):
            proto.dataReceived(piece)
            if transport.disconnecting:
                break
        if stream[:4] not in {w.encode() for w in COMMANDS.values()}:
            _check_replies(transport.value())
        proto.connectionLost(Failure(ConnectionDone()))
        server = self.server
        assert proto.conn not in server.connections and not self.factory.per_ip, "a lost connection is still counted"
        assert len(server.ctx.pending) == 0 and server.ctx.stats.outstanding == 0, "requests left in flight"
        self.clock.advance(0.25)
        server.expire_sessions()
        self._probe()

    def _probe(self) -> None:
        """A well-behaved session: create, read and delete its own node, then close."""
        proto, transport = self._open()
        path = f"/probe{self.count}"
        proto.dataReceived(seeds.connect_frame()
                           + seeds.request(-4, OpCode.auth, AuthPacket(0, "digest", b"super:test"))
                           + seeds.request(1, OpCode.create, CreateRequest(path, b"ok", seeds.OPEN, 1))
                           + seeds.request(2, OpCode.getData, PathWatchRequest(path, False))
                           + seeds.request(3, OpCode.delete, DeleteRequest(path, -1))
                           + seeds.request(4, OpCode.closeSession))
        frames = _check_replies(transport.value())
        errors = [struct.unpack_from(">iqi", f)[2] for f in frames[1:]]
        assert errors == [0] * 5, f"the probe session got {errors}"
        proto.connectionLost(Failure(ConnectionDone()))

    def check(self) -> None:
        assert_consistent(self.server.ctx.tree)

    def close(self) -> None:
        self.check()


def _check_replies(out: bytes) -> list[bytes]:
    """Whole frames, a ConnectResponse first, then replies whose error is one of ZooKeeper's codes."""
    frames: list[bytes] = []
    pos = 0
    while pos < len(out):
        assert len(out) - pos >= 4, "a partial length"
        (n,) = struct.unpack_from(">i", out, pos)
        assert (16 if frames else 36) <= n <= len(out) - pos - 4, f"bad reply frame length {n}"
        frames.append(out[pos + 4:pos + 4 + n])
        pos += 4 + n
    if frames:
        decode(ConnectResponse, frames[0][:36])
    for body in frames[1:]:
        err = struct.unpack_from(">iqi", body)[2]
        assert err in _CODES, f"error code {err} is not ZooKeeper's"
    return frames


TARGETS = ("jute", "client", "quorum", "election")
