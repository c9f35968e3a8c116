"""The client port adapter: framing and four-letter words, on a StringTransport (no sockets)."""
from __future__ import annotations

import struct
from collections.abc import Iterator
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from twisted.internet.address import IPv4Address
from twisted.internet.error import ConnectionDone
from twisted.internet.task import Clock
from twisted.internet.testing import StringTransport
from twisted.python.failure import Failure

from tests.unit.fakes import OPEN_ACL, TcpTransport, assert_consistent, connect_request, frame, make_server, split_frames
from zabd.jute.opcodes import OP_NAMES, OpCode
from zabd.jute.records import ConnectResponse, CreateRequest, PathWatchRequest, SetDataRequest
from zabd.jute.schema import decode, encode
from zabd.server.client_port import ClientPortFactory, ClientPortProtocol
from zabd.config.zoocfg import ZabdConfig
from zabd.views.fourletter import COMMANDS
from zabd.views.stats_view import FourLetterWords
from zabd.serving.standalone import StandaloneServer

WHITELIST = frozenset({"ruok", "srvr", "stmk", "gtmk"})
MAX_BUFFER = 4096


@pytest.fixture
def clock() -> Iterator[Clock]:
    clock = Clock()
    yield clock
    assert clock.getDelayedCalls() == []


def make_factory(clock: Clock, tmp_path: Path, max_buffer: int = MAX_BUFFER, max_per_ip: int = 60
                 ) -> ClientPortFactory:
    server = make_server(clock)[0]
    config = ZabdConfig(four_letter_words=WHITELIST, data_dir=str(tmp_path), tick_time=2000)
    words = FourLetterWords(server, config)
    return ClientPortFactory(server, words.answer, COMMANDS, max_buffer, max_per_ip)


@pytest.fixture
def factory(clock: Clock, tmp_path: Path) -> ClientPortFactory:
    return make_factory(clock, tmp_path)


def open_connection(factory: ClientPortFactory, port: int = 50000) -> tuple[ClientPortProtocol, StringTransport]:
    proto = factory.buildProtocol(IPv4Address("TCP", "127.0.0.1", port))
    assert proto is not None
    transport = StringTransport(peerAddress=IPv4Address("TCP", "127.0.0.1", port))
    proto.makeConnection(transport)
    return proto, transport


def feed(proto: ClientPortProtocol, data: bytes, chunks: list[int] | None = None) -> None:
    """Deliver ``data`` in pieces cut at the given offsets."""
    cuts = [0] + sorted(chunks or []) + [len(data)]
    for start, end in zip(cuts, cuts[1:]):
        if end > start:
            proto.dataReceived(data[start:end])


def lose(proto: ClientPortProtocol) -> None:
    proto.connectionLost(Failure(ConnectionDone()))


def test_client_sockets_turn_nagle_off(factory: ClientPortFactory) -> None:
    # As ZooKeeper's NIOServerCnxn: a reply is not held back for the previous one's TCP ACK.
    proto = factory.buildProtocol(IPv4Address("TCP", "127.0.0.1", 50000))
    transport = TcpTransport(peerAddress=IPv4Address("TCP", "127.0.0.1", 50000))
    proto.makeConnection(transport)
    assert transport.no_delay


# ---- four-letter words -------------------------------------------------------------------


def test_ruok(factory: ClientPortFactory) -> None:
    proto, transport = open_connection(factory)
    feed(proto, b"ruok")
    assert transport.value() == b"imok"
    assert transport.disconnecting
    lose(proto)
    assert factory.server.connections == set()


def test_ruok_split_byte_by_byte(factory: ClientPortFactory) -> None:
    proto, transport = open_connection(factory)
    feed(proto, b"ruok", [1, 2, 3])
    assert transport.value() == b"imok" and transport.disconnecting


