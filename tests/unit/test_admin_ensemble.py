"""The admin commands of ensemble peers (leader, follower, observer), on the simulated ensemble."""
from __future__ import annotations

from tests.unit.admin_stub import request
from tests.unit.test_ensemble_service import views
from zabd.views.admin.commands import PRIMARY_NAMES, run_command
from zabd.views.admin.compat import KEY_DIFFERENCES, NESTED_KEYS, expected_keys
from zabd.admin.resource import admin_root
from zabd.election.messages import PeerState
from zabd.views.ensemble_view import EnsembleView
from zabd.views.fourletter import NOT_SERVING
from zabd.testing.ensemble import SimEnsemble


def settled(seed: int) -> tuple[SimEnsemble, int, dict[int, EnsembleView]]:
    ensemble = SimEnsemble(seed, voters=3, observers=1)
    ensemble.start()
    leader = ensemble.settle()
    ensemble.write(2)
    ensemble.sim.run_for(1_000)
    return ensemble, leader, views(ensemble)


def role_of(sid: int, leader: int) -> str:
    return "leader" if sid == leader else "observer" if sid == 4 else "follower"


def test_every_command_answers_3_8_0s_keys_on_each_role() -> None:
    _ensemble, leader, by_sid = settled(11)
    for sid, view in by_sid.items():
        role = role_of(sid, leader)
        for name in PRIMARY_NAMES:
            body = run_command(name, view)
            assert body["command"] == name
            if name not in KEY_DIFFERENCES:
                assert set(body) == expected_keys(name, role), (role, name)


def test_leader_zabstate_and_voting_view() -> None:
    _ensemble, leader, by_sid = settled(12)
    for sid, view in by_sid.items():
        lead = run_command("leader", view)
        assert lead["is_leader"] is (sid == leader) and lead["leader_id"] == leader
        assert lead["leader_ip"] == "127.0.0.1"
        zab = run_command("zabstate", view)
        assert zab["myid"] == sid and zab["zabstate"] == "broadcast" and zab["voting"] is (sid != 4)
        assert zab["zab_epoch"] == view.last_zxid >> 32 and zab["last_zxid"] == f"0x{view.last_zxid:x}"
        assert set(zab["quorum_address"]) == NESTED_KEYS["zabstate.address"]
        assert zab["quorum_address"]["one"] == f"127.0.0.1:{2887 + sid}"
        current = run_command("voting_view", view)["current_config"]
        assert sorted(current) == ["1", "2", "3"]  # voters only, as 3.8
        assert all(set(m) == NESTED_KEYS["voting_view.member"] for m in current.values())
        assert current["2"]["server_addresses"] == ["127.0.0.1:2889"]
        assert current["2"]["learner_type"] == "participant"


def test_the_leader_lists_its_synced_observer_and_its_proposal_sizes() -> None:
    _ensemble, leader, by_sid = settled(13)
    observers = run_command("observers", by_sid[leader])
    assert observers["synced_observers"] == 1
    assert observers["observers"][0]["sid"] == 4
    assert set(observers["observers"][0]) == NESTED_KEYS["observers.observer"]
    assert set(run_command("srvr", by_sid[leader])["proposal_stats"]) == NESTED_KEYS["buffer_sizes"]
    assert run_command("srvr", by_sid[leader])["proposal_stats"]["max_buffer_size"] > 0
    follower = next(sid for sid in (1, 2, 3) if sid != leader)
    assert run_command("observers", by_sid[follower])["synced_observers"] == 0
    assert run_command("server_stats", by_sid[4])["server_stats"]["server_state"] == "observer"


def test_a_peer_between_roles_answers_only_what_needs_no_server() -> None:
    ensemble, leader, _ = settled(14)
    ensemble.crash(leader)
    survivor = next(sid for sid in (1, 2, 3) if sid != leader)
    assert ensemble.run_until(lambda: ensemble.peers[survivor].state is PeerState.LOOKING, 5_000)
    view = views(ensemble)[survivor]
    root = admin_root(view, view.config, None)
    assert request(root, "/commands/srvr").json() == {"command": "srvr", "error": NOT_SERVING}
    assert request(root, "/commands/lead").json() == {"command": "lead", "error": NOT_SERVING}
    zab = request(root, "/commands/zabstate").json()
    assert zab["zabstate"] == "election" and zab["is_leader"] is False and zab["error"] is None
    assert request(root, "/commands/mntr").json()["server_state"] == "looking"
