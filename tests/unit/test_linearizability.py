"""Tests for zabd.harness.history and zabd.harness.linearizability: the black-box fault test's checker (issue 15)."""
from __future__ import annotations

import random
from collections.abc import Hashable
from dataclasses import dataclass, field, replace
from typing import Any

import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st

from zabd.harness.history import (
    ABSENT, History, Kind, Op, Outcome, Znode, register_anomalies, sequence_number, session_anomalies,
)
from zabd.harness.linearizability import (
    UNREAD, HistoryResult, SequenceCounter, Verdict, ZnodeRegister, check_history, check_linearizable,
    prepare_register,
)

# -- building histories by hand -------------------------------------------------------------------------------------


class Ops:
    """Ops with fresh ids: ``complete=None`` makes an unknown op, ``error=`` a failed one."""

    def __init__(self) -> None:
        self.ops: list[Op] = []

    def add(self, kind: Any, session: Hashable, invoke: float, complete: float | None, *, key: str = "/k",
            **fields: Any) -> Op:
        outcome = Outcome.UNKNOWN if complete is None else Outcome.FAILED if "error" in fields else Outcome.OK
        op = Op(len(self.ops), session, key, kind, invoke, float("inf") if complete is None else complete,
                outcome, **fields)
        self.ops.append(op)
        return op

    def read(self, s: Hashable, t0: float, t1: float | None, value: Any = None, version: int | None = None,
             **kw: Any) -> Op:
        return self.add("read", s, t0, t1, value=value, version=version, **kw)

    def write(self, s: Hashable, t0: float, t1: float | None, value: Any, version: int | None = None,
              **kw: Any) -> Op:
        return self.add("write", s, t0, t1, value=value, version=version, **kw)

    def cas(self, s: Hashable, t0: float, t1: float | None, expected: int, value: Any, version: int | None = None,
            **kw: Any) -> Op:
        return self.add("cas", s, t0, t1, value=value, expected_version=expected, version=version, **kw)

    def create(self, s: Hashable, t0: float, t1: float | None, value: Any, **kw: Any) -> Op:
        return self.add("create", s, t0, t1, value=value, **kw)

    def delete(self, s: Hashable, t0: float, t1: float | None, expected: int | None = None, **kw: Any) -> Op:
        return self.add("delete", s, t0, t1, expected_version=expected, **kw)

    def seq(self, s: Hashable, t0: float, t1: float | None, number: int | None = None, **kw: Any) -> Op:
        name = None if number is None else f"/q/item-{number:010d}"
        return self.add("create_seq", s, t0, t1, key="/q", name=name, **kw)

    def check(self, **kw: Any) -> HistoryResult:
        return check_history(self.ops, **kw)


def created() -> Ops:
    """A history that starts with /k created as ("a", 0) by session "s0"."""
    h = Ops()
    h.create("s0", 0, 1, "a")
    return h


def test_a_sequential_life_of_a_znode_is_linearizable() -> None:
    h = created()
    h.read("s1", 2, 3, "a", 0)
    h.write("s1", 4, 5, "b", 1)
    h.cas("s2", 6, 7, 1, "c", 2)
    h.cas("s2", 8, 9, 1, "x", error="BadVersion")
    h.create("s1", 10, 11, "y", error="NodeExists")
    h.delete("s1", 12, 13, 2)
    h.read("s1", 14, 15, error="NoNode")
    h.cas("s2", 16, 17, 2, "z", error="NoNode")
    h.create("s2", 18, 19, "d")
    h.read("s2", 20, 21, "d", 0)
    result = h.check(reads="linearizable")
    assert result.ok, result.explain()
    assert result.explain().startswith("ok:")


def test_concurrent_writes_may_take_effect_in_either_order() -> None:
    h = created()
    h.write("s1", 2, 10, "b", 2)  # invoked first, took effect second
    h.write("s2", 3, 9, "c", 1)
    h.read("s3", 11, 12, "b", 2)
    assert h.check(reads="linearizable").ok


