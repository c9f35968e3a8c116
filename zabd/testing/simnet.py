# -*- test-case-name: tests.unit.test_simulation -*-
"""A fake network between the nodes (int ids) of one Simulation.

Two kinds of traffic:

- Election messages, through one :class:`~zabd.testing.simelection.SimElectionNetwork`
  per node (the ElectionNetwork of zabd.election.links). As in QuorumCnxManager there is
  one link per pair of nodes, order is FIFO per direction, and while a pair
  has no link the payload for that peer waits in a slot of capacity one (the
  newest wins). A link comes up when either side dials (on ``send`` or
  ``connect_all``) and the two are reachable; then each side sends its slot,
  or else its last payload again. A break is seen at once (the next send
  goes to the slot); what was in flight on the broken link is lost.
- Byte streams (the quorum port is TCP): ``listen``/``connect`` give
  :class:`StreamEnd` pairs whose bytes arrive in order, cut at random points.

Faults: ``partition``/``heal``, ``set_delay``, ``drop_rate`` and
``lose_election`` (election messages only), ``crash``/``restart``. Every
callback into a node runs from the simulation's queue, never inside the call
that caused it.

More faults for random exploration (zabd.testing.chaos), none of which draws
from the RNG unless it is in use, so scenarios without them replay as before:

- ``block`` cuts chosen directions only (an asymmetric partition): the
  election links between the two break and no new link or connection forms
  (a handshake needs both ways); on connections already up, bytes and closes
  that way wait (TCP retransmits) until ``block(())`` or ``heal``, while the
  other way flows;
- ``duplicate_rate`` delivers an election message twice (a notification
  sent again), ``slow`` adds latency to chosen directions, and
  ``reset_stream`` breaks one connection (what a lost segment becomes
  when TCP gives up);
- ``stream_taps`` see every stream write as it is written, with its sender's
  end (``StreamEnd.dialer`` tells the side that connected).
"""
from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Callable

from zabd.election.links import MessageHandler
from zabd.testing.simelection import SimElectionNetwork
from zabd.testing.simulation import Simulation

#: A write is cut into at most this many chunks, at random points.
MAX_CHUNKS_PER_WRITE = 4

NodeHook = Callable[[int], None]


def _nothing(*args: object) -> None:
    pass


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
            self._conn.net._write(self, bytes(data))

    def close(self) -> None:
        if not self.closed:
            self.closed = True
            self._conn.net._finish(self)


@dataclass(eq=False)
class _Connection:
    net: SimNetwork
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


