"""Local sessions (localSessionsEnabled, localSessionsUpgradingEnabled) on the simulated ensemble.

Clients are real ServerConnections on the peers' servers (tests.unit.fakes);
the txns each peer committed are read from its replica's committed log.
"""
from __future__ import annotations

import dataclasses

import pytest

from tests.unit.fakes import OPEN_ACL, FakeClient, RecordingTxnLog, make_server
from tests.unit.test_ensemble_clients import call, client_on, data_everywhere
from zabd.core.localsessions import LeaderSessions, UpgradeableSessions, server_id_of
from zabd.jute import multi
from zabd.jute.errors import Code
from zabd.jute.opcodes import CreateMode, OpCode
from zabd.jute.records import CreateRequest, PathWatchRequest, SetDataRequest
from zabd.jute.txns import Txn
from zabd.pipeline.context import Settings
from zabd.serving.standalone import ServerOptions, StandaloneServer
from zabd.testing.ensemble import SimEnsemble

SEEDS = range(3)
#: Where the client connects: the leader, a follower, or the observer (sid 4).
ROLES = ("leader", "follower", "observer")


class LocalSessionEnsemble(SimEnsemble):
    def __init__(self, seed: int, *, upgrading: bool = True) -> None:
        super().__init__(seed, 3, 1)
        self.settings = Settings(local_sessions=True, local_sessions_upgrading=upgrading)

    def server_options(self, sid: int) -> ServerOptions:
        return dataclasses.replace(super().server_options(sid), settings=self.settings)


def started(seed: int, *, upgrading: bool = True) -> tuple[LocalSessionEnsemble, int]:
    ensemble = LocalSessionEnsemble(seed, upgrading=upgrading)
    ensemble.start()
    return ensemble, ensemble.settle()


def peer_for(ensemble: SimEnsemble, leader: int, role: str) -> int:
    if role == "leader":
        return leader
    if role == "observer":
        return 4
    return next(sid for sid in (1, 2, 3) if sid != leader)


def server_of(ensemble: SimEnsemble, sid: int) -> StandaloneServer:
    server = ensemble.server(sid)
    assert server is not None
    return server


def tracker(ensemble: SimEnsemble, sid: int) -> UpgradeableSessions:
    sessions = server_of(ensemble, sid).ctx.sessions
    assert isinstance(sessions, UpgradeableSessions)
    return sessions


def committed(ensemble: SimEnsemble, sid: int) -> list[Txn]:
    return [Txn.from_bytes(txn) for _, txn in ensemble.replica(sid).committed]


def session_txns(ensemble: SimEnsemble, sid: int, session_id: int) -> list[int]:
    """The types of the txns ``session_id`` wrote that peer ``sid`` committed, in zxid order."""
    return [txn.header.type for txn in committed(ensemble, sid) if txn.header.clientId == session_id]


def last_zxids(ensemble: SimEnsemble) -> set[int]:
    return {ensemble.replica(sid).last_processed_zxid for sid in ensemble.live_peers()}


@pytest.mark.parametrize("role", ROLES)
@pytest.mark.parametrize("seed", SEEDS)
def test_a_local_session_costs_no_txn_and_can_write(seed: int, role: str) -> None:
    ensemble, leader = started(seed)
    sid = peer_for(ensemble, leader, role)
    before = last_zxids(ensemble)
    client = client_on(ensemble, sid)
    session_id = client.session_id
    assert session_id != 0 and server_id_of(session_id) == sid
    ensemble.sim.run_for(500)
    assert last_zxids(ensemble) == before  # no createSession txn anywhere
    assert tracker(ensemble, sid).is_local(session_id)
    assert all(session_id not in ensemble.replica(peer).sessions() for peer in ensemble.sids)
    # mntr's zk_local_sessions on that peer, and on no other.
    assert server_of(ensemble, sid).local_session_count() == 1
    assert all(server_of(ensemble, peer).local_session_count() == 0 for peer in ensemble.sids if peer != sid)
    # A persistent node needs no global session: the leader takes the write from a learner's local session.
    assert call(ensemble, client, OpCode.create, CreateRequest("/p", b"v", OPEN_ACL, 0))[0] == 0
    assert call(ensemble, client, OpCode.setData, SetDataRequest("/p", b"w", -1))[0] == 0
    assert ensemble.run_until(lambda: set(data_everywhere(ensemble, "/p").values()) == {b"w"}, 1_000)
    assert all(session_txns(ensemble, peer, session_id) == [OpCode.create, OpCode.setData]
               for peer in ensemble.sids)
    assert call(ensemble, client, OpCode.getData, PathWatchRequest("/p", False))[0] == 0