def test_a_stale_read_is_not_linearizable_and_breaks_a_sessions_own_writes() -> None:
    h = created()
    h.write("s1", 2, 3, "b", 1)
    h.read("s2", 4, 5, "a", 0)  # another session: allowed by ZooKeeper, not linearizable
    h.read("s3", 8, 9, "b", 1)  # (without this later read, "b" would count as lost)
    result = h.check(reads="linearizable")
    assert result.verdict is Verdict.NOT_LINEARIZABLE
    assert "stale-read" in result.anomaly_kinds()
    assert "could not be placed" in result.explain() and "#2" in result.explain()
    assert h.check().ok  # reads are only sequentially consistent by default
    h.read("s1", 6, 7, "a", 0)  # the writer's own session
    result = h.check()
    assert result.anomaly_kinds() == {"read-your-writes"}
    assert result.linearizable


def test_a_lost_write_is_flagged() -> None:
    h = created()
    h.cas("s1", 2, 3, 0, "b", 1)
    h.read("s2", 4, 5, "a", 0)
    h.read("s3", 6, 7, "a", 0)
    result = h.check()
    assert [a.kind for a in result.anomalies] == ["lost-write"]
    assert result.anomalies[0].ops[0].value == "b"
    assert "lost-write on /k" in result.explain()
    assert not h.check(reads="linearizable").linearizable


def test_a_write_overwritten_under_its_own_version_is_lost() -> None:
    h = created()
    h.cas("s1", 2, 3, 0, "b", 1)
    h.read("s2", 4, 5, "c", 1)
    h.write("s3", 6, None, "c")  # unknown: it may have happened, but not at version 1
    kinds = h.check().anomaly_kinds()
    assert "lost-write" in kinds


def test_two_writes_acknowledged_with_one_version() -> None:
    h = created()
    h.write("s1", 2, 3, "b", 1)
    h.write("s2", 4, 5, "c", 1)
    result = h.check()
    assert result.verdict is Verdict.NOT_LINEARIZABLE
    assert "duplicate-version" in result.anomaly_kinds()
    assert result.keys[0].stuck is not None and result.keys[0].stuck.value == "c"


def test_a_cas_that_succeeds_twice_on_one_version() -> None:
    h = created()
    h.cas("s1", 2, 6, 0, "b", 1)
    h.cas("s2", 3, 5, 0, "c", 1)  # concurrent, so only the version check can tell
    result = h.check()
    assert not result.linearizable
    (duplicate,) = [a for a in result.anomalies if a.kind == "duplicate-version"]
    assert {op.value for op in duplicate.ops} == {"b", "c"}
    stuck = result.keys[0]
    assert stuck.stuck is not None and len(stuck.prefix) == 2  # the create and one of the two
    assert "1 acknowledged" not in result.explain() and "2 acknowledged writes claim version 1" in result.explain()


def test_a_read_of_a_value_never_written() -> None:
    h = created()
    h.cas("s1", 2, 3, 0, "b", error="BadVersion")
    h.read("s2", 4, 5, "zz", 1)
    h.read("s2", 6, 7, "b", 1)
    result = h.check()
    phantoms = [a for a in result.anomalies if a.kind == "phantom-read"]
    assert [a.ops[0].value for a in phantoms] == ["zz", "b"]
    assert "only failed ops wrote it" in str(phantoms[1])
    assert not h.check(reads="linearizable").linearizable


def test_reads_going_backwards_in_one_session() -> None:
    h = created()
    h.write("s1", 2, 3, "b", 1)
    h.read("s2", 4, 5, "b", 1)
    h.read("s2", 6, 7, "a", 0)
    h.read("s3", 6, 7, "a", 0)  # another session may lag
    assert h.check().anomaly_kinds() == {"monotonic-read"}
    assert session_anomalies(h.ops[:3] + h.ops[4:]) == []


def test_a_write_after_a_read_of_a_newer_version_is_out_of_session_order() -> None:
    h = created()
    h.write("s1", 2, 3, "b", 1)
    h.read("s2", 4, 5, "b", 1)
    h.write("s2", 6, 7, "c", 1)
    assert {"session-order", "duplicate-version"} <= h.check().anomaly_kinds()


