"""The zabd.client examples under examples/ run against a zabd server and finish by themselves."""
from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from zabd.harness.processes import ServerProcess

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"


def run_example(name: str, *args: str) -> str:
    done = subprocess.run([sys.executable, str(EXAMPLES / name), *args], capture_output=True, text=True,
                          timeout=90, cwd=Path(__file__).parents[2])
    assert done.returncode == 0, done.stdout + done.stderr
    return done.stdout


def test_distributed_lock_example_loses_no_update(zabd_server: ServerProcess) -> None:
    out = run_example("distributed_lock.py", zabd_server.address(), "3", "5")
    assert "3 workers x 5 rounds: counter = 15" in out


def test_leader_worker_example_hands_over_leadership(zabd_server: ServerProcess) -> None:
    out = run_example("leader_worker.py", zabd_server.address(), "3", "4")
    assert "12 jobs done, by leaders in turn: candidate-" in out
    assert out.count("I am the leader") == 3 and out.count("stepping down") == 3


def test_service_registry_example_lists_services_live(zabd_server: ServerProcess) -> None:
    out = run_example("service_registry.py", zabd_server.address(), "3")
    lines = [line for line in out.splitlines() if line.startswith("live services")]
    assert [line.split(" ")[2] for line in lines] == ["(0):", "(1):", "(2):", "(3):", "(2):", "(1):", "(0):"]
    assert out.count("registered /services/api-") == 3 and "10.0.0.3:8000" in out
    assert out.rstrip().endswith("registry empty again: done")
