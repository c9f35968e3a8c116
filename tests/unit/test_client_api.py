"""Every client call against a real in-memory zabd server (zabd.testing.fakezk.RealServer)."""
from __future__ import annotations

import pytest

from zabd.client import (
    BadVersionError, DeferredWatch, GetChildren, GetData, KazooState, NodeExistsError, NoAuthError, NoNodeError,
    NotEmptyError, NoWatcherError, RolledBackError, RuntimeInconsistency, SessionExpiredError, WatcherType,
    make_digest_acl,
)
from zabd.client.errors import error_for
from zabd.jute.errors import Code, KeeperError
from tests.unit.client_helpers import failure, make_client, result, real_client


def call(net, d):  # type: ignore[no-untyped-def]
    net.pump()
    return result(d)


def test_every_code_has_its_class() -> None:
    for code in Code:
        if code is Code.OK:
            continue
        error = error_for(code, "/p")
        assert isinstance(error, KeeperError) and error.code == code and error.path == "/p"
    assert type(error_for(-101)) is NoNodeError and type(error_for(-112)) is SessionExpiredError


def test_crud_and_errors() -> None:
    net, _, c = real_client()
    assert call(net, c.create("/a", b"1")) == "/a"
    path, stat = call(net, c.create("/a/s-", b"", sequence=True, include_data=True))
    assert path == "/a/s-0000000000" and stat.version == 0
    data, stat = call(net, c.get("/a"))
    assert data == b"1" and stat.numChildren == 1 and stat.children_count == 1
    assert call(net, c.set("/a", b"2", version=0)).version == 1
    assert isinstance(failure(_pumped(net, c.set("/a", b"3", version=0))), BadVersionError)
    assert isinstance(failure(_pumped(net, c.create("/a"))), NodeExistsError)
    assert isinstance(failure(_pumped(net, c.delete("/a"))), NotEmptyError)
    error = failure(_pumped(net, c.get("/missing")))
    assert isinstance(error, NoNodeError) and error.path == "/missing"
    assert call(net, c.exists("/missing")) is None
    assert call(net, c.get_children("/a")) == ["s-0000000000"]
    children, stat = call(net, c.get_children("/a", include_data=True))
    assert children == ["s-0000000000"] and stat.cversion == 1
    assert call(net, c.create("/deep/er/node", b"x", makepath=True)) == "/deep/er/node"
    call(net, c.ensure_path("/deep/er/node/more"))
    assert call(net, c.get_all_children_number("/deep")) == 3
    call(net, c.delete("/deep", recursive=True))
    assert call(net, c.exists("/deep")) is None
    assert call(net, c.sync("/a")) == "/a"
    with pytest.raises(ValueError):
        c.get("relative")


def test_ephemerals_containers_and_whoami() -> None:
    net, _, c = real_client()
    call(net, c.create("/e1", ephemeral=True))
    call(net, c.create("/dir"))
    call(net, c.create("/dir/e2", ephemeral=True))
    assert sorted(call(net, c.get_ephemerals("/"))) == ["/dir/e2", "/e1"]
    assert call(net, c.get_ephemerals("/dir")) == ["/dir/e2"]
    path, stat = call(net, c.create("/box", container=True, include_data=True))
    assert path == "/box" and stat.czxid > 0
    assert call(net, c.whoami()) == [("ip", "127.0.0.1")]


def test_transaction_and_multi_read() -> None:
    net, _, c = real_client()
    t = c.transaction()
    t.create("/t", b"a")
    t.set_data("/t", b"b")
    t.check("/t", 1)
    t.create("/t/e", ephemeral=True)
    path, stat, checked, child = call(net, t.commit())
    assert (path, stat.version, checked, child) == ("/t", 1, True, "/t/e")
    t = c.transaction()
    t.delete("/t/e")
    t.check("/t", 7)
    t.set_data("/t", b"c")
    results = call(net, t.commit())
    assert [type(r) for r in results] == [RolledBackError, BadVersionError, RuntimeInconsistency]
    assert call(net, c.exists("/t/e")) is not None
    got = call(net, c.multi_read([GetData("/t"), GetChildren("/t"), GetData("/nope")]))
    assert got[0][0] == b"b" and got[1] == ["e"] and isinstance(got[2], NoNodeError)
    assert [r[0] for r in call(net, c.get_many(["/t"]))] == [b"b"]


