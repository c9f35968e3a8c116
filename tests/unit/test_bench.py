"""Smoke tests for the benchmark's server-free parts: maths, encoding, pipelining."""
from __future__ import annotations

import argparse
import asyncio
import dataclasses
import math
import struct
import time
from collections import Counter
from typing import Any

import pytest

from zabd.testing.probes import free_port
from zabd.tools import _loadgen as lg
from zabd.tools._ensemble import failover_outcome, first_write, write_from_new_session
from zabd.tools._report import Target, failover_lines, report
from zabd.tools._workloads import connection_address
from zabd.tools.bench import _share, parse_args, parse_target


def test_percentile_nearest_rank() -> None:
    samples = [i * 1_000_000 for i in range(1, 101)]  # 1..100 ms
    assert lg.percentile_ms(samples, 50) == 50.0
    assert lg.percentile_ms(samples, 99) == 99.0
    assert lg.percentile_ms(samples, 100) == 100.0
    assert lg.percentile_ms([7_000_000], 99) == 7.0
    assert math.isnan(lg.percentile_ms([], 50))


def test_connect_frame_matches_java_client_bytes() -> None:
    expected = bytes.fromhex(
        "0000002d" "00000000" "0000000000000000" "000186a0" "0000000000000000" "00000010"
    ) + bytes(16) + b"\x00"
    assert lg.connect_frame(100000) == expected


def test_parse_connect_response() -> None:
    body = bytes.fromhex("00000000" "00009c40" "0100000ffe0f0000" "00000010") + bytes(16) + b"\x00"
    assert lg.parse_connect_response(body) == (40000, 0x0100000FFE0F0000)


def test_request_bodies() -> None:
    assert lg.request_frame(7, lg.OP_GET_DATA, lg.get_data_body("/a")) == (
        struct.pack(">iii", 15, 7, 4) + b"\x00\x00\x00\x02/a\x00"
    )
    assert lg.set_data_body("/a", b"v") == b"\x00\x00\x00\x02/a" + b"\x00\x00\x00\x01v" + b"\xff" * 4
    acl = struct.pack(">ii", 1, 31) + b"\x00\x00\x00\x05world" + b"\x00\x00\x00\x06anyone"
    assert lg.create_body("/a", b"") == b"\x00\x00\x00\x02/a" + b"\x00" * 4 + acl + b"\x00" * 4
    assert lg.delete_body("/a") == b"\x00\x00\x00\x02/a" + b"\xff" * 4


def test_split_frames_keeps_partial_tail() -> None:
    buf = bytearray(b"\x00\x00\x00\x02ab" + b"\x00\x00\x00\x00" + b"\x00\x00\x00\x03c")
    assert lg.split_frames(buf) == [b"ab", b""]
    assert buf == bytearray(b"\x00\x00\x00\x03c")
    buf += b"de"
    assert lg.split_frames(buf) == [b"cde"] and not buf


def _spec(workload: str, nodes: int = 20) -> lg.WorkerSpec:
    return lg.WorkerSpec("127.0.0.1", 1, workload, 3, 2, 4, 0.0, 1.0, 10,
                         tuple(f"/n{i}" for i in range(nodes)), "/p", 1)


def test_mix_is_one_write_in_ten_and_create_names_are_unique() -> None:
    mix = lg.request_source(_spec("mix"), 0, [0])
    ops = [mix() for _ in range(200)]
    assert sum(1 for op in ops if op and op[0] == lg.OP_SET_DATA) == 20
    created = [0, 0]
    creator = lg.request_source(_spec("create"), 1, created)
    bodies = {creator() for _ in range(5)}
    assert len(bodies) == 5 and created == [0, 5]
    assert (lg.OP_CREATE, lg.create_body(lg.created_path("/p", 3, 1, 4), b"x" * 10)) in bodies


class _FakeTransport(asyncio.Transport):
    def __init__(self) -> None:
        super().__init__()
        self.written = bytearray()

    def write(self, data: Any) -> None:
        self.written += data

    def close(self) -> None:
        pass


def _reply(xid: int, err: int = 0) -> bytes:
    return struct.pack(">iiqi", 16, xid, 99, err)


def test_pipelined_connection_keeps_n_outstanding_and_counts_window() -> None:
    async def scenario() -> None:
        window = lg.Window(start_ns=0)
        requests = iter([(lg.OP_GET_DATA, lg.get_data_body("/a"))] * 6)
        conn = lg.PipelinedConnection(lambda: next(requests, None), window, 30000)
        transport = _FakeTransport()
        conn.connection_made(transport)
        assert lg.split_frames(transport.written) == [lg.connect_frame(30000)[4:]]
        conn.data_received(struct.pack(">iiiq", 36, 0, 30000, 42) + lg.jute_buffer(bytes(16)))
        assert conn.session.result() == 42 and not conn.drained.done()
        conn.start(4)
        assert len(lg.split_frames(transport.written)) == 4
        conn.data_received(_reply(1) + _reply(-2) + _reply(2, -101)[:10])  # ping reply is skipped
        assert len(lg.split_frames(transport.written)) == 1 and window.ok == 1
        conn.data_received(_reply(2, -101)[10:] + _reply(3) + _reply(4) + _reply(5))
        assert window.ok == 4 and window.errors[-101] == 1 and not conn.issuing
        conn.data_received(_reply(6))
        assert conn.drained.done() and window.ok == 5 and len(window.latencies_ns) == 5

    asyncio.run(scenario())


