"""Tests for zabd.core.sessions (vectors marked Java come from the 3.8.0 jar)."""
from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, precondition, rule

from zabd.core.sessions import SessionTracker, initial_session_id, session_password, to_signed64
from zabd.jute.errors import Code, KeeperError


# Java: new Random(sid ^ 0xB3415C00L).nextBytes(byte[16]).
@pytest.mark.parametrize(
    "sid, password",
    [
        (1, "054cc74a37327db215e702e20c73f005"),
        (0x0100000123456789, "b11647e5db8ff1c8bd6768eac33a41ce"),
        (-1, "20f62cb5648dc2d771471c8a2486a9ee"),
        (-(1 << 63), "f22acd4a97e69d6d20a49bb638eadb38"),
        (to_signed64(0x8100001247690000), "bd577185065be73a63f1d1b5bf012900"),
        (0, "f22acd4a97e69d6d20a49bb638eadb38"),
        (0xB3415C00, "60b420bb3851d9d47acb933dbe70399b"),
    ],
)
def test_session_password(sid: int, password: str) -> None:
    assert session_password(sid).hex() == password
    # unsigned spelling of the same 64 bits gives the same password
    assert session_password(sid & (2**64 - 1)) == session_password(sid)


# Java: ((ms << 24) >>> 8) | (serverId << 56), Long.MIN_VALUE bumped by one.
@pytest.mark.parametrize(
    "server_id, ms, sid",
    [
        (1, 123456789, 72065684902051840),
        (255, 0xFFFFFFFFFF, -65536),
        (128, 5, -9223372036854448128),
        (256, 77, 5046272),
        (1, 0x12345678901234, 96397002211065856),
        (128, 0, -9223372036854775807),
        (0, 0, 0),
        (3, -5, 288230376151384064),
    ],
)
def test_initial_session_id(server_id: int, ms: int, sid: int) -> None:
    assert initial_session_id(server_id, ms) == sid


def test_to_signed64() -> None:
    assert to_signed64(2**63) == -(2**63)
    assert to_signed64(2**64 - 1) == -1
    assert to_signed64(5) == 5
    assert to_signed64(2**64 + 5) == 5


def test_create_allocates_consecutive_ids() -> None:
    tracker = SessionTracker(tick_ms=2000, server_id=1, now_ms=0x0FFE0F)
    first = tracker.create(30000, now_ms=0)
    assert first == 0x0100000FFE0F0000
    assert tracker.create(30000, now_ms=0) == first + 1
    assert tracker.next_session_id == first + 2
    assert len(tracker) == 2
    assert sorted(tracker) == [first, first + 1]


def test_create_wraps_like_a_java_long() -> None:
    tracker = SessionTracker(2000, server_id=127, now_ms=0xFFFFFFFFFF)
    tracker.create(1000, 0)  # 0x7fffffffffff0000
    for _ in range(0xFFFF - 1):
        tracker._next_id += 1  # skip ahead without tracking 65k sessions
    assert tracker.create(1000, 0) == 2**63 - 1
    assert tracker.next_session_id == -(2**63)


def test_expiry_is_rounded_up_to_the_next_tick() -> None:
    tracker = SessionTracker(tick_ms=2000, server_id=1, now_ms=0)
    sid = tracker.create(5000, now_ms=1000)  # 6000 -> bucket 8000
    assert tracker.expiry_of(sid) == 8000
    assert tracker.next_expiry_ms() == 8000
    assert tracker.expire(7999) == []
    assert tracker.is_alive(sid)
    assert tracker.expire(8000) == [sid]
    assert not tracker.is_alive(sid)
    assert tracker.is_closing(sid)
    assert sid in tracker
    assert tracker.expire(100000) == []
    assert tracker.next_expiry_ms() is None
    # an exact multiple still moves to the next tick
    other = tracker.create(2000, now_ms=2000)
    assert tracker.expiry_of(other) == 6000


def test_touch_moves_between_buckets() -> None:
    tracker = SessionTracker(1000, 1, 0)
    a = tracker.create(3000, 0)  # 4000
    b = tracker.create(3000, 0)  # 4000
    assert tracker.expiry_buckets() == {4000: [a, b]}
    assert tracker.touch(a, 1500)  # 5000
    assert tracker.touch(a, 1600)  # still 5000: no change
    assert tracker.expiry_buckets() == {4000: [b], 5000: [a]}
    assert tracker.touch(b, 2500, timeout_ms=500)  # 4000 again, one-off timeout
    assert tracker.timeout_of(b) == 3000
    assert tracker.expire(4000) == [b]
    assert tracker.expire(5000) == [a]


def test_expire_returns_buckets_in_order() -> None:
    tracker = SessionTracker(100, 1, 0)
    late = tracker.create(1000, 0)  # 1100
    early = tracker.create(200, 0)  # 300
    middle = tracker.create(500, 0)  # 600
    assert tracker.expiry_buckets() == {300: [early], 600: [middle], 1100: [late]}
    assert tracker.expire(10000) == [early, middle, late]


def test_touch_unknown_or_closing_fails() -> None:
    tracker = SessionTracker(1000, 1, 0)
    assert not tracker.touch(42, 0)
    sid = tracker.create(4000, 0)
    tracker.set_closing(sid)
    assert not tracker.touch(sid, 100)
    assert tracker.expiry_buckets() == {}
    assert tracker.expire(10**9) == []  # a closing session never expires (again)
    tracker.set_closing(12345)  # unknown: ignored


