"""The coordination recipes on a real ensemble, on the real reactor, in a process of its own.

    python -m tests.interop.scenario_locks lock HOSTS PORT=PID,PORT=PID,...
    python -m tests.interop.scenario_locks election HOSTS PORT=PID,PORT=PID,...
    python -m tests.interop.scenario_locks once-each HOSTS

``once-each`` runs ReadLock/WriteLock, Semaphore, Barrier and DoubleBarrier
once with three clients; the other modes contend while the leader is killed.

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
    Barrier, CancelledError, DoubleBarrier, Election, LeaderLatch, Lock, LockTimeout, ReadLock, Semaphore,
    SessionInterrupted, WriteLock, while_connected,
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



async def once_each(reactor: Any, hosts: str) -> dict[str, Any]:
    a, b, c = clients = [ZooKeeperClient(hosts, timeout=15.0, reactor=reactor) for _ in range(3)]
    for client in clients:
        await client.start()
    out: dict[str, Any] = {}
    # Readers share; a writer waits for them, and readers queued after a writer wait for it.
    read_a, read_b = ReadLock(a, "/once/rw", "ra"), ReadLock(b, "/once/rw", "rb")
    write_c = WriteLock(c, "/once/rw", "wc")
    shared = [await read_a.acquire(), await read_b.acquire()]
    writer = write_c.acquire()
    while len(await read_a.contenders()) < 3:  # the writer's node is in line behind both readers
        await deferLater(reactor, 0.05, lambda: None)
    await c.sync("/once/rw")  # and its next step answered: still waiting while the readers hold
    blocked = not writer.called
    await read_a.release()
    await read_b.release()
    out["rw"] = shared + [blocked, await writer, sorted(await write_c.contenders())]
    await write_c.release()
    # Two leases among three: the third waits until one is given back.
    pool = [Semaphore(client, "/once/sem", f"s{i}", max_leases=2) for i, client in enumerate(clients)]
    granted = [await pool[0].acquire(), await pool[1].acquire(), await pool[2].acquire(blocking=False)]
    third = pool[2].acquire(timeout=20.0)
    await c.sync("/once")
    granted.append(not third.called)  # both leases are out: the third waits
    await pool[0].release()
    out["semaphore"] = granted + [await third, sorted(await pool[1].lease_holders())]
    for lease in pool[1:]:
        await lease.release()
    # A barrier holds until removed; a double barrier lets three in together and out together.
    gate = Barrier(a, "/once/gate")
    await gate.create()
    waiting = Barrier(b, "/once/gate").wait(timeout=20.0)
    await b.sync("/once")  # b's requests are answered in order: its exists came back first
    held = not waiting.called
    out["barrier"] = [held, await gate.remove(), await waiting]
    double = [DoubleBarrier(client, "/once/double", 3, f"d{i}") for i, client in enumerate(clients)]
    entering = [member.enter() for member in double]
    for entered in entering:
        await entered
    inside = [member.participating for member in double]
    leaving = [member.leave() for member in double]
    for left in leaving:
        await left
    out["double_barrier"] = inside + [member.participating for member in double]
    await a.delete("/once", recursive=True)
    for client in clients:
        await client.stop()
    return out


if __name__ == "__main__":
    scenario_main({"lock": lambda reactor, hosts, pids: contend(reactor, "lock", hosts, pids),
                   "election": lambda reactor, hosts, pids: contend(reactor, "election", hosts, pids),
                   "once-each": lambda reactor, hosts, pids: once_each(reactor, hosts)},
                  watchdog_s=DEADLINE_S + 20)
