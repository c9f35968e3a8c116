# -*- test-case-name: tests.unit.test_ensemble_sim -*-
"""A peer's configs: the one in force and the newest seen (3.8's quorumVerifier and lastSeenQuorumVerifier).

A newer config arrives in an election notification, in NEWLEADER, or in a
committed reconfig. Seen, it is only remembered (and written to a
zoo.cfg.dynamic file by the owner); put in force, it also changes the
election's voters, the ``/zookeeper/config`` node and whether this peer
observes. The peer leaves its role when that changes its kind or its
leader (3.8's majorChange). A peer outside the config follows as a
non-voting follower, as in 3.8.
"""
from __future__ import annotations

from collections.abc import Callable

from twisted.logger import Logger

from zabd.core.datatree import DataTree
from zabd.election.fle import FastLeaderElection
from zabd.membership.verifier import QuorumVerifier
from zabd.quorum.configchange import install_config_node

log = Logger(namespace="zabd.ensemble.peer")  # its lines read as the peer's

#: Told of each config seen (False) or put in force (True).
ConfigListener = Callable[[QuorumVerifier, bool], None]


class PeerConfigs:
    """The config in force and the newest seen for one peer; see the module docstring."""

    def __init__(self, myid: int, verifier: QuorumVerifier, last_seen: QuorumVerifier | None, observer: bool,
                 fle: FastLeaderElection, clock: Callable[[], int], on_changed: ConfigListener) -> None:
        self.myid = myid
        self.verifier = verifier
        self.last_seen = last_seen if last_seen is not None and last_seen.version > verifier.version else verifier
        self.observer = observer
        self._fle = fle
        self._clock = clock
        self.on_changed = on_changed

    def seen(self, verifier: QuorumVerifier) -> None:
        """A config proposed (maybe never committed): remember the newest."""
        if verifier.version > self.last_seen.version:
            self.last_seen = verifier
            self.on_changed(verifier, False)

    def put_in_force(self, verifier: QuorumVerifier, tree: DataTree, leader: int | None,
                     current_leader: int | None) -> bool:
        """Put ``verifier`` in force; True if the peer must leave its role (its kind or its leader changed)."""
        if verifier.version <= self.verifier.version:
            return False
        was_observer = self.observer
        self.verifier = verifier
        self.last_seen = verifier if verifier.version >= self.last_seen.version else self.last_seen
        self.observer = self.myid in verifier.observing_members
        self._fle.set_voters(verifier, observer=self.observer)
        install_config_node(tree, verifier, self._clock())
        log.info("Peer {myid}: config 0x{version:x} in force ({kind})", myid=self.myid, version=verifier.version,
                 kind="participant" if self.myid in verifier.voting_members else
                 "observer" if self.observer else "not a member: a non-voting follower")
        self.on_changed(verifier, True)
        return self.observer != was_observer or (leader is not None and leader != current_leader)
