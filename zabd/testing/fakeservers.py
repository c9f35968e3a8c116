# -*- test-case-name: tests.unit.test_client_session -*-
"""The servers behind zabd.testing.fakezk's fake addresses, and the connections they accept.

- :class:`FakeConnection` is one accepted connection seen from the server:
  the frames it received, and helpers to answer (``reply``, ``event``,
  ``accept_session``) or to drop it.
- :class:`ScriptedServer` (:class:`FakeServer`) answers nothing by itself:
  the test reads the frames and writes the replies it wants.
- :class:`RealServer` is a whole in-memory zabd server on the network's
  clock, so sessions really expire and watches really fire.
"""
from __future__ import annotations

import struct
from dataclasses import dataclass, field
from typing import Any

from twisted.internet.protocol import Protocol
from twisted.internet.task import Clock

from zabd.jute.framing import cut_frames, frame
from zabd.jute.codec import Reader, Writer
from zabd.jute.opcodes import NOTIFICATION_XID, KeeperState
from zabd.jute.records import ConnectRequest, ConnectResponse, WatcherEvent
from zabd.jute.schema import Record, encode
from zabd.peer.servers import standalone_server
from zabd.serving.connection import ServerConnection
from zabd.serving.effects import TransportEffects
from zabd.serving.standalone import ServerOptions, StandaloneServer

_REQUEST = struct.Struct(">ii")
_REPLY = struct.Struct(">iqi")


@dataclass(eq=False)
class FakeConnection:
    """One accepted connection, seen from the server: frames in, bytes out."""

    server: FakeServer
    address: tuple[str, int]
    protocol: Protocol
    to_server: bytearray = field(default_factory=bytearray)
    to_client: bytearray = field(default_factory=bytearray)
    frames: list[bytes] = field(default_factory=list)  # every whole frame received, in order
    close_requested: bool = False  # by either side; done on the next pump
    closed: bool = False
    _partial: bytes = b""
    handler: Any = None  # the RealServer's ServerConnection, if any

    # The server's transport (what ServerConnection writes to).
    def write(self, data: bytes) -> None:
        if not self.closed:
            self.to_client += data

    def loseConnection(self) -> None:  # noqa: N802
        self.close_requested = True

    def drop(self) -> None:
        """The server (or the network) ends this connection."""
        self.close_requested = True

    def send_frame(self, body: bytes) -> None:
        self.write(frame(body))

    def reply(self, xid: int, zxid: int = 0, err: int = 0, record: Record | None = None) -> None:
        self.send_frame(_REPLY.pack(xid, zxid, err) + (encode(record) if record is not None else b""))

    def event(self, event_type: int, path: str) -> None:
        self.reply(NOTIFICATION_XID, -1, 0, WatcherEvent(event_type, KeeperState.SyncConnected, path))

    def accept_session(self, timeout: int, session_id: int, passwd: bytes = bytes(16),
                       read_only: bool | None = False) -> None:
        """Answer the ConnectRequest (timeout 0 refuses: the session expired)."""
        w = Writer()
        ConnectResponse(0, timeout, session_id, passwd).write(w)
        if read_only is not None:
            w.write_bool(read_only)
        self.send_frame(w.getvalue())

    @property
    def unframed(self) -> bytes:
        """Bytes received that make no whole frame yet (a four-letter word, say)."""
        return self._partial

    def requests(self) -> list[tuple[int, int, bytes]]:
        """(xid, opcode, body) of every frame after the ConnectRequest."""
        return [parse_request(frame) for frame in self.frames[1:]]

    def _take_frames(self) -> list[bytes]:
        data = self._partial + bytes(self.to_server)
        self.to_server.clear()
        new, pos, _ = cut_frames(data)
        self._partial = data[pos:]
        self.frames += new
        return new


def parse_request(frame: bytes) -> tuple[int, int, bytes]:
    xid, opcode = _REQUEST.unpack_from(frame)
    return xid, opcode, frame[_REQUEST.size:]


def parse_connect(frame: bytes) -> tuple[ConnectRequest, bool | None]:
    """A ConnectRequest and its read-only byte (None when absent)."""
    r = Reader(frame)
    request = ConnectRequest.read(r)
    return request, (r.read_bool() if not r.at_end() else None)


class FakeServer:
    """What a fake address does with connections: ``mode`` is accept, refuse or silent (never answers TCP)."""

    def __init__(self) -> None:
        self.mode = "accept"
        self.connections: list[FakeConnection] = []

    @property
    def last(self) -> FakeConnection:
        return self.connections[-1]

    def connected(self, conn: FakeConnection) -> None:
        self.connections.append(conn)

    def frames_arrived(self, conn: FakeConnection, frames: list[bytes]) -> None:
        """Override to answer; the scripted server leaves that to the test."""

    def disconnected(self, conn: FakeConnection) -> None:
        """Override to learn of a closed connection."""


ScriptedServer = FakeServer


class RealServer(FakeServer):
    """An in-memory zabd StandaloneServer behind a fake address, on the network's clock."""

    def __init__(self, clock: Clock, options: ServerOptions | None = None,
                 server: StandaloneServer | None = None) -> None:
        super().__init__()
        self.server = server or standalone_server(options or ServerOptions(), clock.seconds)
        self._ports = 50000

    def connected(self, conn: FakeConnection) -> None:
        super().connected(conn)
        self._ports += 1
        conn.handler = ServerConnection(self.server, TransportEffects(conn), "127.0.0.1", self._ports)
        self.server.connection_made(conn.handler)

    def frames_arrived(self, conn: FakeConnection, frames: list[bytes]) -> None:
        for frame in frames:
            conn.handler.frame_received(frame)

    def disconnected(self, conn: FakeConnection) -> None:
        conn.handler.connection_lost()

    def expire_sessions(self) -> None:
        self.server.expire_sessions()
