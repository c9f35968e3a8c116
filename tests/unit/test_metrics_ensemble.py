"""The metrics move where an ensemble elects, syncs and commits (the simulated ensemble)."""
from __future__ import annotations

from zabd.testing.ensemble import SimEnsemble


def _committed(ensemble: SimEnsemble, count: int) -> list[int]:
    zxids = ensemble.write(count)
    assert ensemble.run_until(lambda: ensemble.committed_everywhere(zxids[-1]), 10_000)
    return zxids


def test_election_proposals_commits_and_learner_figures() -> None:
    ensemble = SimEnsemble(3)
    ensemble.start()
    leader = ensemble.settle(within_ms=5_000)
    for peer in ensemble.peers.values():
        assert peer.metrics.looking_count.value == 1
        assert peer.metrics.election_time.count == 1
        assert peer.metrics.unavailable_time.count == 1
    _committed(ensemble, 10)
    led = ensemble.peers[leader].metrics
    # The writer's createSession is a txn too.
    assert led.proposal_count.value == 11 and led.commit_count.value == 11
    assert led.quorum_ack_latency.count == 11
    assert led.leader_unavailable_time.count == 1
    followers = [sid for sid in ensemble.sids if sid != leader]
    # ACKs after the commit are not timed (3.8 skips them too): the quicker follower's are.
    assert led.ack_latency.by_key and set(led.ack_latency.by_key) <= {str(sid) for sid in followers}
    assert led.diff_count.value + led.snap_count.value == len(followers)
    for sid in followers:
        metrics = ensemble.peers[sid].metrics
        assert metrics.follower_sync_time.count == 1
        assert metrics.learner_proposal_received.value == 11
        assert metrics.learner_commit_received.value == 11
        assert metrics.proposal_latency.count == 11 and metrics.commit_propagation_latency.count == 11


def test_a_rejoining_follower_is_counted_as_a_diff_then_a_snap() -> None:
    ensemble = SimEnsemble(5)
    ensemble.start()
    leader = ensemble.settle()
    led = ensemble.peers[leader].metrics
    diffs, snaps = led.diff_count.value, led.snap_count.value
    follower = next(sid for sid in ensemble.sids if sid != leader)
    _committed(ensemble, 5)
    ensemble.crash(follower)
    _committed(ensemble, 20)
    ensemble.restart(follower)
    assert ensemble.settle() == leader
    assert (led.diff_count.value, led.snap_count.value) == (diffs + 1, snaps)
    ensemble.crash(follower)
    _committed(ensemble, 600)  # more than the committed log the leader keeps
    ensemble.restart(follower)
    assert ensemble.settle() == leader
    assert (led.diff_count.value, led.snap_count.value) == (diffs + 1, snaps + 1)
    # A restarted peer is a new process: its own figures start again.
    assert ensemble.peers[follower].metrics.follower_sync_time.count == 1
