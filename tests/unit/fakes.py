"""Test doubles for driving the sans-IO server: a transport, a txn log, a client.

``FakeClient`` owns a real ``ServerConnection`` on a ``FakeTransport`` and
speaks the client protocol through ``zabd.jute``: it feeds whole frames to the
connection and decodes everything the server wrote back.
"""
from __future__ import annotations

import struct
from dataclasses import dataclass, field
from typing import Callable, TypeVar

from twisted.internet.task import Clock
from twisted.internet.testing import StringTransport

from zabd.jute.framing import cut_frames
from zabd.core.datatree import DataTree
from zabd.core.paths import parent_of
from zabd.core.digest import node_digest
from zabd.core.nodes import CONTAINER_OWNER, is_ttl_owner
from zabd.jute.codec import Reader, Writer
from zabd.jute.opcodes import NOTIFICATION_XID, Perms
from zabd.jute.records import ACL, ConnectRequest, ConnectResponse, Id, WatcherEvent
from zabd.jute.schema import Record, decode, encode
from zabd.jute.txns import Txn
from zabd.serving.connection import ServerConnection
from zabd.serving.effects import TransportEffects
from zabd.serving.standalone import ServerOptions, StandaloneServer

R = TypeVar("R", bound=Record)

OPEN_ACL = [ACL(Perms.ALL, Id("world", "anyone"))]
NEW_PASSWORD = bytes(16)


def frame(body: bytes) -> bytes:
    """Prefix ``body`` with its 4-byte big-endian length."""
    return struct.pack(">i", len(body)) + body


def split_frames(data: bytes) -> tuple[list[bytes], bytes]:
    """Whole frames in ``data`` and the incomplete rest."""
    frames, pos, _ = cut_frames(data)
    return frames, data[pos:]


class FakeTransport:
    """Records what a ServerConnection writes and whether it asked to disconnect."""

    def __init__(self) -> None:
        self.written = bytearray()
        self.writes: list[bytes] = []
        self.lose_calls = 0

    def write(self, data: bytes) -> None:
        assert isinstance(data, bytes), type(data)
        self.writes.append(data)
        self.written += data

    def loseConnection(self) -> None:
        self.lose_calls += 1

    @property
    def lost(self) -> bool:
        return self.lose_calls > 0


class TcpTransport(StringTransport):
    """A StringTransport with the socket options of a TCP transport, recorded."""

    no_delay = False
    keep_alive = False

    def setTcpNoDelay(self, enabled: bool) -> None:  # noqa: N802 (Twisted's name)
        self.no_delay = enabled

    def setTcpKeepAlive(self, enabled: bool) -> None:  # noqa: N802
        self.keep_alive = enabled


class RecordingTxnLog:
    """A TxnLog whose durability the test decides: ``make_durable`` calls back."""

    def __init__(self) -> None:
        self.appended: list[Txn] = []
        self._durable: Callable[[int], None] | None = None

    def set_durable_callback(self, durable: Callable[[int], None]) -> None:
        self._durable = durable

    def append(self, txn: Txn) -> None:
        self.appended.append(txn)

    def make_durable(self, zxid: int | None = None) -> None:
        """Report everything up to ``zxid`` (default: all appended) durable."""
        assert self._durable is not None
        if zxid is None:
            zxid = self.appended[-1].header.zxid if self.appended else 0
        self._durable(zxid)


@dataclass
class Reply:
    xid: int
    zxid: int
    err: int
    body: bytes

    def decode(self, cls: type[R]) -> R:
        return decode(cls, self.body)


@dataclass
class Event:
    type: int
    state: int
    path: str | None


Message = Reply | Event


@dataclass
class Result:
    """One request's reply plus the watch events that came before it."""

    reply: Reply
    events: list[Event] = field(default_factory=list)

    @property
    def err(self) -> int:
        return self.reply.err

    @property
    def zxid(self) -> int:
        return self.reply.zxid

    def decode(self, cls: type[R]) -> R:
        assert self.reply.err == 0, f"error reply {self.reply.err}"
        return self.reply.decode(cls)


def make_server(
    clock: Clock | None = None,
    txn_log: RecordingTxnLog | None = None,
    **options: object,
) -> tuple[StandaloneServer, Clock]:
    clock = clock or Clock()
    server = StandaloneServer(ServerOptions(**options), clock.seconds, txn_log=txn_log)  # type: ignore[arg-type]
    return server, clock


def connect_request(
    timeout: int = 10000, session_id: int = 0, passwd: bytes | None = NEW_PASSWORD,
    last_zxid: int = 0, read_only: bool | None = False,
) -> bytes:
    w = Writer()
    ConnectRequest(0, last_zxid, timeout, session_id, passwd).write(w)
    if read_only is not None:
        w.write_bool(read_only)
    return w.getvalue()


_next_port = [40000]


