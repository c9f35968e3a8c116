"""Smoke tests for the benchmark's server-free parts: maths, encoding, pipelining, options, TLS plumbing."""
from __future__ import annotations

import argparse
import asyncio
import contextlib
import dataclasses
import math
import pickle
import ssl
import struct
import time
from collections import Counter
from pathlib import Path
from typing import Any

import pytest

from zabd.harness.certs import PASSWORD, make_pki
from zabd.harness.probes import free_port
from zabd.tools import _loadgen as lg
from zabd.tools._ensemble import failover_outcome, first_write, write_from_new_session
from zabd.tools._report import Outcome, Target, failover_lines, report
from zabd.tools._tls import TlsFiles, secure_server_cfg, tls_ask
from zabd.tools._workloads import connection_address
from zabd.tools.bench import _share, parse_args, parse_target, run_order, server_settings, start_targets


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


# ---- TLS and rounds ------------------------------------------------------------


def test_tls_options_and_their_checks(tmp_path: Path) -> None:
    args = parse_args(["--tls", "--start", "zabd", "--start", "zookeeper", "--rounds", "3"])
    assert args.tls and args.rounds == 3 and args.tls_ca is None
    args = parse_args(["--tls", "--target", "z=127.0.0.1:2281", "--tls-ca", "ca.pem", "--tls-cert", "c.pem"])
    with contextlib.ExitStack() as stack:
        targets, ensembles = start_targets(stack, args)  # --target only: nothing is started
    assert not ensembles and targets[0].tls == TlsFiles("ca.pem", "c.pem", None) and targets[0].port == 2281
    assert parse_args(["--target", "z=127.0.0.1:1"]).tls is False
    for bad in (["--tls", "--start", "zabd", "--ensemble", "3"],     # standalone servers only
                ["--tls", "--target", "z=127.0.0.1:1"],               # a target's CA is needed
                ["--target", "z=127.0.0.1:1", "--tls-ca", "ca.pem"],  # --tls-* only with --tls
                ["--tls", "--start", "zabd", "--tls-ca", "a", "--tls-key", "k"],
                ["--start", "zabd", "--rounds", "0"]):
        with pytest.raises(SystemExit):
            parse_args(bad)


def test_tls_servers_get_the_same_secure_lines_and_one_protocol_and_suite() -> None:
    plain = server_settings(parse_args(["--start", "zabd"]))
    assert not any(key.startswith("ssl.") for key in plain)
    tls = server_settings(parse_args(["--tls", "--start", "zabd", "--server-cfg", "ssl.protocol=TLSv1.3"]))
    assert tls["ssl.protocol"] == "TLSv1.3"  # --server-cfg wins
    assert tls["ssl.ciphersuites"] == "TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256"
    lines = secure_server_cfg(2281, "/k.jks", "/t.jks")
    assert lines["secureClientPort"] == "2281" and lines["secureClientPortAddress"] == "127.0.0.1"
    assert lines["ssl.clientAuth"] == "need" and lines["ssl.keyStore.location"] == "/k.jks"
    assert lines["ssl.trustStore.password"] == lines["ssl.keyStore.password"] == PASSWORD
    assert lines["serverCnxnFactory"] == "org.apache.zookeeper.server.NettyServerCnxnFactory"


def test_rounds_alternate_who_goes_first_for_every_workload() -> None:
    a, b = Target("a", "h", 1), Target("b", "h", 2)
    order = [(r, w, t.name) for r, w, t in run_order([a, b], ["set", "get"], 3)]
    assert len(order) == 12
    for workload in ("set", "get"):
        firsts = [t for r, w, t in order[::2] if w == workload]
        assert firsts in (["a", "b", "a"], ["b", "a", "b"])  # never the same one twice running
    assert order[:4] == [(0, "set", "a"), (0, "set", "b"), (0, "get", "b"), (0, "get", "a")]


