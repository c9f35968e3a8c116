"""/metrics: the Prometheus text format, parsed by prometheus_client, and the twisted.web resource."""
from __future__ import annotations

from prometheus_client.parser import text_string_to_metric_families
from twisted.web.test.requesthelper import DummyRequest

from tests.unit.fakes import OPEN_ACL, FakeClient
from zabd.admin.metrics_resource import MetricsResource, metrics_text
from zabd.jute.opcodes import OpCode
from zabd.jute.records import CreateRequest
from zabd.metrics.prometheus import render, sample_value
from zabd.metrics.server import ServerMetrics
from zabd.config.zoocfg import default_config
from zabd.views.stats_view import StandaloneView
from zabd.serving.standalone import ServerOptions, StandaloneServer


def _families(text: str) -> dict[str, object]:
    return {family.name: family for family in text_string_to_metric_families(text)}


def test_counters_summaries_and_summary_sets_parse_with_zookeeper_names() -> None:
    metrics = ServerMetrics()
    metrics.commit_count.add(3)
    for value in (1, 2, 3, 4):
        metrics.read_latency.add(value)
    metrics.fsync_time.add(7)
    metrics.ack_latency.add("2", 5)
    text = render(metrics.registry, [("znode_count", 5), ("server_state", "standalone"), ("avg_readlatency", 9)])
    # As ZooKeeper's provider (simpleclient 0.9) writes them: no _total suffix, the name as help.
    assert "# HELP commit_count commit_count\n# TYPE commit_count counter\ncommit_count 3.0\n" in text
    families = {f.name: f for f in text_string_to_metric_families(text)}
    read = families["readlatency"]
    assert read.type == "summary"
    samples = {(s.name, s.labels.get("quantile")): s.value for s in read.samples}
    assert samples[("readlatency", "0.5")] == 2.5
    assert set(q for _, q in samples if q) == {"0.5", "0.9", "0.99"}  # ADVANCED
    assert samples[("readlatency_count", None)] == 4 and samples[("readlatency_sum", None)] == 10
    fsync = {s.labels.get("quantile") for s in families["fsynctime"].samples if s.name == "fsynctime"}
    assert fsync == {"0.5"}  # BASIC
    acks = [s for s in families["ack_latency"].samples if s.name == "ack_latency_count"]
    assert [(s.labels, s.value) for s in acks] == [({"key": "2"}, 1.0)]
    assert families["znode_count"].type == "gauge" and families["znode_count"].samples[0].value == 5
    assert "server_state" not in families  # text is mntr's only
    assert text.count("avg_readlatency") == 0  # the summary carries it


def test_sample_values_print_as_java_doubles() -> None:
    assert [sample_value(v) for v in (0, 2, 1.5, float("nan"), float("inf"))] == ["0.0", "2.0", "1.5", "NaN", "+Inf"]


def test_metrics_resource_serves_the_view_figures() -> None:
    server = StandaloneServer(ServerOptions(), lambda: 1000.0)
    view = StandaloneView(server, default_config())
    client = FakeClient(server)
    client.handshake()
    client.call(OpCode.create, CreateRequest("/a", b"xyz", OPEN_ACL, 0))
    request = DummyRequest([b""])
    body = MetricsResource(view).render_GET(request)
    assert request.responseHeaders.getRawHeaders(b"content-type") == [b"text/plain; version=0.0.4; charset=utf-8"]
    families = {f.name: f for f in text_string_to_metric_families(body.decode())}
    assert families["znode_count"].samples[0].value == 6
    assert families["global_sessions"].samples[0].value == 1
    updates = {s.name: s.value for s in families["updatelatency"].samples}
    assert updates["updatelatency_count"] == 2
    for name in ("fsynctime", "snapshottime", "proposal_count", "commit_count", "election_time", "looking_count",
                 "diff_count", "snap_count", "outstanding_requests", "approximate_data_size", "watch_count"):
        assert name in families, name
    assert metrics_text(view) == body.decode()