def test_word_not_in_the_whitelist(factory: ClientPortFactory) -> None:
    proto, transport = open_connection(factory)
    feed(proto, b"conf")
    assert transport.value() == b"conf is not executed because it is not in the whitelist.\n"
    assert transport.disconnecting


@pytest.mark.parametrize("cuts", [[], [2], [4], [5], [4, 8], [3, 6, 9, 11], list(range(1, 12))])
def test_stmk_argument_split_across_writes(factory: ClientPortFactory, cuts: list[int]) -> None:
    proto, transport = open_connection(factory)
    feed(proto, b"stmk" + struct.pack(">q", 0x1234), cuts)
    assert transport.value() == b"4660" and transport.disconnecting
    proto2, transport2 = open_connection(factory, 50001)
    feed(proto2, b"gtmk")
    assert transport2.value() == b"4660"


def test_stmk_waits_for_its_whole_argument(factory: ClientPortFactory) -> None:
    proto, transport = open_connection(factory)
    feed(proto, b"stmk\x00\x00\x00")
    assert transport.value() == b"" and not transport.disconnecting


def test_bytes_after_a_word_are_ignored(factory: ClientPortFactory) -> None:
    proto, transport = open_connection(factory)
    feed(proto, b"ruok" + frame(connect_request()))
    assert transport.value() == b"imok"
    assert factory.server.ctx.sessions.sessions() == {}


def test_words_are_only_recognised_before_the_handshake(factory: ClientPortFactory) -> None:
    proto, transport = open_connection(factory)
    feed(proto, frame(connect_request()))
    transport.clear()
    feed(proto, b"ruok")  # now a (huge) frame length
    assert transport.value() == b"" and transport.disconnecting


def test_unknown_word_is_a_frame_length(factory: ClientPortFactory) -> None:
    proto, transport = open_connection(factory)
    feed(proto, b"abcd")  # 0x61626364 > jute.maxbuffer
    assert transport.value() == b"" and transport.disconnecting


# ---- framing -------------------------------------------------------------------------------


def test_frame_over_jute_max_buffer_closes(factory: ClientPortFactory) -> None:
    proto, transport = open_connection(factory)
    feed(proto, struct.pack(">i", MAX_BUFFER + 1))
    assert transport.value() == b"" and transport.disconnecting


def test_frame_of_exactly_jute_max_buffer_is_read(factory: ClientPortFactory) -> None:
    proto, transport = open_connection(factory)
    feed(proto, frame(connect_request()))
    transport.clear()
    body = struct.pack(">ii", 1, OpCode.setData) + encode(SetDataRequest("/", b"", -1))
    padded = body + b"\x00" * (MAX_BUFFER - len(body))
    feed(proto, frame(padded))
    assert not transport.disconnecting
    frames, rest = split_frames(transport.value())
    assert len(frames) == 1 and rest == b""


@pytest.mark.parametrize("length", [-1, -2, -(2**31)])
def test_negative_length_closes(factory: ClientPortFactory, length: int) -> None:
    proto, transport = open_connection(factory)
    feed(proto, frame(connect_request()))
    transport.clear()
    feed(proto, struct.pack(">i", length) + b"\x00" * 8)
    assert transport.value() == b"" and transport.disconnecting


def test_negative_length_as_first_frame_closes(factory: ClientPortFactory) -> None:
    proto, transport = open_connection(factory)
    feed(proto, b"\xff\xff\xff\xff")
    assert transport.value() == b"" and transport.disconnecting


def _conversation() -> bytes:
    requests = [
        (1, OpCode.create, encode(CreateRequest("/a", b"data", OPEN_ACL, 0))),
        (2, OpCode.getData, encode(PathWatchRequest("/a", True))),
        (3, OpCode.setData, encode(SetDataRequest("/a", b"", -1))),
        (-2, OpCode.ping, b""),
        (4, OpCode.exists, encode(PathWatchRequest("/missing", False))),
    ]
    return frame(connect_request()) + b"".join(frame(struct.pack(">ii", x, op) + body) for x, op, body in requests)