def test_pipelined_session_ops_are_not_ordered() -> None:
    h = created()
    h.read("s1", 2, 5, "b", 1)  # still in flight when the next read is sent
    h.read("s1", 3, 6, "a", 0)
    h.write("s2", 1, 4, "b", 1)
    assert session_anomalies(h.ops) == []


def test_failures_are_observations() -> None:
    for wrong in ("BadVersion", "NoNode"):  # yet /k existed at version 0
        h = created()
        h.cas("s1", 2, 3, 0, "b", error=wrong)
        assert not h.check().linearizable, wrong
    h = created()
    h.create("s1", 2, 3, "b", error="NoNode")  # the parent is gone: says nothing about /k
    h.write("s1", 4, 5, "c", error="NoAuth")
    assert h.check().ok
    h = Ops()
    h.create("s1", 0, 1, "a", error="NodeExists")
    assert not h.check().linearizable


def test_an_unknown_write_that_took_effect() -> None:
    h = created()
    h.cas("s1", 2, None, 0, "b")  # timed out
    h.cas("s2", 10, 11, 1, "c", 2)  # so it must have happened
    assert h.check().ok
    searched, required = prepare_register(h.ops)
    assert required == set() and searched[1].value is UNREAD
    h.read("s3", 12, 13, "c", 2)
    assert h.check(reads="linearizable").ok


def test_an_unknown_write_seen_by_a_read_is_required() -> None:
    h = created()
    h.write("s1", 2, None, "b")
    h.read("s2", 5, 6, "b", 1)
    searched, required = prepare_register(h.ops)
    assert required == {1} and searched[1].version == 1
    assert h.check().ok and h.check(reads="linearizable").ok
    h.write("s3", 7, 8, "c", 1)  # then "b" must have made version 1 too
    assert not h.check().linearizable


def test_an_unknown_write_that_did_not_take_effect() -> None:
    h = created()
    h.write("s1", 2, None, "b")
    h.read("s2", 5, 6, "a", 0)
    h.cas("s2", 7, 8, 0, "c", 1)
    h.read("s2", 9, 10, "c", 1)
    assert h.check(reads="linearizable").ok


def test_an_unknown_write_cannot_take_effect_before_it_was_sent() -> None:
    h = created()
    h.cas("s1", 2, 3, 1, "c", 2)  # needs version 1 ...
    h.write("s2", 4, None, "b")  # ... which only this later op could have made
    result = h.check()
    assert not result.linearizable
    assert result.keys[0].stuck is not None and result.keys[0].stuck.value == "c"


def test_versions_only_grow_on_a_node_never_deleted() -> None:
    h = created()
    unknown = h.cas("s1", 2, None, 0, "b")
    late = h.write("s2", 3, 4, "c", 1)
    register = ZnodeRegister(claimed={0, 1})
    assert register.step(Znode("a", 0), unknown) is None  # version 1 is another write's
    assert ZnodeRegister().step(Znode("a", 0), unknown) == Znode("b", 1)  # may have been deleted: no such fact
    assert register.spent(Znode("c", 1), unknown) and not register.spent(Znode("a", 0), unknown)
    assert register.spent(Znode("x", 5), late) and not ZnodeRegister().spent(Znode("x", 5), late)
    assert h.check().ok
    h.cas("s3", 5, 6, 0, "d", error="BadVersion")
    h.write("s3", 7, 8, "e", error="NoNode")  # it existed all along
    result = h.check()
    assert result.keys[0].stuck == h.ops[-1] and [op.id for op in result.keys[0].prefix] == [0, 2, 3]


def test_deletes_restart_versions_without_false_alarms() -> None:
    h = created()
    h.write("s1", 2, 3, "b", 1)
    h.delete("s1", 4, 5)
    h.create("s2", 6, 7, "c")
    h.write("s2", 8, 9, "d", 1)
    h.read("s1", 10, 11, "d", 1)
    assert h.check(reads="linearizable").ok
    h.delete("s2", 12, 13, 0, error="BadVersion")
    h.delete("s1", 14, None)
    assert h.check(reads="linearizable").ok


