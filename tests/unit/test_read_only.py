"""Read-only mode on the simulated ensemble: a peer cut off from its quorum serves read-only clients.

The peer under test polls its ServingSwitch every 100 ms of virtual time, as
zabd.peer.ensemble does on the reactor. Its two partners crash; after
3.8's grace period (max(2000 ms, tickTime)) it runs a ReadOnlyServer until
they come back.
"""
from __future__ import annotations

import pytest

from tests.unit.fakes import OPEN_ACL, FakeClient
from zabd.core.sessions import session_password
from zabd.election.messages import PeerState
from zabd.jute.errors import Code
from zabd.jute.opcodes import OpCode
from zabd.jute.records import (
    CheckVersionRequest,
    CreateRequest,
    DeleteRequest,
    GetDataResponse,
    PathRequest,
    PathWatchRequest,
    SetDataRequest,
)
from zabd.config.zoocfg import default_config
from zabd.views.ensemble_view import EnsembleView
from zabd.views.fourletter import render
from zabd.serving.following import FollowerServer
from zabd.serving.leading import LeaderServer
from zabd.serving.readonly import ReadOnlyServer, read_only_grace_ms
from zabd.serving.standalone import StandaloneServer
from zabd.testing.ensemble import SIM_TIMING, SimEnsemble

GRACE_MS = read_only_grace_ms(SIM_TIMING.tick_ms)
POLL_MS = 100
WORDS = frozenset({"srvr", "stat", "isro", "mntr"})


class ReadOnlySimEnsemble(SimEnsemble):
    """Every peer has read-only mode on and polls its switch, as a twistd peer does."""

    def _boot(self, sid: int) -> None:
        super()._boot(sid)
        switch, peer, scope = self.switches[sid], self.peers[sid], self.scopes[sid]
        switch.read_only_after_ms = GRACE_MS

        def poll() -> None:
            switch.poll(peer)
            scope.call_later(POLL_MS, poll)

        scope.call_later(POLL_MS, poll)


def partitioned(seed: int) -> tuple[ReadOnlySimEnsemble, int, int]:
    """Three peers with /n1../n3 written; then all but one follower crash. Returns (ensemble, lone, lost_at_ms)."""
    ensemble = ReadOnlySimEnsemble(seed)
    ensemble.start()
    leader = ensemble.settle()
    zxids = ensemble.write(3)
    assert ensemble.run_until(lambda: ensemble.committed_everywhere(zxids[-1]), 5_000)
    lone = next(sid for sid in ensemble.sids if sid != leader)
    lost_at = ensemble.sim.now_ms
    for sid in ensemble.sids:
        if sid != lone:
            ensemble.crash(sid)
    assert ensemble.run_until(lambda: ensemble.peers[lone].state is PeerState.LOOKING, 10_000)
    return ensemble, lone, lost_at


def read_only_server(ensemble: SimEnsemble, sid: int) -> ReadOnlyServer:
    assert ensemble.run_until(lambda: isinstance(ensemble.server(sid), ReadOnlyServer), GRACE_MS + 15_000)
    server = ensemble.server(sid)
    assert isinstance(server, ReadOnlyServer)
    return server


def ro_client(server: StandaloneServer, **connect: object) -> FakeClient:
    client = FakeClient(server)
    response = client.handshake(timeout=4000, read_only=True, **connect)
    assert response is not None and response.timeOut > 0
    assert client.connect_extra == b"\x01"  # the ConnectResponse's readOnly byte
    return client


@pytest.mark.parametrize("seed", range(3))
def test_a_cut_off_peer_serves_reads_after_the_grace_period_and_refuses_writes(seed: int) -> None:
    ensemble, lone, lost_at = partitioned(seed)
    looking_at = ensemble.sim.now_ms
    ensemble.sim.run_for(max(0, lost_at + GRACE_MS - POLL_MS - 1 - looking_at))
    assert ensemble.server(lone) is None  # still within the grace period
    server = read_only_server(ensemble, lone)
    assert ensemble.sim.now_ms >= looking_at + GRACE_MS - POLL_MS
    replica = ensemble.replica(lone)
    before = (replica.last_processed_zxid, replica.tree.digest.value)

    client = ro_client(server)
    result = client.call(OpCode.getData, PathWatchRequest("/n1", False))
    assert result.decode(GetDataResponse).data == b"v1"
    assert result.zxid == before[0]
    refused = [
        (OpCode.create, CreateRequest("/new", b"", OPEN_ACL, 0)),
        (OpCode.setData, SetDataRequest("/n1", b"x", -1)),
        (OpCode.delete, DeleteRequest("/n2", -1)),
        (OpCode.sync, PathRequest("/")),
        (OpCode.check, CheckVersionRequest("/n1", -1)),
    ]
    for opcode, body in refused:
        result = client.call(opcode, body)
        assert (result.err, result.zxid) == (Code.NOTREADONLY, before[0]), opcode
    assert client.call(OpCode.exists, PathWatchRequest("/n3", False)).err == 0
    assert not client.lost
    assert (replica.last_processed_zxid, replica.tree.digest.value) == before


def test_clients_that_did_not_ask_for_read_only_are_closed_unanswered() -> None:
    ensemble, lone, _ = partitioned(11)
    server = read_only_server(ensemble, lone)
    for read_only in (False, None):  # None: an old client without the byte
        client = FakeClient(server)
        client.send_connect(timeout=4000, read_only=read_only)
        assert client.lost and client.transport.written == b""


