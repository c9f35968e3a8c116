# -*- test-case-name: tests.unit.test_client_session -*-
"""Looking for a read-write server while connected to a read-only one (sans-IO).

ZooKeeper 3.8's client (ClientCnxn's pingRwServer) does it this way: while
its connection is read-only, it asks the other hosts ``isro``, one host per
probe, waiting 100 ms before the first and doubling the wait up to 60 s; a
host that answers ``rw`` is the one to move to. The session core asks this
class when a probe is due, sends it as a :class:`Probe` effect, and reports
the answer back.
"""
from __future__ import annotations

from zabd.client.effects import Probe
from zabd.client.hosts import HostPort

MIN_WAIT_MS = 100
MAX_WAIT_MS = 60_000


class ReadWriteSearch:
    """The search for a read-write server of one session; see the module docstring."""

    def __init__(self, hosts: tuple[HostPort, ...]) -> None:
        self.hosts = hosts
        #: Whether the session ever reached a read-write server: a read-only
        #: server's session is its own, so a client that never saw one starts
        #: afresh on the first read-write server (3.8's seenRwServerBefore).
        self.seen_read_write = False
        #: When the next probe is due; None while not searching or while one is out.
        self.due_ms: int | None = None
        self._wait_ms = MIN_WAIT_MS
        self._probe_id = 0
        self._outstanding: int | None = None
        self._probed: HostPort | None = None
        self._next = 0

    @property
    def searching(self) -> bool:
        return self.due_ms is not None or self._outstanding is not None

    def connected(self, read_only: bool, now_ms: int) -> None:
        """A connection is made: search from a read-only server, remember a read-write one."""
        if read_only:
            self.start(now_ms)
        else:
            self.seen_read_write = True

    def start(self, now_ms: int) -> None:
        """Connected read-only: the first probe goes out after the shortest wait."""
        self._wait_ms = MIN_WAIT_MS
        self._outstanding = None
        self.due_ms = now_ms + self._wait_ms if len(self.hosts) > 1 else None

    def stop(self) -> None:
        self.due_ms = None
        self._outstanding = None

    def probe(self, current: HostPort | None, now_ms: int, timeout_ms: int) -> Probe | None:
        """The probe to send now, if one is due: the next host other than ``current``."""
        if self.due_ms is None or now_ms < self.due_ms:
            return None
        for _ in range(len(self.hosts)):
            host = self.hosts[self._next]
            self._next = (self._next + 1) % len(self.hosts)
            if host != current:
                break
        else:
            self.stop()
            return None
        self._probe_id += 1
        self._outstanding, self._probed = self._probe_id, host
        self.due_ms = None
        return Probe(host, self._probe_id, timeout_ms)

    def answered(self, probe_id: int, read_write: bool, now_ms: int) -> HostPort | None:
        """The read-write server this (current) probe found; if none, the next probe waits longer."""
        if probe_id != self._outstanding:
            return None  # stale: the search stopped or moved on
        self._outstanding = None
        if read_write:
            self.due_ms = None
            return self._probed
        self._wait_ms = min(self._wait_ms * 2, MAX_WAIT_MS)
        self.due_ms = now_ms + self._wait_ms
        return None