def test_initial_state_of_a_key() -> None:
    h = Ops()
    h.read("s1", 0, 1, "seed", 3)
    h.cas("s1", 2, 3, 3, "b", 4)
    assert not h.check().ok  # absent by default
    assert h.check(initial={"/k": Znode("seed", 3)}).ok


def test_keys_are_checked_apart() -> None:
    h = created()
    h.create("s1", 0, 1, "a", key="/j")
    h.write("s1", 2, 3, "b", 1, key="/j")
    h.write("s2", 2, 3, "c", 1)
    h.write("s2", 4, 5, "d", 1)  # broken on /k only
    result = h.check()
    assert [(k.key, k.linearizable) for k in result.keys] == [("/j", True), ("/k", False)]


def test_sequential_creates() -> None:
    h = Ops()
    h.seq("s1", 0, 5, 2)
    h.seq("s2", 1, 4, 1)  # concurrent: any order
    h.seq("s3", 6, 7, 3)
    h.seq("s1", 8, None)
    h.seq("s2", 9, 10, error="NoNode")
    assert h.check().ok
    h.seq("s3", 11, 12, 0)  # after 3 completed: out of real-time order
    h.seq("s1", 13, 14, 3)  # a duplicate
    result = h.check()
    assert [a.kind for a in result.anomalies] == ["duplicate-name", "sequence-order"]
    assert [op.id for op in result.anomalies[1].ops] == [2, 5]
    assert result.keys[0].verdict is Verdict.NOT_LINEARIZABLE and result.keys[0].stuck == h.ops[6]
    assert sequence_number("/q/item-0000000012") == 12 and sequence_number("/q/item") is None


def test_the_search_with_a_pluggable_model() -> None:
    h = Ops()
    h.seq("s1", 0, 5, 2)
    h.seq("s2", 1, 4, 1)
    h.seq("s3", 6, 7, 3)
    assert check_linearizable(h.ops, SequenceCounter(), -1).linearizable
    h.seq("s3", 8, 9, 0)
    result = check_linearizable(h.ops, SequenceCounter(), -1, key="/q")
    assert result.verdict is Verdict.NOT_LINEARIZABLE and result.stuck == h.ops[3]
    assert [op.id for op in result.prefix] == [1, 0, 2] and result.state == 3

    class Counter:  # a model the checker has never seen: increments that return the count
        def step(self, state: int, op: Op) -> int | None:
            return state + 1 if op.version in (None, state + 1) else None

    c = Ops()
    c.write("a", 0, 10, None, 2)
    c.write("b", 1, 3, None, 1)
    c.write("c", 2, None, None)
    c.write("d", 11, 12, None, 4)
    assert check_linearizable(c.ops, Counter(), 0).linearizable


def test_a_search_over_budget_is_inconclusive() -> None:
    h = Ops()
    for n in range(12):  # unknown increments with no observed effect, and an impossible end
        h.write(f"u{n}", n, None, f"u{n}")
    h.write("s", 20, 21, "x", 40)
    result = check_linearizable(h.ops, ZnodeRegister(), Znode("a", 0), max_states=5)
    assert result.verdict is Verdict.INCONCLUSIVE
    full = check_linearizable(prepare_register(h.ops)[0], ZnodeRegister(), Znode("a", 0))
    assert full.verdict is Verdict.NOT_LINEARIZABLE and full.states <= 20  # merged values: one branch each
    assert "inconclusive" in result.explain()


