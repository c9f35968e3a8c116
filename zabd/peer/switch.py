# -*- test-case-name: tests.unit.test_ensemble_clients -*-
"""Which server answers this peer's clients: none while LOOKING, then the one for its role.

ZooKeeper shuts its ZooKeeperServer down whenever the peer leaves a role,
and every client connection with it; clients reconnect to a peer that
serves. ``ServingSwitch.changed`` does the same on each change the
QuorumPeer reports.

With read-only mode on (``read_only_after_ms``), a peer that has been LOOKING
that long runs a ReadOnlyServer until it decides on a role, as 3.8's
QuorumPeer.run does. The peer reports neither the start of a LOOKING round
nor its decision, so the owner calls ``poll`` often (every 100 ms in
zabd.peer.ensemble); the read-only server itself refuses to answer
the moment the peer stops looking, so a late poll only delays closing its
connections.
"""
from __future__ import annotations

from collections.abc import Callable

from twisted.logger import Logger

from zabd.election.messages import PeerState
from zabd.ensemble.peer import QuorumPeer
from zabd.peer.servers import follower_server, leader_server, read_only_server
from zabd.serving.readonly import ReadOnlyServer
from zabd.serving.server import ClientServer, ServerOptions

log = Logger()


class ServingSwitch:
    """Puts the server for the peer's role in front of its clients, and takes the old one down."""

    def __init__(self, options: ServerOptions, clock: Callable[[], float], *,
                 read_only_after_ms: int | None = None) -> None:
        self.options = options
        self.clock = clock
        self.server: ClientServer | None = None
        #: None: read-only mode is off.
        self.read_only_after_ms = read_only_after_ms
        self._looking_since_ms: float | None = None

    def changed(self, peer: QuorumPeer) -> None:
        self._detach(peer)
        if not peer.serving:
            # The peer looks for a quorum again: the read-only grace period starts.
            self._looking_since_ms = self.clock() * 1000.0
            return
        self._looking_since_ms = None
        if peer.state is PeerState.LEADING and peer.leader is not None:
            self.server = leader_server(self.options, self.clock, peer.leader)
        elif peer.learner is not None:
            self.server = follower_server(self.options, self.clock, peer.learner)

    def poll(self, peer: QuorumPeer) -> bool:
        """Start or stop the read-only server as the peer's state asks; True if ``server`` changed."""
        if self.read_only_after_ms is None:
            return False
        if peer.state is not PeerState.LOOKING or peer.stopped:
            self._looking_since_ms = None
            if isinstance(self.server, ReadOnlyServer):
                self._detach(peer)
                return True
            return False
        if self.server is not None:
            return False
        now_ms = self.clock() * 1000.0
        if self._looking_since_ms is None:
            self._looking_since_ms = now_ms
        if now_ms - self._looking_since_ms < self.read_only_after_ms:
            return False
        replica = peer.replica
        self.server = read_only_server(self.options, self.clock, replica.tree, replica.sessions(),
                                       lambda: peer.state is PeerState.LOOKING and not peer.stopped)
        log.info("Peer {myid} found no quorum for {ms} ms: read-only server started",
                 myid=peer.myid, ms=int(now_ms - self._looking_since_ms))
        return True

    def _detach(self, peer: QuorumPeer) -> None:
        server, self.server = self.server, None
        if server is None:
            return
        server.throttler.stop()
        if isinstance(server, ReadOnlyServer):
            server.shutdown()
            return
        peer.replica.on_commit = None
        for conn in list(server.connections):
            conn.close()
