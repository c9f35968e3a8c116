# -*- test-case-name: tests.unit.test_chaos -*-
"""The clients of a chaos run (zabd.testing.chaos): a random workload, and what it saw.

:class:`Workload` drives a few :class:`~zabd.testing.chaos_clients.Client`
against the serving peers of a SimEnsemble. They create, set (blindly or by
version), delete and read a few keys, make sequential and ephemeral nodes,
and close their sessions now and then. As answers arrive it checks that a
read returns the data the txn its stat names wrote (and no newer zxid than
the reply's), and that a conditional set makes the next version, never one
already acknowledged. Every operation is kept for the end-of-run checks
(zabd.testing.chaos_checks).
"""
from __future__ import annotations

import random

from zabd.core.datatree import OPEN_ACL
from zabd.jute.opcodes import CreateMode, OpCode
from zabd.jute.records import (
    CreateRequest, CreateResponse, DeleteRequest, GetDataResponse, PathWatchRequest, SetDataRequest, StatResponse,
)
from zabd.jute.schema import decode
from zabd.jute.txns import CreateTxn, SetDataTxn, Txn
from zabd.testing.chaos_clients import Client, ClientLink, Op
from zabd.testing.chaos_history import Histories, Report
from zabd.testing.ensemble import SimEnsemble

KEYS = [f"/k{i}" for i in range(6)]


class Workload:
    """The clients of a chaos run: what they send, and the records the checks read afterwards."""

    def __init__(self, ensemble: SimEnsemble, histories: Histories, report: Report, *, seed: int, clients: int,
                 ops: int, span_ms: int) -> None:
        self.ensemble = ensemble
        self.sim = ensemble.sim
        self.histories = histories
        self.report = report
        self.rng = random.Random(seed * 1_000_003 + 7)
        self.target = ops
        self.think_ms = max(10, span_ms * clients // max(1, ops))
        self.clients = [Client(self, index) for index in range(1, clients + 1)]
        self.ops: list[Op] = []
        self.links: list[ClientLink] = []
        self.expired: list[tuple[int, int]] = []  # (session, when the client learnt it)
        self.closed: list[tuple[int, int]] = []
        self.versions: dict[tuple[str, int, int], int] = {}  # (path, czxid, version) -> zxid of the set
        self.port = 20000
        self.issuing = True
        self.stopped = False

    @property
    def issued(self) -> int:
        return len(self.ops)

    def start(self) -> None:
        for client in self.clients:
            self.sim.call_later(self.rng.randint(1, 50), client.tick)

    def issue(self, client: Client) -> None:
        rng, n = self.rng, len(self.ops)
        key = rng.choice(KEYS)
        data = b"c%d-%d" % (client.index, n)
        roll = rng.random()
        if n < 2:
            parent = "/seq" if n == 0 else "/eph"
            client.request("create", OpCode.create, parent, CreateRequest(parent, b"", OPEN_ACL, 0))
        elif roll < 0.14:
            client.request("create", OpCode.create, key, CreateRequest(key, data, OPEN_ACL, 0), data)
        elif roll < 0.28:
            client.request("set", OpCode.setData, key, SetDataRequest(key, data, -1), data)
        elif roll < 0.44:
            version = client.versions.get(key, rng.randint(0, 3))
            client.request("cas", OpCode.setData, key, SetDataRequest(key, data, version), data, version)
        elif roll < 0.52:
            version = client.versions.get(key, -1) if rng.random() < 0.5 else -1
            client.request("delete", OpCode.delete, key, DeleteRequest(key, version), version=version)
        elif roll < 0.70:
            client.request("get", OpCode.getData, key, PathWatchRequest(key, False))
        elif roll < 0.76:
            client.request("exists", OpCode.exists, key, PathWatchRequest(key, False))
        elif roll < 0.85:
            client.request("create", OpCode.create, "/seq/n-",
                           CreateRequest("/seq/n-", data, OPEN_ACL, CreateMode.PERSISTENT_SEQUENTIAL), data)
        elif roll < 0.975:
            mode = CreateMode.EPHEMERAL if rng.random() < 0.6 else CreateMode.EPHEMERAL_SEQUENTIAL
            path = f"/eph/c{client.index}-{n}" if mode == CreateMode.EPHEMERAL else "/eph/s-"
            client.request("create", OpCode.create, path, CreateRequest(path, data, OPEN_ACL, mode), data)
        else:
            client.request("close", OpCode.closeSession, "", None)

    def answered(self, client: Client, op: Op, body: bytes) -> None:
        if op.err != 0:
            return
        if op.kind in ("get", "exists"):
            if op.kind == "get":
                reply = decode(GetDataResponse, body)
                self._check_read(op, reply.data or b"", reply.stat.mzxid, reply.stat.version, True)
                client.versions[op.path] = reply.stat.version
            else:
                stat = decode(StatResponse, body).stat
                self._check_read(op, b"", stat.mzxid, stat.version, False)
        elif op.kind in ("set", "cas"):
            stat = decode(StatResponse, body).stat
            client.versions[op.path] = stat.version
            if op.kind == "cas" and stat.version != op.version + 1:
                self.report("cas", f"a set of {op.path} at version {op.version} made version {stat.version}")
            first = self.versions.setdefault((op.path, stat.czxid, stat.version), op.zxid)
            if first != op.zxid:
                self.report("cas", f"two acknowledged sets made version {stat.version} of {op.path} "
                            f"(zxids 0x{first:x} and 0x{op.zxid:x})")
        elif op.kind == "create":
            op.path = decode(CreateResponse, body).path

    def _check_read(self, op: Op, data: bytes, mzxid: int, version: int, with_data: bool) -> None:
        if mzxid > op.zxid:
            self.report("read", f"a read of {op.path} at 0x{op.zxid:x} saw it modified at 0x{mzxid:x}")
        txn_bytes = self.histories.txns.get(mzxid)
        if txn_bytes is None:
            self.report("read", f"a read of {op.path} saw a change at 0x{mzxid:x} that no peer applied")
            return
        body = Txn.from_bytes(txn_bytes).body
        if not isinstance(body, (CreateTxn, SetDataTxn)) or body.path != op.path:
            return  # (a multi, or a path this check does not follow)
        if with_data and (body.data or b"") != data:
            self.report("read", f"a read of {op.path} returned data the txn 0x{mzxid:x} did not write")

    def peer_crashed(self, sid: int) -> None:
        for client in self.clients:
            if client.link is not None and client.link.sid == sid:
                client.link.abort(server_alive=False)

    def pause(self, index: int, ms: int) -> None:
        """A client goes silent for ``ms`` (its connection drops; long pauses expire its session)."""
        client = self.clients[(index - 1) % len(self.clients)]
        client.paused_until = self.sim.now_ms + ms
        if client.link is not None:
            client.link.abort()

    def stop(self) -> None:
        """Every client goes away without closing its session (they all expire)."""
        self.stopped = True
        for client in self.clients:
            if client.link is not None:
                client.link.abort()

    def idle(self) -> bool:
        return all(not client.outstanding for client in self.clients)
