"""The client port's limits: maxCnxns over all connections, and globalOutstandingLimit's pause in reading."""
from __future__ import annotations

import struct
from pathlib import Path

from twisted.internet.address import IPv4Address
from twisted.internet.task import Clock
from twisted.internet.testing import StringTransport

from tests.unit.fakes import OPEN_ACL, RecordingTxnLog, connect_request, frame, make_server
from zabd.jute.opcodes import OpCode
from zabd.jute.records import CreateRequest
from zabd.jute.schema import encode
from zabd.server.client_port import ClientPortFactory, ClientPortProtocol
from zabd.config.zoocfg import ZabdConfig
from zabd.views.fourletter import COMMANDS
from zabd.views.stats_view import FourLetterWords


def factory_with(tmp_path: Path, txn_log: RecordingTxnLog | None = None, *, max_per_ip: int = 0,
                 max_cnxns: int = 0, outstanding_limit: int = 1000, clock: Clock | None = None) -> ClientPortFactory:
    server = make_server(Clock(), txn_log=txn_log)[0]
    words = FourLetterWords(server, ZabdConfig(data_dir=str(tmp_path)))
    return ClientPortFactory(server, words.answer, COMMANDS, 4096, max_per_ip, max_cnxns=max_cnxns,
                             outstanding_limit=outstanding_limit, clock=clock)


def connect(factory: ClientPortFactory, host: str, port: int) -> tuple[ClientPortProtocol | None, StringTransport]:
    proto = factory.buildProtocol(IPv4Address("TCP", host, port))
    transport = StringTransport(peerAddress=IPv4Address("TCP", host, port))
    if proto is not None:
        proto.makeConnection(transport)
    return proto, transport


def creates(first_xid: int, count: int) -> bytes:
    return b"".join(frame(struct.pack(">ii", xid, OpCode.create) + encode(CreateRequest(f"/n{xid}", b"", OPEN_ACL, 0)))
                    for xid in range(first_xid, first_xid + count))


def test_max_cnxns_counts_every_client_address(tmp_path: Path) -> None:
    factory = factory_with(tmp_path, max_cnxns=2)
    first, _ = connect(factory, "10.0.0.1", 1)
    second, _ = connect(factory, "10.0.0.2", 1)
    third, _ = connect(factory, "10.0.0.3", 1)
    assert first is not None and second is not None and third is None
    first.connectionLost(None)
    again, _ = connect(factory, "10.0.0.3", 2)
    assert again is not None and factory.connections == 2


def test_reading_pauses_at_the_outstanding_limit_and_resumes_below_it(tmp_path: Path) -> None:
    log = RecordingTxnLog()
    factory = factory_with(tmp_path, txn_log=log, outstanding_limit=3)
    busy, busy_io = connect(factory, "127.0.0.1", 1)
    calm, calm_io = connect(factory, "127.0.0.1", 2)
    assert busy is not None and calm is not None
    busy.dataReceived(frame(connect_request()))
    log.make_durable()  # the session is created
    calm.dataReceived(frame(connect_request()))
    log.make_durable()
    assert busy_io.producerState == "producing"
    busy.dataReceived(creates(1, 4))  # three writes wait for the disk; the fourth waits in the buffer
    assert busy_io.producerState == "paused"
    assert calm_io.producerState == "producing"  # only a connection with a request held back stops
    calm.dataReceived(ping())  # a ping goes on at the limit (answered in its turn, behind the writes)
    assert calm_io.producerState == "producing" and factory.throttled == {busy}
    calm.dataReceived(creates(10, 1))
    assert calm_io.producerState == "paused"
    log.make_durable()
    assert busy_io.producerState == calm_io.producerState == "producing"
    assert factory.throttled == set()
    assert PING_XID in reply_xids(calm_io.value())


PING_XID = -2


def ping() -> bytes:
    return frame(struct.pack(">ii", PING_XID, OpCode.ping))


def test_a_throttled_connection_that_goes_away_is_forgotten(tmp_path: Path) -> None:
    log = RecordingTxnLog()
    factory = factory_with(tmp_path, txn_log=log, outstanding_limit=1)
    proto, io = connect(factory, "127.0.0.1", 1)
    assert proto is not None
    proto.dataReceived(frame(connect_request()))
    proto.dataReceived(creates(1, 2))
    assert io.producerState == "paused"
    proto.connectionLost(None)
    assert factory.throttled == set()
    log.make_durable()


def test_frames_after_the_limit_wait_in_the_buffer_and_go_on_once_below_it(tmp_path: Path) -> None:
    log = RecordingTxnLog()
    clock = Clock()
    factory = factory_with(tmp_path, txn_log=log, outstanding_limit=3, clock=clock)
    server = factory.server
    assert server is not None
    proto, io = connect(factory, "127.0.0.1", 1)
    assert proto is not None
    proto.dataReceived(frame(connect_request()))
    log.make_durable()
    proto.dataReceived(creates(1, 10))  # one read of ten pipelined writes
    stats = server.ctx.stats
    assert stats.outstanding == 3 and io.producerState == "paused"  # 3.8 would take all ten
    log.make_durable()  # the three are answered: the rest go on from the buffer, on the next turn
    assert io.producerState == "producing" and stats.outstanding == 0
    clock.advance(0)
    assert stats.outstanding == 3 and io.producerState == "paused"
    for _ in range(3):
        log.make_durable()
        clock.advance(0)
    assert stats.outstanding == 0 and io.producerState == "producing"
    assert reply_xids(io.value())[1:] == list(range(1, 11))  # after the connect response: each, in order


def reply_xids(data: bytes) -> list[int]:
    xids, pos = [], 0
    while pos < len(data):
        (length,) = struct.unpack_from(">i", data, pos)
        xids.append(struct.unpack_from(">i", data, pos + 4)[0])
        pos += 4 + length
    return xids
