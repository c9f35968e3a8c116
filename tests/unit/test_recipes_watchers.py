"""DataWatch, ChildrenWatch and TreeCache on the fake network and clock, against an in-memory zabd."""
from __future__ import annotations

from typing import Any

from tests.unit.client_helpers import real_client, result
from tests.unit.test_recipes_data import another, call, expire
from zabd.client import ZooKeeperClient
from zabd.client.recipes.treecache import NodeData, TreeCache, TreeCacheEvent, TreeEvent
from zabd.client.recipes.watchers import ChildrenWatch, DataWatch
from zabd.testing.fakezk import FakeNetwork


def move_to_second_host(net: FakeNetwork, client: ZooKeeperClient, while_away: Any = None) -> None:
    """Drop the client's connection to a:1 (refusing it from now on); run ``while_away``; let it reach b:2."""
    first = net.servers[("a", 1)]
    first.mode = "refuse"
    first.last.drop()
    net.pump()
    if while_away is not None:
        while_away()
    for _ in range(50):
        if client.connected:
            return
        net.advance(0.1)
    raise AssertionError("no reconnect")


def test_data_watch_reports_create_change_delete_recreate_and_stops() -> None:
    net, _, c = real_client()
    seen: list[tuple[bytes | None, int | None]] = []

    def record(data: bytes | None, stat: Any) -> bool:
        seen.append((data, stat.version if stat else None))
        return data != b"stop"

    watch = DataWatch(c, "/d", record)
    net.pump()
    assert result(watch.started) is None and seen == [(None, None)]
    call(net, c.create("/d", b"1"))
    call(net, c.set("/d", b"2"))
    call(net, c.delete("/d"))
    call(net, c.create("/d", b"3"))
    assert seen == [(None, None), (b"1", 0), (b"2", 1), (None, None), (b"3", 0)]
    call(net, c.set("/d", b"stop"))
    call(net, c.set("/d", b"after"))
    assert seen[-1] == (b"stop", 1) and len(seen) == 6 and watch.stopped


def test_data_watch_passes_the_event_to_a_three_argument_function() -> None:
    net, _, c = real_client()
    call(net, c.create("/d", b"1"))
    events: list[Any] = []
    DataWatch(c, "/d")(lambda data, stat, event: events.append(event and event.type.value))
    net.pump()
    call(net, c.set("/d", b"2"))
    assert events == [None, "CHANGED"]


def test_data_watch_reports_a_change_missed_while_reconnecting_once() -> None:
    net, _, c = real_client("a:1,b:2")
    other = another(net, "b:2")
    call(net, c.create("/d", b"1"))
    seen: list[bytes | None] = []
    DataWatch(c, "/d", lambda data, stat: seen.append(data))
    net.pump()
    move_to_second_host(net, c, lambda: call(net, other.set("/d", b"2")))
    net.advance(0.5)
    assert seen == [b"1", b"2"]
    call(net, other.set("/d", b"3"))
    assert seen == [b"1", b"2", b"3"]


def test_data_watch_survives_session_loss() -> None:
    net, server, c = real_client(timeout=4.0)
    other = another(net)
    seen: list[bytes | None] = []
    DataWatch(c, "/d", lambda data, stat: seen.append(data))
    net.pump()
    expire(net, server, c)  # the new session has no watches: the recipe sets them again
    net.pump()
    call(net, other.create("/d", b"new"))
    assert seen == [None, b"new"]


def test_children_watch_sequence_and_stop() -> None:
    net, _, c = real_client()
    seen: list[list[str] | None] = []

    def record(children: list[str] | None) -> bool:
        seen.append(children)
        return children != ["stop"]

    ChildrenWatch(c, "/p", record)
    net.pump()
    call(net, c.create("/p"))
    call(net, c.create("/p/a"))
    call(net, c.create("/p/b"))
    call(net, c.set("/p", b"data only"))  # not a children change: no call
    call(net, c.delete("/p", recursive=True))
    call(net, c.create("/p/stop", makepath=True))
    call(net, c.create("/p/ignored"))
    assert seen == [None, [], ["a"], ["a", "b"], ["b"], [], None, [], ["stop"]]  # makepath: /p, then /p/stop


def test_children_watch_with_events_across_a_reconnect() -> None:
    net, _, c = real_client("a:1,b:2")
    other = another(net, "b:2")
    call(net, c.create("/p"))
    seen: list[tuple[list[str] | None, str | None]] = []
    ChildrenWatch(c, "/p", lambda children, event: seen.append((children, event and event.type.value)),
                  send_event=True)
    net.pump()
    call(net, c.create("/p/x"))
    move_to_second_host(net, c, lambda: call(net, other.create("/p/y")))
    net.advance(0.5)
    assert seen[:2] == [([], None), (["x"], "CHILD")]
    assert seen[-1][0] == ["x", "y"] and len(seen) == 3


