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
  :class:`~zabd.testing.simstreams.StreamEnd` pairs whose bytes arrive in
  order, cut at random points (zabd.testing.simstreams keeps them).

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
from typing import Callable

from zabd.election.links import MessageHandler
from zabd.testing.simelection import SimElectionNetwork
from zabd.testing.simstreams import SimStreams, StreamEnd
from zabd.testing.simulation import Simulation

__all__ = ["NodeHook", "SimNetwork", "StreamEnd"]

NodeHook = Callable[[int], None]


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
        self._blocked: frozenset[tuple[int, int]] = frozenset()  # (src, dst) cut one way
        self._streams = SimStreams(self)
        #: Told of every stream write as it is made: (the sender's end, the bytes).
        self.stream_taps: list[Callable[[StreamEnd, bytes], None]] = self._streams.taps
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
            for pair in [pair for pair in self._links if not self.both_ways(*pair)]:
                del self._links[pair]
                self.sim.note(f"elect: link {pair[0]}-{pair[1]} broken")
        self._streams.release_held()

    def streams(self, port_name: str | None = None) -> list[tuple[int, int, int]]:
        """(serial, dialer, listener) of each live connection, oldest first."""
        return self._streams.live(port_name)

    def reset_stream(self, serial: int) -> None:
        """Break one connection: what is in flight is lost and both ends hear on_close."""
        self._streams.reset(serial)

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
        self._streams.forget_listeners(node)
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

    def both_ways(self, a: int, b: int) -> bool:
        blocked = self._blocked
        return not blocked or ((a, b) not in blocked and (b, a) not in blocked)

    def cut(self, src: int, dst: int) -> bool:
        return (src, dst) in self._blocked

    def _break_unreachable(self) -> None:
        for pair in [pair for pair in self._links if not self.reachable(*pair)]:
            del self._links[pair]
            self.sim.note(f"elect: link {pair[0]}-{pair[1]} broken")
        self._streams.break_unreachable()

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

    def dial_election(self, src: int, dst: int) -> None:
        """Bring up the election link between src and dst, if they reach each other and dst listens."""
        pair = (min(src, dst), max(src, dst))
        if pair in self._links:
            return
        if not self.reachable(src, dst) or dst not in self._elections or not self.both_ways(src, dst):
            self.sim.note(f"elect: dial {src}->{dst} failed")
            return
        self._link_serial += 1
        self._links[pair] = self._link_serial
        self.sim.note(f"elect: link {src}->{dst} up")
        self._elections[src].link_came_up(dst)
        self._elections[dst].link_came_up(src)

    def transmit_election(self, src: int, dst: int, payload: bytes) -> None:
        """Send ``payload`` on the live link from src to dst (it may be lost, or arrive twice)."""
        if ((src, dst) in self._lossy or (src, dst) in self._blocked
                or self._drop_rate and self.sim.rng.random() < self._drop_rate):
            self.sim.note(f"elect: {src}->{dst} dropped ({len(payload)} bytes)")
            return
        generation = self._links[(min(src, dst), max(src, dst))]
        copies = 2 if self._duplicate_rate and self.sim.rng.random() < self._duplicate_rate else 1
        for _ in range(copies):
            arrival = self._fifo[(src, dst)] = self.arrival(self._fifo.get((src, dst), 0), src, dst)
            self.sim.call_at(arrival, self._deliver_election, src, dst, generation, payload)

    def _deliver_election(self, src: int, dst: int, generation: int, payload: bytes) -> None:
        endpoint = self._elections.get(dst)
        if self._links.get((min(src, dst), max(src, dst))) != generation or endpoint is None:
            self.sim.note(f"elect: {src}->{dst} lost with its link")
            return
        self.sim.note(f"elect: {src}->{dst} delivered ({len(payload)} bytes)")
        endpoint.on_message(src, payload)

    def arrival(self, previous_ms: int, src: int = 0, dst: int = 0) -> int:
        """When a message sent now arrives: a random delay, but never before the one sent before it."""
        delay = self.sim.rng.randint(self._min_delay, self._max_delay)
        if self._slow:
            delay += self._slow.get((src, dst), 0)
        return max(self.sim.now_ms + delay, previous_ms)

    # ------------------------------------------------------------------ streams

    def listen(self, node: int, port_name: str, on_connection: Callable[[StreamEnd], None]) -> None:
        """Accept connections to ``port_name`` of ``node``; ``on_connection`` gets the server end."""
        if node in self._down:
            raise RuntimeError(f"node {node} is down")
        self._streams.listen(node, port_name, on_connection)

    def stop_listening(self, node: int, port_name: str) -> None:
        self._streams.stop_listening(node, port_name)

    def connect(self, src: int, dst: int, port_name: str) -> StreamEnd | None:
        """The client end of a new connection, or None when ``dst`` is unreachable or not listening.

        The server accepts after a network delay; if by then it cannot (a
        partition, a crash, the listener gone), the client end gets on_close.
        Bytes written before that wait and arrive after the accept.
        """
        return self._streams.connect(src, dst, port_name)
