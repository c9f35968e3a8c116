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
from zabd.server.config import ZabdConfig
from zabd.server.fourletter import COMMANDS
from zabd.server.stats_view import FourLetterWords


def factory_with(tmp_path: Path, txn_log: RecordingTxnLog | None = None, **limits: int) -> ClientPortFactory:
    server = make_server(Clock(), txn_log=txn_log)[0]
    words = FourLetterWords(server, ZabdConfig(data_dir=str(tmp_path)))
    return ClientPortFactory(server, words.answer, COMMANDS, 4096, limits.pop("max_per_ip", 0), **limits)


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
    busy.dataReceived(creates(1, 3))  # three writes wait for the disk
    assert busy_io.producerState == "paused"
    assert calm_io.producerState == "producing"  # only a connection that sends at the limit stops
    calm.dataReceived(creates(10, 1))
    assert calm_io.producerState == "paused"
    log.make_durable()
    assert busy_io.producerState == calm_io.producerState == "producing"
    assert factory.throttled == set()


def test_a_throttled_connection_that_goes_away_is_forgotten(tmp_path: Path) -> None:
    log = RecordingTxnLog()
    factory = factory_with(tmp_path, txn_log=log, outstanding_limit=1)
    proto, io = connect(factory, "127.0.0.1", 1)
    assert proto is not None
    proto.dataReceived(frame(connect_request()))
    assert io.producerState == "paused"
    proto.connectionLost(None)
    assert factory.throttled == set()
    log.make_durable()
