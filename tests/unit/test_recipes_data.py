"""Queue, LockingQueue, Counter, Party, lease on the fake network and clock, against an in-memory zabd."""
from __future__ import annotations

import json
from datetime import timedelta
from typing import Any

import pytest
from twisted.internet.defer import Deferred

from tests.unit.client_helpers import make_client, pending, real_client, result
from zabd.client import ZooKeeperClient
from zabd.client.recipes.counter import Counter
from zabd.client.recipes.lease import MultiNonBlockingLease, NonBlockingLease
from zabd.client.recipes.party import Party, ShallowParty
from zabd.client.recipes.queue import LockingQueue, Queue
from zabd.testing.fakezk import FakeNetwork, RealServer


def call(net: FakeNetwork, d: Deferred[Any]) -> Any:
    net.pump()
    return result(d)


def another(net: FakeNetwork, hosts: str = "zk1:2181", **kw: Any) -> ZooKeeperClient:
    client = make_client(net, hosts, **kw)
    call(net, client.start())
    return client


def expire(net: FakeNetwork, server: RealServer, client: ZooKeeperClient) -> None:
    """End ``client``'s session on the server (as its expiry would), then let it reconnect."""
    server.mode = "silent"  # no new connections: the client cannot resume its session
    for conn in server.connections:
        if not conn.closed and conn.protocol.driver is client._driver:  # type: ignore[attr-defined]
            conn.drop()
    for _ in range(int(client.session_timeout / 500) + 4):  # in steps: other clients keep pinging
        net.advance(0.5)
    server.expire_sessions()
    server.mode = "accept"
    for _ in range(200):
        if client.connected:
            return
        net.advance(0.1)
    raise AssertionError("the client never came back")


def test_queue_gives_items_by_priority_then_age() -> None:
    net, _, c = real_client()
    q = Queue(c, "/q")
    for value in (b"first", b"second"):
        call(net, q.put(value))
    assert call(net, q.put(b"urgent", priority=1)) == "/q/entry-001-0000000002"
    call(net, q.put_all([b"late-a", b"late-b"], priority=500))
    assert call(net, q.length()) == 5
    got = [call(net, q.get()) for _ in range(6)]
    assert got == [b"urgent", b"first", b"second", b"late-a", b"late-b", None]
    with pytest.raises(ValueError):
        q.put(b"x", priority=1000)
    with pytest.raises(TypeError):
        q.put("text")  # type: ignore[arg-type]


def test_queue_item_goes_to_one_consumer_only() -> None:
    net, _, c = real_client()
    other = another(net)
    q1, q2 = Queue(c, "/q"), Queue(other, "/q")
    call(net, q1.put_all([b"a", b"b", b"c"]))
    gets = [q1.get(), q2.get(), q1.get(), q2.get()]  # all in flight at once
    net.pump()
    values = [result(d) for d in gets]
    assert sorted(v for v in values if v is not None) == [b"a", b"b", b"c"] and values.count(None) == 1


def test_locking_queue_two_consumers_and_a_waiting_one() -> None:
    net, server, c = real_client()
    q1, q2 = LockingQueue(c, "/lq"), LockingQueue(another(net), "/lq")
    third = LockingQueue(another(net), "/lq")
    call(net, q1.put_all([b"job-1", b"job-2"]))
    assert call(net, q1.get()) == b"job-1" and call(net, q1.get()) == b"job-1"  # held until consumed
    assert call(net, q2.get()) == b"job-2"
    waiting = third.get(timeout=5.0)
    net.advance(1.0)
    assert pending(waiting)
    assert call(net, q1.holds_lock()) is True and call(net, third.holds_lock()) is False
    assert call(net, q1.consume()) is True and call(net, q1.consume()) is False
    assert call(net, q2.release()) is True  # job-2 back in the queue: the waiting consumer gets it
    assert call(net, waiting) == b"job-2"
    assert call(net, q1.length()) == 1
    late = q2.get(timeout=2.0)
    net.advance(2.5)
    assert result(late) is None


