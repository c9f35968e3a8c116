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
from zabd.server.config import ZabdConfig
from zabd.server.fourletter_view import MetricValue
from zabd.server.stats_view import StandaloneView
from zabd.serving.readonly import ReadOnlyServer
from zabd.serving.standalone import StandaloneServer

_MODES = {PeerState.LEADING: "leader", PeerState.FOLLOWING: "follower", PeerState.OBSERVING: "observer"}
_PEER_STATES = {PeerState.LOOKING: "looking", PeerState.LEADING: "leading",
                PeerState.FOLLOWING: "following", PeerState.OBSERVING: "observing"}


class EnsembleView(StandaloneView):
    def __init__(self, peer: QuorumPeer, idle: StandaloneServer, config: ZabdConfig) -> None:
        super().__init__(idle, config)
        self.peer = peer
        #: The server answering clients now, if any.
        self.current: StandaloneServer | None = None

    def follow(self, server: StandaloneServer | None) -> None:
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
