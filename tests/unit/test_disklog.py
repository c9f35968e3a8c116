"""Group commit, failure halting and fuzzy snapshots, with the syncer thread run by hand."""
from __future__ import annotations

import os
import random
from dataclasses import replace
from pathlib import Path
from typing import Any, Callable

import pytest
from twisted.application.internet import TimerService
from twisted.internet.task import Clock
from twisted.python.failure import Failure

from tests.unit.fakes import OPEN_ACL, FakeClient
from zabd.core.datatree import DataTree
from zabd.jute.opcodes import OpCode
from zabd.jute.records import CreateRequest, DeleteRequest, SetDataRequest
from zabd.jute.schema import encode
from zabd.jute.txns import CreateSessionTxn, Txn, TxnHeader
from zabd.config.zoocfg import ZabdConfig
from zabd.persist.disklog import SYNC_FAILED_EXIT, GroupCommitLog
from zabd.persist.persistence import Storage
from zabd.persist.snapshots import SnapshotPolicy, Snapshotter
from zabd.serving.standalone import ServerOptions, StandaloneServer
from zabd.storage.layout import DataDirs
from zabd.storage.logwriter import LogWriter
from zabd.storage.recovery import recover
from zabd.storage.snapformat import load_snapshot


class SyncerByHand:
    """A one-thread pool whose jobs run only when the test says so."""

    def __init__(self) -> None:
        self.jobs: list[tuple[Callable[[bool, object], None], Callable[..., Any], tuple[Any, ...]]] = []

    def callInThreadWithCallback(self, on_result: Callable[[bool, object], None],
                                 func: Callable[..., Any], *args: Any) -> None:
        self.jobs.append((on_result, func, args))

    def run_one(self) -> None:
        on_result, func, args = self.jobs.pop(0)
        try:
            result = func(*args)
        except Exception:
            on_result(False, Failure())
        else:
            on_result(True, result)

    def run_all(self) -> None:
        while self.jobs:
            self.run_one()


class ReactorByHand(Clock):
    def callFromThread(self, f: Callable[..., Any], *args: Any) -> None:
        f(*args)


class RecordingWriter:
    def __init__(self, fail: bool = False) -> None:
        self.fail = fail
        self.batches: list[list[int]] = []
        self.current: list[int] = []
        self.rolls: list[int] = []

    def roll(self) -> None:
        self.rolls.append(len(self.batches))

    def append(self, zxid: int, txn: bytes) -> None:
        self.current.append(zxid)

    def commit(self) -> float:
        if self.fail:
            raise OSError(5, "Input/output error")
        self.batches.append(self.current)
        self.current = []
        return 0.001


def session_txn(zxid: int) -> Txn:
    return Txn(TxnHeader(zxid, 0, zxid, 0, OpCode.createSession), CreateSessionTxn(30000))


def make_log(writer: Any) -> tuple[GroupCommitLog, SyncerByHand, ReactorByHand, list[int], list[int]]:
    pool, reactor = SyncerByHand(), ReactorByHand()
    halted: list[int] = []
    disk = GroupCommitLog(writer, pool, reactor, halted.append)  # type: ignore[arg-type]
    durable: list[int] = []
    disk.set_durable_callback(durable.append)
    return disk, pool, reactor, durable, halted


def test_appends_of_one_turn_share_one_fsync_and_are_durable_only_after_it() -> None:
    writer = RecordingWriter()
    disk, pool, reactor, durable, _ = make_log(writer)
    for zxid in (1, 2, 3):
        disk.append(session_txn(zxid))
    reactor.advance(0)
    assert len(pool.jobs) == 1 and durable == []
    pool.run_one()
    assert writer.batches == [[1, 2, 3]] and durable == [3]


def test_appends_during_an_fsync_form_the_next_batch() -> None:
    writer = RecordingWriter()
    disk, pool, reactor, durable, _ = make_log(writer)
    disk.append(session_txn(1))
    reactor.advance(0)
    disk.append(session_txn(2))
    disk.append(session_txn(3))
    reactor.advance(0)
    assert len(pool.jobs) == 1, "a second batch must wait for the first fsync"
    pool.run_one()
    assert durable == [1] and len(pool.jobs) == 1
    pool.run_one()
    assert writer.batches == [[1], [2, 3]] and durable == [1, 3]
    assert reactor.getDelayedCalls() == []