def test_cli_helpers() -> None:
    target = parse_target("zk=127.0.0.1:2182")
    assert (target.name, target.host, target.port) == ("zk", "127.0.0.1", 2182)
    assert [_share(32, 3, i) for i in range(3)] == [11, 11, 10]


# ---- ensembles and failover ----------------------------------------------------


def test_ensemble_connections_go_round_robin_over_every_peer() -> None:
    peers = (("127.0.0.1", 1), ("127.0.0.1", 2), ("127.0.0.1", 3))
    shares = [_share(32, 3, i) for i in range(3)]
    used = []
    for i, share in enumerate(shares):
        spec = dataclasses.replace(_spec("get"), index=i, connections=share, addresses=peers,
                                   first_connection=sum(shares[:i]))
        used += [connection_address(spec, c) for c in range(share)]
    assert used == [peers[n % 3] for n in range(32)]
    assert Counter(port for _, port in used) == {1: 11, 2: 11, 3: 10}
    assert connection_address(_spec("get"), 5) == ("127.0.0.1", 1)  # standalone: the one server


def test_ensemble_and_failover_options() -> None:
    args = parse_args(["--start", "zabd", "--ensemble", "3", "--failover"])
    assert (args.ensemble, args.failover, args.failover_runs) == (3, True, 5)
    assert parse_args(["--start", "zabd"]).ensemble == 0
    for bad in (["--target", "z=127.0.0.1:1", "--ensemble", "3"], ["--start", "zabd", "--failover"],
                ["--start", "zabd", "--ensemble", "1"]):
        with pytest.raises(SystemExit):
            parse_args(bad)


def test_failover_report_has_median_max_and_ratio() -> None:
    zabd, zk = failover_outcome("zabd", [0.5, 0.3, 0.9]), failover_outcome("zookeeper", [0.2, 0.4, 0.6])
    assert zabd.runs_ms == pytest.approx((500.0, 300.0, 900.0))
    assert (zabd.median_ms, zabd.max_ms) == pytest.approx((500.0, 900.0))
    lines = failover_lines([zabd, zk])
    assert lines[2].split() == ["zabd", "500", "900", "500", "300", "900"]
    assert lines[-1] == "failover median ratio zabd/zookeeper: 1.25"
    assert failover_lines([]) == []
    target = Target("zabd", "127.0.0.1", 1, addresses=(("127.0.0.1", 1), ("127.0.0.1", 2)))
    args = argparse.Namespace(connections=4, pipeline=1, processes=1, duration=1.0, warmup=0.0, prewarm=0.0,
                              value_size=1, nodes=1, workloads=[])
    text = report([target], [], args, [zabd])
    assert "ensemble of 2, client ports 1,2" in text and "failover: kill -9" in text


async def _one_shot_server(replies_ok: bool) -> asyncio.Server:
    """Answers a ConnectRequest and then every request with err 0 (or -4 when not replies_ok)."""

    async def serve(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        connected = False
        try:
            while True:
                (length,) = struct.unpack(">i", await reader.readexactly(4))
                frame = await reader.readexactly(length)
                if not connected:  # the ConnectRequest (no request header)
                    connected = True
                    body = struct.pack(">iiq", 0, 10000, 7) + lg.jute_buffer(bytes(16))
                else:
                    xid, _ = struct.unpack_from(">ii", frame)
                    body = struct.pack(">iqi", xid, 1, 0 if replies_ok else -4)
                writer.write(struct.pack(">i", len(body)) + body)
        except asyncio.IncompleteReadError:
            writer.close()

    return await asyncio.start_server(serve, "127.0.0.1", 0)


def test_first_write_retries_peers_until_one_acknowledges() -> None:
    async def scenario() -> None:
        refusing = ("127.0.0.1", free_port())
        failing, good = await _one_shot_server(False), await _one_shot_server(True)
        async with failing, good:
            failing_addr = failing.sockets[0].getsockname()[:2]
            good_addr = good.sockets[0].getsockname()[:2]
            assert await write_from_new_session(good_addr, "/x")
            assert not await write_from_new_session(refusing, "/x")
            assert not await write_from_new_session(failing_addr, "/x")
            before = time.monotonic()
            written_at = await first_write([refusing, failing_addr, good_addr], "/failover", 10.0)
            assert before <= written_at <= time.monotonic()
            with pytest.raises(TimeoutError):
                await first_write([refusing, failing_addr], "/failover", 0.05)

    asyncio.run(scenario())
