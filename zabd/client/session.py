# -*- test-case-name: tests.unit.test_client_session -*-
"""The client's session and connection state machine, sans-IO (ZooKeeper's ClientCnxn, as effects).

Each input is a call with the time, which returns the effects to carry out
(:mod:`zabd.client.effects`). One timer covers every deadline.

Phases: IDLE → DIALING → HANDSHAKE → CONNECTED, and from any connected or
connecting phase back to BACKOFF (then DIALING the next host) when the
connection fails; CLOSING after closeSession is sent, CLOSED at the end.
Listeners see LOST until the first session, CONNECTED while connected,
SUSPENDED between connections while the session may still be resumed, and
LOST when it expired or was closed. After an expiry the client starts a new
session on its own, as kazoo does.

When to ping, drop a silent connection and give the session up is
:mod:`zabd.client.liveness`; which host to dial is :mod:`zabd.client.dialing`;
what the connections carry is :mod:`zabd.client.traffic`.
"""
from __future__ import annotations

import random
import struct

from twisted.logger import Logger

from zabd.client.effects import (
    ArmTimer, Complete, Dial, Effect, Effects, Hangup, Outcome, ReplyHandler, Request, StateChanged, Write,
    connect_frame, parse_connect_response, request_frame,
)
from zabd.client.errors import ConnectionClosedError, ConnectionLoss, SessionExpiredError
from zabd.client.dialing import DialPlan, Phase
from zabd.client.hosts import Chroot, HostPort, HostRing
from zabd.client.liveness import Liveness
from zabd.client.rwsearch import ReadWriteSearch
from zabd.client.states import KazooState, KeeperState
from zabd.client.traffic import SessionTraffic
from zabd.client.watches import WatchRegistry
from zabd.jute.codec import JuteError
from zabd.jute.opcodes import PING_XID, OpCode
from zabd.jute.records import ConnectRequest

log = Logger()


