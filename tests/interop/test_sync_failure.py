"""A failed fsync stops zabd before it answers the write (strace injects the error).

The server must neither answer the write whose batch failed to sync nor keep
serving: a retried fsync can report success over pages the kernel dropped.
"""
from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest
from kazoo.client import KazooClient
from kazoo.exceptions import ConnectionLoss, SessionExpiredError
from kazoo.retry import KazooRetry

from zabd.persist.disklog import SYNC_FAILED_EXIT
from zabd.harness.commands import write_config, zabd_command, zabd_environment
from zabd.harness.probes import four_letter, free_port, wait_until

DEADLINE = 30.0


def _serving(process: subprocess.Popen[bytes], port: int) -> bool:
    if process.poll() is not None:
        raise AssertionError(f"zabd exited during startup with {process.returncode}")
    try:
        return "Zxid:" in four_letter("127.0.0.1", port, "srvr", timeout=2.0)
    except OSError:
        return False


def test_a_failed_fsync_stops_the_server_without_answering(tmp_path: Path) -> None:
    strace = shutil.which("strace")
    assert strace is not None, "strace is needed (Debian package strace)"
    port = free_port()
    cfg = write_config(tmp_path, port)
    # The first fdatasync syncs the session's createSession; the second, the create.
    command = [strace, "-f", "-qq", "-o", str(tmp_path / "strace.out"), "-e", "trace=fdatasync",
               "-e", "inject=fdatasync:error=EIO:when=2", *zabd_command(cfg)]
    log_path = tmp_path / "zabd.log"
    with open(log_path, "wb") as log_file:
        process = subprocess.Popen(command, cwd=tmp_path, env=zabd_environment(),
                                   stdin=subprocess.DEVNULL, stdout=log_file, stderr=subprocess.STDOUT)
    client = KazooClient(f"127.0.0.1:{port}", timeout=10.0, connection_retry=KazooRetry(max_tries=0))
    try:
        wait_until(lambda: _serving(process, port), DEADLINE, "zabd under strace to serve",
                   lambda: log_path.read_text(errors="replace"))
        client.start(DEADLINE)
        with pytest.raises((ConnectionLoss, SessionExpiredError)):
            client.create("/never-acknowledged", b"x")
        assert process.wait(DEADLINE) == SYNC_FAILED_EXIT
    finally:
        client.stop()
        client.close()
        if process.poll() is None:
            process.kill()
            process.wait(DEADLINE)
    log = log_path.read_text(errors="replace")
    assert "Severe unrecoverable error writing the txn log" in log and "Input/output error" in log, log
