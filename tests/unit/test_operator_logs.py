"""Operator events: each logged once with its fields; the JSON-lines observer."""
from __future__ import annotations

import io
import json
import random
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from twisted.logger import LogLevel, Logger, globalLogPublisher

from tests.unit.fakes import OPEN_ACL, FakeClient
from tests.unit.test_metrics import _ReactorByHand, _SlowWriter, _TimedSyncer
from zabd.jute.opcodes import OpCode
from zabd.jute.records import CreateRequest
from zabd.logs import EVENTS, JsonLinesObserver, event_as_json, json_observer
from zabd.metrics.server import ServerMetrics
from zabd.persist.disklog import GroupCommitLog
from zabd.persist.snapshots import SnapshotPolicy, Snapshotter
from zabd.serving.standalone import ServerOptions, StandaloneServer
from zabd.storage.layout import DataDirs
from zabd.storage.logwriter import LogWriter
from zabd.testing.ensemble import SimEnsemble


@pytest.fixture
def events() -> Iterator[list[dict[str, Any]]]:
    seen: list[dict[str, Any]] = []
    globalLogPublisher.addObserver(seen.append)
    yield seen
    globalLogPublisher.removeObserver(seen.append)


def _named(events: list[dict[str, Any]], name: str) -> list[dict[str, Any]]:
    found = [e for e in events if e.get("event") == name]
    for event in found:
        assert set(EVENTS[name]) <= set(event), (name, event)
    return found


def test_an_election_and_each_sync_log_one_event_per_peer_and_side(events: list[dict[str, Any]]) -> None:
    ensemble = SimEnsemble(4)
    ensemble.start()
    leader = ensemble.settle(within_ms=5_000)
    elections = _named(events, "election")
    assert sorted(e["myid"] for e in elections) == [1, 2, 3]
    assert {e["winner"] for e in elections} == {leader}
    assert {e["state"] for e in elections} == {"LEADING", "FOLLOWING"}
    syncs = _named(events, "learner_sync")
    assert sorted((e["side"], e["sid"]) for e in syncs) == sorted(
        (side, sid) for sid in ensemble.sids if sid != leader for side in ("leader", "learner"))
    assert all(e["sync_type"] in ("DIFF", "TRUNC", "SNAP") and e["duration_ms"] >= 0 for e in syncs)
    # The old "Peer N is LEADING" line became the event, not a second line.
    assert not [e for e in events if "is {state}" in e.get("log_format", "") and "event" not in e]


def test_a_session_expiry_logs_one_event(events: list[dict[str, Any]]) -> None:
    now = [1000.0]
    server = StandaloneServer(ServerOptions(tick_ms=2000), lambda: now[0])
    client = FakeClient(server)
    client.handshake(timeout=4000)
    now[0] += 10
    server.expire_sessions()
    (expired,) = _named(events, "session_expired")
    assert (expired["session_id"], expired["timeout_ms"]) == (client.session_id, 4000)
    assert expired["log_level"] is LogLevel.info
    assert server.ctx.metrics.stale_sessions_expired.value == 1


def test_a_slow_fsync_logs_one_warning_event(events: list[dict[str, Any]]) -> None:
    reactor = _ReactorByHand()
    pool = _TimedSyncer(reactor, 0)
    disk = GroupCommitLog(_SlowWriter(1.5), pool, reactor, lambda code: None,  # type: ignore[arg-type]
                          fsync_warning_ms=1000)
    server = StandaloneServer(ServerOptions(), reactor.seconds, disk)
    FakeClient(server).handshake()
    pool.drive()
    (slow,) = _named(events, "slow_fsync")
    assert (slow["duration_ms"], slow["threshold_ms"], slow["txns"]) == (1500, 1000, 1)
    assert slow["log_level"] is LogLevel.warn
    assert [e for e in events if "fsync" in e.get("log_format", "")] == [slow]


def test_a_snapshot_logs_one_event(events: list[dict[str, Any]], tmp_path: Path) -> None:
    dirs = DataDirs.of(str(tmp_path))
    dirs.create()
    reactor = _ReactorByHand()
    pool = _TimedSyncer(reactor, 0.01)
    metrics = ServerMetrics()
    disk = GroupCommitLog(LogWriter(dirs.log_dir, prealloc_bytes=4096), pool, reactor,  # type: ignore[arg-type]
                          lambda code: None, metrics=metrics)
    server = StandaloneServer(ServerOptions(metrics=metrics), reactor.seconds, disk)
    client = FakeClient(server)
    client.handshake()
    client.send(OpCode.create, CreateRequest("/a", b"xy", OPEN_ACL, 0))
    pool.drive()
    Snapshotter(dirs, disk, server.durable_state, SnapshotPolicy(1000, random.Random(1))).take()
    pool.drive()
    (snapshot,) = _named(events, "snapshot")
    assert snapshot["zxid"] == server.ctx.tree.last_processed_zxid
    assert snapshot["nodes"] == server.ctx.tree.node_count()
    assert snapshot["bytes"] == Path(snapshot["path"]).stat().st_size
    assert snapshot["duration_ms"] == 30


def test_json_observer_writes_one_object_per_line() -> None:
    stream = io.StringIO()
    observer = JsonLinesObserver(stream)
    log = Logger(namespace="zabd.test", observer=observer)
    log.info("Expiring session 0x{session_id:x}, timeout of {timeout_ms}ms exceeded",
             event="session_expired", session_id=0x1234, timeout_ms=4000)
    log.warn("two\nlines {level_name}", level_name=LogLevel.warn, obj=object())
    lines = stream.getvalue().splitlines()
    assert len(lines) == 2
    first, second = (json.loads(line) for line in lines)
    assert first["text"] == "Expiring session 0x1234, timeout of 4000ms exceeded"
    assert (first["event"], first["session_id"], first["timeout_ms"]) == ("session_expired", 0x1234, 4000)
    assert (first["level"], first["namespace"]) == ("info", "zabd.test")
    assert isinstance(first["time"], float)
    assert second["text"] == "two\nlines <LogLevel=warn>" and second["level_name"] == "warn"
    assert second["obj"].startswith("<object object")
    assert json.loads(event_as_json({"log_format": "x", "n": 1}))["n"] == 1
    assert json_observer().stream is not None
