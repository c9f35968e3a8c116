# -*- test-case-name: tests.unit.test_pipeline -*-
"""State the processor stages share: the tree, sessions, watches and zxid counter."""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable, Protocol

from zabd.core.acl import AuthProviders
from zabd.core.datatree import DataTree
from zabd.core.sessions import SessionTracker
from zabd.core.watches import Watches
from zabd.jute.codec import DEFAULT_MAX_BUFFER
from zabd.membership.verifier import QuorumVerifier
from zabd.metrics.server import ServerMetrics
from zabd.pipeline.changes import PendingChanges
from zabd.pipeline.stats import ServerStats


class Membership(Protocol):
    """What a reconfig needs from the leader: its two configs and who is synced."""

    @property
    def verifier(self) -> QuorumVerifier: ...

    @property
    def last_seen(self) -> QuorumVerifier: ...

    def is_quorum_synced(self, verifier: QuorumVerifier) -> bool: ...


@dataclass(frozen=True)
class Settings:
    """The configuration the stages read (a projection of ZabdConfig)."""

    extended_types: bool = False
    skip_acl: bool = False
    reconfig_enabled: bool = False
    close_session_txn: bool = True
    #: enforceQuota: a write over a hard quota answers QUOTAEXCEEDED.
    enforce_quota: bool = False
    local_sessions: bool = False
    local_sessions_upgrading: bool = False
    #: standaloneEnabled: a reconfig must then leave at least two voters.
    standalone_enabled: bool = True
    #: The longest txn prep hands on (jute.maxbuffer + extrasize, as peers read it back).
    max_txn_bytes: int = DEFAULT_MAX_BUFFER * 2
    #: request_stale_connection_check: a reply for a closed connection counts as a stale reply.
    stale_connection_check: bool = True


@dataclass(eq=False)
class ServerContext:
    """What the stages of one server share: its tree, sessions, watches, counters and zxid."""

    tree: DataTree
    sessions: SessionTracker
    providers: AuthProviders
    #: Seconds since the epoch (an IReactorTime's ``seconds``), injected.
    clock: Callable[[], float]
    settings: Settings = field(default_factory=Settings)
    watches: Watches = field(default_factory=Watches)
    stats: ServerStats = field(default_factory=ServerStats)
    #: The process's metrics (one registry, shared by every server a peer runs).
    metrics: ServerMetrics = field(default_factory=ServerMetrics)
    pending: PendingChanges = field(init=False)
    #: The last zxid handed out by prep.
    last_zxid: int = 0
    #: The leader's configs, for reconfig; None off a leader.
    membership: Membership | None = None

    def __post_init__(self) -> None:
        self.pending = PendingChanges(self.tree)
        self.last_zxid = self.tree.last_processed_zxid

    def now_ms(self) -> float:
        return self.clock() * 1000.0

    def wall_ms(self) -> int:
        """Txn times are wall-clock milliseconds, as ZooKeeper's Time.currentWallTime."""
        return int(self.clock() * 1000)

    def next_zxid(self) -> int:
        self.last_zxid += 1
        return self.last_zxid
