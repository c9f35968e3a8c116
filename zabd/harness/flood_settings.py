# -*- test-case-name: tests.interop.test_flood -*-
"""What a flood run (zabd.harness.flood_run) is asked to do, apart so that the probe can read it too."""
from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class FloodSettings:
    """One flood: the server to flood, how many connections and requests, and the probe's pace."""

    host: str
    port: int
    #: The server's process id, for its memory and whether it is still alive.
    pid: int
    target: str = "server"
    connections: int = 1000
    requests: int = 4
    value_size: int = 1_000_000
    kinds: tuple[str, ...] = ("setData", "create")
    #: Stop starting requests after this many seconds (0: send them all).
    duration: float = 0.0
    #: Every connection must be finished this long after the flood starts, or it counts as hung.
    deadline: float = 300.0
    per_address: int = 50
    first_source: int = 10
    session_timeout_ms: int = 30000
    ping_interval: float = 0.05
    handshakes_at_once: int = 50
    path: str = "/flood"

    def source(self, index: int) -> str:
        return f"127.0.0.{self.first_source + index // self.per_address}"