def test_locking_queue_lock_goes_with_the_session() -> None:
    net, server, c = real_client(timeout=4.0)
    taker = LockingQueue(c, "/lq")
    call(net, taker.put(b"job"))
    assert call(net, taker.get()) == b"job"
    expire(net, server, c)  # the taker's session ends: its ephemeral lock goes
    assert call(net, taker.holds_lock()) is False and call(net, taker.consume()) is False
    rescuer = LockingQueue(another(net), "/lq")
    assert call(net, rescuer.get(timeout=1.0)) == b"job"


def test_waiting_get_is_woken_by_a_put() -> None:
    net, _, c = real_client()
    consumer, producer = LockingQueue(c, "/lq"), LockingQueue(another(net), "/lq")
    got = consumer.get()
    net.pump()
    assert pending(got)
    call(net, producer.put(b"now"))
    assert result(got) == b"now"


def test_counter_concurrent_adds_lose_nothing() -> None:
    net, _, c = real_client()
    counters = [Counter(c, "/count"), Counter(another(net), "/count")]
    adds = [counters[i % 2].add(1) for i in range(10)]  # interleaved in flight: versions collide
    net.pump()
    assert sorted(result(d) for d in adds) == list(range(1, 11))
    assert call(net, counters[0].value()) == 10
    assert call(net, counters[1].subtract(3)) == 7
    assert (counters[1].pre_value, counters[1].post_value) == (10, 7)
    assert call(net, c.get("/count"))[0] == b"7"
    floats = Counter(c, "/f", default=1.5)
    assert call(net, floats.add(2.0)) == 3.5
    with pytest.raises(TypeError):
        floats.add(1)
    curator = Counter(c, "/cur", support_curator=True)
    assert call(net, curator.add(5)) == 5 and call(net, c.get("/cur"))[0] == b"\x00\x00\x00\x05"


def test_party_membership_follows_sessions() -> None:
    net, server, c = real_client(timeout=4.0)
    other = another(net)
    alice, bob = Party(c, "/party", "alice"), Party(other, "/party", "bob")
    call(net, alice.join())
    call(net, bob.join())
    call(net, bob.join())  # again: harmless
    assert sorted(call(net, alice.members())) == ["alice", "bob"] and call(net, alice.length()) == 2
    expire(net, server, c)  # alice's session ends: her ephemeral member node goes
    assert call(net, bob.members()) == ["bob"]
    assert call(net, bob.leave()) is True and call(net, bob.leave()) is False
    assert call(net, bob.length()) == 0
    shallow = [ShallowParty(other, "/shallow", name) for name in ("x", "y-z")]
    for member in shallow:
        call(net, member.join())
    assert sorted(call(net, shallow[0].members())) == ["x", "y-z"]


def test_lease_is_exclusive_until_it_expires_by_the_clock() -> None:
    net, _, c = real_client(timeout=30.0)
    other = another(net, timeout=30.0)
    first = NonBlockingLease(c, "/lease", timedelta(seconds=10), "a")
    assert call(net, first.obtain()) is True and bool(first)
    rival = NonBlockingLease(other, "/lease", timedelta(seconds=10), "b")
    assert call(net, rival.obtain()) is False and not rival
    net.advance(5)
    assert call(net, first.obtain()) is True  # the holder renews: ends 10 s from now
    net.advance(6)
    assert call(net, rival.obtain()) is False
    net.advance(5)
    assert call(net, rival.obtain()) is True  # expired by the clock
    stored = json.loads(call(net, c.get("/lease/lease_holder"))[0])
    assert stored["holder"] == "b" and stored["version"] == 1


def test_multi_lease_admits_count_holders() -> None:
    net, _, c = real_client()
    leases = [MultiNonBlockingLease(c, 2, "/multi", timedelta(seconds=60), f"host-{i}") for i in range(3)]
    assert [call(net, lease.obtain()) for lease in leases] == [True, True, False]
    assert call(net, leases[0].obtain()) is True  # renewing its own
    assert sorted(call(net, c.get_children("/multi"))) == ["0", "1"]
