"""Runs the data recipes of zabd.client against a real ensemble on the real reactor, in a process of its own.

    python -m tests.interop.scenario_data_recipes recipes HOSTS
    python -m tests.interop.scenario_data_recipes treecache-leader-kill HOSTS PORT=PID,PORT=PID,...

Prints one JSON line of findings on success; exits 1 (message on stderr) on failure.
"""
from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta
from typing import Any

from twisted.internet.defer import Deferred
from twisted.internet.task import deferLater

from tests.interop.scenario_client import DEADLINE_S
from tests.interop.scenarios import kill, leader_port, scenario_main, wait_for
from zabd.client import ConnectionLoss, NodeExistsError, NoNodeError, SessionExpiredError, ZooKeeperClient
from zabd.client.recipes.counter import Counter
from zabd.client.recipes.lease import MultiNonBlockingLease, NonBlockingLease
from zabd.client.recipes.party import Party, ShallowParty
from zabd.client.recipes.queue import LockingQueue, Queue
from zabd.client.recipes.treecache import TreeCache, TreeEvent
from zabd.client.recipes.watchers import ChildrenWatch, DataWatch


async def recipes(reactor: Any, hosts: str) -> dict[str, Any]:
    a = ZooKeeperClient(hosts, timeout=15.0, reactor=reactor)
    b = ZooKeeperClient(hosts, timeout=15.0, reactor=reactor)
    await a.start()
    await b.start()
    out: dict[str, Any] = {}
    q = Queue(a, "/r/q")
    await q.put(b"low", priority=200)
    await q.put_all([b"p1", b"p2"])
    await q.put(b"high", priority=1)
    out["queue"] = [(await Queue(b, "/r/q").get() or b"").decode() for _ in range(4)] + [await q.get()]
    lq1, lq2 = LockingQueue(a, "/r/lq"), LockingQueue(b, "/r/lq")
    await lq1.put_all([b"j1", b"j2"])
    got = [await lq1.get(), await lq2.get(), await LockingQueue(b, "/r/lq").get(timeout=0.5)]
    out["locking_queue"] = [g.decode() if g else None for g in got] + [await lq1.consume(), await lq2.release(),
                                                                         await lq1.length()]
    counters = [Counter(a, "/r/count"), Counter(b, "/r/count")]
    await Deferred.fromCoroutine(_all([counters[i % 2].add(1) for i in range(20)]))
    # b's last add may not have reached a's server yet: reads are sequentially consistent, not linearizable.
    await a.sync("/r/count")
    out["counter"] = [await counters[0].value(), (await a.get("/r/count"))[0].decode()]
    party, shallow = Party(a, "/r/party", "alice"), ShallowParty(b, "/r/shallow", "bob")
    await party.join()
    await Party(b, "/r/party", "carol").join()
    await shallow.join()
    out["party"] = [sorted(await party.members()), await shallow.members()]
    data_seen: list[Any] = []
    children_seen: list[Any] = []
    DataWatch(a, "/r/dw", lambda data, stat: data_seen.append(data and data.decode()))
    ChildrenWatch(a, "/r/cw", children_seen.append)
    await wait_for(reactor, "the first watch calls", lambda: data_seen and children_seen)
    # One step at a time: a watch reports the node as it is when re-read, so quick changes may merge.
    for step, want in ((lambda: b.create("/r/dw", b"1"), "1"), (lambda: b.set("/r/dw", b"2"), "2"),
                       (lambda: b.delete("/r/dw"), None)):
        await step()
        await wait_for(reactor, f"the data watch to see {want}", lambda: data_seen[-1] == want)
    await b.create("/r/cw")
    await wait_for(reactor, "the children watch to see /r/cw", lambda: children_seen[-1] == [])
    await b.create("/r/cw/x")
    await wait_for(reactor, "the children watch to see x", lambda: children_seen[-1] == ["x"])
    out["data_watch"], out["children_watch"] = list(data_seen), list(children_seen)
    lease = NonBlockingLease(a, "/r/lease", timedelta(seconds=60), "a")
    rival = NonBlockingLease(b, "/r/lease", timedelta(seconds=60), "b")
    multi = [MultiNonBlockingLease(c, 1, "/r/multi", timedelta(seconds=60), name) for c, name in ((a, "a"), (b, "b"))]
    out["lease"] = [await lease.obtain(), await rival.obtain(), await lease.obtain(),
                    await multi[0].obtain(), await multi[1].obtain()]
    cache = TreeCache(a, "/r")
    await cache.start()
    await b.create("/r/cached/leaf", b"v", makepath=True)
    await wait_for(reactor, "the tree cache", lambda: cache.get_data("/r/cached/leaf") is not None)
    out["tree_cache"] = [sorted(cache.get_children("/r") or ()), cache.get_data("/r/cached/leaf").data.decode()]  # type: ignore[union-attr]
    await cache.close()
    await a.delete("/r", recursive=True)
    await a.stop()
    await b.stop()
    return out