class SimNetwork:
    """Links, connections and faults between the nodes of ``sim``; delays in virtual ms."""

    def __init__(self, sim: Simulation, min_delay_ms: int = 1, max_delay_ms: int = 5) -> None:
        self.sim = sim
        self.crash_hooks: list[NodeHook] = []
        self.restart_hooks: list[NodeHook] = []
        self._min_delay, self._max_delay = min_delay_ms, max_delay_ms
        self._drop_rate = 0.0
        self._lossy: frozenset[tuple[int, int]] = frozenset()  # (src, dst) whose election messages are lost
        self._group_of: dict[int, int] | None = None  # None: no partition
        self._down: set[int] = set()
        self._elections: dict[int, SimElectionNetwork] = {}
        self._links: dict[tuple[int, int], int] = {}  # unordered pair -> generation of its live link
        self._link_serial = 0
        self._fifo: dict[tuple[int, int], int] = {}  # (src, dst) -> arrival time of its last message
        self._listeners: dict[tuple[int, str], Callable[[StreamEnd], None]] = {}
        self._conns: dict[int, _Connection] = {}  # by serial: iteration order must not depend on ids
        self._conn_serial = 0
        #: Told of every stream write as it is made: (the sender's end, the bytes).
        self.stream_taps: list[Callable[[StreamEnd, bytes], None]] = []
        self._blocked: frozenset[tuple[int, int]] = frozenset()  # (src, dst) cut one way
        #: Stream arrivals waiting for a blocked direction, by (connection serial, receiving node).
        self._held: dict[tuple[int, int], list[tuple[_Connection, StreamEnd, bytes | None]]] = {}
        self._duplicate_rate = 0.0
        self._slow: dict[tuple[int, int], int] = {}  # (src, dst) -> extra latency in ms

    # ------------------------------------------------------------------ faults

    def set_delay(self, min_ms: int, max_ms: int) -> None:
        if not 0 <= min_ms <= max_ms:
            raise ValueError(f"bad delay range {min_ms}..{max_ms}")
        self._min_delay, self._max_delay = min_ms, max_ms

    def drop_rate(self, p: float) -> None:
        """Lose each election message sent on a live link with probability ``p``."""
        if not 0.0 <= p <= 1.0:
            raise ValueError(f"bad drop rate {p}")
        self._drop_rate = p

    def lose_election(self, pairs: Iterable[tuple[int, int]]) -> None:
        """Lose every election message from a to b, for (a, b) in ``pairs``, on links that stay up; () ends it."""
        self._lossy = frozenset(pairs)
        self.sim.note(f"net: lose election messages {sorted(self._lossy)}")

    def duplicate_rate(self, p: float) -> None:
        """Deliver each election message sent on a live link twice with probability ``p``."""
        if not 0.0 <= p <= 1.0:
            raise ValueError(f"bad duplicate rate {p}")
        self._duplicate_rate = p

    def slow(self, extra_ms: dict[tuple[int, int], int]) -> None:
        """Add ``extra_ms[(src, dst)]`` to every delay from src to dst; {} ends it."""
        if any(ms < 0 for ms in extra_ms.values()):
            raise ValueError(f"bad extra delays {extra_ms}")
        self._slow = dict(extra_ms)
        self.sim.note(f"net: slow {sorted(self._slow.items())}")

    def block(self, pairs: Iterable[tuple[int, int]]) -> None:
        """Cut the directions (src, dst) in ``pairs`` only; () ends it (see the module docstring)."""
        self._blocked = frozenset(pairs)
        self.sim.note(f"net: block {sorted(self._blocked)}")
        if self._blocked:
            for pair in [pair for pair in self._links if not self._both_ways(*pair)]:
                del self._links[pair]
                self.sim.note(f"elect: link {pair[0]}-{pair[1]} broken")
        self._release_held()

    def streams(self, port_name: str | None = None) -> list[tuple[int, int, int]]:
        """(serial, dialer, listener) of each live connection, oldest first."""
        return [(conn.serial, conn.src, conn.dst) for conn in self._conns.values()
                if not conn.broken and (port_name is None or conn.port_name == port_name)]

    def reset_stream(self, serial: int) -> None:
        """Break one connection: what is in flight is lost and both ends hear on_close."""
        conn = self._conns.get(serial)
        if conn is not None and not conn.broken:
            self._break(conn)

    def partition(self, groups: Iterable[Iterable[int]]) -> None:
        """Only nodes in the same group reach each other; a node in no group is alone."""
        group_list = [sorted(group) for group in groups]
        self._group_of = {node: index for index, group in enumerate(group_list) for node in group}
        self.sim.note(f"net: partition {group_list}")
        self._break_unreachable()

    def heal(self) -> None:
        """Every live node reaches every other again (partitions and blocks end); nothing reconnects by itself."""
        self._group_of = None
        self.sim.note("net: heal")
        if self._blocked:
            self.block(())

    def crash(self, node: int) -> None:
        """The node's process dies: its links and connections break, its listeners vanish."""
        self._down.add(node)
        self.sim.note(f"net: crash {node}")
        election = self._elections.pop(node, None)
        if election is not None:
            election.alive = False
        self._listeners = {key: listener for key, listener in self._listeners.items() if key[0] != node}
        self._break_unreachable()
        for hook in list(self.crash_hooks):
            hook(node)

    def restart(self, node: int) -> None:
        """The node may run again: register its new election links and listeners (the restart hooks' job)."""
        self._down.discard(node)
        self.sim.note(f"net: restart {node}")
        for hook in list(self.restart_hooks):
            hook(node)

    def is_up(self, node: int) -> bool:
        return node not in self._down

    def reachable(self, a: int, b: int) -> bool:
        if a in self._down or b in self._down:
            return False
        groups = self._group_of
        return a == b or groups is None or (a in groups and groups.get(a) == groups.get(b))

    def _both_ways(self, a: int, b: int) -> bool:
        blocked = self._blocked
        return not blocked or ((a, b) not in blocked and (b, a) not in blocked)

    def _break_unreachable(self) -> None:
        for pair in [pair for pair in self._links if not self.reachable(*pair)]:
            del self._links[pair]
            self.sim.note(f"elect: link {pair[0]}-{pair[1]} broken")
        for conn in list(self._conns.values()):
            if not self.reachable(conn.src, conn.dst):
                self._break(conn)

    # ------------------------------------------------------------------ election links

    def election(self, node: int, on_message: MessageHandler, peers: Iterable[int]) -> SimElectionNetwork:
        """The election links of ``node`` (one per process run); ``peers`` are dialled by connect_all."""
        if node in self._down:
            raise RuntimeError(f"node {node} is down")
        if node in self._elections:
            self._elections[node].alive = False  # the previous run's links say no more
        endpoint = self._elections[node] = SimElectionNetwork(self, node, on_message, peers)
        return endpoint

    def link_up(self, a: int, b: int) -> bool:
        return (min(a, b), max(a, b)) in self._links

    def _dial(self, src: int, dst: int) -> None:
        pair = (min(src, dst), max(src, dst))
        if pair in self._links:
            return
        if not self.reachable(src, dst) or dst not in self._elections or not self._both_ways(src, dst):
            self.sim.note(f"elect: dial {src}->{dst} failed")
            return
        self._link_serial += 1
        self._links[pair] = self._link_serial
        self.sim.note(f"elect: link {src}->{dst} up")
        self._elections[src]._link_up(dst)
        self._elections[dst]._link_up(src)

    def _transmit(self, src: int, dst: int, payload: bytes) -> None:
        if ((src, dst) in self._lossy or (src, dst) in self._blocked
                or self._drop_rate and self.sim.rng.random() < self._drop_rate):
            self.sim.note(f"elect: {src}->{dst} dropped ({len(payload)} bytes)")
            return
        generation = self._links[(min(src, dst), max(src, dst))]
        copies = 2 if self._duplicate_rate and self.sim.rng.random() < self._duplicate_rate else 1
        for _ in range(copies):
            arrival = self._fifo[(src, dst)] = self._arrival(self._fifo.get((src, dst), 0), src, dst)
            self.sim.call_at(arrival, self._deliver_election, src, dst, generation, payload)

    def _deliver_election(self, src: int, dst: int, generation: int, payload: bytes) -> None:
        endpoint = self._elections.get(dst)
        if self._links.get((min(src, dst), max(src, dst))) != generation or endpoint is None:
            self.sim.note(f"elect: {src}->{dst} lost with its link")
            return
        self.sim.note(f"elect: {src}->{dst} delivered ({len(payload)} bytes)")
        endpoint.on_message(src, payload)

    def _arrival(self, previous_ms: int, src: int = 0, dst: int = 0) -> int:
        """When a message sent now arrives: a random delay, but never before the one sent before it."""
        delay = self.sim.rng.randint(self._min_delay, self._max_delay)
        if self._slow:
            delay += self._slow.get((src, dst), 0)
        return max(self.sim.now_ms + delay, previous_ms)

    def _stamp(self, sender: StreamEnd) -> int:
        sender._last_arrival_ms = self._arrival(sender._last_arrival_ms, sender.node, sender.remote)
        return sender._last_arrival_ms

    # ------------------------------------------------------------------ streams

    def listen(self, node: int, port_name: str, on_connection: Callable[[StreamEnd], None]) -> None:
        """Accept connections to ``port_name`` of ``node``; ``on_connection`` gets the server end."""
        if node in self._down:
            raise RuntimeError(f"node {node} is down")
        if (node, port_name) in self._listeners:
            raise RuntimeError(f"node {node} already listens on {port_name}")
        self._listeners[(node, port_name)] = on_connection

    def stop_listening(self, node: int, port_name: str) -> None:
        self._listeners.pop((node, port_name), None)

    def connect(self, src: int, dst: int, port_name: str) -> StreamEnd | None:
        """The client end of a new connection, or None when ``dst`` is unreachable or not listening.

        The server accepts after a network delay; if by then it cannot (a
        partition, a crash, the listener gone), the client end gets on_close.
        Bytes written before that wait and arrive after the accept.
        """
        if (not self.reachable(src, dst) or (dst, port_name) not in self._listeners
                or not self._both_ways(src, dst)):
            self.sim.note(f"stream: connect {src}->{dst}:{port_name} refused")
            return None
        self._conn_serial += 1
        conn = self._conns[self._conn_serial] = _Connection(self, self._conn_serial, port_name, src, dst)
        self.sim.note(f"stream: connect {src}->{dst}:{port_name} #{conn.serial}")
        self.sim.call_at(self._stamp(conn.client), self._accept, conn)  # the client's bytes follow the accept
        return conn.client

    def _accept(self, conn: _Connection) -> None:
        listener = self._listeners.get((conn.dst, conn.port_name))
        if conn.broken or conn.client.closed:
            return
        if listener is None or not self.reachable(conn.src, conn.dst) or not self._both_ways(conn.src, conn.dst):
            self._break(conn)
            return
        self.sim.call_at(self._stamp(conn.server), self._opened, conn)  # before any bytes of the server
        listener(conn.server)

    def _opened(self, conn: _Connection) -> None:
        if not conn.broken and not conn.client.closed:
            conn.client.on_open()

    def _write(self, sender: StreamEnd, data: bytes) -> None:
        for tap in self.stream_taps:
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
            if not self._blocked or (receiver.remote, receiver.node) not in self._blocked:
                return False
            held = self._held[key] = []
        held.append((conn, receiver, chunk))
        return True

    def _release_held(self) -> None:
        """Arrivals held for directions no longer blocked follow, in order, after a network delay."""
        for key in sorted(self._held):
            conn, receiver, _ = self._held[key][0]
            if (receiver.remote, receiver.node) not in self._blocked:
                self.sim.call_at(self._arrival(0, receiver.remote, receiver.node), self._flush_held, key)

    def _flush_held(self, key: tuple[int, int]) -> None:
        held = self._held.get(key)
        if held is None or (held[0][1].remote, key[1]) in self._blocked:
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
                if end.node not in self._down:
                    self.sim.call_later(0, end.on_close)
