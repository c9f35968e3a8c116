"""Running zabd.client scenarios on the real reactor, each in a process of its own.

pytest here has no reactor, and a hung client must fail at a deadline rather
than stall the suite: a test calls :func:`run_scenario`, which runs
``python -m tests.interop.scenario_<name> MODE HOSTS [PORT=PID,...]``; that
module's ``main`` is :func:`scenario_main`, which prints one JSON line of
findings, or exits non-zero with the failure on stderr.
"""
from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from collections.abc import Awaitable, Callable, Mapping
from pathlib import Path
from typing import Any

from twisted.internet.defer import ensureDeferred
from twisted.internet.task import deferLater, react

from zabd.client.fourletter import four_letter_word

#: How long one wait inside a scenario may take.
WAIT_S = 40.0
ROOT = Path(__file__).resolve().parents[2]

#: mode -> the scenario, given the reactor, the connect string and each peer's client port -> pid.
Scenario = Callable[[Any, str, dict[int, int]], Awaitable[dict[str, Any]]]


def run_scenario(module: str, *args: str, deadline_s: float) -> dict[str, Any]:
    """Run ``tests.interop.<module>`` with ``args``; its findings, or an assertion error with its stderr."""
    done = subprocess.run([sys.executable, "-m", f"tests.interop.{module}", *args],
                          capture_output=True, text=True, timeout=deadline_s, cwd=ROOT)
    assert done.returncode == 0, done.stderr[-20000:]
    result: dict[str, Any] = json.loads(done.stdout.strip().splitlines()[-1])
    return result


def scenario_main(scenarios: Mapping[str, Scenario], watchdog_s: float) -> None:
    """The subprocess side: ``MODE HOSTS [PORT=PID,...]`` from argv; exits 3 if the watchdog fires."""
    mode, hosts = sys.argv[1], sys.argv[2]
    pids = {int(port): int(pid) for port, pid in (item.split("=") for item in sys.argv[3].split(","))} \
        if len(sys.argv) > 3 else {}

    async def run(reactor: Any) -> None:
        watchdog = reactor.callLater(watchdog_s, lambda: os._exit(3))
        result = await scenarios[mode](reactor, hosts, pids)
        watchdog.cancel()
        print(json.dumps(result), flush=True)

    react(lambda reactor: ensureDeferred(run(reactor)))


async def wait_for(reactor: Any, what: str, check: Callable[[], object], within: float = WAIT_S) -> None:
    """Poll ``check`` every 50 ms on the reactor until it is true, or fail naming ``what``."""
    waited = 0.0
    while not check():
        if waited >= within:
            raise AssertionError(f"timed out waiting for {what}")
        await deferLater(reactor, 0.05, lambda: None)
        waited += 0.05


async def leader_port(reactor: Any, pids: Mapping[int, int]) -> int:
    """The client port of the peer whose ``srvr`` says ``Mode: leader``."""
    for port in pids:
        if "Mode: leader" in await four_letter_word(reactor, "127.0.0.1", port, b"srvr"):
            return port
    raise AssertionError("no leader")


def kill(pids: Mapping[int, int], port: int) -> None:
    """kill -9 the peer serving clients on ``port``."""
    os.kill(pids[port], signal.SIGKILL)
