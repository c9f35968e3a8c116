"""Dynamic reconfiguration on the simulated ensemble: configs, the reconfig proposal, joins and removals."""
from __future__ import annotations

import pytest

from zabd.core.datatree import CONFIG_NODE
from zabd.membership.verifier import QuorumMaj, verifier_from_text
from zabd.jute.errors import Code
from zabd.quorum.configchange import designated_leader, restamped
from zabd.core.zxid import epoch_of, first_zxid_of
from zabd.testing.ensemble import SimEnsemble
from zabd.testing.reconfigsim import join, reconfig, server_line, sim_member

SEEDS = range(4)


def _ensemble(seed: int, voters: int = 3) -> SimEnsemble:
    ensemble = SimEnsemble(seed, voters, reconfig_enabled=True)
    ensemble.start()
    ensemble.settle()
    return ensemble


def _configs(ensemble: SimEnsemble) -> dict[int, bytes]:
    return {sid: peer.verifier.config_text() for sid, peer in ensemble.live_peers().items()}


def _config_nodes(ensemble: SimEnsemble) -> dict[int, bytes | None]:
    nodes = {}
    for sid in ensemble.live_peers():
        node = ensemble.replica(sid).tree.get(CONFIG_NODE)
        nodes[sid] = None if node is None else node.data
    return nodes


def _committed(ensemble: SimEnsemble, zxid: int) -> None:
    assert zxid > 0, f"reconfig refused with {Code(zxid).name}"
    assert ensemble.run_until(lambda: ensemble.leader() is not None and ensemble.committed_everywhere(zxid))


def _agree(ensemble: SimEnsemble) -> None:
    """Every live peer has the same history, tree and config."""
    assert ensemble.run_until(lambda: len(set(ensemble.digests().values())) == 1 and len(set(_configs(ensemble).values())) == 1)
    assert len(set(_config_nodes(ensemble).values())) == 1


# -- the pure rules ----------------------------------------------------------


def test_restamped_keeps_the_members() -> None:
    verifier = QuorumMaj([sim_member(1), sim_member(2), sim_member(3)])
    stamped = restamped(verifier, 0x100000000)
    assert stamped.version == 0x100000000
    assert stamped.all_members == verifier.all_members
    assert stamped.config_text().endswith(b"\nversion=100000000")


def test_designated_leader_is_me_while_i_vote() -> None:
    new = QuorumMaj([sim_member(1), sim_member(2), sim_member(3)])
    assert designated_leader(2, new, {1, 2, 3}, []) == 2


def test_designated_leader_acked_the_most_that_followed() -> None:
    new = QuorumMaj([sim_member(1), sim_member(2), sim_member(3)])
    # 4 leaves; of the voters that acked the reconfig, only 3 acked the next proposal too
    assert designated_leader(4, new, {1, 2, 3, 4}, [{3, 4}, {1, 4}]) == 3
    assert designated_leader(4, new, {1, 2, 3, 4}, []) == 1


# -- the first version (ZOOKEEPER-1783) --------------------------------------


@pytest.mark.parametrize("seed", SEEDS)
def test_a_static_config_gets_the_first_epoch_as_its_version(seed: int) -> None:
    ensemble = _ensemble(seed)
    leader = ensemble.leader()
    assert leader is not None
    epoch = epoch_of(ensemble.replica(leader).last_processed_zxid) or ensemble.peers[leader].epochs_served[-1]
    assert {peer.verifier.version for peer in ensemble.live_peers().values()} == {first_zxid_of(epoch)}
    nodes = _config_nodes(ensemble)
    assert set(nodes.values()) == {ensemble.peers[leader].verifier.config_text()}


# -- reconfig requests ----------------------------------------------------------


@pytest.mark.parametrize("seed", SEEDS)
def test_adding_and_removing_an_observer_that_never_runs(seed: int) -> None:
    ensemble = _ensemble(seed)
    before = ensemble.peers[ensemble.settle()].verifier
    line = server_line(100, observer=True)
    zxid = reconfig(ensemble, joining=line)
    _committed(ensemble, zxid)
    _agree(ensemble)
    after = next(iter(ensemble.live_peers().values())).verifier
    assert after.version == zxid > before.version
    assert 100 in after.observing_members and after.voting_members == before.voting_members
    assert line.encode() in after.config_text()
    zxid = reconfig(ensemble, leaving="100")
    _committed(ensemble, zxid)
    _agree(ensemble)
    assert 100 not in next(iter(ensemble.live_peers().values())).verifier.all_members
    ensemble.write(5)
    _agree(ensemble)