class ClientSession:
    """One client's session across connections: when to dial, ping, give up and expire; see the module docstring.

    What the connections carry (requests, auth, watches) is :class:`SessionTraffic`'s.
    """

    def __init__(self, hosts: tuple[HostPort, ...], *, session_timeout_ms: int = 10_000,
                 connect_timeout_ms: int | None = None, chroot: Chroot = Chroot(),
                 can_be_read_only: bool = False, randomize_hosts: bool = True,
                 rng: random.Random | None = None, initial_backoff_ms: int = 100,
                 max_backoff_ms: int = 2000) -> None:
        rng = rng or random.Random()
        self.dialing = DialPlan(HostRing(hosts, rng, randomize_hosts), rng, initial_backoff_ms, max_backoff_ms)
        self.requested_timeout_ms = session_timeout_ms
        self.connect_timeout_ms = connect_timeout_ms or max(session_timeout_ms // len(hosts), 1)
        self.chroot = chroot
        self.traffic = SessionTraffic(chroot)
        self.can_be_read_only = can_be_read_only
        self._rw_search = ReadWriteSearch(self.ring.order)
        self.phase = Phase.IDLE
        self.state = KazooState.LOST
        self.read_only = False
        self.session_id = 0
        self.password = bytes(16)
        self.last_zxid = 0
        self.host: HostPort | None = None
        self._deadline_ms = 0  # connect deadline, or when the next dial is due
        self.liveness = Liveness()
        self._timer: int | None = None
        self._fx = Effects()

    @property
    def attempt(self) -> int:
        """The current connection attempt; inputs about any other are stale."""
        return self.dialing.attempt

    @property
    def ring(self) -> HostRing:
        return self.dialing.ring

    @property
    def watches(self) -> WatchRegistry:
        return self.traffic.watches

    @property
    def negotiated_timeout_ms(self) -> int:
        return self.liveness.negotiated_timeout_ms

    @property
    def read_timeout_ms(self) -> int:
        return self.liveness.read_timeout_ms

    # -- inputs ---------------------------------------------------------------

    def start(self, now_ms: int) -> list[Effect]:
        if self.phase in (Phase.IDLE, Phase.CLOSED):
            self.liveness.last_heard_ms = now_ms
            self.dialing.reset()
            self._dial_next(now_ms)
        return self._done(now_ms)

    def dial_succeeded(self, attempt: int, now_ms: int) -> list[Effect]:
        if attempt == self.dialing.attempt and self.phase is Phase.DIALING:
            self.phase = Phase.HANDSHAKE
            request = ConnectRequest(0, self.last_zxid, self.requested_timeout_ms, self.session_id, self.password)
            self._write(connect_frame(request, self.can_be_read_only), now_ms)
        return self._done(now_ms)

    def dial_failed(self, attempt: int, now_ms: int) -> list[Effect]:
        return self.connection_lost(attempt, now_ms)

    def connection_lost(self, attempt: int, now_ms: int) -> list[Effect]:
        if attempt == self.dialing.attempt:
            if self.phase is Phase.CLOSING:
                self._closed()
            elif self.phase in (Phase.DIALING, Phase.HANDSHAKE, Phase.CONNECTED):
                self._disconnected(now_ms, hang_up=False)
        return self._done(now_ms)

    def frame_received(self, attempt: int, frame: bytes, now_ms: int) -> list[Effect]:
        if attempt != self.dialing.attempt or self.phase not in (Phase.HANDSHAKE, Phase.CONNECTED, Phase.CLOSING):
            return self._done(now_ms)
        self.liveness.last_heard_ms = now_ms
        try:
            if self.phase is Phase.HANDSHAKE:
                self._handshake_done(frame, now_ms)
            else:
                self._reply(frame, now_ms)
        except (JuteError, struct.error) as error:
            log.warn("Bad frame from {host}: {error}; reconnecting", host=str(self.host), error=str(error))
            self._disconnected(now_ms, hang_up=True)
        return self._done(now_ms)

    def timer_fired(self, now_ms: int) -> list[Effect]:
        self._timer = None  # the adapter's timer is spent: arm one again even if the deadline is the same
        phase = self.phase
        if phase in (Phase.DIALING, Phase.HANDSHAKE) and now_ms >= self._deadline_ms:
            log.info("Connecting to {host} timed out", host=str(self.host))
            self._disconnected(now_ms, hang_up=True)
        elif phase in (Phase.CONNECTED, Phase.CLOSING) and now_ms >= self.liveness.silent_at_ms:
            log.info("No reply from {host} for {ms} ms; reconnecting", host=str(self.host), ms=self.read_timeout_ms)
            if phase is Phase.CLOSING:
                self._fx.add(Hangup())
                self._closed()
            else:
                self._disconnected(now_ms, hang_up=True)
        elif phase is Phase.CONNECTED and now_ms >= self.liveness.ping_due_ms:
            self._write(request_frame(PING_XID, OpCode.ping), now_ms)
        elif phase is Phase.BACKOFF and now_ms >= self._deadline_ms:
            self._dial_next(now_ms)
        if self.phase is Phase.CONNECTED and self.read_only:
            probe = self._rw_search.probe(self.host, now_ms, self.connect_timeout_ms)
            if probe is not None:
                self._fx.add(probe)
        self._check_local_expiry(now_ms)
        return self._done(now_ms)

    def probe_answered(self, probe_id: int, read_write: bool, now_ms: int) -> list[Effect]:
        """A probe's answer: a read-write server found while read-only is where to go now."""
        found = self._rw_search.answered(probe_id, read_write, now_ms)
        if found is not None and self.phase is Phase.CONNECTED and self.read_only:
            log.info("Read-write server {host} found; leaving read-only {current}",
                     host=str(found), current=str(self.host))
            if not self._rw_search.seen_read_write:
                self.session_id, self.password = 0, bytes(16)  # the read-only server's own session
            self._disconnected(now_ms, hang_up=True, to=found)
        return self._done(now_ms)

    def submit(self, request: Request, now_ms: int) -> list[Effect]:
        """Send a request now if connected, else queue it for the next connection."""
        if self.phase in (Phase.IDLE, Phase.CLOSING, Phase.CLOSED):
            self._fx.add(Complete(request.on_done, Outcome(0, b"", ConnectionClosedError())))
        elif self.phase is Phase.CONNECTED:
            self._send(request, now_ms)
        else:
            self.traffic.queue(request)
        return self._done(now_ms)

    def add_auth(self, scheme: str, credential: bytes, on_done: ReplyHandler, now_ms: int) -> list[Effect]:
        """Authenticate now (if connected) and again on every later connection of this session."""
        packet = self.traffic.add_auth(scheme, credential, on_done)
        if self.phase is Phase.CONNECTED:
            self._write(self.traffic.auth(packet), now_ms)
        elif self.phase in (Phase.IDLE, Phase.CLOSING, Phase.CLOSED):
            self._fx.items += self.traffic.fail_auth(packet)
        return self._done(now_ms)

    def close(self, on_done: ReplyHandler, now_ms: int) -> list[Effect]:
        """closeSession if connected; otherwise just stop (the server expires the session)."""
        if self.phase is Phase.CONNECTED:
            self._send(Request(OpCode.closeSession, b"", on_done), now_ms)
            self.phase = Phase.CLOSING
        elif self.phase is Phase.CLOSING:
            self._fx.add(Complete(on_done, Outcome(0, b"")))
        else:
            if self.phase in (Phase.DIALING, Phase.HANDSHAKE):
                self._fx.add(Hangup())
            self._closed()
            self._fx.add(Complete(on_done, Outcome(0, b"")))
        return self._done(now_ms)

    # -- connection steps ---------------------------------------------------------

    def _dial_next(self, now_ms: int) -> None:
        self.host, wait_until_ms = self.dialing.next(now_ms, backing_off=self.phase is Phase.BACKOFF)
        if wait_until_ms is not None:  # a whole round failed: wait before the next
            self.phase = Phase.BACKOFF
            self._deadline_ms = wait_until_ms
            return
        self._dial(self.host, now_ms)

    def _dial(self, host: HostPort, now_ms: int) -> None:
        self.host = host
        self.phase = Phase.DIALING
        self._deadline_ms = now_ms + self.connect_timeout_ms
        self._fx.add(Dial(host, self.dialing.new_attempt(), self.connect_timeout_ms))

    def _handshake_done(self, frame: bytes, now_ms: int) -> None:
        response, read_only = parse_connect_response(frame)
        if response.timeOut <= 0:
            log.info("Session 0x{session:x} expired (told by {host})", session=self.session_id, host=str(self.host))
            self._fx.add(Hangup())
            self._expire(KeeperState.EXPIRED_SESSION)
            self._dial_next(now_ms)
            return
        if self.session_id and response.sessionId != self.session_id:
            log.warn("Server {host} gave session 0x{got:x} for 0x{mine:x}",
                     host=str(self.host), got=response.sessionId, mine=self.session_id)
        self.session_id = response.sessionId
        self.password = response.passwd or bytes(16)
        self.liveness.negotiated_timeout_ms = response.timeOut
        self.phase = Phase.CONNECTED
        self.dialing.reset()
        self.read_only = read_only
        self._rw_search.connected(read_only, now_ms)
        self._set_state(KazooState.CONNECTED)
        for frame in self.traffic.on_connected(self.last_zxid):
            self._write(frame, now_ms)

    def _reply(self, frame: bytes, now_ms: int) -> None:
        reply = self.traffic.reply(frame)
        self._fx.items += reply.effects
        if reply.zxid > 0:
            self.last_zxid = reply.zxid
        if reply.closed:
            self._fx.add(Hangup())
            self._closed()

    def _send(self, request: Request, now_ms: int) -> None:
        self._write(self.traffic.request(request), now_ms)

    def _write(self, data: bytes, now_ms: int) -> None:
        self.liveness.last_sent_ms = now_ms
        self._fx.add(Write(data))

    def _disconnected(self, now_ms: int, hang_up: bool, to: HostPort | None = None) -> None:
        """The connection is gone: fail what was in flight, go SUSPENDED, try the next host (or ``to``)."""
        self._rw_search.stop()
        if hang_up:
            self._fx.add(Hangup())
        # Listeners hear SUSPENDED before any request fails with ConnectionLoss:
        # a lock holder whose write failed must already know why.
        if self.state is KazooState.CONNECTED:
            self._set_state(KazooState.SUSPENDED)
        self._fx.items += self.traffic.connection_lost(ConnectionLoss)
        if to is not None:
            self._dial(to, now_ms)
            return
        self.dialing.failed()
        self._dial_next(now_ms)

    def _check_local_expiry(self, now_ms: int) -> None:
        if (self.session_id and self.phase in (Phase.BACKOFF, Phase.DIALING, Phase.HANDSHAKE)
                and now_ms >= self.liveness.lost_at_ms):
            log.info("No server for {ms} ms: session 0x{session:x} is lost",
                     ms=self.negotiated_timeout_ms, session=self.session_id)
            if self.phase is Phase.HANDSHAKE:  # its ConnectRequest named the old session
                self._fx.add(Hangup())
                self.dialing.new_attempt()
                self.phase = Phase.BACKOFF
                self._deadline_ms = now_ms
            self._expire(KeeperState.EXPIRED_SESSION)

    def _expire(self, why: KeeperState) -> None:
        self._rw_search.stop()
        self._set_state(KazooState.LOST)  # first, as in _disconnected
        self._fx.items += self.traffic.session_over(SessionExpiredError)
        self.session_id, self.password, self.last_zxid = 0, bytes(16), 0

    def _closed(self) -> None:
        self._rw_search.stop()
        self._fx.items += self.traffic.session_over(ConnectionClosedError)
        self.phase = Phase.CLOSED
        self.session_id, self.password = 0, bytes(16)
        self._set_state(KazooState.LOST)

    def _set_state(self, state: KazooState) -> None:
        if state is not self.state or state is KazooState.CONNECTED:
            self.state = state
            self._fx.add(StateChanged(state, self.read_only and state is KazooState.CONNECTED))

    def _done(self, now_ms: int) -> list[Effect]:
        timer = self._next_deadline(now_ms)
        if timer != self._timer:
            self._timer = timer
            self._fx.add(ArmTimer(timer))
        effects, self._fx = self._fx.items, Effects()
        return effects

    def _next_deadline(self, now_ms: int) -> int | None:
        phase = self.phase
        deadlines: list[int] = []
        if phase in (Phase.DIALING, Phase.HANDSHAKE, Phase.BACKOFF):
            deadlines.append(self._deadline_ms)
            if self.session_id:
                deadlines.append(self.liveness.lost_at_ms)
        elif phase in (Phase.CONNECTED, Phase.CLOSING):
            deadlines.append(self.liveness.silent_at_ms)
            if phase is Phase.CONNECTED:
                deadlines.append(self.liveness.ping_due_ms)
                if self.read_only and self._rw_search.due_ms is not None:
                    deadlines.append(self._rw_search.due_ms)
        return max(min(deadlines), now_ms) if deadlines else None

