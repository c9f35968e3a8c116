"""Clients of a simulated ensemble: writes through followers, local reads, sync, sessions and ephemerals.

The clients are real ServerConnections (tests.unit.fakes.FakeClient) on the
server each peer puts in front of itself once it serves (zabd.peer.switch).
"""
from __future__ import annotations

import pytest

from tests.unit.fakes import OPEN_ACL, FakeClient
from zabd.jute.errors import Code
from zabd.jute.opcodes import CreateMode, OpCode
from zabd.jute.records import (
    CreateRequest,
    PathRequest,
    PathWatchRequest,
    SetDataRequest,
)
from zabd.serving.following import FollowerServer
from zabd.serving.leading import LeaderServer
from zabd.testing.ensemble import SimEnsemble

SEEDS = range(4)


def started(seed: int, voters: int = 3, observers: int = 0) -> tuple[SimEnsemble, int]:
    ensemble = SimEnsemble(seed, voters, observers)
    ensemble.start()
    return ensemble, ensemble.settle()


def client_on(ensemble: SimEnsemble, sid: int, **connect: object) -> FakeClient:
    server = ensemble.server(sid)
    assert server is not None, f"peer {sid} does not serve"
    client = FakeClient(server)
    client.send_connect(timeout=4000, **connect)
    assert ensemble.run_until(lambda: client.read_connect_response() is not None, 5_000)
    return client


def call(ensemble: SimEnsemble, client: FakeClient, opcode: int, body: object) -> tuple[int, bytes]:
    """Send one request and run the ensemble until its reply arrives."""
    xid = client.send(opcode, body)  # type: ignore[arg-type]
    replies: list[object] = []

    def answered() -> bool:
        replies.extend(m for m in client.messages() if getattr(m, "xid", None) == xid)
        return bool(replies)

    assert ensemble.run_until(answered, 5_000), f"no reply to xid {xid}"
    reply = replies[0]
    return reply.err, reply.body  # type: ignore[attr-defined]


def data_everywhere(ensemble: SimEnsemble, path: str) -> dict[int, bytes | None]:
    out = {}
    for sid in ensemble.live_peers():
        node = ensemble.replica(sid).tree.nodes.get(path)
        out[sid] = None if node is None else node.data
    return out


@pytest.mark.parametrize("seed", SEEDS)
def test_a_write_through_a_follower_is_answered_after_commit_and_seen_everywhere(seed: int) -> None:
    ensemble, leader = started(seed)
    follower = next(sid for sid in ensemble.sids if sid != leader)
    assert isinstance(ensemble.server(leader), LeaderServer)
    assert isinstance(ensemble.server(follower), FollowerServer)
    client = client_on(ensemble, follower)
    err, body = call(ensemble, client, OpCode.create, CreateRequest("/a", b"hello", OPEN_ACL, 0))
    assert err == 0
    assert body.endswith(b"/a")  # CreateResponse's path
    assert ensemble.run_until(lambda: set(data_everywhere(ensemble, "/a").values()) == {b"hello"}, 1_000)
    err, _ = call(ensemble, client, OpCode.create, CreateRequest("/a", b"again", OPEN_ACL, 0))
    assert err == Code.NODEEXISTS


@pytest.mark.parametrize("seed", SEEDS)
def test_sync_then_read_on_another_follower_sees_the_write(seed: int) -> None:
    ensemble, leader = started(seed, 5)
    writer_peer, reader_peer = [sid for sid in ensemble.sids if sid != leader][:2]
    writer = client_on(ensemble, writer_peer)
    reader = client_on(ensemble, reader_peer)
    assert call(ensemble, writer, OpCode.create, CreateRequest("/s", b"1", OPEN_ACL, 0))[0] == 0
    assert call(ensemble, writer, OpCode.setData, SetDataRequest("/s", b"2", -1))[0] == 0
    assert call(ensemble, reader, OpCode.sync, PathRequest("/s"))[0] == 0
    err, body = call(ensemble, reader, OpCode.getData, PathWatchRequest("/s", False))
    assert err == 0 and body[:5] == b"\x00\x00\x00\x012"  # GetDataResponse data b"2"


@pytest.mark.parametrize("seed", SEEDS)
def test_ephemeral_lives_as_long_as_its_session_on_every_replica(seed: int) -> None:
    ensemble, leader = started(seed)
    follower = next(sid for sid in ensemble.sids if sid != leader)
    client = client_on(ensemble, follower)
    err, _ = call(ensemble, client, OpCode.create, CreateRequest("/e", b"", OPEN_ACL, CreateMode.EPHEMERAL))
    assert err == 0
    assert ensemble.run_until(lambda: all(v is not None for v in data_everywhere(ensemble, "/e").values()), 1_000)
    owners = {ensemble.replica(sid).tree.nodes["/e"].ephemeral_owner for sid in ensemble.sids}
    assert owners == {client.session_id}
    call(ensemble, client, OpCode.closeSession, b"")
    assert ensemble.run_until(lambda: set(data_everywhere(ensemble, "/e").values()) == {None}, 1_000)
    assert all(client.session_id not in ensemble.replica(sid).sessions() for sid in ensemble.sids)