@pytest.mark.parametrize("role", ROLES)
@pytest.mark.parametrize("seed", SEEDS)
def test_an_ephemeral_create_upgrades_the_session_first(seed: int, role: str) -> None:
    ensemble, leader = started(seed)
    sid = peer_for(ensemble, leader, role)
    client = client_on(ensemble, sid)
    session_id = client.session_id
    err, _ = call(ensemble, client, OpCode.create, CreateRequest("/e", b"", OPEN_ACL, CreateMode.EPHEMERAL))
    assert err == 0
    assert ensemble.run_until(lambda: all(v is not None for v in data_everywhere(ensemble, "/e").values()), 1_000)
    for peer in ensemble.sids:
        # The createSession txn, then the create, on every replica.
        assert session_txns(ensemble, peer, session_id) == [OpCode.createSession, OpCode.create]
        assert ensemble.replica(peer).tree.nodes["/e"].ephemeral_owner == session_id
        assert session_id in ensemble.replica(peer).sessions()
    assert not tracker(ensemble, sid).is_local(session_id)
    assert tracker(ensemble, sid).is_global(session_id)
    assert server_of(ensemble, sid).local_session_count() == 0
    # A second ephemeral needs no second upgrade.
    assert call(ensemble, client, OpCode.create, CreateRequest("/f", b"", OPEN_ACL, CreateMode.EPHEMERAL))[0] == 0
    # Closing it is a global close now: a txn, and the ephemerals go everywhere.
    assert call(ensemble, client, OpCode.closeSession, b"")[0] == 0
    assert ensemble.run_until(lambda: set(data_everywhere(ensemble, "/e").values()) == {None}, 1_000)
    assert ensemble.run_until(lambda: all(
        session_txns(ensemble, peer, session_id)[-1] == OpCode.closeSession for peer in ensemble.sids), 1_000)


@pytest.mark.parametrize("role", ("leader", "follower"))
def test_a_multi_with_an_ephemeral_create_upgrades_too(role: str) -> None:
    ensemble, leader = started(0)
    sid = peer_for(ensemble, leader, role)
    client = client_on(ensemble, sid)
    ops = multi.write_ops([(OpCode.create, CreateRequest("/m", b"", OPEN_ACL, 0)),
                           (OpCode.create, CreateRequest("/m/e", b"", OPEN_ACL, CreateMode.EPHEMERAL_SEQUENTIAL))])
    assert call(ensemble, client, OpCode.multi, ops)[0] == 0
    assert session_txns(ensemble, leader, client.session_id) == [OpCode.createSession, OpCode.multi]
    # A multi of persistent nodes leaves a local session local.
    other = client_on(ensemble, sid)
    plain = multi.write_ops([(OpCode.create, CreateRequest("/q", b"", OPEN_ACL, 0))])
    assert call(ensemble, other, OpCode.multi, plain)[0] == 0
    assert tracker(ensemble, sid).is_local(other.session_id)


@pytest.mark.parametrize("role", ROLES)
@pytest.mark.parametrize("seed", SEEDS)
def test_an_ephemeral_without_upgrading_is_ephemeral_on_local_session(seed: int, role: str) -> None:
    ensemble, leader = started(seed, upgrading=False)
    sid = peer_for(ensemble, leader, role)
    client = client_on(ensemble, sid)
    err, _ = call(ensemble, client, OpCode.create, CreateRequest("/e", b"", OPEN_ACL, CreateMode.EPHEMERAL))
    assert err == Code.EPHEMERALONLOCALSESSION
    assert set(data_everywhere(ensemble, "/e").values()) == {None}
    # As in 3.8 the refusal is an error txn; no createSession was ever sent.
    assert OpCode.createSession not in session_txns(ensemble, leader, client.session_id)
    assert tracker(ensemble, sid).is_local(client.session_id)
    # The session goes on working.
    assert call(ensemble, client, OpCode.create, CreateRequest("/p", b"", OPEN_ACL, 0))[0] == 0


@pytest.mark.parametrize("role", ROLES)
@pytest.mark.parametrize("seed", SEEDS)
def test_close_of_a_local_session_costs_no_txn(seed: int, role: str) -> None:
    ensemble, leader = started(seed)
    sid = peer_for(ensemble, leader, role)
    client = client_on(ensemble, sid)
    assert call(ensemble, client, OpCode.create, CreateRequest("/p", b"", OPEN_ACL, 0))[0] == 0
    ensemble.sim.run_for(500)
    before = last_zxids(ensemble)
    err, _ = call(ensemble, client, OpCode.closeSession, b"")
    assert err == 0
    assert client.lost
    ensemble.sim.run_for(500)
    assert last_zxids(ensemble) == before
    assert client.session_id not in tracker(ensemble, sid)
    assert not tracker(ensemble, sid).is_local(client.session_id)
    assert server_of(ensemble, sid).local_session_count() == 0