def test_a_failed_fsync_halts_and_nothing_is_ever_durable() -> None:
    disk, pool, reactor, durable, halted = make_log(RecordingWriter(fail=True))
    disk.append(session_txn(1))
    reactor.advance(0)
    pool.run_all()
    assert halted == [SYNC_FAILED_EXIT] and durable == [] and disk.failed
    disk.append(session_txn(2))
    reactor.advance(0)
    assert pool.jobs == [] and durable == []


def test_a_write_is_answered_only_after_its_batch_is_durable() -> None:
    disk, pool, reactor, _, _ = make_log(RecordingWriter())
    server = StandaloneServer(ServerOptions(), reactor.seconds, disk)
    client = FakeClient(server)
    assert client.handshake() is None, "the session is a txn: no answer before its fsync"
    reactor.advance(0)
    pool.run_all()
    assert client.read_connect_response() is not None
    xid = client.send(OpCode.create, CreateRequest("/a", b"x", OPEN_ACL, 0))
    reactor.advance(0)
    assert client.messages() == []
    pool.run_all()
    assert client.result_for(xid).reply.err == 0
    reactor.advance(server.options.tick_ms * 100)


def test_policy_threshold_is_randomised_between_half_and_whole_snap_count() -> None:
    thresholds = set()
    policy = SnapshotPolicy(100, random.Random(7))
    for _ in range(200):
        policy.reset()
        thresholds.add(policy.threshold)
    assert min(thresholds) >= 50 and max(thresholds) < 100 and len(thresholds) > 20


def _storage(tmp_path: Path, snap_count: int) -> tuple[StandaloneServer, GroupCommitLog, Snapshotter,
                                                        SyncerByHand, ReactorByHand, DataDirs]:
    dirs = DataDirs.of(str(tmp_path))
    dirs.create()
    pool, reactor = SyncerByHand(), ReactorByHand()
    writer = LogWriter(dirs.log_dir, prealloc_bytes=4096)
    disk = GroupCommitLog(writer, pool, reactor, lambda code: pytest.fail("halted"))  # type: ignore[arg-type]
    holder: list[StandaloneServer] = []
    snapshotter = Snapshotter(dirs, disk, lambda: holder[0].durable_state(),
                              SnapshotPolicy(snap_count, random.Random(1)))
    server = StandaloneServer(ServerOptions(), reactor.seconds, disk)
    holder.append(server)
    return server, disk, snapshotter, pool, reactor, dirs


def _drive(reactor: ReactorByHand, pool: SyncerByHand) -> None:
    while True:
        reactor.advance(0)
        if not pool.jobs:
            return
        pool.run_all()


def _connected(server: StandaloneServer, reactor: ReactorByHand, pool: SyncerByHand) -> FakeClient:
    client = FakeClient(server)
    client.handshake()
    _drive(reactor, pool)
    assert client.read_connect_response() is not None
    return client


def test_snapshots_are_taken_after_snap_count_txns_and_logs_roll(tmp_path: Path) -> None:
    server, disk, snapshotter, pool, reactor, dirs = _storage(tmp_path, snap_count=20)
    client = _connected(server, reactor, pool)
    for i in range(60):
        client.send(OpCode.create, CreateRequest(f"/n{i}", b"v", OPEN_ACL, 0))
        _drive(reactor, pool)
    assert snapshotter.taken >= 2
    assert len(dirs.snapshots()) == snapshotter.taken
    assert len(dirs.logs()) == snapshotter.taken + 1
    newest_zxid, newest = dirs.snapshots()[0]
    loaded = load_snapshot(newest)
    assert loaded.sessions == {client.session_id: 10000}
    assert all(f"/n{i}" in loaded.tree.nodes for i in range(newest_zxid - 2))
    reactor.advance(server.options.tick_ms * 100)


