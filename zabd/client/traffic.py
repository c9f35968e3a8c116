# -*- test-case-name: tests.unit.test_client_session -*-
"""What one client session sends and hears across its connections (sans-IO).

:class:`zabd.client.session.ClientSession` decides when to connect, ping
and give up; this is the rest: the requests in flight and waiting, the auth
packets replayed on every connection, the watches set again after a
reconnect, and what each reply or notification means to the callers.
Everything returns frames to write or effects to carry out, never writes.
"""
from __future__ import annotations

import struct
from collections.abc import Iterator
from dataclasses import dataclass, field

from zabd.client.auth import AuthReplay
from zabd.client.effects import (
    Complete, Effect, Fire, Outcome, ReplyHandler, Request, record_body, request_frame,
)
from zabd.client.errors import ConnectionClosedError, ZookeeperError, error_for
from zabd.client.hosts import Chroot
from zabd.client.inflight import InFlight
from zabd.client.states import EVENT_TYPES, KeeperState, WatchedEvent
from zabd.client.watches import WatchKind, WatchRegistry
from zabd.jute.errors import Code
from zabd.jute.opcodes import AUTH_XID, NOTIFICATION_XID, PING_XID, SET_WATCHES_XID, OpCode
from zabd.jute.records import AuthPacket, WatcherEvent
from zabd.jute.schema import decode

_REPLY_HEADER = struct.Struct(">iqi")


@dataclass
class Reply:
    """What one frame from the server meant."""

    effects: list[Effect] = field(default_factory=list)
    #: The zxid the server reported for a request's reply (0: none).
    zxid: int = 0
    #: The reply answered closeSession: the session is over.
    closed: bool = False


class SessionTraffic:
    """Requests, auth and watches of one session; see the module docstring."""

    def __init__(self, chroot: Chroot) -> None:
        self.chroot = chroot
        self.watches = WatchRegistry()
        self._requests = InFlight()
        self._auth = AuthReplay()

    def queue(self, request: Request) -> None:
        """Hold ``request`` for the next connection."""
        self._requests.queued.append(request)

    def request(self, request: Request) -> bytes:
        """The frame that sends ``request`` now; its reply is then due in order."""
        xid = self._requests.sent(request)
        return request_frame(xid, request.opcode, request.body)

    def add_auth(self, scheme: str, credential: bytes, on_done: ReplyHandler) -> AuthPacket:
        packet = AuthPacket(0, scheme, credential)
        self._auth.add(packet, on_done)
        return packet

    def auth(self, packet: AuthPacket) -> bytes:
        """The frame that sends ``packet`` now."""
        self._auth.sent(packet)
        return request_frame(AUTH_XID, OpCode.auth, record_body(packet))

    def fail_auth(self, packet: AuthPacket) -> list[Effect]:
        return list(self._auth.fail(packet, ConnectionClosedError()))

    def on_connected(self, last_zxid: int) -> Iterator[bytes]:
        """Frames for a new connection: auth, then watches, then queued requests, as ClientCnxn orders them."""
        for packet in self._auth.packets:
            yield self.auth(packet)
        for record in self.watches.set_watches(last_zxid):
            yield request_frame(SET_WATCHES_XID, OpCode.setWatches2, record_body(record))
        for request in self._requests.take_queued():
            yield self.request(request)

    def connection_lost(self, error: type[ZookeeperError]) -> list[Effect]:
        """Fail what was sent (it may or may not have been applied); queued requests wait on."""
        self._auth.connection_lost()
        return self._requests.fail_sent(error)

    def session_over(self, error: type[ZookeeperError]) -> list[Effect]:
        """Fail everything and forget the watches: the session expired or was closed."""
        failed = self._requests.fail_all(error)
        self.watches.clear()
        return failed

    def reply(self, frame: bytes) -> Reply:
        """What a frame of a connected session means; raises JuteError or struct.error on a bad one."""
        xid, zxid, err = _REPLY_HEADER.unpack_from(frame, 0)
        body = frame[_REPLY_HEADER.size:]
        if xid == NOTIFICATION_XID:
            return Reply(self._notify(decode(WatcherEvent, body)))
        if xid == PING_XID or xid == SET_WATCHES_XID:
            return Reply()
        if xid == AUTH_XID:
            return Reply(list(self._auth.replied(err)))
        request = self._requests.answered(xid)
        self._register_watch(request, err)
        error = error_for(err) if err else None
        completed: list[Effect] = [Complete(request.on_done, Outcome(zxid, b"" if err else body, error))]
        return Reply(completed, zxid, request.opcode == OpCode.closeSession)

    def _register_watch(self, request: Request, err: int) -> None:
        watch = request.watch
        if watch is None:
            return
        if watch.kind is WatchKind.EXIST:
            if err in (Code.OK, Code.NONODE):
                kind = WatchKind.DATA if err == Code.OK else WatchKind.EXIST
                self.watches.add(kind, watch.path, watch.watcher)
        elif err == Code.OK:
            self.watches.add(watch.kind, watch.path, watch.watcher)

    def _notify(self, event: WatcherEvent) -> list[Effect]:
        path = event.path or "/"
        client_event = WatchedEvent(EVENT_TYPES.get(event.type, EVENT_TYPES[-1]), KeeperState.CONNECTED,
                                    self.chroot.to_client(path))
        return [Fire(watcher, client_event) for watcher in self.watches.triggered(event.type, path)]