@pytest.mark.parametrize("role", ROLES)
@pytest.mark.parametrize("seed", SEEDS)
def test_a_silent_local_session_expires_on_its_peer_without_a_txn(seed: int, role: str) -> None:
    ensemble, leader = started(seed)
    sid = peer_for(ensemble, leader, role)
    client = client_on(ensemble, sid)
    before = last_zxids(ensemble)
    assert server_of(ensemble, sid).local_session_count() == 1
    ensemble.sim.run_for(10_000)
    assert client.lost
    assert server_of(ensemble, sid).local_session_count() == 0
    assert last_zxids(ensemble) == before


@pytest.mark.parametrize("seed", SEEDS)
def test_a_local_session_is_unknown_on_another_peer(seed: int) -> None:
    ensemble, leader = started(seed)
    first, second = [sid for sid in (1, 2, 3) if sid != leader]
    client = client_on(ensemble, first)
    for elsewhere in (second, leader, 4):
        moved = client_on(ensemble, elsewhere, session_id=client.session_id, passwd=client.password)
        assert moved.connect_response is not None and moved.connect_response.timeOut == 0  # expired
    # Back on its own peer it is still alive.
    client.disconnect()
    again = client_on(ensemble, first, session_id=client.session_id, passwd=client.password)
    assert again.connect_response is not None and again.connect_response.sessionId == client.session_id
    assert again.connect_response.timeOut > 0
    assert call(ensemble, again, OpCode.getData, PathWatchRequest("/", False))[0] == 0


def test_an_upgraded_session_moves_like_a_global_one() -> None:
    ensemble, leader = started(1)
    first, second = [sid for sid in (1, 2, 3) if sid != leader]
    client = client_on(ensemble, first)
    assert call(ensemble, client, OpCode.create, CreateRequest("/e", b"", OPEN_ACL, CreateMode.EPHEMERAL))[0] == 0
    moved = client_on(ensemble, second, session_id=client.session_id, passwd=client.password)
    assert moved.connect_response is not None and moved.connect_response.timeOut > 0
    assert call(ensemble, moved, OpCode.setData, SetDataRequest("/e", b"x", -1))[0] == 0


def test_the_leader_lets_learners_local_sessions_write_but_not_its_own_lost_ones() -> None:
    sessions = LeaderSessions(200, 1, 0, local_enabled=True)
    foreign = (2 << 56) | 7
    assert sessions.is_alive(foreign)  # maybe peer 2's local session
    assert not sessions.is_alive((1 << 56) | 7)  # one of ours we no longer know: expired
    mine = sessions.create(4000, 0)
    assert sessions.is_local(mine) and sessions.is_alive(mine) and not sessions.is_global(mine)
    assert sessions.upgrade(mine, 0) == 4000
    assert sessions.is_global(mine) and not sessions.is_local(mine)
    assert sessions.upgrade(mine, 0) is None
    without = LeaderSessions(200, 1, 0, local_enabled=False)
    assert not without.is_alive(foreign)


def test_sessions_expire_from_both_tables_and_only_globals_are_durable() -> None:
    sessions = UpgradeableSessions(100, 3, 0, local_enabled=True)
    sessions.add(11, 1000, 0)
    local = sessions.create(500, 0)
    assert sessions.sessions() == {11: 1000} and len(sessions) == 1 and sessions.local_count() == 1
    assert sessions.next_expiry_ms() == 600
    assert list(sessions.expiry_buckets().values()) == [[local], [11]]  # by time
    assert sessions.expire(700) == [local]
    assert sessions.is_closing(local) and not sessions.touch(local, 700)
    assert sessions.expire(1200) == [11]
    sessions.remove(local)
    assert sessions.local_count() == 0


def test_a_standalone_server_ignores_local_sessions() -> None:
    txn_log = RecordingTxnLog()
    server, _ = make_server(txn_log=txn_log, settings=Settings(local_sessions=True, local_sessions_upgrading=True))
    client = FakeClient(server)
    client.send_connect(timeout=10000)
    assert client.read_connect_response() is None  # it waits for its createSession txn
    txn_log.make_durable()
    assert client.read_connect_response() is not None
    assert [txn.header.type for txn in txn_log.appended] == [OpCode.createSession]
    assert server.local_session_count() == 0
    assert client.session_id in server.ctx.sessions
