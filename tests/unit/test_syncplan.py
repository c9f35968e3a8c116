"""Tests for zabd.quorum.committedlog and zabd.quorum.syncplan (protocol doc 4.5)."""
from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from zabd.core.zxid import is_first_of_epoch
from zabd.jute.opcodes import OpCode
from zabd.jute.txns import CreateSessionTxn, Txn, TxnHeader
from zabd.quorum.committedlog import CommittedLog
from zabd.quorum.packets import encode_packet
from zabd.quorum.syncplan import (
    Proposal,
    ProposalQueue,
    SyncPlan,
    plan_sync,
)
from zabd.storage.history import txn_log_storage_size

E1, E2, E3 = 1 << 32, 2 << 32, 3 << 32  # new-epoch zxids: counter 0
NULLS = "ffffffff" "ffffffff"  # absent data, absent authinfo


def txn(zxid: int, tag: bytes = b"L") -> bytes:
    """Distinct bytes per zxid and per history, so a wrong txn shows."""
    return tag + zxid.to_bytes(8, "big")


def history(*zxids: int, tag: bytes = b"L") -> list[Proposal]:
    return [(z, txn(z, tag)) for z in zxids]


def committed_log(*zxids: int, capacity: int = 500) -> CommittedLog:
    log = CommittedLog(capacity)
    log.refill(history(*zxids))
    return log


class FakeDisk:
    """An on-disk txn log of several files, read the way 3.8's FileTxnIterator reads it."""

    def __init__(self, files: Sequence[Sequence[Proposal]], snapshot_size: int = 0) -> None:
        self.files = [list(f) for f in files if f]
        self.snapshot = snapshot_size
        self.read: list[int] = []  # every zxid handed out
        self.closed = 0

    @property
    def first_zxid(self) -> int | None:
        return self.files[0][0][0] if self.files else None

    def _sizes(self) -> list[tuple[int, int]]:
        return [(f[0][0], sum(20 + len(b) for _z, b in f)) for f in self.files]

    def size_bytes_from(self, zxid: int) -> int:
        return txn_log_storage_size(self._sizes(), zxid)

    def snapshot_size(self) -> int:
        return self.snapshot

    def proposals_from(self, zxid: int) -> Iterator[Proposal]:
        first = max([i for i, f in enumerate(self.files) if f[0][0] <= zxid], default=0)
        try:
            for f in self.files[first:]:
                for entry in f:
                    self.read.append(entry[0])
                    yield entry
        finally:
            self.closed += 1


def real_txn(zxid: int) -> bytes:
    return Txn(TxnHeader(0x1000, 0, zxid, 1700000000000, OpCode.createSession), CreateSessionTxn(30000)).to_bytes()


def wire(plan: SyncPlan) -> str:
    return b"".join(encode_packet(p) for p in plan.packets()).hex()


# --- CommittedLog ---------------------------------------------------------------------------


def test_committed_log_keeps_capacity_plus_one_like_3_8() -> None:
    log = CommittedLog(3)
    for z in range(E1 + 1, E1 + 7):
        log.add(z, txn(z))
    assert [z for z, _b in log] == [E1 + 3, E1 + 4, E1 + 5, E1 + 6]
    assert len(log) == 4 and log.capacity == 3
    assert log.min_zxid(0) == E1 + 3 and log.max_zxid(0) == E1 + 6


def test_committed_log_empty_bounds_are_the_tree_zxid() -> None:
    log = CommittedLog()
    assert not log and len(log) == 0
    assert log.min_zxid(E2) == E2 and log.max_zxid(E2) == E2


def test_committed_log_since_refill_and_clear() -> None:
    log = committed_log(E1 + 1, E1 + 2, E1 + 3, E2 + 1)
    assert [z for z, _b in log.since(E1 + 2)] == [E1 + 3, E2 + 1]
    assert [z for z, _b in log.since(E1 + 5)] == [E2 + 1]
    assert list(log.since(E2 + 1)) == []
    assert list(log.since(0)) == history(E1 + 1, E1 + 2, E1 + 3, E2 + 1)
    log.refill(history(E3 + 1, E3 + 2))
    assert [z for z, _b in log] == [E3 + 1, E3 + 2]
    log.clear()
    assert list(log) == [] and log.max_zxid(7) == 7


def test_committed_log_refuses_zxids_out_of_order() -> None:
    log = committed_log(E1 + 5)
    with pytest.raises(ValueError):
        log.add(E1 + 5, b"x")
    with pytest.raises(ValueError):
        log.add(E1 + 4, b"x")
    with pytest.raises(ValueError):
        CommittedLog(-1)
    assert [z for z, _b in log] == [E1 + 5]