def test_history_recorder() -> None:
    ticks = iter(range(100))
    history = History(clock=lambda: next(ticks))
    c = history.invoke("s1", "/k", "create", value="a")
    history.ok(c)
    r = history.invoke("s1", "/k", "read")
    w = history.invoke("s2", "/k", "cas", value="b", expected_version=0)
    history.ok(r, value="a", version=0)
    f = history.invoke("s2", "/k", "cas", value="c", expected_version=0, at=50)
    history.fail(f, "BadVersion", at=51)
    lost = history.invoke("s3", "/k", "write", value="d")
    history.unknown(lost)
    history.ok(w, version=1)
    ops = history.ops()
    assert [op.outcome for op in ops] == [Outcome.OK] * 3 + [Outcome.FAILED, Outcome.UNKNOWN]
    assert ops[1].value == "a" and ops[2].value == "b" and ops[2].version == 1 and ops[2].complete == 6
    assert ops[3].invoke == 50 and ops[3].error == "BadVersion"
    assert check_history(ops).ok
    with pytest.raises(ValueError):
        history.ok(w)
    with pytest.raises(ValueError):
        history.ok(history.invoke("s1", "/k", "write", value="e"), value="e")
    assert "write('d') unknown" in ops[4].describe()


def test_op_records_reject_nonsense() -> None:
    with pytest.raises(ValueError):
        Op(0, "s", "/k", "read", 5, 4, Outcome.OK)
    with pytest.raises(ValueError):
        Op(0, "s", "/k", "read", 5, 6)  # unknown but completed
    with pytest.raises(ValueError):
        Op(0, "s", "/k", "write", 5, 6, Outcome.FAILED)  # failed without an error
    with pytest.raises(ValueError):
        Op(0, "s", "/k", "rename", 5, 6, Outcome.OK)  # type: ignore[arg-type]
    with pytest.raises(ValueError):
        Op(0, "s", "/k", "read", 5, 6, Outcome.OK, value="a")  # read, but which version?
    assert ABSENT.exists is False and register_anomalies([]) == []


# -- histories from a random concurrent schedule against a sequential store ------------------------------------------


@dataclass
class Flight:
    op: Op
    applied: bool = False
    result: dict[str, Any] = field(default_factory=dict)


@dataclass
class Simulation:
    """Clients run a random schedule against one atomic store; each op takes effect inside its interval,
    or, for an unknown one, at any later time or never. Written apart from ZnodeRegister on purpose."""
    rng: random.Random
    clients: int
    keys: int
    kinds: tuple[Kind, ...]
    unknown_rate: float = 0.03
    store: dict[str, tuple[str, int]] = field(default_factory=dict)
    values: dict[str, dict[int, str]] = field(default_factory=dict)  # key -> version -> value
    counters: dict[str, int] = field(default_factory=dict)
    seen: dict[tuple[str, str], int] = field(default_factory=dict)
    ops: list[Op] = field(default_factory=list)
    limbo: list[Flight] = field(default_factory=list)
    acked_writes: int = 0
    next_id: int = 0

    def run(self, steps: int) -> list[Op]:
        flights: list[Flight | None] = [None] * self.clients
        for t in range(1, steps + 1):
            if self.limbo and self.rng.random() < 0.05:
                self.apply(self.limbo.pop(self.rng.randrange(len(self.limbo))))
            c = self.rng.randrange(self.clients)
            flight = flights[c]
            if flight is None:
                flights[c] = self.start(c, t)
            elif self.rng.random() < self.unknown_rate:
                if not flight.applied and self.rng.random() < 0.5:
                    self.limbo.append(flight)
                self.ops.append(flight.op)
                flights[c] = None
            elif not flight.applied:
                self.apply(flight)
            else:
                self.finish(flight, t)
                flights[c] = None
        self.ops += [f.op for f in flights if f is not None]
        return sorted(self.ops, key=lambda op: op.id)

    def start(self, c: int, t: int) -> Flight:
        kind = self.rng.choice(self.kinds)
        key = "/q" if kind == "create_seq" else f"/k{self.rng.randrange(self.keys)}"
        n = self.next_id = self.next_id + 1
        expected = self.seen.get((f"c{c}", key), 0) if self.rng.random() < 0.9 else self.rng.randrange(4)
        value = None if kind in ("read", "delete", "create_seq") else f"v{n}"
        return Flight(Op(n, f"c{c}", key, kind, t, value=value, expected_version=expected if kind == "cas" else None))

    def apply(self, flight: Flight) -> None:
        op, res = flight.op, flight.result
        flight.applied = True
        current = self.store.get(op.key)
        new: tuple[str, int] | None = None
        if op.kind == "create_seq":
            self.counters[op.key] = self.counters.get(op.key, -1) + self.rng.choice((1, 1, 2))
            res["name"] = f"/q/item-{self.counters[op.key]:010d}"
            return
        if op.kind == "read":
            if current is None:
                res["error"] = "NoNode"
            else:
                res.update(value=current[0], version=current[1])
            return
        if op.kind == "create":
            if current is not None:
                res["error"] = "NodeExists"
                return
            new = (str(op.value), 0)
        elif current is None:
            res["error"] = "NoNode"
            return
        elif op.kind == "cas" and op.expected_version not in (-1, current[1]):
            res["error"] = "BadVersion"
            return
        elif op.kind in ("write", "cas"):
            new = (str(op.value), current[1] + 1)
            res["version"] = new[1]
        if new is None:
            del self.store[op.key]
        else:
            self.store[op.key] = new
            self.values.setdefault(op.key, {})[new[1]] = new[0]

    def finish(self, flight: Flight, t: int) -> None:
        op, res = flight.op, dict(flight.result)
        error = res.pop("error", None)
        if error:
            done = replace(op, complete=t, outcome=Outcome.FAILED, error=error)
        else:
            done = replace(op, complete=t, outcome=Outcome.OK, **res)
            self.acked_writes += op.kind in ("write", "cas", "create", "delete")
        if done.kind != "create_seq" and (version := done.read_version() if done.kind == "read"
                                          else done.new_version()) is not None:
            self.seen[(str(op.session), op.key)] = version
        self.ops.append(done)


