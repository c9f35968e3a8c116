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
from zabd.core.sessions import session_password
from zabd.jute.errors import Code
from zabd.jute.opcodes import OpCode
from zabd.jute.records import ConnectRequest
from zabd.pipeline.prep import PrepStage, TXN_TYPES
from zabd.pipeline.request import Request
from zabd.serving.connection import ServerConnection
from zabd.serving.standalone import ServerOptions, StandaloneServer

log = Logger()

#: What ReadOnlyRequestProcessor answers NOTREADONLY (createSession and
#: closeSession of a local session are handled here instead).
REFUSED = (TXN_TYPES | {OpCode.sync}) - {OpCode.createSession, OpCode.closeSession}

#: 3.8 waits this long (or a tick, if longer) in LOOKING before it decides it is partitioned.
READ_ONLY_GRACE_MS = 2000


def read_only_grace_ms(tick_ms: int) -> int:
    """How long a peer looks for a quorum before it starts its read-only server (3.8's max(2000, tickTime))."""
    return max(READ_ONLY_GRACE_MS, tick_ms)


class ReadOnlyServer(StandaloneServer):
    def __init__(self, options: ServerOptions, clock: Callable[[], float], tree: DataTree,
                 global_sessions: Collection[int], still_looking: Callable[[], bool]) -> None:
        # No sessions handed in: the tracker holds only this server's local ones.
        super().__init__(options, clock, None, tree)
        self.global_sessions = frozenset(global_sessions)
        self.still_looking = still_looking
        self.shut_down = False
        # 3.8's chain: read-only filter -> prep -> final; no sync stage, no log.
        self.prep = PrepStage(self.ctx, self.final)

    def shutdown(self) -> None:
        """Close every client connection; nothing is answered any more."""
        if not self.shut_down:
            self.shut_down = True
            log.info("Read-only server shut down ({n} connections)", n=len(self.connections))
        for conn in list(self.connections):
            conn.close()

    def local_sessions_enabled(self) -> bool:
        # 3.8's read-only server tracks sessions as a learner does.
        return self.options.settings.local_sessions

    def _answering(self) -> bool:
        if not self.shut_down and not self.still_looking():
            self.shutdown()
        return not self.shut_down

    # -- sessions --------------------------------------------------------------

    def connect(self, conn: ServerConnection, request: ConnectRequest) -> None:
        if not self._answering():
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
        opts = self.options
        timeout = conn.timeout = min(max(request.timeOut, opts.min_session_timeout_ms), opts.max_session_timeout_ms)
        now = int(self.ctx.now_ms())
        session_id = request.sessionId
        if session_id == 0:
            session_id = conn.session_id = self.ctx.sessions.create(timeout, now)
            self.by_session[session_id] = conn
            log.info("Creating local session 0x{session:x} with timeout {timeout} for {peer} in read-only mode",
                     session=session_id, timeout=timeout, peer=conn.peer)
            conn.session_established(True)
            return
        if session_id in self.global_sessions:
            log.info("Refusing global session 0x{session:x} reconnection in read-only mode from {peer}",
                     session=session_id, peer=conn.peer)
            conn.close()
            return
        previous = self.by_session.pop(session_id, None)
        if previous is not None and previous is not conn:
            previous.close()
        conn.session_id = session_id
        valid = request.passwd == session_password(session_id) and self.ctx.sessions.touch(session_id, now, timeout)
        if valid:
            self.by_session[session_id] = conn
        conn.session_established(valid)

    def _forget(self, session_id: int) -> None:
        self.ctx.sessions.remove(session_id)
        conn = self.by_session.pop(session_id, None)
        if conn is not None:
            conn.close()

    def expire_sessions(self) -> None:
        for session_id in self.ctx.sessions.expire(int(self.ctx.now_ms())):
            log.info("Expiring local session 0x{session:x} in read-only mode", session=session_id)
            self._forget(session_id)

    def collect_containers(self) -> None:
        """Deleting nodes is a write: never here."""

    # -- requests ------------------------------------------------------------

    def submit(self, request: Request) -> None:
        client = request.client
        if not self._answering() or client is None:
            self.ctx.stats.request_finished(request)
            return
        zxid = self.ctx.tree.last_processed_zxid
        if request.type in REFUSED:
            client.send_reply(request.xid, zxid, Code.NOTREADONLY, None)
        elif request.type == OpCode.closeSession:
            # A local session: no txn, just gone (3.8's processTxnForSessionEvents).
            self.ctx.sessions.remove(request.session_id)
            self.by_session.pop(request.session_id, None)
            client.send_reply(request.xid, zxid, 0, None, self.ctx.now_ms())
            client.close()
        else:
            super().submit(request)
            return
        # Answered here, before the chain: what it held is given back (3.8 keeps it, a leak).
        self.ctx.stats.request_finished(request)
