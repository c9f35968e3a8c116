"""Whole ensembles in one process (zabd.testing.ensemble): election, sync modes, crashes, partitions.

Each scenario runs the real peers (FLE, leader, learner handlers, learners)
on the simulated network, clock and disks, and replays exactly from its
seed. After every scenario all live peers hold the same tree: the same last
zxid and the same tree digest.
"""
from __future__ import annotations

import pytest

from zabd.election.messages import PeerState
from zabd.quorum.learner import Phase
from zabd.storage.epochs import epoch_of
from zabd.testing.ensemble import SimEnsemble

SEEDS = range(8)


def assert_converged(ensemble: SimEnsemble, sids: list[int] | None = None) -> None:
    digests = ensemble.digests(sids)
    assert len(set(digests.values())) == 1, digests


def stop_serving(ensemble: SimEnsemble, sids: set[int]) -> None:
    """Run until none of ``sids`` serves (a cut-off leader steps down within syncLimit ticks)."""
    assert ensemble.run_until(lambda: not any(ensemble.peers[sid].serving for sid in sids), 10_000)


def write_and_commit(ensemble: SimEnsemble, count: int, sids: list[int] | None = None) -> list[int]:
    zxids = ensemble.write(count)
    assert ensemble.run_until(lambda: ensemble.committed_everywhere(zxids[-1], sids), 10_000)
    return zxids


def rejoin_after(ensemble: SimEnsemble, missed: int) -> int:
    """Stop a follower, commit ``missed`` writes without it, and let it rejoin; returns its sid."""
    leader = ensemble.settle()
    follower = next(sid for sid in ensemble.sids if sid != leader)
    write_and_commit(ensemble, 5)
    ensemble.crash(follower)
    write_and_commit(ensemble, missed)
    ensemble.restart(follower)
    ensemble.settle()
    return follower


@pytest.mark.parametrize("voters", [3, 5])
@pytest.mark.parametrize("seed", SEEDS)
def test_ensemble_elects_the_highest_sid_and_replicates(seed: int, voters: int) -> None:
    ensemble = SimEnsemble(seed, voters)
    ensemble.start()
    leader = ensemble.settle(within_ms=5_000)
    # Equal (epoch, zxid): the highest sid wins, and the first epoch is 1.
    assert leader == voters
    assert all(peer.epochs_served == [1] for peer in ensemble.peers.values())
    zxids = write_and_commit(ensemble, 30)
    assert [epoch_of(z) for z in zxids] == [1] * 30
    assert zxids == list(range(zxids[0], zxids[0] + 30))
    assert_converged(ensemble)


def test_same_seed_replays_the_same_run() -> None:
    runs = []
    for _ in range(2):
        ensemble = SimEnsemble(42, 5)
        ensemble.start()
        ensemble.settle()
        write_and_commit(ensemble, 10)
        runs.append((ensemble.sim.now_ms, ensemble.digests(), ensemble.sim.format_trace()))
    assert runs[0] == runs[1]


@pytest.mark.parametrize("seed", SEEDS)
def test_follower_behind_by_a_few_txns_is_synced_by_diff(seed: int) -> None:
    ensemble = SimEnsemble(seed)
    ensemble.start()
    follower = rejoin_after(ensemble, 20)
    assert ensemble.peers[follower].sync_modes == ["DIFF"]
    assert_converged(ensemble)


@pytest.mark.parametrize("seed", SEEDS)
def test_follower_behind_the_committed_log_is_synced_by_snap(seed: int) -> None:
    ensemble = SimEnsemble(seed)
    ensemble.start()
    follower = rejoin_after(ensemble, 600)  # more than the 500 the leader keeps
    assert ensemble.peers[follower].sync_modes == ["SNAP"]
    assert_converged(ensemble)
    # The snapshot was made durable before the ACK of NEWLEADER: a crash now loses nothing.
    ensemble.crash(follower)
    ensemble.restart(follower)
    ensemble.settle()
    assert ensemble.peers[follower].sync_modes == ["DIFF"]
    assert_converged(ensemble)


@pytest.mark.parametrize("seed", SEEDS)
def test_old_leader_with_an_uncommitted_proposal_is_truncated(seed: int) -> None:
    ensemble = SimEnsemble(seed)
    ensemble.start()
    old = ensemble.settle()
    committed = write_and_commit(ensemble, 10)
    others = [sid for sid in ensemble.sids if sid != old]
    ensemble.net.partition([{old}, set(others)])
    (lost,) = ensemble.write(1)  # logged by the old leader alone: never committed
    assert ensemble.run_until(lambda: ensemble.replica(old).last_logged_zxid == lost, 1_000)
    stop_serving(ensemble, {old})
    new = ensemble.settle(others)
    assert new != old
    ensemble.net.heal()
    ensemble.settle()
    assert ensemble.peers[old].sync_modes[-1] == "TRUNC"
    assert ensemble.replica(old).last_processed_zxid == committed[-1]
    assert_converged(ensemble)
    later = write_and_commit(ensemble, 5)
    assert epoch_of(later[0]) == epoch_of(committed[0]) + 1
    assert_converged(ensemble)


