# -*- test-case-name: tests.unit.test_ensemble_clients -*-
"""Which server answers this peer's clients: none while LOOKING, then the one for its role.

ZooKeeper shuts its ZooKeeperServer down whenever the peer leaves a role,
and every client connection with it; clients reconnect to a peer that
serves. ``ServingSwitch.changed`` does the same on each change the
QuorumPeer reports.
"""
from __future__ import annotations

from collections.abc import Callable

from zabd.election.messages import PeerState
from zabd.ensemble.peer import QuorumPeer
from zabd.serving.following import FollowerServer
from zabd.serving.leading import LeaderServer
from zabd.serving.standalone import ServerOptions, StandaloneServer


class ServingSwitch:
    def __init__(self, options: ServerOptions, clock: Callable[[], float]) -> None:
        self.options = options
        self.clock = clock
        self.server: StandaloneServer | None = None

    def changed(self, peer: QuorumPeer) -> None:
        self._detach(peer)
        if not peer.serving:
            return
        if peer.state is PeerState.LEADING and peer.leader is not None:
            self.server = LeaderServer(self.options, self.clock, peer.leader)
        elif peer.learner is not None:
            self.server = FollowerServer(self.options, self.clock, peer.learner)

    def _detach(self, peer: QuorumPeer) -> None:
        server, self.server = self.server, None
        if server is None:
            return
        peer.replica.on_commit = None
        for conn in list(server.connections):
            conn.close()