KINDS: tuple[Kind, ...] = ("read", "read", "cas", "cas", "write", "create", "create_seq")


def simulate(seed: int, *, clients: int = 4, keys: int = 2, steps: int = 120, kinds: tuple[Kind, ...] = KINDS,
             unknown_rate: float = 0.05) -> Simulation:
    sim = Simulation(random.Random(seed), clients, keys, kinds, unknown_rate)
    ops = sim.run(steps)
    sim.ops = [replace(op, id=n) for n, op in enumerate(ops)]
    return sim


@settings(max_examples=100, deadline=None)
@given(seed=st.integers(0, 2**32), deletes=st.booleans(), clients=st.integers(1, 6))
def test_histories_of_an_atomic_store_always_check(seed: int, deletes: bool, clients: int) -> None:
    sim = simulate(seed, clients=clients, kinds=KINDS + (("delete",) if deletes else ()))
    assert check_history(sim.ops).ok, check_history(sim.ops).explain()
    result = check_history(sim.ops, reads="linearizable")
    assert result.ok, result.explain()


def brute_force(ops: list[Op], state: Znode) -> bool:
    """Every order of every choice of unknown ops, tried one by one: the definition, for tiny histories."""
    model = ZnodeRegister()

    def search(left: frozenset[Op], state: Znode) -> bool:
        must = [op for op in left if op.outcome is not Outcome.UNKNOWN]
        if not must:
            return True
        deadline = min(op.complete for op in must)
        for op in left:
            if op.invoke <= deadline:
                after = model.step(state, op)
                if after is not None and search(left - {op}, after):
                    return True
                if op.outcome is Outcome.UNKNOWN and search(left - {op}, state):
                    return True
        return False

    return search(frozenset(ops), state)