def test_acls_and_auth() -> None:
    net, _, c = real_client()
    acl = [make_digest_acl("u", "p", all=True)]
    call(net, c.create("/secret", b"s", acl=acl))
    assert isinstance(failure(_pumped(net, c.get("/secret"))), NoAuthError)
    call(net, c.add_auth("digest", "u:p"))
    assert call(net, c.get("/secret"))[0] == b"s"
    got, stat = call(net, c.get_acls("/secret"))
    assert got == acl and stat.aversion == 0
    assert call(net, c.set_acls("/secret", acl, version=0)).aversion == 1
    assert ("digest", "u") in call(net, c.whoami())


def test_one_shot_and_persistent_watches_with_chroot() -> None:
    net, server, c = real_client(chroot="/app")
    other = make_client(net, "zk1:2181")
    call(net, other.start())
    call(net, other.create("/app"))
    assert call(net, c.create("/n", b"1")) == "/n"
    assert call(net, other.get("/app/n"))[0] == b"1"  # the chroot is in the server's path
    seen: list[tuple[str, str]] = []
    w = DeferredWatch()
    call(net, c.get("/n", watch=w))
    call(net, c.exists("/later", watch=lambda e: seen.append(("exists", e.type.value, e.path))))
    call(net, c.get_children("/", watch=lambda e: seen.append(("children", e.type.value, e.path))))
    call(net, other.set("/app/n", b"2"))
    assert (result(w.deferred).type.value, result(w.deferred).path) == ("CHANGED", "/n")
    call(net, other.create("/app/later"))
    assert seen == [("exists", "CREATED", "/later"), ("children", "CHILD", "/")]
    seen.clear()
    # (Added earlier, it would have replaced the server's child watch on /app: 3.8 keeps one mode per path.)
    call(net, c.add_watch("/", lambda e: seen.append(("tree", e.type.value, e.path)), recursive=True))
    call(net, other.delete("/app/later"))
    assert seen == [("tree", "DELETED", "/later")]  # the one-shot watches had fired already
    call(net, c.remove_all_watches("/", WatcherType.Any))
    assert seen[-1] == ("tree", "PERSISTENT_WATCH_REMOVED", "/")
    call(net, other.set("/app/n", b"3"))
    assert len(seen) == 2
    assert isinstance(failure(_pumped(net, c.remove_watch("/n", seen.append))), NoWatcherError)


def test_watch_is_rearmed_after_reconnect_and_the_missed_event_delivered() -> None:
    net, server, c = real_client("a:1,b:2")
    other = make_client(net, "b:2")
    call(net, other.start())
    call(net, c.create("/w", b"1"))
    events: list[str] = []
    call(net, c.get("/w", watch=lambda e: events.append(e.type.value)))
    net.servers[("a", 1)].mode = "refuse"  # type: ignore[attr-defined]
    net.servers[("a", 1)].last.drop()  # type: ignore[attr-defined]
    net.pump()
    assert c.state is KazooState.SUSPENDED or c.connected
    call(net, other.set("/w", b"2"))  # while c is away (or reconnecting)
    net.advance(0.5)
    assert c.connected and events == ["CHANGED"]


def test_session_expiry_on_the_real_server_loses_the_session() -> None:
    net, server, c = real_client("a:1", timeout=4.0)
    states: list[KazooState] = []
    c.add_listener(states.append)
    call(net, c.create("/eph", ephemeral=True))
    server.mode = "silent"
    server.last.drop()
    net.pump()
    net.clock.advance(10.0)
    server.expire_sessions()
    server.mode = "accept"
    for _ in range(30):
        net.advance(0.1)
    assert states == [KazooState.SUSPENDED, KazooState.LOST, KazooState.CONNECTED] and c.connected
    other = make_client(net, "a:1")
    call(net, other.start())
    assert call(net, other.exists("/eph")) is None


def _pumped(net, d):  # type: ignore[no-untyped-def]
    net.pump()
    return d
