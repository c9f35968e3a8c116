"""Shared bits of the client unit tests: a client on a FakeNetwork, and Deferred results."""
from __future__ import annotations

import random
from typing import Any

from twisted.internet.defer import Deferred
from twisted.python.failure import Failure

from zabd.client import ZooKeeperClient
from zabd.testing.fakezk import FakeNetwork, RealServer, ScriptedServer


def result(d: Deferred[Any]) -> Any:
    """The Deferred's result (raising its failure); it must have fired."""
    got: list[Any] = []

    def keep(value: Any) -> Any:
        got.append(value)
        return value
    d.addBoth(keep)
    assert got, "the Deferred has not fired"
    if isinstance(got[0], Failure):
        got[0].raiseException()
    return got[0]


def failure(d: Deferred[Any]) -> BaseException:
    got: list[Any] = []
    d.addBoth(lambda value: got.append(value))
    assert got and isinstance(got[0], Failure), got
    return got[0].value


def pending(d: Deferred[Any]) -> bool:
    return not d.called


def make_client(net: FakeNetwork, hosts: str, **kw: Any) -> ZooKeeperClient:
    kw.setdefault("randomize_hosts", False)
    kw.setdefault("rng", random.Random(7))
    return ZooKeeperClient(hosts, reactor=net, **kw)


def real_client(hosts: str = "zk1:2181", chroot: str = "", **kw: Any) -> tuple[FakeNetwork, RealServer, ZooKeeperClient]:
    """A started client on a real in-memory zabd server at every host of ``hosts``."""
    net = FakeNetwork()
    server = RealServer(net.clock)
    for item in hosts.split(","):
        host, port = item.split(":")
        net.add(host, int(port), server if not net.servers else RealServer(net.clock, server=server.server))
    client = make_client(net, hosts + chroot, **kw)
    started = client.start()
    net.pump()
    result(started)
    return net, server, client


def scripted(*addresses: str) -> tuple[FakeNetwork, list[ScriptedServer]]:
    net = FakeNetwork()
    servers = []
    for address in addresses:
        host, port = address.split(":")
        servers.append(net.add(host, int(port), ScriptedServer()))
    return net, servers
