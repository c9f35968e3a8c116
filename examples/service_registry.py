"""A service registry: services register as ephemeral nodes, a watcher lists them live.

Start a server, then run this against it (it finishes by itself):

    twistd -n zabd                      # in another terminal: 127.0.0.1:2181
    python examples/service_registry.py 127.0.0.1:2181 [services]

Each service has a client (a session) of its own, as separate processes
would, and registers ``/services/<name>-NNNNNNNNNN`` holding its address.
A ChildrenWatch on ``/services`` prints the live list on every change; the
services then stop one by one, and their nodes go with their sessions.
"""
from __future__ import annotations

import sys
from typing import Any

from twisted.internet.defer import Deferred, ensureDeferred
from twisted.internet.task import react

from zabd.client import ZooKeeperClient
from zabd.client.recipes import ChildrenWatch

REGISTRY = "/services"


async def main(reactor: Any, hosts: str, count: int) -> None:
    watcher = ZooKeeperClient(hosts, timeout=10.0, reactor=reactor)
    await watcher.start()
    await watcher.ensure_path(REGISTRY)
    changed: list[Deferred[None]] = []

    def show(children: list[str] | None) -> None:
        print(f"live services ({len(children or [])}): {', '.join(children or []) or '-'}", flush=True)
        waiting, changed[:] = list(changed), []
        for d in waiting:
            d.callback(None)

    def next_change() -> Deferred[None]:
        d: Deferred[None] = Deferred()
        changed.append(d)
        return d

    first = next_change()
    ChildrenWatch(watcher, REGISTRY, show)
    await first

    services = []
    for number in range(count):
        service = ZooKeeperClient(hosts, timeout=10.0, reactor=reactor)
        await service.start()
        update = next_change()
        path = await service.create(f"{REGISTRY}/api-", f"10.0.0.{number + 1}:8000".encode(),
                                    ephemeral=True, sequence=True)
        address, _ = await watcher.get(path)
        print(f"registered {path} at {address.decode()}", flush=True)
        await update
        services.append(service)

    for service in services:
        update = next_change()
        await service.stop()  # closes the session: its ephemeral node goes at once
        await update
    await watcher.stop()
    print("registry empty again: done", flush=True)


if __name__ == "__main__":
    connect = sys.argv[1] if len(sys.argv) > 1 else "127.0.0.1:2181"
    how_many = int(sys.argv[2]) if len(sys.argv) > 2 else 3
    react(lambda reactor: ensureDeferred(main(reactor, connect, how_many)))
