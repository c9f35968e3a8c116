# -*- test-case-name: tests.unit.test_chaos -*-
"""One client of a chaos run (zabd.testing.chaos_workload), and its connection to a peer.

A :class:`Client` holds one session at a time and talks to the server of one
serving peer through a :class:`ClientLink`: a ServerConnection on a
transport whose bytes cross in 1-3 virtual ms, in order, with delays drawn
from the link's own RNG (a server closes its connections in set order,
which must not change the run). It pings while idle; when its connection
drops it reconnects to another serving peer with its session and the last
zxid it saw, and a session found expired is replaced by a new one.

As replies arrive it checks what a client can check alone: they come in
request order, and the session never sees its zxid go back.
"""
from __future__ import annotations

import random
import struct
from collections import deque
from dataclasses import dataclass
from typing import Protocol

from zabd.core.sessions import session_password
from zabd.jute.codec import Writer
from zabd.jute.opcodes import NOTIFICATION_XID, PING_XID, OpCode
from zabd.jute.records import ConnectRequest
from zabd.jute.schema import Record, encode
from zabd.serving.connection import ServerConnection
from zabd.serving.effects import TransportEffects
from zabd.serving.server import ClientServer
from zabd.testing.simulation import Simulation

_REPLY = struct.Struct(">iqi")
#: Session timeouts asked for (the simulated peers allow 400..4000 ms).
TIMEOUTS_MS = (1200, 2000, 4000)


@dataclass(eq=False)
class Op:
    """One client request of a chaos run, and once answered its error and zxid."""

    client: int
    session: int
    xid: int
    kind: str
    path: str
    data: bytes = b""
    version: int = -1
    sid: int = 0
    err: int | None = None
    zxid: int = -1


class ServingPeers(Protocol):
    """The ensemble as a client sees it (zabd.testing.ensemble.SimEnsemble)."""

    @property
    def sids(self) -> list[int]: ...

    def server(self, sid: int) -> ClientServer | None: ...


class Workload(Protocol):
    """What clients share (zabd.testing.chaos_workload.Workload): the world, the records, what to do next."""

    sim: Simulation
    rng: random.Random
    think_ms: int
    issuing: bool
    stopped: bool
    #: The last fake client port handed out.
    port: int
    ops: list[Op]
    links: list[ClientLink]
    expired: list[tuple[int, int]]
    closed: list[tuple[int, int]]

    @property
    def ensemble(self) -> ServingPeers: ...

    def issue(self, client: Client) -> None:
        """Send the client's next request."""

    def answered(self, client: Client, op: Op, body: bytes) -> None:
        """A reply arrived for ``op``."""

    def report(self, kind: str, message: str) -> None:
        """An invariant broke."""


class ClientLink:
    """One client connection: the server's Transport on one side, the client's socket on the other."""

    def __init__(self, client: Client, sid: int, server: ClientServer, port: int) -> None:
        self.client = client
        self.sid = sid
        self.sim = client.workload.sim
        # Its own delays: a server closes its connections in set order, which must not change the run.
        self.rng = random.Random(client.workload.rng.getrandbits(64))
        self.broken = False  # nothing more crosses either way
        self.closing = False  # the server closed: what it wrote still arrives, then the close
        self._to_client = self._to_server = 0
        self.conn = ServerConnection(server, TransportEffects(self), f"10.0.0.{client.index}", port)
        server.connection_made(self.conn)

    def _stamp(self, last: int) -> int:
        return max(self.sim.now_ms + self.rng.randint(1, 3), last)

    # -- the server's transport
    def write(self, data: bytes) -> None:
        if not self.broken and not self.closing:
            self._to_client = self._stamp(self._to_client)
            self.sim.call_at(self._to_client, self._arrive, data)

    def loseConnection(self) -> None:  # noqa: N802 (Twisted's name)
        if not self.broken and not self.closing:
            self.closing = True
            self._to_client = self._stamp(self._to_client)
            self.sim.call_at(self._to_client, self._closed)

    def _arrive(self, data: bytes) -> None:
        if not self.broken:
            self.client.received(self, data)

    def _closed(self) -> None:
        if not self.broken:
            self.broken = True
            self.conn.connection_lost()
            self.client.lost(self)

    # -- the client's socket
    def send(self, frame: bytes) -> None:
        if not self.broken and not self.closing:
            self._to_server = self._stamp(self._to_server)
            self.sim.call_at(self._to_server, self._frame, frame)

    def _frame(self, frame: bytes) -> None:
        if not self.broken and not self.closing:
            self.conn.frame_received(frame)

    def abort(self, server_alive: bool = True) -> None:
        """The connection breaks (a client fault, or the server's process died)."""
        if not self.broken:
            self.broken = True
            if server_alive:
                self.sim.call_later(self.rng.randint(1, 3), self.conn.connection_lost)
            self.sim.call_later(self.rng.randint(1, 3), self.client.lost, self)


