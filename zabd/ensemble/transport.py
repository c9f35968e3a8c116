# -*- test-case-name: tests.unit.test_quorum_port -*-
"""What a QuorumPeer needs from the world, and the packet link it builds on a stream.

The Twisted adapters (zabd.server.quorum_port) and the simulation
(zabd.testing.ensemble) each supply a Scheduler, Streams and a
QuorumNetwork; the peer never sees a socket or a reactor.
"""
from __future__ import annotations

from collections.abc import Callable
from typing import Protocol

from twisted.logger import Logger

from zabd.quorum.packets import PacketStreamDecoder, QuorumPacket, encode_packet
from zabd.quorum.snapstream import QuorumWireError, SnapshotStream

log = Logger()


class Cancellable(Protocol):
    """A call scheduled for later, which may still be called off."""

    def cancel(self) -> None: ...


class Scheduler(Protocol):
    """Runs a function after a delay on the peer's clock (the reactor, or the simulation's)."""

    def call_later(self, delay_ms: int, fn: Callable[[], object]) -> Cancellable: ...


class Stream(Protocol):
    """One quorum-port connection: bytes both ways. The owner sets the callbacks."""

    on_data: Callable[[bytes], None]
    on_close: Callable[[], None]

    def write(self, data: bytes) -> None: ...

    def close(self) -> None: ...


class QuorumNetwork(Protocol):
    """How a learner reaches its leader's quorum port (real TCP, or the simulated network)."""

    def connect(self, sid: int, connected: Callable[[Stream], None], failed: Callable[[], None]) -> None:
        """Dial ``sid``'s quorum port; exactly one of the callbacks is called later."""


class StreamLink:
    """A PacketLink over a Stream; incoming bytes become packets for ``deliver``."""

    def __init__(self, stream: Stream, deliver: Callable[[QuorumPacket | SnapshotStream, int], None],
                 lost: Callable[[], None], clock: Callable[[], int]) -> None:
        self.stream = stream
        self._clock = clock
        self._decoder = PacketStreamDecoder()
        self._deliver = deliver
        self._lost = lost
        self.closed = False
        stream.on_data = self._data
        stream.on_close = self._closed

    def send(self, packet: QuorumPacket) -> None:
        if not self.closed:
            self.stream.write(encode_packet(packet))

    def send_raw(self, data: bytes) -> None:
        if not self.closed:
            self.stream.write(data)

    def close(self) -> None:
        if not self.closed:
            self.closed = True
            self.stream.close()

    def _data(self, data: bytes) -> None:
        try:
            items = self._decoder.feed(data)
        except QuorumWireError as e:
            log.warn("Closing a quorum connection: {error}", error=str(e))
            self.close()
            self._lost()
            return
        now = self._clock()  # one reading for all that arrived together
        for item in items:
            if self.closed:
                return
            self._deliver(item, now)

    def _closed(self) -> None:
        if not self.closed:
            self.closed = True
            self._lost()