# --- txn_log_storage_size (FileTxnIterator.getStorageSize) ----------------------------------


def test_storage_size_counts_only_the_files_after_the_one_holding_the_zxid() -> None:
    files = [(E1 + 1, 100), (E1 + 50, 200), (E1 + 90, 400)]
    assert txn_log_storage_size(files, E1 + 60) == 400
    assert txn_log_storage_size(files, E1 + 50) == 400
    assert txn_log_storage_size(files, E1 + 49) == 600
    assert txn_log_storage_size(files, E1 + 95) == 0
    assert txn_log_storage_size(files, 0) == 600  # before every file: the oldest is opened
    assert txn_log_storage_size([(E1 + 1, 10**9)], E1 + 5) == 0
    assert txn_log_storage_size([], E1) == 0


# --- the three streams observed from 3.8.0 (protocol doc 4.4) --------------------------------


def test_observed_snap_for_an_empty_learner() -> None:
    leader = CommittedLog()
    leader.refill((z, real_txn(z)) for z in (E1 + 1, E1 + 2, E1 + 3))
    disk = FakeDisk([[(z, real_txn(z)) for z in (E1 + 1, E1 + 2, E1 + 3)]], snapshot_size=500)
    plan = plan_sync(0, E1 + 3, leader, on_disk=disk)
    assert plan == SyncPlan("SNAP", E1 + 3, (), E1 + 3, "no history")
    assert wire(plan) == "0000000f" "0000000100000003" + NULLS


def test_observed_diff_from_2_to_5() -> None:
    leader = CommittedLog()
    leader.refill((z, real_txn(z)) for z in range(E1 + 1, E1 + 6))
    plan = plan_sync(E1 + 2, E1 + 5, leader)
    assert (plan.mode, plan.zxid, plan.forward_from) == ("DIFF", E1 + 5, E1 + 5)
    expected = "0000000d" "0000000100000005" + NULLS
    for z in (E1 + 3, E1 + 4, E1 + 5):
        data = real_txn(z)
        expected += "00000002" f"{z:016x}" f"{len(data):08x}" + data.hex() + "ffffffff"
        expected += "00000004" f"{z:016x}" + NULLS
    assert wire(plan) == expected


def test_observed_trunc_from_0x50_to_5() -> None:
    plan = plan_sync(E1 + 0x50, E1 + 5, committed_log(*range(E1 + 1, E1 + 6)))
    assert plan == SyncPlan("TRUNC", E1 + 5, (), E1 + 5, "peer ahead")
    assert wire(plan) == "0000000e" "0000000100000005" + NULLS


# --- rules 1 to 4 ------------------------------------------------------------------------------


def test_force_snap_wins_even_in_sync() -> None:
    plan = plan_sync(E1 + 3, E1 + 3, committed_log(E1 + 1, E1 + 2, E1 + 3), force_snap=True)
    assert plan == SyncPlan("SNAP", E1 + 3, (), E1 + 3, "forced")


def test_peer_at_the_leader_gets_an_empty_diff_of_its_own_zxid() -> None:
    plan = plan_sync(E1 + 3, E1 + 3, committed_log(E1 + 1, E1 + 2, E1 + 3))
    assert plan == SyncPlan("DIFF", E1 + 3, (), E1 + 3, "in sync")
    # After startZkServer the leader's tree zxid is the new epoch's, beyond its committed log.
    plan = plan_sync(E2, E2, committed_log(E1 + 1, E1 + 2))
    assert plan == SyncPlan("DIFF", E2, (), E2, "in sync")


def test_peer_ahead_with_empty_committed_log_truncates_to_the_tree_zxid() -> None:
    plan = plan_sync(E1 + 9, E1 + 4, CommittedLog())
    assert plan == SyncPlan("TRUNC", E1 + 4, (), E1 + 4, "peer ahead")


def test_peer_behind_with_empty_committed_log_and_no_disk_gets_snap() -> None:
    plan = plan_sync(E1 + 2, E1 + 4, CommittedLog())
    assert plan == SyncPlan("SNAP", E1 + 4, (), E1 + 4, "no history")


def test_peer_at_the_oldest_committed_gets_everything_after_it() -> None:
    plan = plan_sync(E1 + 1, E1 + 4, committed_log(E1 + 1, E1 + 2, E1 + 3, E1 + 4))
    assert (plan.mode, plan.zxid) == ("DIFF", E1 + 4)
    assert plan.history == tuple(history(E1 + 2, E1 + 3, E1 + 4))


