"""Several workers add to one counter node, each increment under a zabd.client Lock.

Start a server, then run this against it (it finishes by itself):

    twistd -n zabd                      # in another terminal: 127.0.0.1:2181
    python examples/distributed_lock.py 127.0.0.1:2181 [workers] [rounds]

Each worker has a client (a session) of its own, as separate processes would.
The read-modify-write of the counter is only safe because the lock makes the
workers take turns; the version on the write fences a write that outlives its
holder. A holder stops at once if its connection is suspended (while_connected).
"""
from __future__ import annotations

import sys
from typing import Any

from twisted.internet.defer import Deferred, ensureDeferred
from twisted.internet.task import react

from zabd.client import NodeExistsError, ZooKeeperClient
from zabd.client.recipes import Lock, SessionInterrupted, while_connected

COUNTER = "/examples/counter"


async def worker(client: ZooKeeperClient, name: str, rounds: int) -> int:
    lock = Lock(client, "/examples/counter-lock", name)
    done = 0
    while done < rounds:
        await lock.acquire()
        try:
            async def increment() -> None:
                data, stat = await client.get(COUNTER)
                await client.set(COUNTER, str(int(data) + 1).encode(), version=stat.version)
            await while_connected(client, increment)
            done += 1
        except SessionInterrupted:
            print(f"{name}: connection suspended while holding the lock; trying again", flush=True)
        finally:
            await lock.release()
    return done


async def main(reactor: Any, hosts: str, workers: int, rounds: int) -> None:
    clients = [ZooKeeperClient(hosts, timeout=10.0, reactor=reactor) for _ in range(workers)]
    for client in clients:
        await client.start()
    try:
        await clients[0].create(COUNTER, b"0", makepath=True)
    except NodeExistsError:
        await clients[0].set(COUNTER, b"0")
    results = [Deferred.fromCoroutine(worker(c, f"worker-{i}", rounds)) for i, c in enumerate(clients)]
    for result in results:
        await result
    total = int((await clients[0].get(COUNTER))[0])
    print(f"{workers} workers x {rounds} rounds: counter = {total}", flush=True)
    for client in clients:
        await client.stop()
    if total != workers * rounds:
        raise SystemExit(f"lost updates: expected {workers * rounds}")


if __name__ == "__main__":
    connect = sys.argv[1] if len(sys.argv) > 1 else "127.0.0.1:2181"
    n_workers = int(sys.argv[2]) if len(sys.argv) > 2 else 4
    n_rounds = int(sys.argv[3]) if len(sys.argv) > 3 else 10
    react(lambda reactor: ensureDeferred(main(reactor, connect, n_workers, n_rounds)))