@pytest.mark.parametrize("seed", SEEDS[:2])
def test_refusals_come_in_3_8_order(seed: int) -> None:
    ensemble = _ensemble(seed)
    version = ensemble.peers[ensemble.settle()].verifier.version
    assert reconfig(ensemble, joining="some thing", as_super=False) == Code.BADARGUMENTS
    assert reconfig(ensemble, joining=server_line(9), from_config=version + 1, as_super=False) == Code.BADVERSION
    assert reconfig(ensemble, joining=server_line(9, observer=True), as_super=False) == Code.NOAUTH
    # three new voters that are not running: no synced quorum of six
    joining = ",".join(server_line(sid) for sid in (7, 8, 9))
    assert reconfig(ensemble, joining=joining) == Code.NEWCONFIGNOQUORUM
    first = reconfig(ensemble, joining=server_line(9, observer=True), from_config=version)
    assert first > 0
    assert reconfig(ensemble, leaving="9") == Code.RECONFIGINPROGRESS  # the first is not committed yet
    _committed(ensemble, first)


def test_reconfig_disabled() -> None:
    ensemble = SimEnsemble(1, 3)
    ensemble.start()
    ensemble.settle()
    assert reconfig(ensemble, joining=server_line(9, observer=True)) == Code.RECONFIGDISABLED


# -- joins and removals ----------------------------------------------------------


@pytest.mark.parametrize("seed", SEEDS)
def test_three_to_five_to_three_under_writes(seed: int) -> None:
    ensemble = _ensemble(seed)
    ensemble.write(20)
    join(ensemble, 4)
    join(ensemble, 5)
    assert ensemble.run_until(lambda: ensemble.all_serving([1, 2, 3, 4, 5]))
    ensemble.write(20)
    zxid = reconfig(ensemble, joining=",".join(server_line(sid) for sid in (4, 5)))
    ensemble.write(20)
    _committed(ensemble, zxid)
    _agree(ensemble)
    assert all(peer.verifier.voting_members == {1, 2, 3, 4, 5} for peer in ensemble.live_peers().values())

    # five voters survive two crashes
    old_leader = ensemble.settle()
    others = [sid for sid in (1, 2, 3, 4, 5) if sid != old_leader]
    ensemble.crash(others[0])
    ensemble.crash(others[1])
    ensemble.write(10)
    last = ensemble.write(1)[0]
    assert ensemble.run_until(lambda: ensemble.committed_everywhere(last))
    ensemble.restart(others[0])
    ensemble.restart(others[1])
    ensemble.settle()

    # back to three, the leader among those removed
    leader = ensemble.settle()
    leaving = [leader] + [sid for sid in (1, 2, 3, 4, 5) if sid != leader][:1]
    remaining = sorted(set(range(1, 6)) - set(leaving))
    zxid = reconfig(ensemble, leaving=",".join(map(str, leaving)))
    assert zxid > 0
    assert ensemble.run_until(lambda: ensemble.leader() in remaining and ensemble.all_serving(remaining)
                              and ensemble.committed_everywhere(zxid, remaining))
    last = ensemble.write(10)[-1]
    assert ensemble.run_until(lambda: ensemble.committed_everywhere(last))
    _agree(ensemble)
    for peer in ensemble.live_peers().values():
        assert peer.verifier.voting_members == set(remaining)
    # a removed peer follows without a vote (3.8's non-voting follower)
    for sid in leaving:
        assert ensemble.peers[sid].serving and sid not in ensemble.peers[sid].verifier.all_members


@pytest.mark.parametrize("seed", SEEDS[:2])
def test_a_restarted_peer_keeps_the_new_config(seed: int) -> None:
    ensemble = _ensemble(seed)
    zxid = reconfig(ensemble, joining=server_line(50, observer=True))
    _committed(ensemble, zxid)
    follower = next(sid for sid in (1, 2, 3) if sid != ensemble.leader())
    ensemble.crash(follower)
    ensemble.restart(follower)
    ensemble.settle()
    assert ensemble.peers[follower].verifier.version == zxid
    assert verifier_from_text(_config_nodes(ensemble)[follower] or b"").version == zxid


@pytest.mark.parametrize("seed", SEEDS[:2])
def test_a_running_observer_takes_the_new_config_and_can_become_a_voter(seed: int) -> None:
    ensemble = SimEnsemble(seed, 3, observers=1, reconfig_enabled=True)
    ensemble.start()
    ensemble.settle()
    zxid = reconfig(ensemble, joining=server_line(100, observer=True))
    _committed(ensemble, zxid)  # the observer heard INFORMANDACTIVATE
    _agree(ensemble)
    assert 100 in ensemble.peers[4].verifier.observing_members
    # the observer becomes a participant: it leaves its role and comes back following
    zxid = reconfig(ensemble, joining=server_line(4))
    _committed(ensemble, zxid)
    assert ensemble.run_until(lambda: ensemble.all_serving() and not ensemble.peers[4].observer)
    assert ensemble.peers[4].state.name == "FOLLOWING"
    assert all(peer.verifier.voting_members == {1, 2, 3, 4} for peer in ensemble.live_peers().values())
    last = ensemble.write(5)[-1]
    assert ensemble.run_until(lambda: ensemble.committed_everywhere(last))
    _agree(ensemble)
