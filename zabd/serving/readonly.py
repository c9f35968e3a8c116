# -*- test-case-name: tests.unit.test_read_only -*-
"""The server a peer cut off from its quorum runs with readonlymode.enabled (3.8's ReadOnlyZooKeeperServer).

It answers reads from the peer's own tree and refuses the rest:

- A client that did not ask for a read-only session (its ConnectRequest's
  readOnly byte false, or missing as from an old client) has its connection
  closed without an answer, as 3.8 does; so does a client reconnecting with a
  global session, which belongs to the quorum. Every ConnectResponse carries
  readOnly=true.
- Writes, ``sync``, ``check`` and ``reconfig`` answer NOTREADONLY (-119)
  with the tree's last zxid, as ReadOnlyRequestProcessor does; everything
  else goes prep (the session check) -> final, as in 3.8's chain. Nothing
  reaches a log: the tree does not change while the peer is LOOKING.
- Sessions are local to this server: created, touched, closed and expired
  here, never persisted, and gone with it. 3.8 makes them local only when
  localSessionsEnabled is set; without it, its read-only server answers a new
  session's ConnectRequest with a NOTREADONLY reply header, which no client
  can parse. zabd always makes them local, so read-only clients work either way.

``still_looking`` guards every answer: once the peer has decided on a role its
tree is about to be synced, so the server stops answering at once, even
before the switch has noticed and shut it down.
"""
from __future__ import annotations

from collections.abc import Callable, Collection

from twisted.logger import Logger

from zabd.core.datatree import DataTree
from zabd.core.sessions import SessionTracker, session_password
from zabd.jute.errors import Code
from zabd.jute.opcodes import OpCode
from zabd.jute.records import ConnectRequest
from zabd.pipeline.context import ServerContext
from zabd.pipeline.final import FinalStage
from zabd.pipeline.prep import TXN_TYPES
from zabd.pipeline.request import Request
from zabd.serving.chain import PrepFinal
from zabd.serving.clients import ClientTable
from zabd.serving.connection import ServerConnection
from zabd.serving.server import ClientServer, ServerOptions, request_throttler, server_context

log = Logger()

#: What ReadOnlyRequestProcessor answers NOTREADONLY (createSession and
#: closeSession of a local session are handled here instead).
REFUSED = (TXN_TYPES | {OpCode.sync}) - {OpCode.createSession, OpCode.closeSession}

#: 3.8 waits this long (or a tick, if longer) in LOOKING before it decides it is partitioned.
READ_ONLY_GRACE_MS = 2000


def read_only_grace_ms(tick_ms: int) -> int:
    """How long a peer looks for a quorum before it starts its read-only server (3.8's max(2000, tickTime))."""
    return max(READ_ONLY_GRACE_MS, tick_ms)


class ReadOnlyServer(ClientServer):
    """The server of a peer cut off from its quorum: a ClientServer given the read-only parts."""

    def __init__(self, options: ServerOptions, clock: Callable[[], float], tree: DataTree,
                 global_sessions: Collection[int], still_looking: Callable[[], bool]) -> None:
        # No sessions handed in: the tracker holds only this server's local ones.
        table = SessionTracker(options.tick_ms, options.server_id, int(clock() * 1000))
        ctx = server_context(options, clock, tree, table)
        clients = ClientTable(ctx.stats, ctx.watches)
        self.guard = guard = ReadOnlyGuard(clients, still_looking)
        # 3.8's chain: read-only filter -> prep -> final; no sync stage, no log.
        requests = ReadOnlyRequests(ctx, guard, clients, PrepFinal(ctx, FinalStage(ctx, clients.session_closed)))
        door = ReadOnlyDoor(ctx, options, clients, guard, frozenset(global_sessions))
        # 3.8's read-only server tracks sessions as a learner does.
        super().__init__(options, ctx, clients, requests, request_throttler(options, ctx, requests), door,
                         ReadOnlyHousekeeping(ctx, clients), local_sessions=options.settings.local_sessions)
        self.global_sessions = door.global_sessions

    @property
    def still_looking(self) -> Callable[[], bool]:
        """Whether the peer still looks for a quorum (the server answers only while it does)."""
        return self.guard.still_looking

    @still_looking.setter
    def still_looking(self, still_looking: Callable[[], bool]) -> None:
        self.guard.still_looking = still_looking

    @property
    def shut_down(self) -> bool:
        return self.guard.shut_down

    def shutdown(self) -> None:
        """Close every client connection; nothing is answered any more."""
        self.guard.shutdown()


