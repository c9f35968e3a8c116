"""The metrics registry: summary maths, ZooKeeper's names, mntr lines, and storage timings on fake clocks."""
from __future__ import annotations

import math
import random
from pathlib import Path
from typing import Any, Callable

import pytest
from twisted.internet.task import Clock

from tests.unit.fakes import OPEN_ACL, FakeClient
from zabd.jute.opcodes import OpCode
from zabd.jute.records import CreateRequest, PathWatchRequest
from zabd.metrics.registry import RESERVOIR_SIZE, DetailLevel, MetricsRegistry, Summary, quantile_of
from zabd.metrics.server import ZERO_AS_IN_ZOOKEEPER, ServerMetrics
from zabd.config.zoocfg import default_config
from zabd.persist.disklog import GroupCommitLog
from zabd.views.fourletter import monitor_pairs, render, COMMAND_NAMES
from zabd.persist.snapshots import SnapshotPolicy, Snapshotter
from zabd.views.stats_view import StandaloneView
from zabd.serving.standalone import ServerOptions, StandaloneServer
from zabd.storage.layout import DataDirs
from zabd.storage.logwriter import LogWriter

#: Every name branch-3.8's ServerMetrics registers (counters, summaries, summary sets).
ZOOKEEPER_SERVER_METRICS = frozenset("""
fsynctime snapshottime dbinittime readlatency updatelatency propagation_latency follower_sync_time
observer_sync_time election_time looking_count diff_count snap_count commit_count connection_request_count
connection_token_deficit connection_rejected inflight_snap_count inflight_diff_count write_per_namespace
read_per_namespace bytes_received_count unrecoverable_error_count node_created_watch_count
node_deleted_watch_count node_changed_watch_count node_children_watch_count add_dead_watcher_stall_time
dead_watchers_queued dead_watchers_cleared dead_watchers_cleaner_latency response_packet_cache_hits
response_packet_cache_misses response_packet_get_children_cache_hits response_packet_get_children_cache_misses
ensemble_auth_success ensemble_auth_fail ensemble_auth_skip prep_processor_queue_time_ms
prep_processor_queue_size prep_processor_request_queued outstanding_changes_queued outstanding_changes_removed
prep_process_time proposal_process_time close_session_prep_time revalidate_count connection_drop_count
connection_revalidate_count sessionless_connections_expired stale_sessions_expired unavailable_time
leader_unavailable_time requests_in_session_queue pending_session_queue_size reads_after_write_in_session_queue
reads_issued_from_session_queue session_queues_drained time_waiting_empty_pool_in_commit_processor_read_ms
write_batch_time_in_commit_processor concurrent_request_processing_in_commit_processor read_commit_proc_req_queued
write_commit_proc_req_queued commit_commit_proc_req_queued request_commit_queued read_commit_proc_issued
write_commit_proc_issued throttled_ops read_commitproc_time_ms write_commitproc_time_ms
local_write_committed_time_ms server_write_committed_time_ms commit_process_time om_proposal_process_time_ms
om_commit_process_time_ms read_final_proc_time_ms write_final_proc_time_ms proposal_latency
proposal_ack_creation_latency commit_propagation_latency learner_proposal_received_count
learner_commit_received_count learner_handler_qp_size learner_handler_qp_time_ms startup_txns_loaded
startup_txns_load_time startup_snap_load_time sync_processor_queue_and_flush_time_ms sync_processor_queue_size
sync_processor_request_queued sync_processor_queue_time_ms sync_processor_queue_flush_time_ms sync_process_time
sync_processor_batch_size quorum_ack_latency ack_latency proposal_count quit_leading_due_to_disloyal_voter
stale_requests stale_requests_dropped stale_replies request_throttle_queue_time_ms request_throttle_wait_count
large_requests_rejected netty_queued_buffer_capacity digest_mismatches_count learner_request_processor_queue_size
unsuccessful_handshake insecure_admin_count tls_handshake_exceeded cnxn_closed_without_zk_server_running
skip_learner_request_to_next_processor_count socket_closing_time requests_not_forwarded_to_commit_processor
response_bytes watch_bytes jvm_pause_time_ms
""".split())


# -- registry maths ------------------------------------------------------------


def test_summary_keeps_count_sum_min_max_and_a_rounded_average() -> None:
    summary = Summary("t")
    for value in (3, 1, 2, 2):
        summary.add(value)
    assert (summary.count, summary.total, summary.minimum, summary.maximum) == (4, 8, 1, 3)
    summary.add(0)
    assert summary.average == 1.6
    third = Summary("third")
    for value in (1, 0, 0):
        third.add(value)
    assert third.average == 0.3333  # half-up to 4 decimals, as ZooKeeper's BigDecimal