@pytest.mark.parametrize("seed", SEEDS)
def test_follower_that_logged_an_uncommitted_proposal_truncates_it(seed: int) -> None:
    ensemble = SimEnsemble(seed, 5)
    ensemble.start()
    old = ensemble.settle()
    committed = write_and_commit(ensemble, 10)
    follower = next(sid for sid in ensemble.sids if sid != old)
    rest = {sid for sid in ensemble.sids if sid not in (old, follower)}
    ensemble.net.partition([{old, follower}, rest])
    (lost,) = ensemble.write(1)  # two of five log it: no quorum
    assert ensemble.run_until(lambda: ensemble.replica(follower).last_logged_zxid == lost, 1_000)
    stop_serving(ensemble, {old, follower})
    ensemble.settle(sorted(rest))
    ensemble.net.heal()
    ensemble.settle()
    assert ensemble.peers[follower].sync_modes[-1] == "TRUNC"
    assert ensemble.replica(follower).last_processed_zxid == committed[-1]
    write_and_commit(ensemble, 5)
    assert_converged(ensemble)


@pytest.mark.parametrize("seed", SEEDS)
def test_minority_partition_stops_and_majority_carries_on(seed: int) -> None:
    ensemble = SimEnsemble(seed, 5)
    ensemble.start()
    leader = ensemble.settle()
    write_and_commit(ensemble, 10)
    minority = {leader, next(sid for sid in ensemble.sids if sid != leader)}
    majority = sorted(set(ensemble.sids) - minority)
    ensemble.net.partition([minority, set(majority)])
    stop_serving(ensemble, minority)
    new = ensemble.settle(majority)
    assert new in majority
    # The old leader stepped down within syncLimit ticks and nobody in the minority serves.
    assert not any(ensemble.peers[sid].serving for sid in minority)
    write_and_commit(ensemble, 20, majority)
    ensemble.sim.run_for(5_000)
    assert not any(ensemble.peers[sid].serving for sid in minority)
    ensemble.net.heal()
    ensemble.settle()
    assert_converged(ensemble)


@pytest.mark.parametrize("seed", SEEDS)
def test_every_new_leader_brings_a_new_epoch(seed: int) -> None:
    ensemble = SimEnsemble(seed, 5)
    ensemble.start()
    epochs = []
    for _ in range(4):
        leader = ensemble.settle()
        zxids = write_and_commit(ensemble, 3)
        epochs.append(epoch_of(zxids[0]))
        assert ensemble.peers[leader].epochs_served[-1] == epochs[-1]
        ensemble.crash(leader)
        ensemble.settle()
        ensemble.restart(leader)
    assert epochs == sorted(set(epochs)) and len(epochs) == 4
    ensemble.settle()
    assert_converged(ensemble)


@pytest.mark.parametrize("phase", [Phase.DISCOVERY, Phase.SYNC, Phase.NEWLEADER])
@pytest.mark.parametrize("seed", SEEDS)
def test_leader_crash_during_the_handshake(seed: int, phase: Phase) -> None:
    ensemble = SimEnsemble(seed)
    ensemble.start()
    first = ensemble.settle()
    committed = write_and_commit(ensemble, 10)
    ensemble.crash(first)
    # A new election; stop its leader the moment some learner reaches ``phase``.
    def in_phase() -> bool:
        peers = ensemble.live_peers().values()
        return any(peer.leader is not None for peer in peers) and any(
            peer.learner is not None and peer.learner.phase is phase and peer.learner.received_any is (
                phase is not Phase.DISCOVERY) for peer in peers)

    assert ensemble.run_until(in_phase, 10_000)
    second = next(sid for sid, peer in ensemble.live_peers().items() if peer.leader is not None)
    ensemble.crash(second)
    ensemble.restart(first)
    third = ensemble.settle()
    assert third != second
    ensemble.restart(second)
    ensemble.settle()
    # Nothing committed was lost, and the survivors agree.
    assert all(ensemble.replica(sid).last_processed_zxid >= committed[-1] for sid in ensemble.sids)
    write_and_commit(ensemble, 5)
    assert_converged(ensemble)


