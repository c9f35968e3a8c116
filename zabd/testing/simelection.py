# -*- test-case-name: tests.unit.test_simulation -*-
"""One node's election links on the fake network of :mod:`zabd.testing.simnet`.

Apart from the network itself so that each reads on its own: the network
decides reachability, order and faults; this is the ElectionNetwork face
(zabd.election.links) a simulated QuorumPeer sends through.
"""
from __future__ import annotations

from collections.abc import Iterable
from typing import Protocol

from zabd.election.links import MessageHandler
from zabd.testing.simulation import Simulation


class ElectionFabric(Protocol):
    """What one node's links need of the network (zabd.testing.simnet.SimNetwork): links between pairs."""

    sim: Simulation

    def link_up(self, a: int, b: int) -> bool: ...

    def dial_election(self, src: int, dst: int) -> None: ...

    def transmit_election(self, src: int, dst: int, payload: bytes) -> None: ...


class SimElectionNetwork:
    """One node's election links: an ElectionNetwork (zabd.election.links) on the fake network."""

    def __init__(self, net: ElectionFabric, node: int, on_message: MessageHandler, peers: Iterable[int]) -> None:
        self._net = net
        self.node = node
        self.on_message = on_message
        self.peers = tuple(peer for peer in peers if peer != node)
        self.alive = True
        self._queues: set[int] = set()  # peers with a send queue: sent to or linked (queueSendMap's keys)
        self._slots: dict[int, bytes] = {}  # what those queues hold: capacity one, newest wins
        self._last_sent: dict[int, bytes] = {}  # QuorumCnxManager.lastMessageSent

    def send(self, sid: int, payload: bytes) -> None:
        if not self.alive:
            return
        if sid == self.node:  # to myself: through the receive queue, on a later turn
            self._net.sim.call_later(0, self._loopback, payload)
            return
        self._queues.add(sid)
        if self._net.link_up(self.node, sid):
            self._last_sent[sid] = payload
            self._net.transmit_election(self.node, sid, payload)
        else:
            self._slots[sid] = payload
            self._net.dial_election(self.node, sid)

    def any_delivered(self) -> bool:
        """Some peer's queue is empty, as in zabd.election.links (QuorumCnxManager.haveDelivered)."""
        return any(sid not in self._slots for sid in self._queues)

    def connect_all(self) -> None:
        for peer in self.peers:
            if self.alive and not self._net.link_up(self.node, peer):
                self._net.dial_election(self.node, peer)

    def connected(self, sid: int) -> bool:
        return self._net.link_up(self.node, sid)

    def link_came_up(self, sid: int) -> None:
        """SendWorker start: the queued payload, or else the last one again."""
        self._queues.add(sid)
        payload = self._slots.pop(sid, None) or self._last_sent.get(sid)
        if payload is not None:
            self._last_sent[sid] = payload
            self._net.transmit_election(self.node, sid, payload)

    def _loopback(self, payload: bytes) -> None:
        if self.alive:
            self.on_message(self.node, payload)