def test_empty_summary_prints_zeros_as_zookeeper_does() -> None:
    summary = Summary("fsynctime")
    assert summary.mntr_pairs() == [("avg_fsynctime", 0.0), ("min_fsynctime", 0), ("max_fsynctime", 0),
                                    ("cnt_fsynctime", 0), ("sum_fsynctime", 0)]
    assert math.isnan(summary.quantiles((0.5,))[0])


def test_quantiles_interpolate_like_a_uniform_snapshot() -> None:
    ordered = list(range(1, 101))
    assert quantile_of(ordered, 0.5) == 50.5
    assert quantile_of(ordered, 0.99) == 99.99
    assert quantile_of(ordered, 0.999) == 100.0
    assert quantile_of([7], 0.5) == 7.0


def test_advanced_summary_adds_percentiles_rounded_to_ints() -> None:
    summary = Summary("readlatency", DetailLevel.ADVANCED)
    for value in range(1, 101):
        summary.add(value)
    pairs = dict(summary.mntr_pairs())
    assert [key for key in pairs] == summary.mntr_keys()
    assert (pairs["p50_readlatency"], pairs["p95_readlatency"], pairs["p99_readlatency"],
            pairs["p999_readlatency"]) == (51, 96, 100, 100)


def test_quantiles_come_from_the_latest_samples_only() -> None:
    summary = Summary("t")
    for _ in range(RESERVOIR_SIZE):
        summary.add(1000)
    for _ in range(RESERVOIR_SIZE):
        summary.add(1)
    assert summary.samples() == [1] * RESERVOIR_SIZE
    assert summary.maximum == 1000 and summary.count == 2 * RESERVOIR_SIZE


def test_summary_set_names_each_key_as_zookeeper() -> None:
    registry = MetricsRegistry()
    acks = registry.summary_set("ack_latency", DetailLevel.ADVANCED)
    acks.add("2", 5)
    acks.add("3", 7)
    acks.add("2", 1)
    pairs = dict(registry.mntr_pairs())
    assert pairs["cnt_2_ack_latency"] == 2 and pairs["min_2_ack_latency"] == 1
    assert pairs["max_3_ack_latency"] == 7 and "p99_3_ack_latency" in pairs


def test_registry_counters_gauges_reset_and_unique_names() -> None:
    registry = MetricsRegistry()
    counter = registry.counter("commit_count")
    counter.add()
    counter.add(2)
    registry.gauge("learners", lambda: 4)
    summary = registry.summary("fsynctime")
    summary.add(9)
    assert registry.mntr_pairs()[:2] == [("commit_count", 3), ("learners", 4)]
    with pytest.raises(ValueError):
        registry.counter("commit_count")
    registry.reset()
    assert dict(registry.mntr_pairs()) == {"commit_count": 0, "learners": 4, "avg_fsynctime": 0.0,
                                           "min_fsynctime": 0, "max_fsynctime": 0, "cnt_fsynctime": 0,
                                           "sum_fsynctime": 0}


#: Gauges 3.8's ZooKeeperServer.registerMetrics adds beside ServerMetrics' (the TLS ones zabd has).
ZOOKEEPER_SERVER_GAUGES = frozenset({"outstanding_tls_handshake", "non_mtls_remote_conn_count",
                                     "non_mtls_local_conn_count"})


def test_every_registered_name_is_zookeepers() -> None:
    names = {metric.name for metric in ServerMetrics().registry}
    assert names <= ZOOKEEPER_SERVER_METRICS | ZOOKEEPER_SERVER_GAUGES
    assert {"readlatency", "updatelatency", "fsynctime", "snapshottime", "proposal_count", "commit_count",
            "election_time", "looking_count", "diff_count", "snap_count", "propagation_latency",
            "quorum_ack_latency", "proposal_latency", "commit_propagation_latency", "revalidate_count",
            "digest_mismatches_count", "stale_sessions_expired"} <= names
    assert set(ZERO_AS_IN_ZOOKEEPER) <= names


# -- mntr ------------------------------------------------------------------------


def _standalone() -> tuple[StandaloneServer, StandaloneView, list[float]]:
    """A server on a settable clock (seconds), and its view."""
    now = [1000.0]
    server = StandaloneServer(ServerOptions(), lambda: now[0])
    return server, StandaloneView(server, default_config()), now


