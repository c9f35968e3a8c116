# -*- test-case-name: tests.unit.test_chaos -*-
"""Zab's invariants and Remix's, checked while a simulated ensemble runs.

:class:`Monitor` watches a SimEnsemble whose replicas are TracedReplicas
(zabd.testing.chaos_history). It checks the peers' roles after every step,
and every quorum packet as it is written (zabd.testing.chaos_packets):

- leadership: at most one established leader (ACKEPOCH quorum) per epoch;
- leaderLogCompleteness: a leader whose epoch a quorum acknowledged, and
  again once it serves, holds the whole committed chain (a peer that decides
  to lead on stale votes and never establishes is no leader);
- monotonicRead (committed-log monotonicity): a serving leader's history
  only extends the committed chain;
- prefixConsistency: every serving peer's history is on the committed chain;
- processConsistency: a learner past NEWLEADER holds a prefix of its
  leader's history, and a TRUNC or SNAP never drops a txn that was committed
  when the leader chose it (nor one committed since that no quorum holds
  durably without this peer);
- ackConsistent and messageLegal: see zabd.testing.chaos_packets.
"""
from __future__ import annotations

from zabd.quorum.leader import Leader
from zabd.quorum.leader import Phase as LeaderPhase
from zabd.quorum.learner import Phase as LearnerPhase
from zabd.testing.chaos_history import Histories, Report, TracedReplica
from zabd.testing.chaos_packets import PacketChecks
from zabd.testing.ensemble import SimEnsemble


class Monitor:
    """Checks the Zab invariants on a SimEnsemble as it runs: leaders per epoch, histories, durable commits."""

    def __init__(self, ensemble: SimEnsemble, histories: Histories, report: Report) -> None:
        self.ensemble = ensemble
        self.histories = histories
        self.report = report
        self.epoch_leader: dict[int, int] = {}
        self.packets = PacketChecks(ensemble, histories, report, lambda sid: self._replica(sid).head)
        self._leaders: dict[int, tuple[Leader, bool]] = {}  # id -> (leader, checked once it served)
        self._consistent: dict[int, tuple[int, int]] = {}  # learner sid -> (its head, its leader's) last checked
        histories.on_rewrite = self._rewrite

    def _replica(self, sid: int) -> TracedReplica:
        replica = self.ensemble.peers[sid].replica
        assert isinstance(replica, TracedReplica)
        return replica

    # -- after every step ------------------------------------------------------

    def check(self) -> None:
        ensemble, histories = self.ensemble, self.histories
        peers, down, committed = ensemble.peers, ensemble.down, histories.committed
        live = [peers[sid] for sid in ensemble.sids if sid not in down]
        for peer in live:
            if peer.leader is not None:
                self._check_leader(peer.myid, peer.leader)
        for peer in live:
            head: int = peer.replica.head  # type: ignore[attr-defined]
            if peer.serving and head not in committed:
                self.report("prefixConsistency", f"peer {peer.myid} serves a history off the committed chain "
                            f"(at 0x{histories.zxid[head]:x})")
            learner = peer.learner
            if learner is not None and (learner.phase is LearnerPhase.BROADCAST
                                        or learner.phase is LearnerPhase.NEWLEADER):
                self._check_learner(peer.myid, head, learner.new_epoch, peer.leader_id)

    def _check_learner(self, sid: int, head: int, epoch: int, leader_sid: int | None) -> None:
        ensemble = self.ensemble
        leader_peer = ensemble.peers.get(leader_sid) if leader_sid is not None else None
        if leader_sid in ensemble.down or leader_peer is None or leader_peer.leader is None \
                or leader_peer.leader.epoch != epoch:
            return
        pair = (head, self._replica(leader_peer.myid).head)
        if self._consistent.get(sid) != pair:
            self._consistent[sid] = pair
            if not self.histories.ancestor(*pair):
                self.report("processConsistency", f"peer {sid}, past NEWLEADER of epoch {epoch}, "
                            f"holds a history that is not a prefix of its leader {leader_sid}'s")

    def _check_leader(self, sid: int, leader: Leader) -> None:
        """An established leader (its epoch acknowledged by a quorum) holds the committed chain and extends it.

        (A peer may decide to lead on stale votes and fail to establish: FLE alone promises nothing.)
        """
        if leader.epoch < 0:
            return
        serving = leader.phase is LeaderPhase.BROADCAST
        if not serving and not leader.discovery.epoch_acks_done:
            return
        histories, report = self.histories, self.report
        head: int = self.ensemble.peers[sid].replica.head  # type: ignore[attr-defined]
        owner = self.epoch_leader.setdefault(leader.epoch, sid)
        if owner != sid:
            report("leadership", f"peers {owner} and {sid} both established epoch {leader.epoch}")
        seen = self._leaders.get(id(leader))
        if seen is None:
            seen = self._leaders[id(leader)] = (leader, False)
            if not histories.ancestor(histories.committed_head, head):
                report("leaderLogCompleteness", f"peer {sid} established epoch {leader.epoch} without the "
                       f"committed txn 0x{histories.zxid[histories.committed_head]:x}")
        if serving and head not in histories.committed:
            if not histories.commit(head):
                kind = "monotonicRead" if seen[1] else "leaderLogCompleteness"
                report(kind, f"leader {sid} of epoch {leader.epoch} serves a history that does not extend "
                       f"the committed chain (at 0x{histories.zxid[histories.committed_head]:x})")
        if serving and not seen[1]:
            self._leaders[id(leader)] = (leader, True)

    def _rewrite(self, sid: int, old: int, new: int, why: str) -> None:
        """A TRUNC or SNAP drops no txn committed when the leader planned it, nor one a quorum needs.

        (A txn the leader proposed before the sync and committed during it may go: the same sync
        sends it again. It must still be durable on a quorum without this peer.)
        """
        histories = self.histories
        if histories.ancestor(old, new):
            return
        lost = [node for node in histories.suffix(old, histories.fork(old, new)) if node in histories.committed]
        if not lost:
            return
        planned = self.packets.planned_with(sid)
        oldest = histories.zxid[lost[-1]]
        # A TRUNC the files cannot land on exactly reloads less than planned, and the sync ends:
        # like a SNAP, it may drop committed txns a quorum holds without this peer.
        exact = "unreachable" not in why
        if exact and (planned is None or oldest <= planned):
            self.report("processConsistency", f"peer {sid}: {why} dropped the txn 0x{oldest:x}, committed before "
                        f"the leader chose that sync (at 0x{planned if planned is not None else -1:x})")
            return
        quorum = len(self.ensemble.verifier.voting_members) // 2 + 1
        for node in lost:
            holders = self.packets.durable_on(histories.zxid[node])
            if len(holders) < quorum:
                self.report("processConsistency", f"peer {sid}: {why} dropped the committed txn "
                            f"0x{histories.zxid[node]:x}, now durable only on {holders}")