def test_remove() -> None:
    tracker = SessionTracker(1000, 1, 0)
    sid = tracker.create(4000, 0)
    tracker.remove(sid)
    tracker.remove(sid)
    assert sid not in tracker
    assert tracker.timeout_of(sid) is None
    assert tracker.expiry_of(sid) is None
    assert tracker.expire(10**9) == []
    assert tracker.sessions() == {}


def test_add_known_session() -> None:
    tracker = SessionTracker(1000, 1, 0)
    tracker.add(-5, 4000, now_ms=0)  # negative ids are fine (server id >= 128)
    assert tracker.sessions() == {-5: 4000}
    tracker.add(-5, 9000, now_ms=100)  # resume / replay: new timeout, new expiry
    assert tracker.sessions() == {-5: 9000}
    assert tracker.expiry_of(-5) == 10000
    tracker.set_closing(-5)
    tracker.add(-5, 9000, now_ms=200)
    assert tracker.is_closing(-5)
    assert tracker.expiry_of(-5) is None


def test_ownership() -> None:
    tracker = SessionTracker(1000, 1, 0)
    sid = tracker.create(4000, 0)
    a, b = object(), object()
    tracker.check_session(sid, a)
    tracker.check_session(sid, a)
    with pytest.raises(KeeperError) as info:
        tracker.check_session(sid, b)
    assert info.value.code == Code.SESSIONMOVED
    tracker.set_owner(sid, b)
    tracker.check_session(sid, b)
    with pytest.raises(KeeperError) as info:
        tracker.check_session(999, a)
    assert info.value.code == Code.UNKNOWNSESSION
    with pytest.raises(KeeperError) as info:
        tracker.set_owner(999, a)
    assert info.value.code == Code.SESSIONEXPIRED
    tracker.set_closing(sid)
    with pytest.raises(KeeperError) as info:
        tracker.check_session(sid, b)
    assert info.value.code == Code.SESSIONEXPIRED


def test_bad_tick_and_clear() -> None:
    with pytest.raises(ValueError):
        SessionTracker(0, 1, 0)
    tracker = SessionTracker(10, 1, 0)
    tracker.create(100, 0)
    tracker.clear()
    assert len(tracker) == 0
    assert tracker.next_expiry_ms() is None


def test_stale_heap_entries_are_compacted() -> None:
    tracker = SessionTracker(1, 1, 0)
    sid = tracker.create(10, 0)
    for now in range(1, 5000):
        assert tracker.touch(sid, now)
    assert len(tracker._heap) <= 2 * len(tracker._buckets) + 65
    assert tracker.next_expiry_ms() == 5010  # last touch at 4999
    assert tracker.expire(5009) == []
    assert tracker.expire(5010) == [sid]


@settings(max_examples=200)
@given(
    st.integers(1, 5000),
    st.lists(st.tuples(st.integers(0, 40000), st.integers(0, 3000)), min_size=1, max_size=30),
)
def test_expiry_formula(tick: int, touches: list[tuple[int, int]]) -> None:
    tracker = SessionTracker(tick, 1, 0)
    sid = tracker.create(touches[0][0], 0)
    now = 0
    for timeout, step in touches:
        now += step
        tracker.touch(sid, now, timeout)
        assert tracker.expiry_of(sid) == ((now + timeout) // tick + 1) * tick
        assert tracker.expiry_of(sid) % tick == 0  # type: ignore[operator]
        assert tracker.expiry_of(sid) > now + timeout  # type: ignore[operator]


class TrackerMachine(RuleBasedStateMachine):
    """Against a plain model: every session expires exactly once, exactly when due."""

    def __init__(self) -> None:
        super().__init__()
        self.tick = 100
        self.tracker = SessionTracker(self.tick, 1, 0)
        self.now = 0
        self.due: dict[int, int] = {}  # live session -> expiry time
        self.expired: list[int] = []
        self.closed: set[int] = set()

    def _expiry(self, timeout: int) -> int:
        return ((self.now + timeout) // self.tick + 1) * self.tick

    @rule(timeout=st.integers(0, 2000))
    def create(self, timeout: int) -> None:
        sid = self.tracker.create(timeout, self.now)
        self.due[sid] = self._expiry(timeout)

    @precondition(lambda self: self.due)
    @rule(data=st.data())
    def touch(self, data: st.DataObject) -> None:
        sid = data.draw(st.sampled_from(sorted(self.due)))
        assert self.tracker.touch(sid, self.now)
        self.due[sid] = self._expiry(self.tracker.timeout_of(sid) or 0)

    @precondition(lambda self: self.due)
    @rule(data=st.data())
    def close(self, data: st.DataObject) -> None:
        sid = data.draw(st.sampled_from(sorted(self.due)))
        self.tracker.set_closing(sid)
        del self.due[sid]
        self.closed.add(sid)

    @rule(step=st.integers(0, 700))
    def advance(self, step: int) -> None:
        self.now += step
        got = self.tracker.expire(self.now)
        want = sorted((t, sid) for sid, t in self.due.items() if t <= self.now)
        assert sorted(got) == sorted(sid for _, sid in want)
        assert [self.due[sid] for sid in got] == sorted(self.due[sid] for sid in got)
        for sid in got:
            assert sid not in self.expired
            del self.due[sid]
        self.expired.extend(got)

    @invariant()
    def agrees(self) -> None:
        assert self.tracker.next_expiry_ms() == (min(self.due.values()) if self.due else None)
        for sid, t in self.due.items():
            assert self.tracker.is_alive(sid)
            assert self.tracker.expiry_of(sid) == t
        for sid in self.closed | set(self.expired):
            assert not self.tracker.touch(sid, self.now)


TrackerMachine.TestCase.settings = settings(max_examples=60, stateful_step_count=40, deadline=None)
TestTrackerMachine = TrackerMachine.TestCase