def test_peer_at_max_committed_while_leader_is_in_a_new_epoch() -> None:
    plan = plan_sync(E1 + 2, E2, committed_log(E1 + 1, E1 + 2))
    assert plan == SyncPlan("DIFF", E1 + 2, (), E1 + 2, "committed log")


def test_older_epoch_peer_with_divergent_tail_and_no_newer_txns_is_truncated() -> None:
    # The peer logged 6 and 7 in epoch 1 that never committed; the epoch-2 leader has none of its own yet.
    plan = plan_sync(E1 + 7, E2, committed_log(*range(E1 + 1, E1 + 6)))
    assert plan == SyncPlan("TRUNC", E1 + 5, (), E1 + 5, "peer ahead")


def test_older_epoch_peer_with_divergent_tail_before_newer_txns_gets_snap() -> None:
    # 3.8 never truncates across an epoch: the proposal after the common prefix is epoch 2.
    leader = committed_log(*range(E1 + 1, E1 + 6), E2 + 1, E2 + 2)
    plan = plan_sync(E1 + 7, E2 + 2, leader)
    assert plan == SyncPlan("SNAP", E2 + 2, (), E2 + 2, "epoch mismatch")


def test_trunc_to_the_previous_proposal_then_the_rest_in_the_same_epoch() -> None:
    # Only reachable with a hole in one epoch, but it is the walk's TRUNC branch.
    plan = plan_sync(E1 + 4, E1 + 7, committed_log(E1 + 1, E1 + 2, E1 + 3, E1 + 5, E1 + 6, E1 + 7))
    assert (plan.mode, plan.zxid, plan.forward_from) == ("TRUNC", E1 + 3, E1 + 7)
    assert plan.history == tuple(history(E1 + 5, E1 + 6, E1 + 7))
    assert [(p.type, p.zxid) for p in plan.packets()] == [
        (14, E1 + 3), (2, E1 + 5), (4, E1 + 5), (2, E1 + 6), (4, E1 + 6), (2, E1 + 7), (4, E1 + 7),
    ]


def test_new_epoch_peer_gets_diff_and_the_new_epoch_txns() -> None:
    leader = committed_log(E1 + 1, E1 + 2, E1 + 3, E2 + 1, E2 + 2)
    plan = plan_sync(E2, E2 + 2, leader)
    assert plan == SyncPlan("DIFF", E2 + 2, tuple(history(E2 + 1, E2 + 2)), E2 + 2, "committed log")
    assert is_first_of_epoch(E2) and is_first_of_epoch(0) and not is_first_of_epoch(E2 + 1)


def test_new_epoch_peer_beyond_the_leader_gets_snap_not_trunc() -> None:
    plan = plan_sync(E3, E2 + 2, committed_log(E2 + 1, E2 + 2))
    assert plan == SyncPlan("SNAP", E2 + 2, (), E2 + 2, "no history")


# --- the walk itself (queueCommittedProposals) -------------------------------------------------


def test_walk_new_epoch_peer_past_the_end_queues_an_empty_diff() -> None:
    queue = ProposalQueue()
    last = queue.queue_committed(history(E1 + 1, E1 + 2), E2, None, E1 + 2)
    assert (queue.op, queue.history, last) == (("DIFF", E1 + 2), [], E2)


def test_walk_stops_at_max_zxid_and_skips_repeats() -> None:
    queue = ProposalQueue()
    proposals = history(E1 + 1, E1 + 2, E1 + 3, E1 + 3, E1 + 4, E1 + 5)
    last = queue.queue_committed(proposals, E1 + 1, E1 + 4, E1 + 9)
    assert queue.op == ("DIFF", E1 + 9)
    assert [z for z, _b in queue.history] == [E1 + 2, E1 + 3, E1 + 4]
    assert last == E1 + 4


def test_walk_with_op_already_queued_only_appends() -> None:
    queue = ProposalQueue()
    queue.op = ("DIFF", E1 + 6)
    last = queue.queue_committed(history(E1 + 3, E1 + 4, E1 + 5, E1 + 6), E1 + 4, None, E1 + 6)
    assert queue.op == ("DIFF", E1 + 6)
    assert [z for z, _b in queue.history] == [E1 + 5, E1 + 6] and last == E1 + 6


def test_walk_trunc_with_nothing_skipped_uses_minus_one_like_3_8() -> None:
    queue = ProposalQueue()
    queue.queue_committed(history(E1 + 5, E1 + 6), E1 + 3, None, E1 + 6)
    assert queue.op == ("TRUNC", -1)
    assert [z for z, _b in queue.history] == [E1 + 5, E1 + 6]


