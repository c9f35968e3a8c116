"""Shared bits of the recipe unit tests: several clients on one in-memory zabd server, on a fake clock.

Every client has an address of its own ("c0:2181", "c1:2181", ...) in front of
the same server, so one client's connection can be cut (or its address made
silent) while the others carry on.
"""
from __future__ import annotations

from typing import Any

from twisted.internet.defer import Deferred

from tests.unit.client_helpers import make_client, result
from zabd.client import ZooKeeperClient
from zabd.testing.fakezk import FakeNetwork, FakeServer, RealServer


class Cluster:
    def __init__(self, session_timeout: float = 30.0) -> None:
        self.net = FakeNetwork()
        self.server = RealServer(self.net.clock)
        self.session_timeout = session_timeout
        self.clients: list[ZooKeeperClient] = []

    def client(self, **kw: Any) -> ZooKeeperClient:
        n = len(self.clients)
        self.net.add(f"c{n}", 2181, RealServer(self.net.clock, server=self.server.server))
        client = make_client(self.net, f"c{n}:2181", timeout=self.session_timeout, **kw)
        self.clients.append(client)
        self.call(client.start())
        return client

    def address_of(self, client: ZooKeeperClient) -> FakeServer:
        return self.net.servers[(f"c{self.clients.index(client)}", 2181)]

    def call(self, d: Deferred[Any]) -> Any:
        self.net.pump()
        return result(d)

    def run_for(self, seconds: float, step: float = 0.5) -> None:
        """Let time pass in steps short enough for the clients' pings to keep their sessions."""
        elapsed = 0.0
        while elapsed < seconds:
            self.net.advance(step)
            self.server.expire_sessions()
            self.net.pump()
            elapsed += step

    def cut(self, client: ZooKeeperClient) -> None:
        """The client's server goes silent and drops its connection: the client is SUSPENDED."""
        address = self.address_of(client)
        address.mode = "silent"
        address.last.drop()
        self.net.pump()

    def heal(self, client: ZooKeeperClient) -> None:
        self.address_of(client).mode = "accept"

    def expire(self, client: ZooKeeperClient) -> None:
        """Cut the client off for longer than its session timeout, expire the session, then heal."""
        self.cut(client)
        self.run_for(self.session_timeout + 2)
        self.heal(client)
        self.run_for(self.session_timeout + 1)  # a dial into the silence may take a connect timeout
        assert client.connected
