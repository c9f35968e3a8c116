"""Lock, ReadLock, WriteLock and Semaphore on the fake network and clock, against an in-memory zabd server."""
from __future__ import annotations

import re

import pytest

from tests.unit.client_helpers import failure, pending, result
from tests.unit.recipe_helpers import Cluster
from zabd.client import KazooState
from zabd.client.recipes import CancelledError, Lock, LockTimeout, ReadLock, Semaphore, WriteLock
from zabd.client.watches import WatchKind


def test_one_holder_at_a_time_and_turns_in_sequence_order() -> None:
    cluster = Cluster()
    clients = [cluster.client() for _ in range(4)]
    locks = [Lock(c, "/locks/a", f"w{i}") for i, c in enumerate(clients)]
    acquired = []
    for lock in locks:  # queued in this order: each create gets the next sequence number
        acquired.append(lock.acquire())
        cluster.net.pump()
    order = []
    for _ in locks:
        holders = [i for i, lock in enumerate(locks) if lock.is_acquired]
        assert len(holders) == 1
        order.append(holders[0])
        assert result(acquired[holders[0]]) is True
        assert all(pending(acquired[i]) for i in range(4) if i not in order)
        assert cluster.call(locks[holders[0]].release()) is True
    assert order == [0, 1, 2, 3]
    assert cluster.call(clients[0].get_children("/locks/a")) == []


def test_nodes_are_kazoos_and_contenders_are_listed_holder_first() -> None:
    cluster = Cluster()
    a, b = cluster.client(), cluster.client()
    first, second = Lock(a, "/l", "alpha"), Lock(b, "/l", "beta")
    assert cluster.call(first.acquire()) is True
    waiting = second.acquire()
    cluster.net.pump()
    assert re.fullmatch(r"[0-9a-f]{32}__lock__\d{10}", first.node or "")
    assert cluster.call(second.contenders()) == ["alpha", "beta"]
    assert cluster.call(a.exists("/l/" + (first.node or ""))).ephemeralOwner == a.client_id[0]  # type: ignore[index]
    cluster.call(first.release())
    assert result(waiting) is True


def test_a_waiter_watches_only_its_predecessor() -> None:
    cluster = Cluster()
    clients = [cluster.client() for _ in range(3)]
    locks = [Lock(c, "/herd") for c in clients]
    for lock in locks:
        lock.acquire()
        cluster.net.pump()
    third = clients[2]._core.watches
    assert third.has(WatchKind.DATA, "/herd/" + (locks[1].node or ""))
    assert not third.has(WatchKind.DATA, "/herd/" + (locks[0].node or ""))


def test_non_blocking_acquire_returns_false_and_leaves_no_node() -> None:
    cluster = Cluster()
    a, b = cluster.client(), cluster.client()
    assert cluster.call(Lock(a, "/nb").acquire()) is True
    assert cluster.call(Lock(b, "/nb").acquire(blocking=False)) is False
    assert len(cluster.call(a.get_children("/nb"))) == 1


def test_timeout_fails_with_lock_timeout_and_cleans_up() -> None:
    cluster = Cluster()
    a, b = cluster.client(), cluster.client()
    assert cluster.call(Lock(a, "/t").acquire()) is True
    waiting = Lock(b, "/t").acquire(timeout=2.0)
    cluster.run_for(1.5)
    assert pending(waiting)
    cluster.run_for(1.0)
    assert isinstance(failure(waiting), LockTimeout)
    assert len(cluster.call(a.get_children("/t"))) == 1


def test_a_timeout_while_disconnected_still_removes_the_node_once_reconnected() -> None:
    # A node left in line would block every later contender for as long as the session lives.
    cluster = Cluster()
    a, b = cluster.client(), cluster.client(connect_timeout=1.0)
    assert cluster.call(Lock(a, "/t").acquire()) is True
    waiting = Lock(b, "/t").acquire(timeout=2.0)
    cluster.run_for(0.5)
    cluster.cut(b)
    cluster.run_for(2.0)
    assert isinstance(failure(waiting), LockTimeout)
    assert len(cluster.call(a.get_children("/t"))) == 2  # b's node is still there: b is away
    cluster.heal(b)
    cluster.run_for(3.0)  # b's dial into the silence times out, the next connects: its session resumes
    assert b.connected and b.state is KazooState.CONNECTED
    assert len(cluster.call(a.get_children("/t"))) == 1


