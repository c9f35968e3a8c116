# -*- test-case-name: tests.unit.test_ensemble_clients -*-
"""Every client-facing server zabd.peer and zabd.testing run is made here.

The servers of zabd.serving (standalone, leader's, follower's, read-only)
are built in this one module, so that the composition root, the switch and
the in-memory fakes agree on how, and a change to a server's constructor is
made once.
"""
from __future__ import annotations

from collections.abc import Callable, Collection

from zabd.core.datatree import DataTree
from zabd.pipeline.sync import TxnLog
from zabd.quorum.leader import Leader
from zabd.quorum.learner import Learner
from zabd.serving.following import FollowerServer
from zabd.serving.leading import LeaderServer
from zabd.serving.readonly import ReadOnlyServer
from zabd.serving.standalone import ServerOptions, StandaloneServer

#: Now, in seconds (a reactor's ``seconds``).
Clock = Callable[[], float]


def standalone_server(options: ServerOptions, clock: Clock, txn_log: TxnLog | None = None,
                      tree: DataTree | None = None, sessions: dict[int, int] | None = None) -> StandaloneServer:
    """A server of its own: its writes go to ``txn_log`` (None: nowhere, as for a view or a fake)."""
    return StandaloneServer(options, clock, txn_log, tree, sessions)


def leader_server(options: ServerOptions, clock: Clock, leader: Leader) -> LeaderServer:
    """The leader's server: its writes are proposals to the quorum."""
    return LeaderServer(options, clock, leader)


def follower_server(options: ServerOptions, clock: Clock, learner: Learner) -> FollowerServer:
    """A follower's or observer's server: its writes go to the leader."""
    return FollowerServer(options, clock, learner)


def read_only_server(options: ServerOptions, clock: Clock, tree: DataTree, global_sessions: Collection[int],
                     still_looking: Callable[[], bool]) -> ReadOnlyServer:
    """The server of a peer without a quorum: reads only, while ``still_looking``."""
    return ReadOnlyServer(options, clock, tree, global_sessions, still_looking)