def test_observer_follows_and_never_votes() -> None:
    ensemble = SimEnsemble(3, voters=3, observers=1)
    ensemble.start()
    leader = ensemble.settle()
    observer = ensemble.peers[4]
    assert observer.state is PeerState.OBSERVING and leader != 4
    write_and_commit(ensemble, 10)
    assert_converged(ensemble)
    # Two voters down: the observer and one voter are not a quorum.
    voters = [sid for sid in (1, 2, 3) if sid != leader]
    ensemble.crash(leader)
    ensemble.crash(voters[0])
    ensemble.sim.run_for(10_000)
    assert ensemble.leader() is None
    assert not observer.serving


def keep_writing(ensemble: SimEnsemble, every_ms: int, until_ms: int) -> list[int]:
    """Write at the leader every ``every_ms`` until ``until_ms`` (skipped while none serves)."""
    written: list[int] = []

    def tick() -> None:
        if ensemble.leader() is not None:
            written.extend(ensemble.write(1))
        if ensemble.sim.now_ms < until_ms:
            ensemble.sim.call_later(every_ms, tick)

    ensemble.sim.call_later(every_ms, tick)
    return written


@pytest.mark.parametrize("behind", [20, 700])
@pytest.mark.parametrize("seed", SEEDS)
def test_learners_sync_while_writes_go_on(seed: int, behind: int) -> None:
    ensemble = SimEnsemble(seed, voters=3, observers=1)
    ensemble.start()
    leader = ensemble.settle()
    follower = next(sid for sid in (1, 2, 3) if sid != leader)
    write_and_commit(ensemble, 5)  # at 0 a learner is behind the committed log: SNAP
    for lagging in (follower, 4):
        ensemble.crash(lagging)
    write_and_commit(ensemble, behind)
    written = keep_writing(ensemble, 3, ensemble.sim.now_ms + 3_000)
    for lagging in (follower, 4):
        ensemble.restart(lagging)
    ensemble.sim.run_for(3_500)
    ensemble.settle()
    assert ensemble.peers[follower].sync_modes == ["DIFF" if behind < 500 else "SNAP"]
    assert len(written) > 500
    assert ensemble.run_until(lambda: ensemble.committed_everywhere(written[-1]), 5_000)
    assert_converged(ensemble)


def test_an_observer_without_sync_enabled_keeps_no_log_and_is_synced_again() -> None:
    ensemble = SimEnsemble(9, voters=3, observers=1, observers_log=False)
    ensemble.start()
    ensemble.settle()
    write_and_commit(ensemble, 30)
    assert_converged(ensemble)
    assert ensemble.replica(4).txn_log.records() == []  # syncEnabled=false: nothing logged
    ensemble.crash(4)
    write_and_commit(ensemble, 5)
    ensemble.restart(4)
    ensemble.settle()
    assert ensemble.peers[4].sync_modes  # it had to be synced from the leader
    assert_converged(ensemble)



@pytest.mark.parametrize("seed", SEEDS)
def test_looking_peer_that_missed_the_decision_joins_while_the_old_leader_stays_dead(seed: int) -> None:
    """Issue 15: a LOOKING peer, a dead peer, and peers that have already decided.

    Peer 2's election messages to and from the others are lost (on links
    that stay up) from the leader's death until the others have elected and
    serve. From then on nothing reaches 2 unless it sends its vote again,
    and its queue to the dead leader never empties: FLE must re-send once
    any queue is empty, not wait for all of them (which stalled it forever).
    """
    ensemble = SimEnsemble(seed, 5)
    ensemble.start()
    old = ensemble.settle()
    write_and_commit(ensemble, 5)
    late, others = 2, [1, 3, 4]
    ensemble.net.lose_election([(late, sid) for sid in others] + [(sid, late) for sid in others])
    ensemble.crash(old)
    new = ensemble.settle(others)
    assert (old, new, ensemble.peers[late].state) == (5, 4, PeerState.LOOKING)
    ensemble.net.lose_election(())
    # Its next notification timeout (under 400 ms away) re-sends its vote; the answers decide it.
    joined = ensemble.run_until(lambda: ensemble.peers[late].state is PeerState.FOLLOWING
                                and ensemble.peers[late].leader_id == new and ensemble.all_serving(), 2_000)
    assert joined, f"peer {late} is {ensemble.peers[late].state.name} 2 s after the fault ended:\n" + \
        ensemble.sim.format_trace(last=30)
    assert old in ensemble.down and not ensemble.net.is_up(old)  # still dead
    write_and_commit(ensemble, 5)
    assert_converged(ensemble)
