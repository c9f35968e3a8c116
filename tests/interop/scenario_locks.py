"""Recipes contending on a real ensemble while its leader is killed, on the real reactor, in a process of its own.

    python -m tests.interop.scenario_locks lock HOSTS PORT=PID,PORT=PID,...
    python -m tests.interop.scenario_locks election HOSTS PORT=PID,PORT=PID,...

Every client lives in this one process, so one reactor clock times them all.
Each holder records ``[client, start, end]``: start once the recipe reported
the lock or leadership confirmed, end when it stopped treating itself as the
holder (before calling release, or at the SUSPENDED that cancelled its work).
Prints one JSON line: the records, the kill time and the counter; exits 1 on failure.
"""
from __future__ import annotations

from typing import Any

from twisted.internet.defer import Deferred
from twisted.internet.task import deferLater

from tests.interop.scenarios import kill, leader_port, scenario_main, wait_for
from zabd.client import BadVersionError, KazooState, ZooKeeperClient, ZookeeperError
from zabd.client.recipes import (
    CancelledError, Election, LeaderLatch, Lock, LockTimeout, SessionInterrupted, while_connected,
)

DEADLINE_S = 90.0
HOLD_S = 0.05
ROUNDS_BEFORE_KILL = 8
ROUNDS_AFTER_KILL = 8


class Run:
    def __init__(self, reactor: Any) -> None:
        self.reactor = reactor
        self.records: list[list[Any]] = []
        self.suspended: dict[int, list[float]] = {}
        self.interrupted = 0
        self.done = False
        self.cancellers: dict[int, Any] = {}

    def now(self) -> float:
        return float(self.reactor.seconds())

    def held(self, who: int) -> list[Any]:
        record = [who, self.now(), None]
        self.records.append(record)
        return record

    def rounds_since(self, since: float) -> int:
        return sum(1 for _, start, end in self.records if end is not None and start > since)


async def lock_worker(run: Run, who: int, client: ZooKeeperClient) -> None:
    lock = Lock(client, "/recipes/lock", f"w{who}")
    run.cancellers[who] = lock.cancel

    async def critical() -> None:
        record = run.held(who)
        try:
            data, stat = await client.get("/recipes/counter")
            await deferLater(run.reactor, HOLD_S, lambda: None)
            # The version fences a set that outlives its holder (queued across a reconnect).
            await client.set("/recipes/counter", str(int(data) + 1).encode(), version=stat.version)
        finally:
            record[2] = run.now()

    while not run.done:
        try:
            if not await lock.acquire(timeout=30.0):
                continue
        except (LockTimeout, CancelledError, ZookeeperError):
            continue
        try:
            await while_connected(client, critical)
        except (SessionInterrupted, BadVersionError):
            run.interrupted += 1
        try:
            await lock.release()
        except ZookeeperError:
            pass


async def election_worker(run: Run, who: int, client: ZooKeeperClient) -> None:
    election = Election(client, "/recipes/election", f"e{who}")
    run.cancellers[who] = election.cancel

    async def lead() -> None:
        record = run.held(who)
        try:
            await deferLater(run.reactor, HOLD_S, lambda: None)
        finally:
            record[2] = run.now()

    while not run.done:
        try:
            await election.run(lead)
        except SessionInterrupted:
            run.interrupted += 1
        except ZookeeperError:
            pass


async def latch_worker(run: Run, who: int, client: ZooKeeperClient) -> None:
    """A LeaderLatch in the same election: it leads for a moment, then steps down and queues again."""
    current: list[Any] = []

    def gained() -> None:
        current.append(run.held(who))

    def lost() -> None:
        if current and current[-1][2] is None:
            current[-1][2] = run.now()

    latch = LeaderLatch(client, "/recipes/election", f"latch{who}", on_gained=gained, on_lost=lost)
    run.cancellers[who] = lambda: None
    while not run.done:
        latch.start()
        if await latch.wait_for_leadership(timeout=5.0):
            await deferLater(run.reactor, HOLD_S, lambda: None)
        await latch.stop()


async def contend(reactor: Any, mode: str, hosts: str, pids: dict[int, int]) -> dict[str, Any]:
    run = Run(reactor)
    addresses = hosts.split(",")
    clients: list[ZooKeeperClient] = []
    count = 4 if mode == "election" else 3
    for who in range(count):  # each client first on its own peer, spread over the ensemble
        ordered = addresses[who % len(addresses):] + addresses[:who % len(addresses)]
        client = ZooKeeperClient(",".join(ordered), timeout=15.0, randomize_hosts=False, reactor=reactor)
        await client.start()
        run.suspended[who] = []

        def note(state: KazooState, who: int = who) -> None:
            if state is not KazooState.CONNECTED:
                run.suspended[who].append(run.now())
        client.add_listener(note)
        clients.append(client)
    await clients[0].ensure_path("/recipes")
    if mode == "lock":
        await clients[0].create("/recipes/counter", b"0")
        workers = [Deferred.fromCoroutine(lock_worker(run, who, c)) for who, c in enumerate(clients)]
    else:
        workers = [Deferred.fromCoroutine(election_worker(run, who, c)) for who, c in enumerate(clients[:3])]
        workers.append(Deferred.fromCoroutine(latch_worker(run, 3, clients[3])))
    await wait_for(reactor, "rounds before the kill", lambda: run.rounds_since(0.0) >= ROUNDS_BEFORE_KILL)
    leader = await leader_port(reactor, pids)
    killed_at = run.now()
    kill(pids, leader)
    await wait_for(reactor, "rounds after the kill",
                   lambda: run.rounds_since(killed_at) >= ROUNDS_AFTER_KILL, within=DEADLINE_S - 30)
    run.done = True
    for cancel in run.cancellers.values():
        cancel()
    for worker in workers:
        await worker
    counter = None
    if mode == "lock":
        counter = int((await clients[0].get("/recipes/counter"))[0])
    for client in clients:
        await client.stop()
    return {"records": run.records, "suspended": run.suspended, "killed_at": killed_at,
            "interrupted": run.interrupted, "counter": counter}



if __name__ == "__main__":
    scenario_main({mode: lambda reactor, hosts, pids, mode=mode: contend(reactor, mode, hosts, pids)
                   for mode in ("lock", "election")}, watchdog_s=DEADLINE_S + 20)
