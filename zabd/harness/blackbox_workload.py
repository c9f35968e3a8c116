"""The black-box test's clients (issue 15, section 4): kazoo sessions in threads, every operation recorded.

* compare-and-set on a few registers: get, then set with the version read;
* sequential creates under one parent;
* ephemerals: each session creates one, checks it is there while the session
  lives, then closes the session (kazoo) or drops its socket (a raw session
  left to expire); once every session has ended, every one must be gone;
* optional readers pinned to one peer each (they see every replica).

Outcomes: BadVersion, NoNode and NodeExists are failures (the server said
so); everything else that is not an answer (ConnectionLoss, an expired or
closed session, no answer in time) is unknown. A client that timed out or
lost its session is retired (stopped in the background: kazoo may wait 10 s
for a hung server) and replaced. Work is paced by the writes acknowledged
elsewhere, never by sleeping.
"""

from __future__ import annotations

import asyncio
import random
import threading
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from kazoo.client import KazooClient
from kazoo.exceptions import KazooException
from kazoo.handlers.threading import KazooTimeoutError

from zabd.harness.blackbox_clients import Clients, Recorder, Unknown, label, usable
from zabd.harness.history import Anomaly
from zabd.harness.wiresession import open_session
from zabd.harness.wire import OP_CREATE, create_body

ROOT = "/bb"
SEQ_PARENT = f"{ROOT}/seq"
EPH_PARENT = f"{ROOT}/eph"
INITIAL_VALUE = "init"
EPHEMERAL = 1
Job = Callable[[KazooClient, str, random.Random], None]