def test_the_report_gives_medians_ranges_per_round_ratios_and_the_tls_session() -> None:
    tls = TlsFiles("/ca.pem", "/c.pem", "/k.pem")
    targets = [Target("zabd", "127.0.0.1", 1, tls=tls, tls_session="TLSv1.2 X"), Target("zookeeper", "127.0.0.1", 2)]
    outcomes = [Outcome(name, "set", ops, 1.0, 2.0, 0, {}, 10.0, 50.0, 50.0, 1.0, round=r)
                for r, (za, zk) in enumerate([(100.0, 200.0), (300.0, 200.0), (200.0, 400.0)])
                for name, ops in (("zabd", za), ("zookeeper", zk))]
    args = argparse.Namespace(connections=4, pipeline=1, processes=1, duration=1.0, warmup=0.0, prewarm=0.0,
                              value_size=1, nodes=1, workloads=["set"], rounds=3)
    text = report(targets, outcomes, args)
    assert "(TLS: TLSv1.2 X; ca=/ca.pem cert=/c.pem)" in text
    assert "  zabd        set      200 (100-300)" in text.splitlines()
    assert "  zookeeper   set      200 (200-400)" in text.splitlines()
    assert text.splitlines()[text.splitlines().index("throughput ratio zabd/zookeeper, median (min-max) of the "
                                                     "rounds' ratios:") + 1] == "  set     0.50 (0.50-1.50)"


async def _tls_server(pki: Any, seen: list[Any]) -> asyncio.Server:
    """Like _one_shot_server (every reply err 0), over TLS needing a client certificate."""
    server_id = pki.identity("server")
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH, cafile=str(pki.ca_pem))
    context.load_cert_chain(str(server_id.chain_pem), str(server_id.key_pem))
    context.verify_mode = ssl.CERT_REQUIRED

    async def serve(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        seen.append(writer.get_extra_info("peercert"))
        connected = False
        try:
            while True:
                head = await reader.readexactly(4)
                if not connected and head == b"srvr":
                    writer.write(b"Zookeeper version: 3.8.0-test\n")
                    break
                frame = await reader.readexactly(struct.unpack(">i", head)[0])
                if not connected:
                    connected = True
                    body = struct.pack(">iiq", 0, 10000, 7) + lg.jute_buffer(bytes(16))
                else:
                    xid, opcode = struct.unpack_from(">ii", frame)
                    body = struct.pack(">iqi", xid, 1, 0)
                    if opcode == lg.OP_CLOSE_SESSION:
                        writer.write(struct.pack(">i", len(body)) + body)
                        break
                writer.write(struct.pack(">i", len(body)) + body)
        except (asyncio.IncompleteReadError, ConnectionError):
            pass
        writer.close()

    return await asyncio.start_server(serve, "127.0.0.1", 0, ssl=context)


def test_the_loader_and_srvr_go_over_tls_with_the_client_certificate(tmp_path: Path) -> None:
    pki = make_pki(tmp_path / "pki")
    client = pki.identity("loader")
    files = TlsFiles(str(pki.ca_pem), str(client.cert_pem), str(client.key_pem))
    seen: list[Any] = []

    async def scenario() -> None:
        server = await _tls_server(pki, seen)
        async with server:
            port = server.sockets[0].getsockname()[1]
            requests = iter([(lg.OP_GET_DATA, lg.get_data_body(f"/n{i}")) for i in range(50)])
            errors = await lg.run_batch("127.0.0.1", port, requests, connections=3, pipeline=4, tls=files)
            assert errors == Counter({0: 50})
            answer, session = await asyncio.get_running_loop().run_in_executor(
                None, tls_ask, "127.0.0.1", port, files)
            assert answer.startswith("Zookeeper version: 3.8.0-test") and session.startswith("TLSv1.")
            with pytest.raises(ssl.SSLError):  # a loader trusting another CA is refused
                other = make_pki(tmp_path / "other")
                await lg.run_batch("127.0.0.1", port, iter([]), connections=1, tls=TlsFiles(str(other.ca_pem)))

    asyncio.run(scenario())
    subjects = [dict(entry[0] for entry in cert["subject"]) for cert in seen if cert]
    assert len(subjects) == 4 and all(s == {"commonName": "loader"} for s in subjects)


def test_workers_carry_the_tls_files_to_their_connections() -> None:
    spec = dataclasses.replace(_spec("get"), tls=TlsFiles("/ca.pem"))
    assert pickle.loads(pickle.dumps(spec)).tls == TlsFiles("/ca.pem")
    assert _spec("get").tls is None
