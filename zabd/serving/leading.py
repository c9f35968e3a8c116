# -*- test-case-name: tests.unit.test_ensemble_clients -*-
"""The client side of a leading peer: prep → proposal → commit → final.

It is a ClientServer on the standalone chain, the txn log swapped for the
quorum: the sync stage "logs" a txn by proposing it (``QuorumTxnLog``), and a txn is
released to the final stage once a quorum has committed it, in zxid order
as the sync stage already guarantees. Requests that learners forward enter
the same prep stage with no client to answer; a forwarded ``sync`` gets its
SYNC packet from the final stage once everything before it has committed.

With local sessions on, the leader's own clients get local sessions
(zabd.serving.leader_requests). Requests learners forward go straight to prep,
as in 3.8, where a session the leader does not know may be a learner's
local one (``LeaderSessions.is_alive``) unless it creates an ephemeral.
"""
from __future__ import annotations

from collections.abc import Callable

from twisted.logger import Logger

from zabd.core.localsessions import LeaderSessions
from zabd.jute.errors import Code, KeeperError
from zabd.jute.opcodes import OpCode
from zabd.jute.records import Id
from zabd.jute.txns import Txn
from zabd.pipeline.request import Reply, Request
from zabd.quorum.configchange import txn_config
from zabd.quorum.leader import Leader
from zabd.quorum.leader_hooks import LeaderHooks
from zabd.quorum.learnerhandler import LearnerHandler
from zabd.quorum.packets import PacketType, QuorumPacket, RequestForward
from zabd.core.zxid import first_zxid_of
from zabd.serving.chain import Chain
from zabd.serving.clients import ClientTable
from zabd.serving.leader_requests import LeaderDoor, LeaderRequests, SessionOwners
from zabd.serving.localsessions import LocalSessionFinal, needs_global_session
from zabd.serving.server import ClientServer, ServerOptions, request_throttler, server_context
from zabd.serving.sessions import Housekeeper, SessionSettler

log = Logger()


class QuorumTxnLog:
    """The leader's TxnLog: appending proposes; a txn is "durable" once a quorum committed it."""

    def __init__(self, leader: Leader) -> None:
        self.leader = leader
        self._committed: Callable[[int], None] = lambda zxid: None

    def set_durable_callback(self, durable: Callable[[int], None]) -> None:
        self._committed = durable

    def append(self, txn: Txn) -> None:
        data = txn.to_bytes()
        # A reconfig carries its new config, which the leader must know as it proposes.
        new_config = txn_config(data) if txn.header.type == OpCode.reconfig else None
        self.leader.propose(txn.header.zxid, data, new_config)

    def committed(self, zxid: int, txn: bytes) -> None:
        self._committed(zxid)


class LearnerSync:
    """Stands in for the client of a sync a learner forwarded: the reply is a SYNC packet."""

    remote_ip = ""
    auth_ids: tuple[Id, ...] = ()

    def __init__(self, handler: LearnerHandler, session_id: int) -> None:
        self.handler = handler
        self.session_id = session_id

    @property
    def connected(self) -> bool:
        return True

    def send_reply(self, xid: int, zxid: int, err: int, body: Reply, now_ms: float = 0.0) -> None:
        self.handler.send(QuorumPacket(PacketType.SYNC, 0))

    def send_event(self, event_type: int, path: str) -> None:
        pass

    def session_established(self, valid: bool) -> None:
        pass

    def close(self) -> None:
        pass


class LeaderServer(ClientServer):
    """The server of a leading peer: a ClientServer given the leader's parts, and the leader's callbacks.

    Besides its own clients it takes the requests learners forward
    (``_forwarded``), answers their clients' REVALIDATEs (``_revalidate``)
    and the session touches their PINGs carry (``_touched``).
    """

    def __init__(self, options: ServerOptions, clock: Callable[[], float], leader: Leader) -> None:
        self.quorum_log = QuorumTxnLog(leader)
        replica = leader.replica
        self.sessions = sessions = LeaderSessions(options.tick_ms, options.server_id, int(clock() * 1000),
                                                  local_enabled=options.settings.local_sessions)
        ctx = server_context(options, clock, replica.tree, sessions, replica.sessions())
        clients = ClientTable(ctx.stats, ctx.watches)
        #: Which peer each session's client is on (3.8's session owner).
        self.owners = SessionOwners(leader.myid, sessions)

        def session_closed(session_id: int) -> None:
            self.owners.of.pop(session_id, None)
            clients.session_closed(session_id)

        chain = Chain(ctx, LocalSessionFinal(ctx, session_closed), clients, self.quorum_log)
        requests = LeaderRequests(ctx, chain, sessions, self.owners)
        throttler = request_throttler(options, ctx, requests)
        door = LeaderDoor(SessionSettler(ctx, options, clients, throttler.submit), self.owners)
        super().__init__(options, ctx, clients, requests, throttler, door,
                         Housekeeper(ctx, options, sessions.expire, throttler.submit, requests.submit))
        self.leader = leader
        self.ctx.membership = leader
        # Committed txns reach the final stage through the sync stage's queue.
        replica.on_commit = self.quorum_log.committed
        # The new epoch's first txn is epoch << 32 | 1.
        self.ctx.last_zxid = first_zxid_of(leader.epoch)
        # The leader outlives its server: it answers learners as a leader with no server until now.
        leader.clients.serve(LeaderHooks(forwarded=self._forwarded, revalidate=self._revalidate,
                                         touched=self._touched))

    def _forwarded(self, handler: LearnerHandler, forward: RequestForward, auth: list[Id]) -> None:
        client = LearnerSync(handler, forward.session_id) if forward.op_type == OpCode.sync else None
        request = Request(forward.session_id, forward.cxid, forward.op_type, forward.body, client,
                          tuple(auth), received_ms=self.ctx.now_ms())
        sessions = self.sessions
        if sessions.local_enabled:
            if request.type == OpCode.createSession:
                # Tracked from prep on (3.8's trackSession), so that the
                # ephemeral create an upgrade was sent for finds it global.
                sessions.add(request.session_id, _timeout_of(request), int(self.ctx.now_ms()))
            elif not sessions.is_global(request.session_id) and needs_global_session(request):
                # 3.8's checkGlobalSession: a learner's local session with
                # upgrading off (the learner answers its own error code).
                request.error = KeeperError(Code.SESSIONEXPIRED)
        self.owners.check(request, handler.sid)
        self.submit(request)

    def _revalidate(self, handler: LearnerHandler, session_id: int, timeout_ms: int) -> bool:
        # 3.8's checkIfValidGlobalSession: a local session is unknown to other
        # peers, so its client moving there finds it expired.
        sessions = self.sessions
        if sessions.local_enabled and not sessions.is_global(session_id):
            return False
        valid = sessions.touch(session_id, int(self.ctx.now_ms()), timeout_ms)
        # The session now belongs to that learner: a client of ours with it goes.
        if valid and handler.sid is not None:
            self.owners.of[session_id] = handler.sid
            conn = self.by_session.pop(session_id, None)
            if conn is not None:
                conn.close()
        return valid

    def _touched(self, touches: list[tuple[int, int]]) -> None:
        now = int(self.ctx.now_ms())
        for session_id, timeout_ms in touches:
            self.ctx.sessions.touch(session_id, now, timeout_ms)


def _timeout_of(request: Request) -> int:
    """A createSession's timeout (its payload is the 4-byte int prep reads)."""
    return int.from_bytes(request.payload[:4], "big", signed=True)