def test_the_log_rolls_and_a_snapshot_starts_on_the_append_after_the_threshold(tmp_path: Path) -> None:
    server, disk, snapshotter, pool, reactor, dirs = _storage(tmp_path, snap_count=20)
    threshold = snapshotter.policy.threshold
    assert disk.roll_due_after == threshold

    def append(zxid: int) -> None:
        disk.append(Txn(TxnHeader(zxid, 0, zxid, 0, OpCode.createSession), CreateSessionTxn(1000)))

    for zxid in range(1, threshold + 1):
        append(zxid)
    assert (disk.since_roll, snapshotter.running) == (threshold, None)
    append(threshold + 1)
    assert disk.since_roll == 0 and snapshotter.running is not None
    assert disk.roll_due_after == snapshotter.policy.threshold
    _drive(reactor, pool)
    assert snapshotter.taken == 1 and len(dirs.logs()) == 1
    reactor.advance(server.options.tick_ms * 100)


def test_a_fuzzy_snapshot_plus_replay_equals_the_live_tree(tmp_path: Path) -> None:
    server, disk, snapshotter, pool, reactor, dirs = _storage(tmp_path, snap_count=10**6)
    client = _connected(server, reactor, pool)
    for i in range(3000):
        client.send(OpCode.create, CreateRequest(f"/n{i}", b"v", OPEN_ACL, 0))
    _drive(reactor, pool)
    disk.roll()
    d = snapshotter.take()
    # Writes land between the chunks of the walk.
    step = 0
    while snapshotter.running is not None:
        step += 1
        client.send(OpCode.setData, SetDataRequest(f"/n{step}", b"changed", -1))
        client.send(OpCode.delete, encode(DeleteRequest(f"/n{2000 + step}", -1)))
        reactor.advance(0)
        if pool.jobs:
            pool.run_one()
    assert d.called and step > 1
    _drive(reactor, pool)
    live: DataTree = server.ctx.tree
    recovered = recover(dirs)
    assert recovered.tree.last_processed_zxid == live.last_processed_zxid
    assert recovered.tree.digest.value == live.digest.value
    assert sorted(recovered.tree.nodes) == sorted(live.nodes)
    assert recovered.sessions == {client.session_id: 10000}
    reactor.advance(server.options.tick_ms * 100)


def _timers(storage: Storage) -> list[float]:
    return [s.step for s in storage if isinstance(s, TimerService)]  # type: ignore[attr-defined]


def test_autopurge_runs_hourly_by_default_and_can_be_turned_off(tmp_path: Path) -> None:
    reactor = ReactorByHand()
    config = ZabdConfig(data_dir=str(tmp_path))
    storage = Storage(config, reactor, lambda: (DataTree(), {}), lambda code: None)
    assert (config.snap_retain_count, _timers(storage)) == (3, [3600.0])
    assert storage.writer.force_sync and storage.writer.prealloc_bytes == 64 * 1024 * 1024
    off = Storage(replace(config, purge_interval_hours=0, force_sync=False, pre_alloc_size_kb=1024),
                  reactor, lambda: (DataTree(), {}), lambda code: None)
    assert _timers(off) == [] and not off.writer.force_sync and off.writer.prealloc_bytes == 1024 * 1024


@pytest.mark.parametrize("steps_before", [0, 1, 3])
def test_an_abandoned_snapshot_never_gets_its_name(tmp_path: Path, steps_before: int) -> None:
    server, disk, snapshotter, pool, reactor, dirs = _storage(tmp_path, snap_count=10**6)
    client = _connected(server, reactor, pool)
    for i in range(3000):
        client.send(OpCode.create, CreateRequest(f"/n{i}", b"v", OPEN_ACL, 0))
    _drive(reactor, pool)
    before = dirs.snapshots()
    d = snapshotter.take()
    for _ in range(steps_before):
        reactor.advance(0)
        if pool.jobs:
            pool.run_one()
    snapshotter.abandon()  # a TRUNC or SNAP is about to rewrite the files
    _drive(reactor, pool)
    assert d.called and snapshotter.running is None and snapshotter.taken == 0
    assert dirs.snapshots() == before
    assert not [name for name in os.listdir(dirs.snap_dir) if name.endswith(".tmp")]
    reactor.advance(server.options.tick_ms * 100)