def test_sessions_are_local_global_ones_are_refused_and_unknown_ones_expired() -> None:
    ensemble, lone, _ = partitioned(12)
    server = read_only_server(ensemble, lone)
    global_session = ensemble._session
    assert global_session is not None and global_session in ensemble.replica(lone).sessions()
    refused = FakeClient(server)
    refused.send_connect(timeout=4000, read_only=True, session_id=global_session,
                         passwd=session_password(global_session))
    assert refused.lost and refused.transport.written == b""

    first = ro_client(server)
    assert first.session_id not in ensemble.replica(lone).sessions()  # never persisted
    assert first.session_id >> 56 == lone  # the peer's id in the top byte, as ZooKeeper's ids
    again = ro_client(server, session_id=first.session_id, passwd=first.password)
    assert again.session_id == first.session_id and first.lost

    unknown = FakeClient(server)
    response = unknown.handshake(timeout=4000, read_only=True, session_id=first.session_id + 1000,
                                 passwd=session_password(first.session_id + 1000))
    assert response is not None and response.timeOut == 0 and unknown.connect_extra == b"\x01"
    assert unknown.lost

    result = again.call(OpCode.closeSession)
    assert result.err == 0 and again.lost
    assert first.session_id not in server.ctx.sessions


def test_a_silent_local_session_expires_and_its_connection_closes() -> None:
    ensemble, lone, _ = partitioned(13)
    server = read_only_server(ensemble, lone)
    client = ro_client(server)
    assert ensemble.run_until(lambda: client.lost, 4000 + 2 * SIM_TIMING.tick_ms + 1_000)
    assert client.session_id not in server.ctx.sessions


@pytest.mark.parametrize("seed", range(3))
def test_the_read_only_server_goes_away_when_the_quorum_returns(seed: int) -> None:
    ensemble, lone, _ = partitioned(20 + seed)
    server = read_only_server(ensemble, lone)
    client = ro_client(server)
    for sid in ensemble.sids:
        if sid != lone:
            ensemble.restart(sid)
    ensemble.settle()
    assert client.lost and server.shut_down
    role_server = ensemble.server(lone)
    assert isinstance(role_server, (FollowerServer, LeaderServer))
    # The read-only session was local to a server that is gone: the quorum never knew it.
    back = FakeClient(role_server)
    back.send_connect(timeout=4000, read_only=True, session_id=client.session_id, passwd=client.password)
    assert ensemble.run_until(lambda: back.read_connect_response() is not None, 5_000)
    assert back.connect_response is not None and back.connect_response.timeOut == 0
    assert back.connect_extra == b"\x00"
    fresh = FakeClient(role_server)
    fresh.send_connect(timeout=4000, read_only=True)
    assert ensemble.run_until(lambda: fresh.read_connect_response() is not None, 5_000)
    assert fresh.connect_response is not None and fresh.connect_response.timeOut > 0


def test_nothing_is_answered_once_the_peer_stops_looking() -> None:
    ensemble, lone, _ = partitioned(30)
    server = read_only_server(ensemble, lone)
    client = ro_client(server)
    looking = [False]
    server.still_looking = lambda: looking[0]  # the peer has just decided on a role
    client.send(OpCode.getData, PathWatchRequest("/n1", False))
    assert client.messages() == [] and client.lost and server.shut_down
    late = FakeClient(server)
    late.send_connect(timeout=4000, read_only=True)
    assert late.lost and late.transport.written == b""


def test_four_letter_words_show_the_read_only_mode() -> None:
    ensemble, lone, _ = partitioned(40)
    switch = ensemble.switches[lone]
    view = EnsembleView(ensemble.peers[lone], StandaloneServer(ensemble.server_options(lone),
                                                               lambda: ensemble.sim.now_ms / 1000.0),
                        default_config())
    view.follow(switch.server)
    assert render("isro", view, WORDS) == "null"  # looking, within the grace period
    server = read_only_server(ensemble, lone)
    view.follow(server)
    ro_client(server)
    srvr = render("srvr", view, WORDS)
    assert "READ-ONLY mode; serving only read-only clients\n" in srvr and "Mode: read-only\n" in srvr
    assert render("isro", view, WORDS) == "ro"
    figures = dict(line.split("\t", 1) for line in render("mntr", view, WORDS).splitlines())
    assert figures["zk_server_state"] == "read-only"
    assert (figures["zk_local_sessions"], figures["zk_global_sessions"]) == ("1", "0")
    for sid in ensemble.sids:
        if sid != lone:
            ensemble.restart(sid)
    ensemble.settle()
    view.follow(switch.server)
    assert render("isro", view, WORDS) == "rw"
    assert "Mode: read-only" not in render("srvr", view, WORDS)


def test_without_read_only_mode_a_cut_off_peer_serves_nobody() -> None:
    ensemble = SimEnsemble(50)
    ensemble.start()
    leader = ensemble.settle()
    lone = next(sid for sid in ensemble.sids if sid != leader)
    for sid in ensemble.sids:
        if sid != lone:
            ensemble.crash(sid)
    ensemble.sim.run_for(GRACE_MS + 5_000)
    switch = ensemble.switches[lone]
    assert switch.poll(ensemble.peers[lone]) is False and switch.server is None