def test_cancel_fails_a_pending_acquire_and_the_lock_is_usable_again() -> None:
    cluster = Cluster()
    a, b = cluster.client(), cluster.client()
    holder, waiter = Lock(a, "/c"), Lock(b, "/c")
    cluster.call(holder.acquire())
    waiting = waiter.acquire()
    cluster.net.pump()
    waiter.cancel()
    cluster.net.pump()
    assert isinstance(failure(waiting), CancelledError)
    assert len(cluster.call(a.get_children("/c"))) == 1
    cluster.call(holder.release())
    assert cluster.call(waiter.acquire()) is True


def test_acquire_is_not_reentrant() -> None:
    cluster = Cluster()
    lock = Lock(cluster.client(), "/re")
    assert cluster.call(lock.acquire()) is True
    assert cluster.call(lock.acquire(blocking=False)) is False
    again = lock.acquire(timeout=1.0)
    cluster.run_for(1.5)
    assert result(again) is False and lock.is_acquired


def test_session_expiry_releases_the_lock_to_the_next_contender() -> None:
    cluster = Cluster(session_timeout=6.0)
    a, b = cluster.client(), cluster.client()
    holder, waiter = Lock(a, "/x"), Lock(b, "/x")
    states: list[KazooState] = []
    a.add_listener(states.append)
    cluster.call(holder.acquire())
    waiting = waiter.acquire()
    cluster.net.pump()
    cluster.cut(a)
    assert holder.is_acquired and states == [KazooState.SUSPENDED]  # may be lost: kazoo's meaning kept
    cluster.run_for(8)
    assert KazooState.LOST in states and not holder.is_acquired
    assert result(waiting) is True


def test_lost_create_reply_finds_the_protected_node_instead_of_making_another() -> None:
    cluster = Cluster()
    a = cluster.client()
    cluster.call(a.ensure_path("/p"))
    lock = Lock(a, "/p")
    lock._assured_path = True
    acquiring = lock.acquire()  # the create is written now; the server answers, the reply is lost
    link = cluster.address_of(a).last
    link.server.frames_arrived(link, link._take_frames())
    link.to_client.clear()
    link.drop()
    cluster.run_for(2)
    assert result(acquiring) is True
    assert cluster.call(a.get_children("/p")) == [lock.node]


def test_readers_share_and_writers_exclude() -> None:
    cluster = Cluster()
    r1, r2, w, r3 = (cluster.client() for _ in range(4))
    read1, read2 = ReadLock(r1, "/rw", "r1"), ReadLock(r2, "/rw", "r2")
    write, read3 = WriteLock(w, "/rw", "w"), ReadLock(r3, "/rw", "r3")
    assert cluster.call(read1.acquire()) and cluster.call(read2.acquire())
    writing = write.acquire()
    cluster.net.pump()
    reading = read3.acquire()  # behind a waiting writer: waits too
    cluster.net.pump()
    assert pending(writing) and pending(reading)
    assert cluster.call(read3.contenders()) == ["r1", "r2", "w", "r3"]
    cluster.call(read1.release())
    assert pending(writing)
    cluster.call(read2.release())
    assert result(writing) is True and pending(reading)
    cluster.call(write.release())
    assert result(reading) is True


def test_semaphore_counts_leases() -> None:
    cluster = Cluster()
    clients = [cluster.client() for _ in range(3)]
    sems = [Semaphore(c, "/sem", f"s{i}", max_leases=2) for i, c in enumerate(clients)]
    assert cluster.call(sems[0].acquire()) and cluster.call(sems[1].acquire())
    assert cluster.call(sems[2].acquire(blocking=False)) is False
    third = sems[2].acquire()
    cluster.net.pump()
    assert pending(third)
    assert sorted(cluster.call(sems[2].lease_holders())) == ["s0", "s1"]
    assert cluster.call(clients[0].get("/sem"))[0] == b"2"
    cluster.call(sems[0].release())
    assert result(third) is True
    assert sorted(cluster.call(sems[0].lease_holders())) == ["s1", "s2"]
    with pytest.raises(ValueError, match="Inconsistent max leases"):
        cluster.call(Semaphore(clients[0], "/sem", max_leases=3).acquire())


def test_semaphore_timeout_and_session_loss() -> None:
    cluster = Cluster(session_timeout=6.0)
    a, b = cluster.client(), cluster.client()
    held, other = Semaphore(a, "/s2"), Semaphore(b, "/s2")
    assert cluster.call(held.acquire())
    waiting = other.acquire(timeout=1.0)
    cluster.run_for(1.5)
    assert isinstance(failure(waiting), LockTimeout)
    waiting = other.acquire()
    cluster.net.pump()
    cluster.expire(a)
    assert not held.is_acquired and result(waiting) is True
