"""The files under examples/ work as they say."""
from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from zabd.config.zoocfg import load_config
from zabd.harness.processes import ServerProcess

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"


def test_example_config_parses() -> None:
    config = load_config(str(EXAMPLES / "zoo.cfg"))
    assert config.client_port == 2181 and config.client_port_address == "127.0.0.1"
    assert config.extended_types_enabled and "envi" in config.four_letter_words
    assert config.unknown_keys == ()


def test_hello_kazoo_runs_against_zabd(zabd_server: ServerProcess) -> None:
    result = subprocess.run(
        [sys.executable, str(EXAMPLES / "hello_kazoo.py"), zabd_server.address()],
        capture_output=True, text=True, timeout=60,
    )
    assert result.returncode == 0, result.stderr
    assert "/examples/worker-0000000000 holds b'hello'" in result.stdout
    assert "server says: imok" in result.stdout