def test_walk_other_epoch_leaves_no_op_and_returns_the_peer_zxid() -> None:
    queue = ProposalQueue()
    assert queue.queue_committed(history(E1 + 1, E2 + 1), E1 + 3, None, E2 + 1) == E1 + 3
    assert queue.op is None and queue.history == []


# --- rule 5: the on-disk txn log ------------------------------------------------------------


def split(zxids: Sequence[int], *cuts: int, extra: Sequence[int] = ()) -> list[list[Proposal]]:
    entries = history(*zxids, *extra)
    bounds = [0, *cuts, len(entries)]
    return [entries[a:b] for a, b in zip(bounds, bounds[1:])]


EPOCH1 = list(range(E1 + 1, E1 + 11))  # 1..10; the committed log holds 8..10


def test_disk_then_committed_log_stops_reading_at_min_committed() -> None:
    # The log also holds 11, proposed but not committed: it must not be sent.
    disk = FakeDisk(split(EPOCH1, 5, extra=[E1 + 11]), snapshot_size=10_000)
    plan = plan_sync(E1 + 3, E1 + 10, committed_log(*EPOCH1, capacity=2), on_disk=disk)
    assert plan == SyncPlan("DIFF", E1 + 10, tuple(history(*range(E1 + 4, E1 + 11))), E1 + 10, "txn log")
    assert disk.read == list(range(E1 + 1, E1 + 10))  # 9 is read and found above minCommittedLog
    assert disk.closed == 1


def test_disk_size_limit_is_the_snapshot_size_times_the_factor() -> None:
    # Files 1-2, 3-5, 6-10: only the one after the file holding 3 counts, 5 * 29 = 145 bytes.
    files = split(EPOCH1, 2, 5)
    leader = committed_log(*EPOCH1, capacity=2)
    assert plan_sync(E1 + 3, E1 + 10, leader, on_disk=FakeDisk(files, 440)).mode == "DIFF"  # limit 145
    small = FakeDisk(files, 439)  # limit int(144.87) = 144
    assert plan_sync(E1 + 3, E1 + 10, leader, on_disk=small) == SyncPlan(
        "SNAP", E1 + 10, (), E1 + 10, "log too large",
    )
    assert small.read == []
    # 0 (no snapshot, or factor 0) means no limit; above 1 means 0.33; negative turns rule 5 off.
    assert plan_sync(E1 + 3, E1 + 10, leader, on_disk=FakeDisk(files, 0)).mode == "DIFF"
    assert plan_sync(E1 + 3, E1 + 10, leader, on_disk=small, snapshot_size_factor=0).mode == "DIFF"
    assert plan_sync(E1 + 3, E1 + 10, leader, on_disk=small, snapshot_size_factor=5).reason == "log too large"
    assert plan_sync(E1 + 3, E1 + 10, leader, on_disk=FakeDisk(files, 0), snapshot_size_factor=-1).mode == "SNAP"
    assert plan_sync(E1 + 3, E1 + 10, leader).mode == "SNAP"


def test_disk_log_starting_after_the_peer_gives_snap() -> None:
    disk = FakeDisk(split(EPOCH1[4:]), snapshot_size=10_000)
    plan = plan_sync(E1 + 3, E1 + 10, committed_log(*EPOCH1, capacity=2), on_disk=disk)
    assert plan == SyncPlan("SNAP", E1 + 10, (), E1 + 10, "no history")
    assert plan_sync(E1 + 3, E1 + 10, committed_log(*EPOCH1, capacity=2), on_disk=FakeDisk([])).mode == "SNAP"


def test_gap_between_disk_log_and_committed_log_gives_snap() -> None:
    disk = FakeDisk(split(EPOCH1[:5]), snapshot_size=10_000)
    plan = plan_sync(E1 + 3, E1 + 10, committed_log(*EPOCH1, capacity=2), on_disk=disk)
    assert plan == SyncPlan("SNAP", E1 + 10, (), E1 + 10, "gap")


def test_divergent_peer_older_than_the_committed_log_gets_snap() -> None:
    zxids = [E1 + 1, E1 + 2, E1 + 3, *range(E2 + 1, E2 + 6)]
    disk = FakeDisk(split(zxids), snapshot_size=10_000)
    plan = plan_sync(E1 + 7, E2 + 5, committed_log(*zxids, capacity=1), on_disk=disk)
    assert plan == SyncPlan("SNAP", E2 + 5, (), E2 + 5, "gap")