@dataclass
class Workload:
    """The workers of one run over ``hosts`` (kazoo host strings: all peers, and one per peer for readers)."""

    hosts: str
    pinned: dict[int, str]
    seed: int
    cas_workers: int = 4
    keys: int = 5
    readers: bool = True
    ephemeral_sessions: bool = True
    session_timeout: float = 4.0
    writer_hosts: str | None = None
    recorder: Recorder = field(default_factory=Recorder)
    stop: threading.Event = field(default_factory=threading.Event)
    ephemerals: list[str] = field(default_factory=list)
    extra: list[Anomaly] = field(default_factory=list)
    threads: list[threading.Thread] = field(default_factory=list)
    errors: Counter[str] = field(default_factory=Counter)

    def __post_init__(self) -> None:
        self.clients = Clients(self.session_timeout)
        self.key_names = [f"{ROOT}/k{n}" for n in range(self.keys)]
        self.op_timeout = self.session_timeout + 2.0

    def setup(self) -> None:
        client = self.clients.start(self.writer_hosts or self.hosts)
        assert client is not None, f"no session with {self.writer_hosts or self.hosts}"
        for path in [ROOT, SEQ_PARENT, EPH_PARENT, *self.key_names]:
            client.create(path, INITIAL_VALUE.encode() if path in self.key_names else b"")
        self.clients.retire(client)

    def start(self) -> None:
        writers = self.writer_hosts or self.hosts
        jobs: list[tuple[str, Job, str]] = [(f"c{n}", self._cas, writers) for n in range(self.cas_workers)]
        jobs += [("seq", self._sequential, writers)] + [("eph", self._ephemeral, writers)] * self.ephemeral_sessions
        jobs += [(f"r{sid}", self._read, hosts) for sid, hosts in self.pinned.items()] if self.readers else []
        for n, (name, job, hosts) in enumerate(jobs):
            thread = threading.Thread(target=self._worker, args=(name, job, hosts, random.Random(self.seed * 1000 + n)),
                                      name=f"blackbox-{name}", daemon=True)
            self.threads.append(thread)
            thread.start()

    def finish(self) -> None:
        self.stop.set()
        for thread in self.threads:
            thread.join(self.op_timeout * 3)

    def quiesce(self, timeout: float) -> None:
        """Hold every new op and session, and wait until none is in flight (and no client is closing)."""
        recorder = self.recorder
        recorder.gate.clear()
        deadline = time.monotonic() + timeout
        with recorder.lock:
            while recorder.in_flight or self.clients.retiring.unfinished_tasks:
                if time.monotonic() > deadline:
                    raise TimeoutError(f"{recorder.in_flight} ops still in flight after {timeout} s")
                recorder.lock.wait(0.05)

    def resume(self) -> None:
        self.recorder.gate.set()

    def _worker(self, name: str, job: Job, hosts: str, rng: random.Random) -> None:
        client: KazooClient | None = None
        while not self.stop.is_set():
            if not self.recorder.gate.wait(0.2):
                continue
            if not usable(client):
                self.clients.retire(client)
                client = self.clients.start(hosts)
                continue
            assert client is not None
            try:
                job(client, label(name, client), rng)
            except Unknown as unknown:
                if unknown.retire:
                    self.clients.retire(client)
                    client = None
            except Exception as error:  # noqa: BLE001 - kazoo raised something unforeseen: a new client
                self.errors[f"{type(error).__name__}: {error}"[:200]] += 1
                self.clients.retire(client)
                client = None
        self.clients.retire(client)

    # -- the jobs: one step each, on the worker's client ----------------------------------------------------

    def _get(self, client: KazooClient, session: str, key: str) -> Any:
        return self.recorder.attempt(session, key, "read", lambda: client.get_async(key).get(timeout=self.op_timeout),
                                     lambda got: {"value": got[0].decode(), "version": got[1].version})

    def _cas(self, client: KazooClient, session: str, rng: random.Random) -> None:
        key = rng.choice(self.key_names)
        got = self._get(client, session, key)
        if got is None:
            return
        if not usable(client):
            raise Unknown(retire=True)
        value = f"{session}.{rng.getrandbits(48):x}"
        self.recorder.attempt(
            session, key, "cas", lambda: client.set_async(key, value.encode(), got[1].version).get(self.op_timeout),
            lambda stat: {"version": stat.version}, value=value, expected_version=got[1].version)

    def _read(self, client: KazooClient, session: str, rng: random.Random) -> None:
        self._get(client, session, rng.choice(self.key_names))
        self.recorder.wait_writes(1, 1.0, self.stop)  # a read per write or so: the writers set the pace

    def _sequential(self, client: KazooClient, session: str, rng: random.Random) -> None:
        self.recorder.attempt(
            session, SEQ_PARENT, "create_seq",
            lambda: client.create_async(f"{SEQ_PARENT}/s-", b"", sequence=True).get(self.op_timeout),
            lambda name: {"name": name})
        self.recorder.wait_writes(3, 1.0, self.stop)

    def _ephemeral(self, client: KazooClient, session: str, rng: random.Random) -> None:
        path = f"{EPH_PARENT}/{session.replace('#', '-')}"
        if rng.random() < 0.5:
            self._abandoned(path.replace("eph-", "raw-") + f"-{rng.getrandbits(32):x}", rng)
            return
        self.ephemerals.append(path)
        try:
            client.create_async(path, b"", ephemeral=True).get(timeout=self.op_timeout)
            for _ in range(rng.randint(1, 20)):
                if self.stop.is_set():
                    break
                if client.exists_async(path).get(timeout=self.op_timeout) is None:
                    self.extra.append(Anomaly("ephemeral-lost", path, (), f"session {session} is alive "
                                              "(its read succeeded) but its ephemeral is gone"))
                    break
                self.recorder.wait_writes(5, 1.0, self.stop)
        except (KazooException, KazooTimeoutError) as error:
            raise Unknown(retire=True) from error
        raise Unknown(retire=True)  # end the session: kazoo closes it

    def _abandoned(self, path: str, rng: random.Random) -> None:
        """A raw session that creates an ephemeral, then drops its socket without closing: it must expire."""
        host, port = rng.choice((self.writer_hosts or self.hosts).split(",")).rsplit(":", 1)

        async def abandon() -> None:
            session = await open_session(host, int(port), int(self.session_timeout * 1000), self.session_timeout)
            self.ephemerals.append(path)
            try:
                await asyncio.wait_for(session.request(OP_CREATE, create_body(path, b"", EPHEMERAL)),
                                       self.session_timeout)
            finally:
                assert session.transport is not None
                session.transport.abort()  # no closeSession

        try:
            asyncio.run(abandon())
        except (OSError, asyncio.TimeoutError):
            pass
