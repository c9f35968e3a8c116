"""Election, LeaderLatch, Barrier and DoubleBarrier on the fake network and clock."""
from __future__ import annotations

from typing import Any

from twisted.internet.defer import Deferred

from tests.unit.client_helpers import failure, pending, result
from tests.unit.recipe_helpers import Cluster
from zabd.client import ConnectionLoss, KazooState
from zabd.client.recipes import Barrier, DoubleBarrier, Election, LeaderLatch, SessionInterrupted, while_connected


def test_election_runs_one_leader_at_a_time_in_order() -> None:
    cluster = Cluster()
    clients = [cluster.client() for _ in range(3)]
    elections = [Election(c, "/elect", f"e{i}") for i, c in enumerate(clients)]
    work: dict[int, Deferred[str]] = {}

    def lead(i: int) -> Deferred[str]:
        work[i] = Deferred()
        return work[i]
    runs = []
    for i, election in enumerate(elections):
        runs.append(election.run(lead, i))
        cluster.net.pump()
    assert list(work) == [0]
    assert cluster.call(elections[2].contenders()) == ["e0", "e1", "e2"]
    work[0].callback("done 0")
    cluster.net.pump()
    assert result(runs[0]) == "done 0" and list(work) == [0, 1]
    elections[2].cancel()
    cluster.net.pump()
    assert result(runs[2]) is None
    work[1].callback("done 1")
    cluster.net.pump()
    assert result(runs[1]) == "done 1" and list(work) == [0, 1]


def test_work_failing_with_connection_loss_is_an_interruption() -> None:
    # A holder's write can fail with ConnectionLoss as the connection drops: it must
    # end as SessionInterrupted, like a cancellation, so the holder releases and goes on.
    cluster = Cluster()
    client = cluster.client()

    async def write() -> None:
        raise ConnectionLoss()  # as a request in flight fails when its connection drops
    error = failure(while_connected(client, write))
    assert isinstance(error, SessionInterrupted)


def test_leader_function_is_cancelled_on_suspended_and_the_next_takes_over_after_expiry() -> None:
    cluster = Cluster(session_timeout=6.0)
    a, b = cluster.client(), cluster.client()
    stopped: list[str] = []

    async def lead_forever(name: str) -> None:
        try:
            await Deferred()
        finally:
            stopped.append(name)
    first = Election(a, "/e2").run(lead_forever, "a")
    cluster.net.pump()
    second = Election(b, "/e2").run(lambda: "b led")
    cluster.net.pump()
    cluster.cut(a)
    assert stopped == ["a"]  # at the moment of SUSPENDED, not at the expiry
    error = failure(first)
    assert isinstance(error, SessionInterrupted) and error.state is KazooState.SUSPENDED
    assert pending(second)
    cluster.run_for(8)
    assert result(second) == "b led"


def test_leader_latch_follows_the_connection_and_hands_over_on_stop() -> None:
    cluster = Cluster()
    a, b = cluster.client(), cluster.client()
    events: list[str] = []
    first = LeaderLatch(a, "/latch", "a", on_gained=lambda: events.append("a+"), on_lost=lambda: events.append("a-"))
    second = LeaderLatch(b, "/latch", "b", on_gained=lambda: events.append("b+"))
    first.start()
    cluster.net.pump()
    second.start()
    waiting = second.wait_for_leadership(timeout=1.0)
    cluster.run_for(1.5)
    assert first.is_leader and not second.is_leader and result(waiting) is False
    cluster.cut(a)
    assert not first.is_leader and events == ["a+", "a-"]
    cluster.heal(a)
    cluster.run_for(2)  # the same session comes back: still first, leader again
    assert first.is_leader and events == ["a+", "a-", "a+"] and not second.is_leader
    waiting = second.wait_for_leadership()
    stopped = first.stop()
    cluster.net.pump()
    assert result(stopped) is None and not first.is_leader
    assert result(waiting) is True and events == ["a+", "a-", "a+", "a-", "b+"]
    assert cluster.call(second.contenders()) == ["b"]


def test_leader_latch_after_session_loss_queues_again_behind_the_new_leader() -> None:
    cluster = Cluster(session_timeout=6.0)
    a, b = cluster.client(), cluster.client()
    first, second = LeaderLatch(a, "/l2", "a"), LeaderLatch(b, "/l2", "b")
    first.start()
    cluster.net.pump()
    second.start()
    cluster.net.pump()
    cluster.expire(a)
    assert second.is_leader and not first.is_leader
    assert cluster.call(a.get_children("/l2")) and cluster.call(first.contenders()) == ["b", "a"]


def test_barrier_waits_until_removed() -> None:
    cluster = Cluster()
    a, b = cluster.client(), cluster.client()
    barrier = Barrier(a, "/bar")
    assert cluster.call(Barrier(b, "/bar").wait()) is True  # no barrier: pass
    cluster.call(barrier.create())
    waiting = Barrier(b, "/bar").wait()
    timed = Barrier(b, "/bar").wait(timeout=1.0)
    cluster.net.pump()
    cluster.call(a.set("/bar", b"data change: keep waiting"))
    cluster.run_for(1.5)
    assert pending(waiting) and result(timed) is False
    assert cluster.call(barrier.remove()) is True
    assert result(waiting) is True
    assert cluster.call(barrier.remove()) is False


def test_double_barrier_enters_and_leaves_together() -> None:
    cluster = Cluster()
    clients = [cluster.client() for _ in range(3)]
    members = [DoubleBarrier(c, "/db", 3, f"m{i}") for i, c in enumerate(clients)]
    entering: list[Deferred[Any]] = []
    for member in members[:2]:
        entering.append(member.enter())
        cluster.net.pump()
    assert all(pending(d) for d in entering)
    entering.append(members[2].enter())
    cluster.net.pump()
    assert [result(d) for d in entering] == [None, None, None] and all(m.participating for m in members)
    leaving = [members[0].leave(), members[1].leave()]
    cluster.net.pump()
    assert all(pending(d) for d in leaving)
    leaving.append(members[2].leave())
    cluster.net.pump()
    assert [result(d) for d in leaving] == [None, None, None]
    assert cluster.call(clients[0].get_children("/db")) == []