def _tree(cache: TreeCache, path: str) -> dict[str, bytes]:
    """The cached subtree as {path: data}."""
    node = cache.get_data(path)
    if node is None:
        return {}
    found = {path: node.data}
    for name in cache.get_children(path) or ():
        found.update(_tree(cache, path.rstrip("/") + "/" + name))
    return found


def _server_tree(net: FakeNetwork, client: ZooKeeperClient, path: str) -> dict[str, bytes]:
    if call(net, client.exists(path)) is None:
        return {}
    found = {path: call(net, client.get(path))[0]}
    for name in call(net, client.get_children(path)):
        found.update(_server_tree(net, client, path.rstrip("/") + "/" + name))
    return found


def test_tree_cache_loads_and_follows_changes() -> None:
    net, _, c = real_client()
    call(net, c.create("/t/a/x", b"ax", makepath=True))
    cache = TreeCache(c, "/t")
    events: list[tuple[TreeEvent, str | None]] = []
    cache.listen(lambda e: events.append((e.event_type, e.event_data.path if e.event_data else None)))
    started = cache.start()
    net.pump()
    assert result(started) is None
    assert events[-1] == (TreeEvent.INITIALIZED, None)
    assert sorted(str(p) for kind, p in events if kind is TreeEvent.NODE_ADDED) == ["/t", "/t/a", "/t/a/x"]
    events.clear()
    call(net, c.create("/t/b", b"b"))
    call(net, c.set("/t/a/x", b"ax2"))
    call(net, c.delete("/t/a", recursive=True))
    net.pump()
    assert events == [(TreeEvent.NODE_ADDED, "/t/b"), (TreeEvent.NODE_UPDATED, "/t/a/x"),
                      (TreeEvent.NODE_REMOVED, "/t/a/x"), (TreeEvent.NODE_REMOVED, "/t/a")]
    assert cache.get_children("/t") == frozenset({"b"})
    data = cache.get_data("/t/b")
    assert isinstance(data, NodeData) and data.data == b"b" and data.stat.version == 0
    assert cache.get_data("/t/a") is None and cache.get_children("/nope") is None
    call(net, cache.close())
    call(net, c.create("/t/c"))
    assert cache.get_data("/t/c") is None


def test_tree_cache_on_a_missing_root_sees_it_created() -> None:
    net, _, c = real_client()
    cache = TreeCache(c, "/later")
    call(net, cache.start())
    assert cache.get_data("/later") is None
    call(net, c.create("/later/child", b"c", makepath=True))
    net.pump()
    assert _tree(cache, "/later") == {"/later": b"", "/later/child": b"c"}


def test_tree_cache_converges_after_a_dropped_connection() -> None:
    net, _, c = real_client("a:1,b:2")
    other = another(net, "b:2")
    call(net, c.create("/t/keep", b"1", makepath=True))
    call(net, c.create("/t/gone/deep", b"2", makepath=True))
    cache = TreeCache(c, "/t")
    kinds: list[TreeEvent] = []
    cache.listen(lambda e: kinds.append(e.event_type))
    call(net, cache.start())

    def change_while_away() -> None:
        call(net, other.set("/t/keep", b"changed"))
        call(net, other.delete("/t/gone", recursive=True))
        call(net, other.create("/t/new/sub", b"3", makepath=True))
    move_to_second_host(net, c, change_while_away)
    net.pump()
    call(net, cache.when_idle())
    assert TreeEvent.CONNECTION_SUSPENDED in kinds and TreeEvent.CONNECTION_RECONNECTED in kinds
    assert _tree(cache, "/t") == _server_tree(net, other, "/t")
    assert _tree(cache, "/t")["/t/keep"] == b"changed"
    call(net, other.create("/t/after", b"4"))  # the re-armed watch still reports
    net.pump()
    assert _tree(cache, "/t") == _server_tree(net, other, "/t")


def test_tree_cache_converges_after_session_loss() -> None:
    net, server, c = real_client(timeout=4.0)
    other = another(net)
    call(net, c.create("/t/a", b"1", makepath=True))
    cache = TreeCache(c, "/t")
    seen: list[TreeCacheEvent] = []
    cache.listen(seen.append)
    call(net, cache.start())
    expire(net, server, c)
    call(net, cache.when_idle())
    assert TreeEvent.CONNECTION_LOST in [e.event_type for e in seen]
    call(net, other.create("/t/b", b"2"))
    call(net, other.set("/t/a", b"3"))
    net.pump()
    assert _tree(cache, "/t") == {"/t": b"", "/t/a": b"3", "/t/b": b"2"}
