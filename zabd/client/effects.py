# -*- test-case-name: tests.unit.test_client_session -*-
"""The session core's requests, outcomes and effects, and the frames it writes.

The core (:mod:`zabd.client.session`) never does I/O: each input returns a
list of these effects, which the Twisted adapter carries out in order.
"""
from __future__ import annotations

import struct
from collections.abc import Callable
from dataclasses import dataclass, field

from zabd.client.errors import ZookeeperError
from zabd.client.hosts import HostPort
from zabd.client.states import KazooState, WatchedEvent
from zabd.client.watches import WatchKind, Watcher
from zabd.jute.codec import Reader, Writer
from zabd.jute.records import ConnectRequest, ConnectResponse
from zabd.jute.schema import Record, encode

_HEADER = struct.Struct(">iii")  # frame length, xid, opcode


@dataclass(frozen=True, slots=True)
class Outcome:
    """A request's end: the reply's zxid and body, or the error (body empty)."""

    zxid: int
    body: bytes
    error: ZookeeperError | None = None


ReplyHandler = Callable[[Outcome], None]


@dataclass(frozen=True, slots=True)
class WatchRequest:
    """A watch to register if the request succeeds (``EXIST`` means: data watch if the node exists)."""

    kind: WatchKind
    path: str  # the server's path
    watcher: Watcher


@dataclass(slots=True, eq=False)
class Request:
    opcode: int
    body: bytes
    on_done: ReplyHandler
    watch: WatchRequest | None = None
    xid: int = 0


# -- effects ----------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Dial:
    """Open a TCP connection; report it with ``dial_succeeded``/``dial_failed`` and this attempt."""

    host: HostPort
    attempt: int
    timeout_ms: int


@dataclass(frozen=True, slots=True)
class Probe:
    """Ask ``host`` ``isro`` on a connection of its own; report with ``probe_answered``."""

    host: HostPort
    probe_id: int
    timeout_ms: int


@dataclass(frozen=True, slots=True)
class Write:
    data: bytes


@dataclass(frozen=True, slots=True)
class Hangup:
    """Drop the current connection; its later connection_lost is stale and ignored."""


@dataclass(frozen=True, slots=True)
class ArmTimer:
    """Call ``timer_fired`` at this time (None: no timer); replaces the previous one."""

    at_ms: int | None


@dataclass(frozen=True, slots=True)
class StateChanged:
    state: KazooState
    read_only: bool = False


@dataclass(frozen=True, slots=True)
class Complete:
    on_done: ReplyHandler
    outcome: Outcome


@dataclass(frozen=True, slots=True)
class Fire:
    watcher: Watcher
    event: WatchedEvent


Effect = Dial | Write | Hangup | ArmTimer | StateChanged | Complete | Fire | Probe


@dataclass(slots=True)
class Effects:
    """The effects one input produces, in order."""

    items: list[Effect] = field(default_factory=list)

    def add(self, effect: Effect) -> None:
        self.items.append(effect)


# -- frames -----------------------------------------------------------------


def request_frame(xid: int, opcode: int, body: bytes = b"") -> bytes:
    return _HEADER.pack(8 + len(body), xid, opcode) + body


def record_body(record: Record | None) -> bytes:
    return b"" if record is None else encode(record)


def connect_frame(request: ConnectRequest, can_be_read_only: bool) -> bytes:
    w = Writer()
    request.write(w)
    w.write_bool(can_be_read_only)  # read by hand after the record, as in 3.8
    body = w.getvalue()
    return struct.pack(">i", len(body)) + body


def parse_connect_response(frame: bytes) -> tuple[ConnectResponse, bool]:
    """The response and its read-only byte (absent means False)."""
    r = Reader(frame)
    response = ConnectResponse.read(r)
    read_only = r.read_bool() if not r.at_end() else False
    return response, read_only
