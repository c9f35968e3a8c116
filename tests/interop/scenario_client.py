"""Runs zabd.client against a real ensemble on the real reactor, in a process of its own.

    python -m tests.interop.scenario_client calls HOSTS
    python -m tests.interop.scenario_client leader-kill HOSTS PORT=PID,PORT=PID,...

Prints one JSON line of findings on success; exits 1 (message on stderr) on failure.
"""
from __future__ import annotations

from typing import Any

from twisted.internet.task import deferLater

from tests.interop.scenarios import kill, leader_port, scenario_main, wait_for
from zabd.client import (
    BadVersionError, DeferredWatch, GetChildren, GetData, KazooState, NoNodeError, RolledBackError,
    ZooKeeperClient, make_digest_acl,
)

DEADLINE_S = 40.0


async def every_call(reactor: Any, hosts: str) -> dict[str, Any]:
    c = ZooKeeperClient(hosts + "/chroot", timeout=15.0, reactor=reactor)
    root = ZooKeeperClient(hosts, timeout=15.0, reactor=reactor)
    await root.start()
    await root.ensure_path("/chroot")
    await c.start()
    out: dict[str, Any] = {"ruok": await c.command(b"ruok"), "version": list(await c.server_version())}
    out["create"] = await c.create("/a", b"1")
    out["seq"] = (await c.create("/a/s-", sequence=True, ephemeral=True, include_data=True))[0]
    out["makepath"] = await c.create("/x/y/z", b"z", makepath=True)
    await c.ensure_path("/x/y/z/w")
    data, stat = await c.get("/a")
    out["get"] = [data.decode(), stat.numChildren]
    out["set_version"] = (await c.set("/a", b"2", version=0)).version
    try:
        await c.set("/a", b"3", version=0)
    except BadVersionError:
        out["bad_version"] = True
    out["exists_missing"] = await c.exists("/nope") is None
    out["children"] = await c.get_children("/x")
    out["all_children"] = await c.get_all_children_number("/x")
    out["ephemerals"] = await c.get_ephemerals("/")
    out["sync"] = await c.sync("/a")
    t = c.transaction()
    t.create("/t", b"t")
    t.check("/a", 1)
    t.set_data("/t", b"u")
    out["multi"] = [r if isinstance(r, str | bool) else "stat" for r in await t.commit()]
    t = c.transaction()
    t.delete("/t")
    t.check("/a", 99)
    out["multi_failed"] = [type(r).__name__ for r in await t.commit()]
    reads = await c.multi_read([GetData("/t"), GetChildren("/x"), GetData("/nope")])
    out["multi_read"] = [reads[0][0].decode(), reads[1], isinstance(reads[2], NoNodeError)]
    out["rolled_back_class"] = RolledBackError.__name__
    acl = [make_digest_acl("u", "p", all=True)]
    await c.create("/secret", b"s", acl=acl)
    await c.add_auth("digest", "u:p")
    out["acl"] = [(await c.get("/secret"))[0].decode(), (await c.get_acls("/secret"))[0] == acl]
    out["set_acls"] = (await c.set_acls("/secret", acl)).aversion
    out["whoami"] = sorted(scheme for scheme, _ in await c.whoami())
    w = DeferredWatch()
    await c.get("/a", watch=w)
    seen: list[Any] = []
    await c.add_watch("/x", lambda e: seen.append([e.type.value, e.path]), recursive=True)
    await root.set("/chroot/a", b"4")
    event = await w.deferred
    out["watch"] = [event.type.value, event.path]
    await root.create("/chroot/x/new")
    await wait_for(reactor, "the recursive watch", lambda: seen)
    out["recursive"] = seen[0]
    await c.remove_all_watches("/x")
    out["removed"] = seen[-1]
    try:
        await c.reconfig(None, None, None)
    except Exception as error:  # reconfig is off in these ensembles
        out["reconfig"] = type(error).__name__
    await c.delete("/x", recursive=True)
    out["deleted"] = await c.exists("/x") is None
    await c.stop()
    out["state_after_stop"] = c.state.value
    await root.stop()
    return out


async def leader_kill(reactor: Any, hosts: str, pids: dict[int, int]) -> dict[str, Any]:
    clients = []
    for address in hosts.split(","):  # one client on every peer
        client = ZooKeeperClient(address + "," + hosts, timeout=15.0, randomize_hosts=False, reactor=reactor)
        await client.start()
        clients.append(client)
    states: list[str] = []
    for i, client in enumerate(clients):
        client.add_listener(lambda s, i=i: states.append(f"{i}:{s.value}"))
        await client.create(f"/eph{i}", b"", ephemeral=True)
    leader = await leader_port(reactor, pids)
    kill(pids, leader)
    await wait_for(reactor, "every client suspended and back",
                   lambda: all(c.connected for c in clients) and any("SUSPENDED" in s for s in states))
    await deferLater(reactor, 0.5, lambda: None)
    await wait_for(reactor, "every client connected", lambda: all(c.connected for c in clients))
    survived = [await clients[0].exists(f"/eph{i}") is not None for i in range(len(clients))]
    lost = [s for s in states if s.endswith(KazooState.LOST.value)]
    for client in clients:
        await client.stop()
    return {"survived": survived, "lost": lost, "suspended": sorted({s.split(":")[0] for s in states if "SUSPENDED" in s})}



if __name__ == "__main__":
    scenario_main({"calls": lambda reactor, hosts, pids: every_call(reactor, hosts),
                   "leader-kill": leader_kill}, watchdog_s=DEADLINE_S * 2)
