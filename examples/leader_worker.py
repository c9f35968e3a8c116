"""A leader-elected worker: of several candidates only the leader works; when it stops, another takes over.

Start a server, then run this against it (it finishes by itself):

    twistd -n zabd                      # in another terminal: 127.0.0.1:2181
    python examples/leader_worker.py 127.0.0.1:2181 [candidates] [jobs per leader]

Each candidate has its own client and a LeaderLatch on /examples/leader. The
leader does a few jobs (each appended under /examples/jobs) and then "stops"
by closing its client, as a crashing process would; its ephemeral node goes
with the session and the next candidate in line becomes leader. A candidate
that sees its connection SUSPENDED stops working at once (``on_lost``).
"""
from __future__ import annotations

import sys
from typing import Any

from twisted.internet.defer import Deferred, ensureDeferred
from twisted.internet.task import deferLater, react

from zabd.client import ZooKeeperClient
from zabd.client.recipes import LeaderLatch


async def candidate(reactor: Any, hosts: str, name: str, jobs: int) -> None:
    client = ZooKeeperClient(hosts, timeout=10.0, reactor=reactor)
    await client.start()
    latch = LeaderLatch(client, "/examples/leader", name,
                        on_gained=lambda: print(f"{name}: I am the leader", flush=True),
                        on_lost=lambda: print(f"{name}: no longer leader", flush=True))
    latch.start()
    await latch.wait_for_leadership()
    done = 0
    while done < jobs and latch.is_leader:  # check before every job: leadership may go at any time
        await client.create("/examples/jobs/job-", name.encode(), sequence=True, makepath=True)
        done += 1
        await deferLater(reactor, 0.05, lambda: None)
    print(f"{name}: did {done} jobs, stepping down", flush=True)
    await client.stop()  # like a crash: the session ends and the next candidate leads


async def main(reactor: Any, hosts: str, candidates: int, jobs: int) -> None:
    admin = ZooKeeperClient(hosts, timeout=10.0, reactor=reactor)
    await admin.start()
    await admin.delete("/examples/jobs", recursive=True)
    running = [Deferred.fromCoroutine(candidate(reactor, hosts, f"candidate-{i}", jobs)) for i in range(candidates)]
    for one in running:
        await one
    done = [(await admin.get("/examples/jobs/" + child))[0].decode()
            for child in sorted(await admin.get_children("/examples/jobs"))]
    order = [name for i, name in enumerate(done) if i == 0 or done[i - 1] != name]
    print(f"{len(done)} jobs done, by leaders in turn: {', '.join(order)}", flush=True)
    await admin.stop()
    if len(order) != candidates or len(done) != candidates * jobs:
        raise SystemExit("two leaders worked at once, or a leader's turn was lost")


if __name__ == "__main__":
    connect = sys.argv[1] if len(sys.argv) > 1 else "127.0.0.1:2181"
    n_candidates = int(sys.argv[2]) if len(sys.argv) > 2 else 3
    n_jobs = int(sys.argv[3]) if len(sys.argv) > 3 else 5
    react(lambda reactor: ensureDeferred(main(reactor, connect, n_candidates, n_jobs)))