def test_mntr_prints_read_and_update_latency_from_the_final_stage() -> None:
    server, view, now = _standalone()
    client = FakeClient(server)
    client.handshake()
    client.call(OpCode.create, CreateRequest("/a", b"x", OPEN_ACL, 0))
    now[0] += 0.004  # the leader-stamped txns are now 4 ms old
    client.call(OpCode.getData, PathWatchRequest("/a", False))
    lines = dict(line.split("\t") for line in render("mntr", view, COMMAND_NAMES).splitlines())
    # The createSession and the create are updates; the getData is a read.
    assert lines["zk_cnt_updatelatency"] == "2"
    assert lines["zk_cnt_readlatency"] == "1"
    assert lines["zk_p50_readlatency"] == "0"
    assert lines["zk_cnt_propagation_latency"] == "2"
    assert lines["zk_connection_request_count"] == "1"
    assert lines["zk_dead_watchers_queued"] == "0"
    assert lines["zk_avg_fsynctime"] == "0.0"


def test_srst_resets_the_metrics_too() -> None:
    # 3.8's ServerStats.reset calls ServerMetrics.resetAll.
    server, view, _ = _standalone()
    client = FakeClient(server)
    client.handshake()
    client.call(OpCode.create, CreateRequest("/a", b"x", OPEN_ACL, 0))
    assert render("srst", view, COMMAND_NAMES) == "Server stats reset.\n"
    lines = dict(line.split("\t") for line in render("mntr", view, COMMAND_NAMES).splitlines())
    assert (lines["zk_cnt_updatelatency"], lines["zk_connection_request_count"]) == ("0", "0")


def test_monitor_pairs_keep_the_view_figures_first_and_unique() -> None:
    server, view, _ = _standalone()
    keys = [key for key, _ in monitor_pairs(view)]
    assert keys[:3] == ["version", "server_state", "avg_latency"]
    assert len(keys) == len(set(keys))
    assert "avg_fsynctime" in keys and "commit_count" in keys
    assert view.metrics is server.ctx.metrics


# -- storage timings on fake clocks ---------------------------------------------------


class _ReactorByHand(Clock):
    def callFromThread(self, f: Callable[..., Any], *args: Any) -> None:
        f(*args)


class _TimedSyncer:
    """Runs syncer jobs when told, the fake clock moving ``job_seconds`` during each."""

    def __init__(self, reactor: _ReactorByHand, job_seconds: float) -> None:
        self.reactor = reactor
        self.job_seconds = job_seconds
        self.jobs: list[tuple[Callable[[bool, object], None], Callable[..., Any], tuple[Any, ...]]] = []

    def callInThreadWithCallback(self, on_result: Callable[[bool, object], None],
                                 func: Callable[..., Any], *args: Any) -> None:
        self.jobs.append((on_result, func, args))

    def drive(self) -> None:
        while True:
            self.reactor.advance(0)
            if not self.jobs:
                return
            on_result, func, args = self.jobs.pop(0)
            self.reactor.rightNow += self.job_seconds
            on_result(True, func(*args))


class _SlowWriter:
    """A LogWriter stand-in whose fsync takes ``seconds``."""

    def __init__(self, seconds: float) -> None:
        self.seconds = seconds

    def roll(self) -> None:
        pass

    def append(self, zxid: int, txn: bytes) -> None:
        pass

    def commit(self) -> float:
        return self.seconds


def test_fsync_time_and_batch_size_are_recorded() -> None:
    reactor = _ReactorByHand()
    pool = _TimedSyncer(reactor, 0)
    metrics = ServerMetrics()
    disk = GroupCommitLog(_SlowWriter(0.0123), pool, reactor, lambda code: None,  # type: ignore[arg-type]
                          metrics=metrics)
    server = StandaloneServer(ServerOptions(metrics=metrics), reactor.seconds, disk)
    client = FakeClient(server)
    client.handshake()
    pool.drive()
    for i in range(3):
        client.send(OpCode.create, CreateRequest(f"/n{i}", b"", OPEN_ACL, 0))
    pool.drive()
    assert metrics.fsync_time.count == 2 and metrics.fsync_time.maximum == 12
    assert metrics.sync_batch_size.total == 4 and metrics.sync_batch_size.maximum == 3


def test_snapshot_time_comes_from_the_reactor_clock(tmp_path: Path) -> None:
    dirs = DataDirs.of(str(tmp_path))
    dirs.create()
    reactor = _ReactorByHand()
    pool = _TimedSyncer(reactor, 0.25)
    metrics = ServerMetrics()
    disk = GroupCommitLog(LogWriter(dirs.log_dir, prealloc_bytes=4096), pool, reactor,  # type: ignore[arg-type]
                          lambda code: None, metrics=metrics)
    server = StandaloneServer(ServerOptions(metrics=metrics), reactor.seconds, disk)
    snapshotter = Snapshotter(dirs, disk, server.durable_state, SnapshotPolicy(1000, random.Random(1)))
    snapshotter.take()
    pool.drive()
    assert snapshotter.taken == 1
    # open, one chunk, finish: three syncer jobs of 250 ms each on the fake clock.
    assert metrics.snapshot_time.count == 1 and metrics.snapshot_time.total == 750