def test_new_epoch_peer_served_from_the_disk_log() -> None:
    zxids = [E1 + 1, E1 + 2, E1 + 3, *range(E2 + 1, E2 + 6)]
    disk = FakeDisk(split(zxids, 2), snapshot_size=10_000)
    plan = plan_sync(E2, E2 + 5, committed_log(*zxids, capacity=1), on_disk=disk)
    assert plan == SyncPlan("DIFF", E2 + 5, tuple(history(*range(E2 + 1, E2 + 6))), E2 + 5, "txn log")


# --- property: a plan replayed on the peer gives the leader's history ---------------------------


@dataclass(frozen=True, slots=True)
class SyncCase:
    leader: list[Proposal]  # the leader's committed history
    last_processed: int
    committed: CommittedLog
    disk: FakeDisk | None
    factor: float
    peer: list[Proposal]  # the peer's log
    peer_zxid: int


def epoch_txns(epoch: int, counters: range, tag: bytes = b"L") -> list[Proposal]:
    return [(epoch << 32 | c, txn(epoch << 32 | c, tag)) for c in counters]


@st.composite
def sync_case(draw: st.DrawFn) -> SyncCase:
    counts = [draw(st.integers(1, 6)), *draw(st.lists(st.integers(0, 5), max_size=3))]
    leader = [entry for e, n in enumerate(counts, 1) for entry in epoch_txns(e, range(1, n + 1))]
    new_epoch = len(counts) + 1
    last_processed = (new_epoch << 32) if draw(st.booleans()) else leader[-1][0]
    committed = CommittedLog(draw(st.integers(0, 6)))
    committed.refill(leader[draw(st.integers(0, len(leader))):])
    disk = None
    if draw(st.integers(0, 4)):  # mostly a txn log, mostly complete (a gap before the committed log is rare)
        purged = draw(st.integers(0, len(leader))) if draw(st.integers(0, 2)) == 0 else 0
        ends = len(leader) if draw(st.integers(0, 3)) else draw(st.integers(purged, len(leader)))
        on_disk = leader[purged:ends]
        if ends == len(leader):  # proposals logged by the leader but not committed
            on_disk += epoch_txns(new_epoch, range(1, draw(st.integers(1, 3))), b"U")
        bounds = [0, *sorted(draw(st.lists(st.integers(0, len(on_disk)), max_size=3))), len(on_disk)]
        files = [on_disk[a:b] for a, b in zip(bounds, bounds[1:])]
        disk = FakeDisk(files, draw(st.sampled_from([0, 50, 400, 5000])))
    factor = draw(st.sampled_from([-1.0, 0.0, 0.33, 1.0, 3.0]))
    # The peer: a prefix of the leader's history, then maybe a new-epoch zxid or a divergent tail.
    k = draw(st.integers(1, len(leader))) if draw(st.integers(0, 5)) else 0
    peer = leader[:k]
    peer_zxid = peer[-1][0] if peer else 0
    peer_epoch = peer_zxid >> 32
    next_epoch = leader[k][0] >> 32 if k < len(leader) else new_epoch
    shape = draw(st.sampled_from(["plain", "new epoch", "tail"]))
    if next_epoch > peer_epoch and shape == "new epoch":
        peer_zxid = draw(st.integers(peer_epoch + 1, next_epoch)) << 32
    elif next_epoch > peer_epoch and shape == "tail" and peer:
        first = (peer_zxid & 0xFFFFFFFF) + 1
        peer = peer + epoch_txns(peer_epoch, range(first, first + draw(st.integers(1, 3))), b"P")
        peer_zxid = peer[-1][0]
    return SyncCase(leader, last_processed, committed, disk, factor, peer, peer_zxid)


@settings(max_examples=400, deadline=None, derandomize=True)
@given(sync_case())
def test_applying_the_plan_gives_the_leaders_history(case: SyncCase) -> None:
    plan = plan_sync(
        case.peer_zxid, case.last_processed, case.committed, on_disk=case.disk, snapshot_size_factor=case.factor,
    )
    if plan.mode == "SNAP":
        assert plan.zxid == case.last_processed == plan.forward_from
        return
    kept = [p for p in case.peer if p[0] <= plan.zxid] if plan.mode == "TRUNC" else case.peer
    assert kept + list(plan.history) == case.leader
    if plan.history:
        assert plan.forward_from == plan.history[-1][0]
    else:
        assert plan.forward_from == (case.peer_zxid if plan.mode == "DIFF" else plan.zxid)
