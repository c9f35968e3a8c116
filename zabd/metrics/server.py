# -*- test-case-name: tests.unit.test_metrics -*-
"""ZooKeeper 3.8's ServerMetrics names, for what zabd measures.

One ``ServerMetrics`` per process, made where the server options are built
and handed down (server context, leader, learner, peer, disk log,
snapshots), so a peer's figures outlive its roles as ZooKeeper's static
ServerMetrics do. Each attribute is the metric the code records into:
``metrics.fsync_time.add(ms)``.

Only names zabd updates are registered, plus a few that ZooKeeper 3.8 prints
at zero in its default configuration and that are zero in zabd for the same
reason (see ``ZERO_AS_IN_ZOOKEEPER``). Times are milliseconds, as in 3.8.
"""
from __future__ import annotations

from zabd.metrics.registry import Counter, DetailLevel, MetricsRegistry, Summary, SummarySet
from zabd.metrics.tls import TlsCounters, register_tls

BASIC, ADVANCED = DetailLevel.BASIC, DetailLevel.ADVANCED

#: Counters 3.8 registers and never moves with its defaults, nor does zabd:
#: its default WatchManager drops a closed connection's watches at once (no
#: WatcherCleaner), as zabd does.
ZERO_AS_IN_ZOOKEEPER = ("dead_watchers_queued", "dead_watchers_cleared")


class ServerMetrics:
    """The registry and the metrics recorded into it, by ZooKeeper name."""

    def __init__(self, registry: MetricsRegistry | None = None) -> None:
        self.registry = registry = registry if registry is not None else MetricsRegistry()
        counter, summary = registry.counter, registry.summary
        # Requests (FinalRequestProcessor / ServerStats).
        self.read_latency: Summary = summary("readlatency", ADVANCED)
        self.update_latency: Summary = summary("updatelatency", ADVANCED)
        self.propagation_latency: Summary = summary("propagation_latency", ADVANCED)
        # Storage.
        self.fsync_time: Summary = summary("fsynctime", BASIC)
        self.sync_batch_size: Summary = summary("sync_processor_batch_size", BASIC)
        self.snapshot_time: Summary = summary("snapshottime", BASIC)
        self.startup_txns_loaded: Summary = summary("startup_txns_loaded", BASIC)
        self.digest_mismatches: Counter = counter("digest_mismatches_count")
        self.unrecoverable_errors: Counter = counter("unrecoverable_error_count")
        # Election and roles (QuorumPeer, Leader, Follower, Observer).
        self.election_time: Summary = summary("election_time", BASIC)
        self.looking_count: Counter = counter("looking_count")
        self.unavailable_time: Summary = summary("unavailable_time", BASIC)
        self.leader_unavailable_time: Summary = summary("leader_unavailable_time", BASIC)
        # The leader's side of Zab.
        self.proposal_count: Counter = counter("proposal_count")
        self.commit_count: Counter = counter("commit_count")
        self.quorum_ack_latency: Summary = summary("quorum_ack_latency", ADVANCED)
        self.ack_latency: SummarySet = registry.summary_set("ack_latency", ADVANCED)
        #: Learners synced by DIFF (and, as in 3.8, by TRUNC) and by SNAP.
        self.diff_count: Counter = counter("diff_count")
        self.snap_count: Counter = counter("snap_count")
        self.revalidate_count: Counter = counter("revalidate_count")
        # The learner's side.
        self.follower_sync_time: Summary = summary("follower_sync_time", BASIC)
        self.observer_sync_time: Summary = summary("observer_sync_time", BASIC)
        self.learner_proposal_received: Counter = counter("learner_proposal_received_count")
        self.learner_commit_received: Counter = counter("learner_commit_received_count")
        self.proposal_latency: Summary = summary("proposal_latency", ADVANCED)
        self.commit_propagation_latency: Summary = summary("commit_propagation_latency", ADVANCED)
        # Sessions and connections.
        self.connection_requests: Counter = counter("connection_request_count")
        self.connection_revalidates: Counter = counter("connection_revalidate_count")
        self.stale_sessions_expired: Counter = counter("stale_sessions_expired")
        # Overload protection (ZooKeeperServer, RequestThrottler, the connection factories).
        self.connection_rejected: Counter = counter("connection_rejected")
        self.connection_token_deficit: Summary = summary("connection_token_deficit", BASIC)
        self.large_requests_rejected: Counter = counter("large_requests_rejected")
        self.stale_requests: Counter = counter("stale_requests")
        self.stale_requests_dropped: Counter = counter("stale_requests_dropped")
        self.stale_replies: Counter = counter("stale_replies")
        self.request_throttle_queue_time: Summary = summary("request_throttle_queue_time_ms", ADVANCED)
        self.request_throttle_wait_count: Counter = counter("request_throttle_wait_count")
        self.throttled_ops: Counter = counter("throttled_ops")
        for name in ZERO_AS_IN_ZOOKEEPER:
            counter(name)
        #: The client ports' TLS (3.8 counts its Netty client port's); the admin port's apart.
        self.tls = TlsCounters()
        self.admin_tls = TlsCounters()
        register_tls(registry, self.tls, self.admin_tls)
