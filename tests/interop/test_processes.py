"""zabd.harness.processes itself: lifecycle, diagnostics, config, persistence across restarts."""

from __future__ import annotations

import socket
import socketserver
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.interop.conftest import kazoo_client, start_server
from zabd.harness.processes import (
    ServerStartError,
    free_port,
    wait_until,
    write_config,
    zookeeper_system_properties,
)


def test_wait_until_reports_what_and_diagnostics() -> None:
    wait_until(lambda: True, 0.0, "nothing")
    with pytest.raises(TimeoutError, match=r"(?s)the impossible.*extra detail"):
        wait_until(lambda: False, 0.05, "the impossible", lambda: "extra detail")


def test_config_and_system_properties(tmp_path: Path) -> None:
    cfg = write_config(tmp_path, 12345, {"extendedTypesEnabled": "true", "maxClientCnxns": "7"})
    lines = cfg.read_text().splitlines()
    assert lines[:6] == [
        "tickTime=2000",
        f"dataDir={tmp_path / 'data'}",
        "clientPort=12345",
        "clientPortAddress=127.0.0.1",
        "4lw.commands.whitelist=*",
        "admin.enableServer=false",
    ]
    assert lines[6:] == ["extendedTypesEnabled=true", "maxClientCnxns=7"]
    assert (tmp_path / "data").is_dir()
    assert zookeeper_system_properties(
        {
            "extendedTypesEnabled": "true",
            "DigestAuthenticationProvider.superDigest": "super:abc=",
            "zookeeper.snapCount": "10",
            "znode.container.checkIntervalMs": "100",
            "maxClientCnxns": "7",
        }
    ) == [
        "-Dzookeeper.extendedTypesEnabled=true",
        "-Dzookeeper.DigestAuthenticationProvider.superDigest=super:abc=",
        "-Dzookeeper.snapCount=10",
        "-Dznode.container.checkIntervalMs=100",
    ]


def test_lifecycle_and_persistence(target_kind: str, tmp_path: Path) -> None:
    with start_server(target_kind, tmp_path) as srv:
        assert srv.kind == target_kind and srv.address() == f"127.0.0.1:{srv.port}"
        assert srv.is_running()
        srvr = srv.four_letter("srvr")
        assert "Mode: standalone" in srvr and "Node count: 5" in srvr, srvr
        assert f"clientPort={srv.port}" in srv.four_letter("conf").splitlines()
        with kazoo_client(srv) as client:
            client.create("/survives-restart", b"kept")
        port = srv.port
    assert not srv.is_running()
    srv.stop()  # idempotent
    with pytest.raises(ConnectionRefusedError):
        socket.create_connection(("127.0.0.1", port), timeout=5).close()

    with start_server(target_kind, tmp_path, port=port) as again:
        with kazoo_client(again) as client:
            assert client.get("/survives-restart")[0] == b"kept"
        again.kill()
        assert again.process.returncode == -9
        assert again.log_text(), "the process log should not be empty"


def test_early_exit_fails_fast(target_kind: str, tmp_path: Path) -> None:
    started = time.monotonic()
    with pytest.raises(ServerStartError, match="exited or could not listen during startup"):
        start_server(target_kind, tmp_path, {"tickTime": "not-a-number"})
    assert time.monotonic() - started < 25


def test_free_port_is_bindable() -> None:
    port = free_port()
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", port))


class _Impostor(socketserver.BaseRequestHandler):
    """Answers four-letter words like a healthy ZooKeeper would."""

    def handle(self) -> None:
        word = self.request.recv(4)
        self.request.sendall(b"imok" if word == b"ruok" else b"Zookeeper version: impostor\nMode: standalone\n")


@pytest.fixture
def impostor_port() -> Iterator[int]:
    with socketserver.ThreadingTCPServer(("127.0.0.1", 0), _Impostor) as impostor:
        thread = threading.Thread(target=impostor.serve_forever, daemon=True)
        thread.start()
        try:
            yield impostor.server_address[1]
        finally:
            impostor.shutdown()
            thread.join(10)


def test_a_foreign_server_on_the_port_is_not_mistaken_for_ours(
    target_kind: str, tmp_path: Path, impostor_port: int
) -> None:
    with pytest.raises(ServerStartError) as caught:
        start_server(target_kind, tmp_path, port=impostor_port)
    assert "Address already in use" in caught.value.log


def test_a_damaged_data_directory_stops_startup_naming_the_file(target_kind: str, tmp_path: Path) -> None:
    with start_server(target_kind, tmp_path) as srv:
        with kazoo_client(srv) as client:
            for i in range(20):
                client.create(f"/n{i}", b"value %d" % i)
        logs = sorted((srv.data_dir / "version-2").glob("log.*"))
    assert logs, "the server wrote no txn log"
    # Flip a bit inside the first record's txn: a checksum error mid-log.
    damaged = logs[-1]
    data = bytearray(damaged.read_bytes())
    data[16 + 12 + 20] ^= 0x04
    damaged.write_bytes(bytes(data))
    with pytest.raises(ServerStartError) as raised:
        start_server(target_kind, tmp_path, port=srv.port)
    if target_kind == "zabd":
        assert damaged.name in raised.value.log and "offset 16" in raised.value.log, raised.value.log
