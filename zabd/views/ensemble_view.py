# -*- test-case-name: tests.unit.test_ensemble_service -*-
"""What four-letter words report on an ensemble peer: its role, and its server's figures.

It is the standalone view pointed at whichever server the peer runs now
(``follow``), with the peer's Mode and the leader's quorum figures that 3.8's
``stat`` and ``mntr`` add. Between roles the peer is not serving, and the
words that need a server say so, as ZooKeeper's do, unless it runs its
read-only server: then it serves, in Mode ``read-only``, and ``isro`` says ``ro``.
"""
from __future__ import annotations

from collections.abc import Sequence

from zabd.election.messages import PeerState
from zabd.ensemble.peer import QuorumPeer
from zabd.quorum.learnerhandler import Stage
from zabd.config.zoocfg import ZabdConfig
from zabd.membership.members import QuorumServer
from zabd.views.fourletter_view import LearnerInfo, MemberInfo, MetricValue, QuorumRole
from zabd.views.stats_view import StandaloneView
from zabd.serving.readonly import ReadOnlyServer
from zabd.serving.server import ClientServer

_MODES = {PeerState.LEADING: "leader", PeerState.FOLLOWING: "follower", PeerState.OBSERVING: "observer"}
#: Zab phases as 3.8's zabstate names them, from the leader's or learner's phase.
_ZAB_PHASES = {"discovery": "discovery", "sync": "synchronization", "newleader": "synchronization",
               "broadcast": "broadcast", "done": "election"}
_PEER_STATES = {PeerState.LOOKING: "looking", PeerState.LEADING: "leading",
                PeerState.FOLLOWING: "following", PeerState.OBSERVING: "observing"}


class EnsembleView(StandaloneView):
    """What four-letter words and admin commands show of an ensemble peer: its role, quorum and server figures."""

    def __init__(self, peer: QuorumPeer, idle: ClientServer, config: ZabdConfig) -> None:
        super().__init__(idle, config)
        self.peer = peer
        #: The server answering clients now, if any.
        self.current: ClientServer | None = None

    def follow(self, server: ClientServer | None) -> None:
        """Report on ``server`` from now on (None: keep the last figures; not serving)."""
        self.current = server
        if server is not None:
            self.server = server
            self.ctx = server.ctx

    @property
    def last_zxid(self) -> int:
        # A new leader reports its epoch's zxid before any write, as 3.8's hzxid does.
        return max(self.ctx.tree.last_processed_zxid, self.ctx.last_zxid)

    @property
    def read_only(self) -> bool:
        current = self.current
        return isinstance(current, ReadOnlyServer) and not current.shut_down

    @property
    def mode(self) -> str:
        return "read-only" if self.read_only else _MODES.get(self.peer.state, "looking")

    @property
    def serving(self) -> bool:
        return self.peer.serving or self.read_only

    @property
    def global_sessions(self) -> int:
        return 0 if self.read_only else super().global_sessions

    @property
    def local_sessions(self) -> int:
        # A read-only server's sessions are all local to it.
        return len(self.ctx.sessions.sessions()) if self.read_only else super().local_sessions

    @property
    def proposal_sizes(self) -> tuple[int, int, int] | None:
        leader = self.peer.leader
        return leader.proposal_sizes if leader is not None else None

    def mntr_extra(self) -> Sequence[tuple[str, MetricValue]]:
        peer = self.peer
        phase = "broadcast" if peer.serving else "discovery"
        extra: list[tuple[str, MetricValue]] = [
            *super().mntr_extra(),
            ("peer_state", f"{_PEER_STATES[peer.state]} - {phase}"),
            ("quorum_size", len(peer.verifier.voting_members)),
        ]
        leader = peer.leader
        if leader is not None and peer.serving:
            last, low, high = leader.proposal_sizes
            since = leader.serving_since_ms or leader.clock()
            extra += [
                ("learners", len(leader.handlers)),
                ("synced_followers", leader.synced(observers=False)),
                ("synced_non_voting_followers", 0),
                ("synced_observers", leader.synced(observers=True)),
                ("pending_syncs", 0),
                ("leader_uptime", leader.clock() - since),
                ("last_proposal_size", last),
                ("max_proposal_size", high),
                ("min_proposal_size", low),
            ]
        return extra

    # -- what the HTTP admin commands add (AdminView) -------------------------

    def quorum_role(self) -> QuorumRole | None:
        peer = self.peer
        members = peer.verifier.all_members
        leader_id = peer.leader_id if peer.leader_id is not None else -1
        leader = members.get(leader_id)
        me = members.get(peer.myid)
        return QuorumRole(
            myid=peer.myid, leader_id=leader_id, leader_host=leader.quorum_addr[0] if leader else "",
            is_leader=peer.leader is not None, voting=peer.myid in peer.verifier.voting_members,
            zab_phase=self._zab_phase(),
            me=_member(me) if me is not None else MemberInfo(peer.myid, "", "", ""),
            voters=tuple(_member(members[sid]) for sid in sorted(peer.verifier.voting_members)),
        )

    def _zab_phase(self) -> str:
        peer = self.peer
        role = peer.leader if peer.leader is not None else peer.learner
        if peer.state is PeerState.LOOKING or role is None:
            return "election"
        return _ZAB_PHASES.get(role.phase.value, "election")

    def observers(self) -> Sequence[LearnerInfo]:
        leader = self.peer.leader
        if leader is None:
            return []
        # Synced observers as the leader's handlers know them; the handlers do
        # not record when they connected, so established is 0.
        return [LearnerInfo(remote_address=str(getattr(getattr(h.link, "stream", None), "peer", "")),
                            sid=h.sid if h.sid is not None else -1, established_ms=0, last_zxid=h.last_zxid)
                for h in leader.handlers if h.observer and h.stage is Stage.BROADCAST]


def _member(server: QuorumServer) -> MemberInfo:
    def address(addr: tuple[str, int] | None) -> str:
        if addr is None:
            return ""
        host = f"[{addr[0]}]" if ":" in addr[0] else addr[0]
        return f"{host}:{addr[1]}"
    return MemberInfo(server.sid, address(server.quorum_addr), address(server.election_addr),
                      address(server.client_addr), server.is_participant)