@st.composite
def tiny_histories(draw: st.DrawFn) -> list[Op]:
    ops = []
    for n in range(draw(st.integers(1, 6))):
        kind: Kind = draw(st.sampled_from(["read", "write", "cas", "create", "delete"]))
        invoke = draw(st.integers(0, 8))
        outcome = draw(st.sampled_from(list(Outcome)))
        error = draw(st.sampled_from(["NoNode", "NodeExists", "BadVersion"])) if outcome is Outcome.FAILED else None
        ops.append(Op(n, draw(st.integers(0, 2)), "/k", kind, invoke,
                      invoke + draw(st.integers(0, 4)) if outcome is not Outcome.UNKNOWN else float("inf"),
                      outcome, value=draw(st.sampled_from(["a", "b", "c"])) if kind != "delete" else None,
                      expected_version=draw(st.integers(-1, 2)) if kind in ("cas", "delete") else None,
                      version=draw(st.integers(0, 3) if kind == "read" and outcome is Outcome.OK else
                                   st.none() | st.integers(0, 3)) if kind != "delete" else None, error=error))
    return ops


@settings(max_examples=400, deadline=None)
@given(ops=tiny_histories(), initial=st.sampled_from([ABSENT, Znode("i", 0), Znode("a", 1)]))
def test_the_search_agrees_with_brute_force(ops: list[Op], initial: Znode) -> None:
    """The pruning (merged values, claimed versions, spent ops, required unknown ops) never changes a verdict."""
    expected = Verdict.LINEARIZABLE if brute_force(ops, initial) else Verdict.NOT_LINEARIZABLE
    (result,) = check_history(ops, initial={"/k": initial}, reads="linearizable").keys
    assert result.verdict is expected, result.explain()


def acked(sim: Simulation, *kinds: str) -> list[Op]:
    return [op for op in sim.ops if op.kind in kinds and op.acked and op.kind != "create_seq"]


@settings(max_examples=100, deadline=None)
@given(seed=st.integers(0, 2**32), mutation=st.sampled_from(["phantom", "duplicate", "stale"]), data=st.data())
def test_mutated_histories_are_flagged(seed: int, mutation: str, data: st.DataObject) -> None:
    sim = simulate(seed, clients=5, steps=160)
    ops = sim.ops
    if mutation == "phantom":
        reads = acked(sim, "read")
        assume(reads)
        victim = data.draw(st.sampled_from(reads))
        ops[victim.id] = replace(victim, value="never-written")
        expected = "phantom-read"
    elif mutation == "duplicate":
        pairs = [(a, b) for a in acked(sim, "write", "cas") for b in acked(sim, "write", "cas")
                 if a.key == b.key and a.version is not None and b.version is not None and a.version < b.version]
        assume(pairs)
        a, b = data.draw(st.sampled_from(pairs))
        ops[b.id] = replace(b, version=a.version)
        expected = "duplicate-version"
    else:
        pairs = [(w, r) for w in acked(sim, "write", "cas") for r in acked(sim, "read")
                 if w.key == r.key and w.complete < r.invoke and w.version]
        assume(pairs)
        w, r = data.draw(st.sampled_from(pairs))
        assert w.version is not None
        ops[r.id] = replace(r, value=sim.values[w.key][w.version - 1], version=w.version - 1)
        expected = "stale-read"
    result = check_history(ops, reads="linearizable")
    assert not result.linearizable, result.explain()
    assert expected in result.anomaly_kinds()
    if mutation != "stale":  # the other two break even ZooKeeper's weaker reads
        assert not check_history(ops).ok


def test_ten_thousand_acknowledged_writes() -> None:
    sim = Simulation(random.Random(15), clients=20, keys=5, kinds=("read", "cas", "cas", "cas", "write"),
                     unknown_rate=0.002)
    sim.store = {f"/k{n}": ("init", 0) for n in range(5)}
    initial = {key: Znode("init", 0) for key in sim.store}
    ops = sim.ops = [replace(op, id=n) for n, op in enumerate(sim.run(130_000))]
    assert sim.acked_writes >= 10_000
    result = check_history(ops, initial=initial)
    assert result.ok, result.explain()
    assert len(result.keys) == 5
    broken = list(ops)
    last = max(acked(sim, "cas"), key=lambda op: op.complete)
    broken[last.id] = replace(last, version=(last.version or 0) - 1)  # rewrites its slot: a duplicate
    assert "duplicate-version" in check_history(broken, initial=initial).anomaly_kinds()