async def _all(deferreds: list[Deferred[Any]]) -> list[Any]:
    return [await d for d in deferreds]


async def retrying(reactor: Any, what: Callable[[], Deferred[Any]]) -> Any:
    """Run ``what`` until it is not failed by the connection (the ensemble is electing)."""
    for _ in range(int(DEADLINE_S / 0.2)):
        try:
            return await what()
        except (ConnectionLoss, SessionExpiredError):
            await deferLater(reactor, 0.2, lambda: None)
    raise AssertionError("the ensemble never took the write")


async def server_tree(client: ZooKeeperClient, path: str) -> dict[str, str]:
    try:
        data, _ = await client.get(path)
        children = await client.get_children(path)
    except NoNodeError:
        return {}
    found = {path: data.decode()}
    for name in children:
        found.update(await server_tree(client, f"{path}/{name}"))
    return found


def cached_tree(cache: TreeCache, path: str) -> dict[str, str]:
    node = cache.get_data(path)
    if node is None:
        return {}
    found = {path: node.data.decode()}
    for name in cache.get_children(path) or ():
        found.update(cached_tree(cache, f"{path}/{name}"))
    return found


async def treecache_leader_kill(reactor: Any, hosts: str, pids: dict[int, int]) -> dict[str, Any]:
    leader = await leader_port(reactor, pids)
    on_leader = ZooKeeperClient(f"127.0.0.1:{leader}," + hosts, timeout=15.0, randomize_hosts=False, reactor=reactor)
    writer = ZooKeeperClient(hosts, timeout=15.0, reactor=reactor)
    await on_leader.start()
    await writer.start()
    await writer.create("/tc/a/x", b"1", makepath=True)
    await writer.create("/tc/b", b"2")
    cache = TreeCache(on_leader, "/tc")
    kinds: list[str] = []
    cache.listen(lambda e: kinds.append(TreeEvent(e.event_type).name))
    await cache.start()
    kill(pids, leader)
    # Written while the cache's client is (likely) still away: the persistent watch cannot report these.
    await retrying(reactor, lambda: writer.set("/tc/a/x", b"changed"))
    await retrying(reactor, lambda: writer.delete("/tc/b"))
    try:
        await retrying(reactor, lambda: writer.create("/tc/c/deep", b"3", makepath=True))
    except NodeExistsError:
        pass  # an attempt whose reply was lost had created it
    await wait_for(reactor, "the cache's client back", lambda: on_leader.connected)
    await retrying(reactor, lambda: writer.create("/tc/after", b"4"))
    expected = await retrying(reactor, lambda: Deferred.fromCoroutine(server_tree(writer, "/tc")))
    await wait_for(reactor, "the cache converged", lambda: cached_tree(cache, "/tc") == expected)
    converged = cached_tree(cache, "/tc")
    await cache.close()
    await on_leader.stop()
    await writer.stop()
    return {"tree": converged, "kinds": sorted(set(kinds))}



if __name__ == "__main__":
    scenario_main({"recipes": lambda reactor, hosts, pids: recipes(reactor, hosts),
                   "treecache-leader-kill": treecache_leader_kill}, watchdog_s=DEADLINE_S * 2)
