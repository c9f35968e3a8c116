"""What an ensemble peer shows its clients: Mode and quorum figures, and no sessions between roles."""
from __future__ import annotations

from twisted.internet.address import IPv4Address
from twisted.internet.testing import StringTransport

from tests.unit.fakes import connect_request, frame
from zabd.election.messages import PeerState
from zabd.server.client_port import ClientPortFactory
from zabd.config.zoocfg import default_config
from zabd.views.ensemble_view import EnsembleView
from zabd.peer.ensemble import client_server
from zabd.views.fourletter import COMMANDS, NOT_SERVING, render
from zabd.serving.standalone import StandaloneServer
from zabd.testing.ensemble import SimEnsemble

WORDS = frozenset({"srvr", "stat", "mntr", "ruok"})


def views(ensemble: SimEnsemble) -> dict[int, EnsembleView]:
    out = {}
    for sid, peer in ensemble.peers.items():
        idle = StandaloneServer(ensemble.server_options(sid), lambda: ensemble.sim.now_ms / 1000.0)
        view = EnsembleView(peer, idle, default_config())
        view.follow(ensemble.server(sid))
        out[sid] = view
    return out


def mntr(view: EnsembleView) -> dict[str, str]:
    text = render("mntr", view, WORDS)
    return dict(line.split("\t", 1) for line in text.splitlines())


def test_srvr_and_mntr_report_each_role_and_the_leaders_quorum_figures() -> None:
    ensemble = SimEnsemble(5, voters=3, observers=1)
    ensemble.start()
    leader = ensemble.settle()
    assert "Zxid: 0x100000000\n" in render("srvr", views(ensemble)[leader], WORDS)  # the new epoch, before writes
    ensemble.write(3)
    ensemble.sim.run_for(1_000)
    by_sid = views(ensemble)
    modes = {sid: render("srvr", view, WORDS).split("Mode: ")[1].split("\n")[0] for sid, view in by_sid.items()}
    assert modes == {sid: "leader" if sid == leader else "observer" if sid == 4 else "follower"
                     for sid in ensemble.sids}
    assert f"Zxid: 0x{(1 << 32) + 4:x}" in render("srvr", by_sid[leader], WORDS)  # createSession + 3 writes
    figures = mntr(by_sid[leader])
    assert figures["zk_server_state"] == "leader"
    assert figures["zk_peer_state"] == "leading - broadcast"
    assert figures["zk_synced_followers"] == "2" and figures["zk_synced_observers"] == "1"
    assert int(figures["zk_max_proposal_size"]) >= int(figures["zk_min_proposal_size"]) > 0
    assert "Proposal sizes last/min/max" in render("stat", by_sid[leader], WORDS)
    follower = next(sid for sid in (1, 2, 3) if sid != leader)
    assert "zk_synced_followers" not in mntr(by_sid[follower])


def test_a_peer_between_roles_answers_words_but_no_sessions() -> None:
    ensemble = SimEnsemble(6)
    ensemble.start()
    leader = ensemble.settle()
    ensemble.crash(leader)
    survivor = next(sid for sid in ensemble.sids if sid != leader)
    assert ensemble.run_until(lambda: ensemble.peers[survivor].state is PeerState.LOOKING, 5_000)
    view = views(ensemble)[survivor]
    assert render("srvr", view, WORDS).startswith(NOT_SERVING)
    assert render("ruok", view, WORDS) == "imok"

    factory = ClientPortFactory(None, lambda word, arg: render(word, view, WORDS), COMMANDS, 4096, 60)
    proto = factory.buildProtocol(IPv4Address("TCP", "127.0.0.1", 40001))
    assert proto is not None
    transport = StringTransport()
    proto.makeConnection(transport)
    proto.dataReceived(frame(connect_request()))
    assert transport.disconnecting and transport.value() == b""


def test_connections_made_between_roles_give_back_their_slot() -> None:
    factory = ClientPortFactory(None, lambda word, arg: NOT_SERVING, COMMANDS, 4096, 2)
    for _ in range(5):
        proto = factory.buildProtocol(IPv4Address("TCP", "127.0.0.1", 40002))
        assert proto is not None, "a slot leaked"
        proto.makeConnection(StringTransport())
        proto.connectionLost(None)
    assert factory.per_ip == {}


def test_leader_serves_no_keeps_client_sessions_off_the_leader_only() -> None:
    ensemble = SimEnsemble(7)
    ensemble.start()
    leader = ensemble.settle()
    follower = next(sid for sid in ensemble.sids if sid != leader)
    for sid, serves in ((leader, False), (follower, False)):
        switch, peer = ensemble.switches[sid], ensemble.peers[sid]
        answered = client_server(switch, peer, leader_serves=serves)
        assert (answered is None) == (sid == leader)
        assert client_server(switch, peer, leader_serves=True) is switch.server is not None