class Client:
    """One simulated ZooKeeper client: a session, its requests in order, and the checks it makes alone."""

    def __init__(self, workload: Workload, index: int) -> None:
        self.workload = workload
        self.index = index
        self.session = 0
        self.timeout_ms = 0
        self.max_zxid = 0  # the highest zxid this session has seen
        self.link: ClientLink | None = None
        self.connected = False
        self.outstanding: deque[Op] = deque()
        self.xid = 0
        self.paused_until = 0
        self.last_sent_ms = 0
        self.versions: dict[str, int] = {}  # the last version seen per key
        self._rest = b""

    def tick(self) -> None:
        wl = self.workload
        now = wl.sim.now_ms
        if wl.stopped:
            return
        if now >= self.paused_until:
            if self.link is None:
                self._connect()
            elif self.connected:
                if wl.issuing and len(self.outstanding) < 2 and wl.rng.random() < 0.5:
                    wl.issue(self)
                elif now - self.last_sent_ms > self.timeout_ms // 3:
                    self._send(PING_XID, OpCode.ping, b"")
        wl.sim.call_later(wl.rng.randint(5, wl.think_ms), self.tick)

    def _connect(self) -> None:
        wl = self.workload
        serving = [sid for sid in wl.ensemble.sids if wl.ensemble.server(sid) is not None]
        if not serving:
            return
        sid = wl.rng.choice(serving)
        server = wl.ensemble.server(sid)
        assert server is not None
        wl.port += 1
        self.link = ClientLink(self, sid, server, wl.port)
        wl.links.append(self.link)
        if self.session == 0:
            self.timeout_ms, self.max_zxid = wl.rng.choice(TIMEOUTS_MS), 0
        w = Writer()
        ConnectRequest(0, self.max_zxid, self.timeout_ms, self.session, _password(self.session)).write(w)
        w.write_bool(False)
        self.link.send(bytes(w.buf))
        self.last_sent_ms = wl.sim.now_ms

    def _send(self, xid: int, opcode: int, body: bytes) -> None:
        assert self.link is not None
        self.link.send(struct.pack(">ii", xid, opcode) + body)
        self.last_sent_ms = self.workload.sim.now_ms

    def request(self, kind: str, opcode: int, path: str, body: Record | None, data: bytes = b"",
                version: int = -1) -> None:
        assert self.link is not None
        self.xid += 1
        op = Op(self.index, self.session, self.xid, kind, path, data, version, self.link.sid)
        self.outstanding.append(op)
        self.workload.ops.append(op)
        self._send(self.xid, opcode, b"" if body is None else encode(body))

    def received(self, link: ClientLink, data: bytes) -> None:
        if link is not self.link:
            return
        buf = self._rest + data
        pos = 0
        while len(buf) - pos >= 4:
            (n,) = struct.unpack_from(">i", buf, pos)
            if len(buf) - pos - 4 < n:
                break
            frame = buf[pos + 4:pos + 4 + n]
            pos += 4 + n
            if self.connected:
                self._reply(frame)
            else:
                self._established(frame)
            if link is not self.link:
                return
        self._rest = buf[pos:]

    def _established(self, frame: bytes) -> None:
        wl = self.workload
        _version, timeout, session = struct.unpack_from(">iiq", frame, 0)
        if session == 0 or timeout <= 0:
            wl.expired.append((self.session, wl.sim.now_ms))
            self.session = 0
            self.drop()
            return
        self.session, self.timeout_ms, self.connected = session, timeout, True

    def _reply(self, frame: bytes) -> None:
        wl = self.workload
        xid, zxid, err = _REPLY.unpack_from(frame, 0)
        if xid == NOTIFICATION_XID:
            return
        if zxid < self.max_zxid:
            wl.report("monotonicRead", f"session 0x{self.session:x} saw zxid 0x{zxid:x} after 0x{self.max_zxid:x} "
                      f"(from peer {self.link.sid if self.link else '?'})")
        self.max_zxid = max(self.max_zxid, zxid)
        if xid == PING_XID:
            return
        if not self.outstanding or self.outstanding[0].xid != xid:
            head = self.outstanding[0].xid if self.outstanding else None
            wl.report("sessionOrder", f"session 0x{self.session:x} got the reply to xid {xid}, expected {head}")
            return
        op = self.outstanding.popleft()
        op.err, op.zxid = err, zxid
        wl.answered(self, op, frame[16:])
        if op.kind == "close" and err == 0:
            wl.closed.append((self.session, wl.sim.now_ms))
            self.session = 0

    def lost(self, link: ClientLink) -> None:
        if link is self.link:
            self.drop()

    def drop(self) -> None:
        """Forget the connection: requests in flight have unknown outcomes; reconnect on a later tick."""
        link, self.link = self.link, None
        self.connected, self._rest = False, b""
        self.outstanding.clear()
        if link is not None and not link.broken:
            link.abort()


def _password(session: int) -> bytes:
    return session_password(session) if session else bytes(16)
