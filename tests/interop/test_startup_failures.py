"""A server that cannot listen exits non-zero with one clear line, and never half-serves."""
from __future__ import annotations

import socket
import subprocess
import time
from pathlib import Path

from zabd.harness.commands import write_config, zabd_command, zabd_environment
from zabd.harness.ensembleprocs import EnsemblePeer, prepare_ensemble
from zabd.harness.probes import free_port

#: electionPortBindRetry=3 at one second apart, plus the interpreter's start.
EXIT_DEADLINE = 30.0


def hold(port: int) -> socket.socket:
    """Take ``port`` the way another process would."""
    holder = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    holder.bind(("127.0.0.1", port))
    holder.listen()
    return holder


def run(peer: EnsemblePeer) -> tuple[int, str]:
    """Start the peer, wait for it to exit, and return its exit code and log."""
    log = peer.workdir / "server.log"
    with open(log, "wb") as out:
        process = subprocess.Popen(peer.command, env=peer.env, cwd=peer.workdir, stdout=out,
                                   stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
    try:
        code = process.wait(EXIT_DEADLINE)
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
    return code, log.read_text()


def test_a_peer_whose_election_port_is_taken_exits_within_the_retry_budget(tmp_path: Path) -> None:
    peer = prepare_ensemble("zabd", tmp_path, voters=3).peers[1]
    with hold(peer.election_port):
        started = time.monotonic()
        code, text = run(peer)
        assert code == 14, text
        assert time.monotonic() - started < EXIT_DEADLINE
    assert text.count("Cannot listen for elections on") == 2, text  # attempts 1 and 2 of 3
    assert "Exiting: cannot listen for elections on 127.0.0.1:" in text and "after 3 attempts" in text
    assert "Traceback" not in text
    # Nothing is left listening: the client port went with the process.
    with socket.socket() as probe:
        assert probe.connect_ex(("127.0.0.1", peer.port)) != 0


def test_a_peer_whose_quorum_port_is_taken_exits_at_once(tmp_path: Path) -> None:
    peer = prepare_ensemble("zabd", tmp_path, voters=3).peers[1]
    with hold(peer.quorum_port):
        code, text = run(peer)
    assert code == 14, text
    assert "Exiting: cannot listen for learners on 127.0.0.1:" in text
    assert "Traceback" not in text


def test_a_server_whose_client_port_is_taken_stops_with_one_line(tmp_path: Path) -> None:
    port = free_port()
    with hold(port):
        cfg = write_config(tmp_path, port)
        done = subprocess.run(zabd_command(cfg), env=zabd_environment(), cwd=tmp_path, capture_output=True,
                              text=True, timeout=EXIT_DEADLINE, stdin=subprocess.DEVNULL)
    output = done.stdout + done.stderr
    assert done.returncode != 0
    assert f"zabd: cannot listen for clients on 127.0.0.1:{port}: " in output, output
    assert "Traceback" not in output
