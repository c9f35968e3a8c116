# -*- test-case-name: tests.unit.test_client_session -*-
"""The session's auth packets: sent on every connection, their callers told of the first answer."""
from __future__ import annotations

from collections import deque

from zabd.client.effects import Complete, Outcome, ReplyHandler
from zabd.client.errors import ZookeeperError, error_for
from zabd.jute.records import AuthPacket


class AuthReplay:
    """The auth packets a session has added: replayed in order on every connection, their callers told once."""

    def __init__(self) -> None:
        self.packets: list[AuthPacket] = []  # replayed in this order on every connection
        self._waiters: dict[AuthPacket, list[ReplyHandler]] = {}
        self._in_flight: deque[AuthPacket] = deque()

    def add(self, packet: AuthPacket, on_done: ReplyHandler) -> None:
        if packet not in self.packets:
            self.packets.append(packet)
        self._waiters.setdefault(packet, []).append(on_done)

    def sent(self, packet: AuthPacket) -> None:
        self._in_flight.append(packet)

    def connection_lost(self) -> None:
        self._in_flight.clear()

    def replied(self, err: int) -> list[Complete]:
        """The server answered the oldest auth packet; a failed one is not replayed again."""
        if not self._in_flight:
            return []
        packet = self._in_flight.popleft()
        if err:
            return self.fail(packet, error_for(err))
        return [Complete(on_done, Outcome(0, b"")) for on_done in self._waiters.pop(packet, [])]

    def fail(self, packet: AuthPacket, error: ZookeeperError) -> list[Complete]:
        if packet in self.packets:
            self.packets.remove(packet)
        return [Complete(on_done, Outcome(0, b"", error)) for on_done in self._waiters.pop(packet, [])]