class FakeClient:
    """A client connection to a StandaloneServer, through a real ServerConnection."""

    def __init__(self, server: StandaloneServer, ip: str = "127.0.0.1") -> None:
        self.server = server
        self.transport = FakeTransport()
        _next_port[0] += 1
        self.conn = ServerConnection(server, TransportEffects(self.transport), ip, _next_port[0])
        server.connection_made(self.conn)
        self._read = 0
        self._rest = b""
        self._xid = 0
        self.connect_response: ConnectResponse | None = None
        self.connect_extra = b""

    # -- handshake ---------------------------------------------------------

    def send_connect(self, **kwargs: object) -> None:
        self.conn.frame_received(connect_request(**kwargs))  # type: ignore[arg-type]

    def handshake(self, **kwargs: object) -> ConnectResponse | None:
        """Send a ConnectRequest; return the response, or None if nothing came yet."""
        self.send_connect(**kwargs)
        return self.read_connect_response()

    def read_connect_response(self) -> ConnectResponse | None:
        frames = self._new_frames()
        if not frames:
            return None
        first, rest = frames[0], frames[1:]
        r = Reader(first)
        self.connect_response = ConnectResponse.read(r)
        self.connect_extra = first[r.pos :]
        self._pending = [_parse(f) for f in rest]
        return self.connect_response

    @property
    def session_id(self) -> int:
        assert self.connect_response is not None
        return self.connect_response.sessionId

    @property
    def password(self) -> bytes:
        assert self.connect_response is not None and self.connect_response.passwd is not None
        return self.connect_response.passwd

    # -- requests ----------------------------------------------------------

    def next_xid(self) -> int:
        self._xid += 1
        return self._xid

    def send(self, opcode: int, body: Record | bytes = b"", xid: int | None = None) -> int:
        """Feed one request frame; return its xid (replies are read separately)."""
        xid = self.next_xid() if xid is None else xid
        payload = body if isinstance(body, bytes) else encode(body)
        self.conn.frame_received(struct.pack(">ii", xid, opcode) + payload)
        return xid

    def messages(self) -> list[Message]:
        """Every reply and event written since the last call, in order."""
        pending = getattr(self, "_pending", [])
        self._pending = []
        return pending + [_parse(f) for f in self._new_frames()]

    def call(self, opcode: int, body: Record | bytes = b"", xid: int | None = None) -> Result:
        """Send one request and return its reply (exactly one reply must follow)."""
        xid = self.send(opcode, body, xid)
        return self.result_for(xid)

    def result_for(self, xid: int, messages: list[Message] | None = None) -> Result:
        messages = self.messages() if messages is None else messages
        events = [m for m in messages if isinstance(m, Event)]
        replies = [m for m in messages if isinstance(m, Reply)]
        assert len(replies) == 1, f"expected one reply, got {messages}"
        assert replies[0].xid == xid or xid == -2, (replies[0], xid)
        assert messages[-1] is replies[0], f"events after the reply: {messages}"
        return Result(replies[0], events)

    def events(self) -> list[Event]:
        messages = self.messages()
        assert all(isinstance(m, Event) for m in messages), messages
        return [m for m in messages if isinstance(m, Event)]

    def disconnect(self) -> None:
        """The transport reports the connection lost (as Twisted would)."""
        self.conn.connection_lost()

    @property
    def lost(self) -> bool:
        return self.transport.lost

    def _new_frames(self) -> list[bytes]:
        data = self._rest + bytes(self.transport.written[self._read :])
        self._read = len(self.transport.written)
        frames, self._rest = split_frames(data)
        return frames


def _parse(body: bytes) -> Message:
    xid, zxid, err = struct.unpack_from(">iqi", body)
    if xid == NOTIFICATION_XID:
        assert zxid == -1 and err == 0, (zxid, err)
        event = decode(WatcherEvent, body[16:])
        return Event(event.type, event.state, event.path)
    return Reply(xid, zxid, err, body[16:])


def connected_client(server: StandaloneServer, timeout: int = 10000, **kwargs: object) -> FakeClient:
    client = FakeClient(server)
    response = client.handshake(timeout=timeout, **kwargs)
    assert response is not None and response.timeOut > 0, response
    return client


# ---- tree invariants ----------------------------------------------------------


def recomputed_digest(tree: DataTree) -> int:
    return sum(node_digest(path, node) for path, node in tree.nodes.items()) & (2**64 - 1)


def assert_consistent(tree: DataTree) -> None:
    """Digest, data size, child links and indexes all match a from-scratch recomputation."""
    assert tree.digest.value == recomputed_digest(tree)
    assert tree.data_size == sum(len(p) + len(n.data or b"") for p, n in tree.nodes.items())
    for path, node in tree.nodes.items():
        if path != "/":
            assert path.rsplit("/", 1)[1] in tree.nodes[parent_of(path)].children, path
        for child in node.children:
            assert (path.rstrip("/") + "/" + child) in tree.nodes
    owners: dict[int, set[str]] = {}
    for path, node in tree.nodes.items():
        owner = node.ephemeral_owner
        if owner not in (0, CONTAINER_OWNER) and not is_ttl_owner(owner):
            owners.setdefault(owner, set()).add(path)
    assert tree.ephemerals == owners
    assert tree.containers == {p for p, n in tree.nodes.items() if n.ephemeral_owner == CONTAINER_OWNER}
    assert tree.ttls == {p for p, n in tree.nodes.items() if is_ttl_owner(n.ephemeral_owner)}