class ReadOnlyGuard:
    """Stops the server the moment its peer stops looking: its tree is about to be synced."""

    def __init__(self, clients: ClientTable, still_looking: Callable[[], bool]) -> None:
        self._clients = clients
        self.still_looking = still_looking
        self.shut_down = False

    def shutdown(self) -> None:
        if not self.shut_down:
            self.shut_down = True
            log.info("Read-only server shut down ({n} connections)", n=len(self._clients.connections))
        self._clients.close_all()

    def answering(self) -> bool:
        if not self.shut_down and not self.still_looking():
            self.shutdown()
        return not self.shut_down


class ReadOnlyDoor:
    """Read-only sessions only: new ones are local to this server; a global one belongs to the quorum."""

    def __init__(self, ctx: ServerContext, options: ServerOptions, clients: ClientTable, guard: ReadOnlyGuard,
                 global_sessions: frozenset[int]) -> None:
        self.ctx = ctx
        self.options = options
        self.clients = clients
        self.guard = guard
        self.global_sessions = global_sessions

    def connect(self, conn: ServerConnection, request: ConnectRequest) -> None:
        if not self.guard.answering():
            conn.close()
            return
        conn.read_only_server = True
        if not conn.read_only_byte:
            log.info("Refusing session request for not-read-only client {peer}", peer=conn.peer)
            conn.close()
            return
        tree_zxid = self.ctx.tree.last_processed_zxid
        if request.lastZxidSeen > tree_zxid:
            log.info("Refusing session request for {peer}: client has seen zxid 0x{client:x}, "
                     "our last zxid is 0x{ours:x}", peer=conn.peer, client=request.lastZxidSeen, ours=tree_zxid)
            conn.close()
            return
        timeout = conn.timeout = self.options.session_timeout(request.timeOut)
        now = int(self.ctx.now_ms())
        session_id = request.sessionId
        if session_id == 0:
            session_id = conn.session_id = self.ctx.sessions.create(timeout, now)
            self.clients.by_session[session_id] = conn
            log.info("Creating local session 0x{session:x} with timeout {timeout} for {peer} in read-only mode",
                     session=session_id, timeout=timeout, peer=conn.peer)
            conn.session_established(True)
            return
        if session_id in self.global_sessions:
            log.info("Refusing global session 0x{session:x} reconnection in read-only mode from {peer}",
                     session=session_id, peer=conn.peer)
            conn.close()
            return
        self.clients.replace(session_id, conn)
        conn.session_id = session_id
        valid = request.passwd == session_password(session_id) and self.ctx.sessions.touch(session_id, now, timeout)
        if valid:
            self.clients.by_session[session_id] = conn
        conn.session_established(valid)


class ReadOnlyHousekeeping:
    """Local sessions expire here without a txn; containers are never collected (that is a write)."""

    def __init__(self, ctx: ServerContext, clients: ClientTable) -> None:
        self.ctx = ctx
        self.clients = clients

    def expire_sessions(self) -> None:
        for session_id in self.ctx.sessions.expire(int(self.ctx.now_ms())):
            log.info("Expiring local session 0x{session:x} in read-only mode", session=session_id)
            self.ctx.sessions.remove(session_id)
            conn = self.clients.by_session.pop(session_id, None)
            if conn is not None:
                conn.close()

    def collect_containers(self) -> None:
        """Deleting nodes is a write: never here."""


class ReadOnlyRequests:
    """Answers reads through prep and final; refuses writes NOTREADONLY; ends local sessions itself."""

    def __init__(self, ctx: ServerContext, guard: ReadOnlyGuard, clients: ClientTable, chain: PrepFinal) -> None:
        self.ctx = ctx
        self.guard = guard
        self.clients = clients
        self.chain = chain

    def submit(self, request: Request) -> None:
        client = request.client
        if not self.guard.answering() or client is None:
            self.ctx.stats.request_finished(request)
            return
        zxid = self.ctx.tree.last_processed_zxid
        if request.type in REFUSED:
            client.send_reply(request.xid, zxid, Code.NOTREADONLY, None)
        elif request.type == OpCode.closeSession:
            # A local session: no txn, just gone (3.8's processTxnForSessionEvents).
            self.ctx.sessions.remove(request.session_id)
            self.clients.by_session.pop(request.session_id, None)
            client.send_reply(request.xid, zxid, 0, None, self.ctx.now_ms())
            client.close()
        else:
            self.chain.submit(request)
            return
        # Answered here, before the chain: what it held is given back (3.8 keeps it, a leak).
        self.ctx.stats.request_finished(request)