@pytest.mark.parametrize("seed", SEEDS)
def test_a_silent_session_is_expired_by_the_leader_everywhere(seed: int) -> None:
    ensemble, leader = started(seed)
    follower = next(sid for sid in ensemble.sids if sid != leader)
    client = client_on(ensemble, follower)
    assert call(ensemble, client, OpCode.create, CreateRequest("/x", b"", OPEN_ACL, CreateMode.EPHEMERAL))[0] == 0
    # The client goes quiet; the follower reports no touches; the leader expires it.
    ensemble.sim.run_for(10_000)
    assert set(data_everywhere(ensemble, "/x").values()) == {None}
    assert client.lost


@pytest.mark.parametrize("seed", SEEDS)
def test_session_moves_to_another_peer_and_survives_its_first_peer_crashing(seed: int) -> None:
    ensemble, leader = started(seed)
    first, second = [sid for sid in ensemble.sids if sid != leader]
    client = client_on(ensemble, first)
    assert call(ensemble, client, OpCode.create, CreateRequest("/m", b"", OPEN_ACL, CreateMode.EPHEMERAL))[0] == 0
    ensemble.crash(first)
    moved = client_on(ensemble, second, session_id=client.session_id, passwd=client.password)
    assert moved.connect_response is not None and moved.connect_response.sessionId == client.session_id
    ensemble.sim.run_for(3_000)
    assert ensemble.replica(leader).tree.nodes.get("/m") is not None
    assert call(ensemble, moved, OpCode.getData, PathWatchRequest("/m", False))[0] == 0


@pytest.mark.parametrize("seed", SEEDS)
def test_clients_of_the_leader_and_an_observer(seed: int) -> None:
    ensemble, leader = started(seed, 3, 1)
    on_leader = client_on(ensemble, leader)
    on_observer = client_on(ensemble, 4)
    assert call(ensemble, on_leader, OpCode.create, CreateRequest("/l", b"x", OPEN_ACL, 0))[0] == 0
    assert call(ensemble, on_observer, OpCode.create, CreateRequest("/o", b"y", OPEN_ACL, 0))[0] == 0
    assert call(ensemble, on_observer, OpCode.sync, PathRequest("/l"))[0] == 0
    assert call(ensemble, on_observer, OpCode.getData, PathWatchRequest("/l", False))[0] == 0
    digests = ensemble.digests()
    assert ensemble.run_until(lambda: len(set(ensemble.digests().values())) == 1, 1_000), digests


def test_an_unknown_session_is_refused_by_a_follower() -> None:
    ensemble, leader = started(0)
    follower = next(sid for sid in ensemble.sids if sid != leader)
    client = client_on(ensemble, follower, session_id=(follower << 56) | 12345, passwd=bytes(16))
    assert client.connect_response is not None and client.connect_response.timeOut == 0


def test_clients_are_closed_when_their_peer_stops_serving() -> None:
    ensemble, leader = started(1)
    follower = next(sid for sid in ensemble.sids if sid != leader)
    client = client_on(ensemble, follower)
    ensemble.crash(leader)
    assert ensemble.run_until(lambda: client.lost, 5_000)


@pytest.mark.parametrize("seed", SEEDS)
def test_a_write_from_the_peer_a_session_left_gets_sessionmoved(seed: int) -> None:
    ensemble, leader = started(seed)
    first, second = [sid for sid in ensemble.sids if sid != leader]
    stale = client_on(ensemble, first)
    assert call(ensemble, stale, OpCode.create, CreateRequest("/owner", b"", OPEN_ACL, 0))[0] == 0
    moved = client_on(ensemble, second, session_id=stale.session_id, passwd=stale.password)
    assert moved.connect_response is not None and moved.connect_response.timeOut > 0
    assert call(ensemble, stale, OpCode.setData, SetDataRequest("/owner", b"x", -1))[0] == Code.SESSIONMOVED
    assert call(ensemble, moved, OpCode.setData, SetDataRequest("/owner", b"y", -1))[0] == 0
    # On the leader too: a session that moved there refuses its old peer's writes.
    on_leader = client_on(ensemble, leader, session_id=stale.session_id, passwd=stale.password)
    assert call(ensemble, on_leader, OpCode.setData, SetDataRequest("/owner", b"z", -1))[0] == 0
    assert call(ensemble, moved, OpCode.setData, SetDataRequest("/owner", b"w", -1))[0] == Code.SESSIONMOVED


@pytest.mark.parametrize("seed", SEEDS)
def test_a_close_from_the_peer_a_session_left_gets_sessionmoved_and_the_session_lives_on(seed: int) -> None:
    """3.8 lets a closeSession through from any peer: one forwarded late by the peer a client left
    ends the session after the requests the client went on to send elsewhere (chaos seed 42576)."""
    ensemble, leader = started(seed)
    first, second = [sid for sid in ensemble.sids if sid != leader]
    stale = client_on(ensemble, first)
    moved = client_on(ensemble, second, session_id=stale.session_id, passwd=stale.password)
    assert moved.connect_response is not None and moved.connect_response.timeOut > 0
    assert call(ensemble, stale, OpCode.closeSession, b"")[0] == Code.SESSIONMOVED
    # The moved client goes on from its own xids (a follower matches a commit to its waiting
    # request by session and xid, as 3.8's does, so the stale close's xid is not reused here).
    moved.next_xid()
    assert call(ensemble, moved, OpCode.create, CreateRequest("/still", b"", OPEN_ACL, 0))[0] == 0
    assert call(ensemble, moved, OpCode.closeSession, b"")[0] == 0