def _replies_for(clock_factory: tuple[Clock, Path], stream: bytes, cuts: list[int]) -> bytes:
    factory = make_factory(*clock_factory)
    proto, transport = open_connection(factory)
    feed(proto, stream, cuts)
    assert not transport.disconnecting
    return transport.value()


def test_bytes_split_at_every_offset_still_parse(tmp_path: Path) -> None:
    stream = _conversation()
    reference = _replies_for((Clock(), tmp_path), stream, [])
    frames, rest = split_frames(reference)
    assert rest == b"" and len(frames) == 1 + 5 + 1  # handshake, replies, one watch event
    assert decode(ConnectResponse, frames[0], exact=False).timeOut == 10000
    for cut in range(1, len(stream)):
        assert _replies_for((Clock(), tmp_path), stream, [cut]) == reference, cut


@settings(max_examples=40, deadline=None)
@given(cuts=st.lists(st.integers(1, 200), max_size=12, unique=True))
def test_bytes_split_anywhere_still_parse(tmp_path_factory: pytest.TempPathFactory, cuts: list[int]) -> None:
    stream = _conversation()
    tmp = tmp_path_factory.getbasetemp()
    cuts = [c for c in cuts if c < len(stream)]
    assert _replies_for((Clock(), tmp), stream, cuts) == _replies_for((Clock(), tmp), stream, [])


# ---- per-IP limit and connection loss -------------------------------------------------------


def test_per_ip_connection_limit(clock: Clock, tmp_path: Path) -> None:
    factory = make_factory(clock, tmp_path, max_per_ip=2)
    first, _ = open_connection(factory, 1)
    open_connection(factory, 2)
    assert factory.buildProtocol(IPv4Address("TCP", "127.0.0.1", 3)) is None
    assert factory.buildProtocol(IPv4Address("TCP", "127.0.0.2", 3)) is not None
    lose(first)
    assert factory.buildProtocol(IPv4Address("TCP", "127.0.0.1", 4)) is not None


def test_connection_lost_reaches_the_server(factory: ClientPortFactory) -> None:
    proto, transport = open_connection(factory)
    feed(proto, frame(connect_request()))
    assert len(factory.server.connections) == 1
    lose(proto)
    assert factory.server.connections == set() and factory.per_ip == {}


# ---- hostile input through the whole stack ----------------------------------------------------------

_OPCODES = st.sampled_from(sorted(OP_NAMES) + [99, 0x7FFFFFFF, -100])


@st.composite
def _hostile_frames(draw: st.DrawFn) -> bytes:
    parts = []
    for _ in range(draw(st.integers(0, 6))):
        choice = draw(st.integers(0, 3))
        if choice == 0:
            parts.append(draw(st.binary(max_size=30)))  # raw garbage (may be a length)
        else:
            header = struct.pack(">ii", draw(st.integers(-8, 50)), draw(_OPCODES))
            payload = draw(st.binary(max_size=60))
            parts.append(frame(header + payload))
    return b"".join(parts)


@settings(max_examples=150, deadline=None)
@given(prefix=st.sampled_from([b"", frame(connect_request())]), body=_hostile_frames(),
       cuts=st.lists(st.integers(1, 400), max_size=4))
def test_hostile_bytes_never_raise_out_of_the_port(tmp_path_factory: pytest.TempPathFactory, prefix: bytes,
                                                   body: bytes, cuts: list[int]) -> None:
    clock = Clock()
    factory = make_factory(clock, tmp_path_factory.getbasetemp())
    server: StandaloneServer = factory.server
    proto, transport = open_connection(factory)
    stream = prefix + body
    feed(proto, stream, [c for c in cuts if c < len(stream)])
    lose(proto)
    assert server.connections == set()
    assert len(server.ctx.pending) == 0
    assert server.ctx.stats.outstanding == 0
    assert_consistent(server.ctx.tree)
    assert clock.getDelayedCalls() == []
