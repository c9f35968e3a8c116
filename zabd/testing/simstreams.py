# -*- test-case-name: tests.unit.test_simulation -*-
"""Byte streams (TCP connections) on the fake network of :mod:`zabd.testing.simnet`.

``SimStreams`` gives ``listen``/``connect`` and the :class:`StreamEnd` pairs
they make: bytes arrive in order, cut at random points, after the network's
delays. The network decides who reaches whom and when a message arrives
(:class:`Paths`); this module keeps the connections, and the arrivals held
while a direction is blocked.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, Protocol

from zabd.testing.simulation import Simulation

#: A write is cut into at most this many chunks, at random points.
MAX_CHUNKS_PER_WRITE = 4


def _nothing(*args: object) -> None:
    pass


class Paths(Protocol):
    """What the streams need of the network: reachability, blocked directions and latency."""

    sim: Simulation

    def reachable(self, a: int, b: int) -> bool: ...

    def both_ways(self, a: int, b: int) -> bool:
        """Neither direction between a and b is blocked."""

    def cut(self, src: int, dst: int) -> bool:
        """The direction src -> dst is blocked."""

    def is_up(self, node: int) -> bool: ...

    def arrival(self, previous_ms: int, src: int, dst: int) -> int:
        """When a message from src to dst sent now arrives, never before ``previous_ms``."""


class StreamEnd:
    """One end of a simulated TCP connection; its owner sets the callbacks.

    The client end hears ``on_open`` once the server has accepted (before any
    of the server's bytes), or ``on_close`` if the connect failed after all.
    ``close()`` is final for this end: its callbacks are not called again,
    and the other end gets ``on_close`` after the bytes already written. A
    broken connection (partition, crash) calls ``on_close`` on each live end.
    Writes to a closed end are ignored, as Twisted's transports do.
    """

    def __init__(self, conn: _Connection, node: int, remote: int) -> None:
        self._conn = conn
        self.node = node
        self.remote = remote
        self.port_name = conn.port_name
        self.serial = conn.serial
        self.on_open: Callable[[], None] = _nothing
        self.on_data: Callable[[bytes], None] = _nothing
        self.on_close: Callable[[], None] = _nothing
        self.closed = False
        #: This end made the connection (a learner's end of a quorum connection).
        self.dialer = node == conn.src
        self._last_arrival_ms = 0  # FIFO: nothing this end sends may arrive before this

    def write(self, data: bytes) -> None:
        if not self.closed and data:
            self._conn.streams._write(self, bytes(data))

    def close(self) -> None:
        if not self.closed:
            self.closed = True
            self._conn.streams._finish(self)


@dataclass(eq=False)
class _Connection:
    streams: SimStreams
    serial: int
    port_name: str
    src: int
    dst: int
    broken: bool = False

    def __post_init__(self) -> None:
        self.client = StreamEnd(self, self.src, self.dst)
        self.server = StreamEnd(self, self.dst, self.src)

    def other(self, end: StreamEnd) -> StreamEnd:
        return self.server if end is self.client else self.client


class SimStreams:
    """The listeners and live connections between the nodes of one network."""

    def __init__(self, paths: Paths) -> None:
        self.paths = paths
        self.sim = paths.sim
        self._listeners: dict[tuple[int, str], Callable[[StreamEnd], None]] = {}
        self._conns: dict[int, _Connection] = {}  # by serial: iteration order must not depend on ids
        self._conn_serial = 0
        #: Told of every stream write as it is made: (the sender's end, the bytes).
        self.taps: list[Callable[[StreamEnd, bytes], None]] = []
        #: Stream arrivals waiting for a blocked direction, by (connection serial, receiving node).
        self._held: dict[tuple[int, int], list[tuple[_Connection, StreamEnd, bytes | None]]] = {}

    def listen(self, node: int, port_name: str, on_connection: Callable[[StreamEnd], None]) -> None:
        if (node, port_name) in self._listeners:
            raise RuntimeError(f"node {node} already listens on {port_name}")
        self._listeners[(node, port_name)] = on_connection

    def stop_listening(self, node: int, port_name: str) -> None:
        self._listeners.pop((node, port_name), None)

    def forget_listeners(self, node: int) -> None:
        """The node's process died: its listeners vanish."""
        self._listeners = {key: listener for key, listener in self._listeners.items() if key[0] != node}

    def live(self, port_name: str | None = None) -> list[tuple[int, int, int]]:
        """(serial, dialer, listener) of each live connection, oldest first."""
        return [(conn.serial, conn.src, conn.dst) for conn in self._conns.values()
                if not conn.broken and (port_name is None or conn.port_name == port_name)]

    def reset(self, serial: int) -> None:
        conn = self._conns.get(serial)
        if conn is not None and not conn.broken:
            self._break(conn)

    def break_unreachable(self) -> None:
        for conn in list(self._conns.values()):
            if not self.paths.reachable(conn.src, conn.dst):
                self._break(conn)

    def connect(self, src: int, dst: int, port_name: str) -> StreamEnd | None:
        paths = self.paths
        if (not paths.reachable(src, dst) or (dst, port_name) not in self._listeners
                or not paths.both_ways(src, dst)):
            self.sim.note(f"stream: connect {src}->{dst}:{port_name} refused")
            return None
        self._conn_serial += 1
        conn = self._conns[self._conn_serial] = _Connection(self, self._conn_serial, port_name, src, dst)
        self.sim.note(f"stream: connect {src}->{dst}:{port_name} #{conn.serial}")
        self.sim.call_at(self._stamp(conn.client), self._accept, conn)  # the client's bytes follow the accept
        return conn.client

    def _stamp(self, sender: StreamEnd) -> int:
        sender._last_arrival_ms = self.paths.arrival(sender._last_arrival_ms, sender.node, sender.remote)
        return sender._last_arrival_ms

    def _accept(self, conn: _Connection) -> None:
        listener = self._listeners.get((conn.dst, conn.port_name))
        if conn.broken or conn.client.closed:
            return
        paths = self.paths
        if listener is None or not paths.reachable(conn.src, conn.dst) or not paths.both_ways(conn.src, conn.dst):
            self._break(conn)
            return
        self.sim.call_at(self._stamp(conn.server), self._opened, conn)  # before any bytes of the server
        listener(conn.server)

    def _opened(self, conn: _Connection) -> None:
        if not conn.broken and not conn.client.closed:
            conn.client.on_open()

    def _write(self, sender: StreamEnd, data: bytes) -> None:
        for tap in self.taps:
            tap(sender, data)
        rng, conn = self.sim.rng, sender._conn
        cuts = sorted(rng.sample(range(1, len(data)), min(len(data) - 1, rng.randint(0, MAX_CHUNKS_PER_WRITE - 1))))
        bounds = [0, *cuts, len(data)]
        for start, end in zip(bounds, bounds[1:]):
            self.sim.call_at(self._stamp(sender), self._deliver_chunk, conn, conn.other(sender), data[start:end])

    def _deliver_chunk(self, conn: _Connection, receiver: StreamEnd, chunk: bytes) -> None:
        if not conn.broken and not receiver.closed and not self._hold(conn, receiver, chunk):
            receiver.on_data(chunk)

    def _hold(self, conn: _Connection, receiver: StreamEnd, chunk: bytes | None) -> bool:
        """Keep an arrival (bytes, or None for a close) while its direction is blocked or others wait."""
        key = (conn.serial, receiver.node)
        held = self._held.get(key)
        if held is None:
            if not self.paths.cut(receiver.remote, receiver.node):
                return False
            held = self._held[key] = []
        held.append((conn, receiver, chunk))
        return True

    def release_held(self) -> None:
        """Arrivals held for directions no longer blocked follow, in order, after a network delay."""
        for key in sorted(self._held):
            conn, receiver, _ = self._held[key][0]
            if not self.paths.cut(receiver.remote, receiver.node):
                self.sim.call_at(self.paths.arrival(0, receiver.remote, receiver.node), self._flush_held, key)

    def _flush_held(self, key: tuple[int, int]) -> None:
        held = self._held.get(key)
        if held is None or self.paths.cut(held[0][1].remote, key[1]):
            return
        del self._held[key]
        for conn, receiver, chunk in held:
            if conn.broken or receiver.closed:
                return
            if chunk is None:
                self._closed_by_peer(conn, receiver)
            else:
                receiver.on_data(chunk)

    def _finish(self, closer: StreamEnd) -> None:
        """An orderly close: the other end hears of it after the data already on its way."""
        conn = closer._conn
        self.sim.note(f"stream: {closer.node}->{closer.remote}:{conn.port_name} #{conn.serial} closed")
        self.sim.call_at(self._stamp(closer), self._closed_by_peer, conn, conn.other(closer))

    def _closed_by_peer(self, conn: _Connection, receiver: StreamEnd) -> None:
        if not conn.broken and not receiver.closed and self._hold(conn, receiver, None):
            return
        self._conns.pop(conn.serial, None)
        if not conn.broken and not receiver.closed:
            receiver.closed = True
            receiver.on_close()

    def _break(self, conn: _Connection) -> None:
        """The connection dies: data in flight is lost, each live end hears on_close on a later turn."""
        conn.broken = True
        self._conns.pop(conn.serial, None)
        for key in [key for key in self._held if key[0] == conn.serial]:
            del self._held[key]
        self.sim.note(f"stream: {conn.src}-{conn.dst}:{conn.port_name} #{conn.serial} broken")
        for end in (conn.client, conn.server):
            if not end.closed:
                end.closed = True
                if self.paths.is_up(end.node):
                    self.sim.call_later(0, end.on_close)
