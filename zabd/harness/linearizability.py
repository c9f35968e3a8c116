# -*- test-case-name: tests.unit.test_linearizability -*-
"""Is a client history's write order linearizable? Checked per key (issue 15, section 4).

Written by hand, as no maintained Python library checks linearizability (Knossos
is Clojure, Porcupine Go). The search is Wing & Gong's with Lowe's improvements
("Testing for linearizability", 2017): configurations ``(event index,
linearized pending ops, state)`` are memoised, and ops are linearized just in
time: events are scanned in time order, and only when the return of an op not
yet linearized blocks the scan may pending ops be linearized, the blocked one
first. An op that leaves the state unchanged (a read, a BadVersion) is
linearized as soon as it matches, with no branch: placing it early never hurts.

Unknown ops never return: they are offered only when the scan is blocked, one
per distinct effect. One whose value a read saw must take effect; values no
read saw are merged, so writes that differ only there reach one state. On a
node never deleted, versions only grow: an unknown op cannot make a version
acknowledged to another, and a configuration where an op that must still be
placed can no longer be (its version is passed) is dead at once. A search over
``max_states`` configurations stops as inconclusive rather than hang.

ZooKeeper's reads are not linearizable (a follower may lag), so by default only
writes and their failures are searched; reads are held to per-session order
and to the scans of :mod:`zabd.harness.history`. ``reads="linearizable"``
searches them too, for a workload that reads through the leader.
"""

from __future__ import annotations

import enum
from collections.abc import Callable, Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Generic, Literal, TypeVar

from zabd.harness.history import (
    ABSENT, ERRORS_OBSERVED, Anomaly, Op, Outcome, Znode, by_key, has_deletes, register_anomalies,
    sequence_anomalies, session_anomalies,
)
from zabd.harness.linear_models import Model, SequenceCounter, ZnodeRegister

__all__ = ["DEFAULT_MAX_STATES", "HistoryResult", "KeyResult", "Model", "SequenceCounter", "Verdict",
           "ZnodeRegister", "check_history", "check_linearizable", "prepare_register"]

S = TypeVar("S")
DEFAULT_MAX_STATES = 200_000


class Verdict(enum.Enum):
    """The checker's answer for a key or a whole history."""

    LINEARIZABLE = "linearizable"
    NOT_LINEARIZABLE = "not linearizable"
    INCONCLUSIVE = "inconclusive"


@dataclass(frozen=True, slots=True)
class KeyResult:
    """The verdict for one key; when not linearizable, the longest linearizable prefix found and the op that could
    not be placed after it, the state there and the ops concurrent with it."""
    key: str
    verdict: Verdict
    states: int = 0
    prefix: tuple[Op, ...] = ()
    stuck: Op | None = None
    state: object = None
    concurrent: tuple[Op, ...] = ()

    @property
    def linearizable(self) -> bool:
        return self.verdict is Verdict.LINEARIZABLE

    def explain(self, tail: int = 8) -> str:
        if self.linearizable:
            return f"{self.key}: linearizable ({self.states} states)"
        stop = "could not be placed" if self.verdict is Verdict.NOT_LINEARIZABLE else "was next when the budget ran out"
        return "\n".join([
            f"{self.key}: {self.verdict.value} after {self.states} states; linearized {len(self.prefix)} ops, "
            f"the last {min(tail, len(self.prefix))}:", *(f"    {op.describe()}" for op in self.prefix[-tail:]),
            f"  then state {self.state!r}, and this op {stop}:", f"    {self.stuck.describe() if self.stuck else '?'}",
            *(["  pending with it:"] if self.concurrent else []),
            *(f"    {op.describe()}" for op in self.concurrent[:tail])])


@dataclass(frozen=True, slots=True)
class HistoryResult:
    """The verdict of every key of a history, and the anomalies the scans found."""

    keys: tuple[KeyResult, ...]
    anomalies: tuple[Anomaly, ...]

    @property
    def verdict(self) -> Verdict:
        verdicts = {k.verdict for k in self.keys}
        worst = [v for v in (Verdict.NOT_LINEARIZABLE, Verdict.INCONCLUSIVE) if v in verdicts]
        return worst[0] if worst else Verdict.LINEARIZABLE

    @property
    def linearizable(self) -> bool:
        return self.verdict is Verdict.LINEARIZABLE

    @property
    def ok(self) -> bool:
        """Linearizable with no anomaly."""
        return self.linearizable and not self.anomalies

    def anomaly_kinds(self) -> set[str]:
        return {a.kind for a in self.anomalies}

    def explain(self) -> str:
        parts = [k.explain() for k in self.keys if not k.linearizable] + [str(a) for a in self.anomalies]
        return "\n".join(parts) if parts else f"ok: {len(self.keys)} keys linearizable, no anomaly"


@dataclass(slots=True, eq=False)
class _Frame(Generic[S]):
    """A blocked configuration on the search stack, with the moves left to try."""
    i: int
    lin: frozenset[int]
    state: S
    pending: frozenset[int]
    nopt: int
    parent: _Frame[S] | None
    trail: list[int]  # ops linearized since the parent, in order
    stuck: int | None = None  # an op that must still be placed and never can be
    moves: list[int] = field(default_factory=list)
    next: int = 0
    stage: int = 0  # 0: no moves yet, 1: the pending ops offered, 2: the unknown ones too


def check_linearizable(ops: Sequence[Op], model: Model[S], initial: S, *, key: str = "",
                       required: Collection[int] = (), max_states: int = DEFAULT_MAX_STATES) -> KeyResult:
    """Search for a linearization of ``ops`` (one object) under ``model``.

    Ok and failed ops must be placed between their invocation and completion; unknown ops may be placed
    any time after their invocation or never, unless their id is in ``required`` (known to have taken effect).
    """
    events = sorted([(op.invoke, 0, n) for n, op in enumerate(ops)]
                    + [(op.complete, 1, n) for n, op in enumerate(ops) if op.outcome is not Outcome.UNKNOWN])
    optional = [n for _, _, n in events if ops[n].outcome is Outcome.UNKNOWN and ops[n].id not in required]
    rank = {n: r for r, n in enumerate(optional)}
    by_effect: dict[tuple[object, ...], list[int]] = {}
    for n in optional:
        by_effect.setdefault((ops[n].kind, ops[n].value, ops[n].expected_version, ops[n].version), []).append(n)
    groups = list(by_effect.values())  # in the order of their first ops' invocations
    step = model.step
    spent: Callable[[S, Op], bool] = getattr(model, "spent", lambda state, op: False)
    seen: set[tuple[int, frozenset[int], S]] = set()

    def settle(f: _Frame[S], changed: bool) -> _Frame[S]:
        """Linearize what matches without changing the state, and scan on to the next blocking return."""
        i, lin, state, pending, nopt = f.i, f.lin, f.state, f.pending, f.nopt
        for n in sorted(pending - lin) if changed else ():
            if step(state, ops[n]) == state:
                lin = lin | {n}
                f.trail.append(n)
        while i < len(events):
            _, is_return, n = events[i]
            if not is_return:
                if n in rank:
                    nopt += 1
                else:
                    pending = pending | {n}
                    if step(state, ops[n]) == state:
                        lin = lin | {n}
                        f.trail.append(n)
            elif n in lin:
                lin, pending = lin - {n}, pending - {n}
            else:
                break
            i += 1
        f.i, f.lin, f.pending, f.nopt = i, lin, pending, nopt
        f.stuck = next((m for m in sorted(pending - lin) if spent(state, ops[m])), None)
        return f

    def unknown(f: _Frame[S]) -> list[int]:
        """The unknown ops invoked so far, not used nor spent: of those with the same effect, the first."""
        found: list[int] = []
        for group in groups:
            if rank[group[0]] >= f.nopt:
                break
            for n in group:
                if rank[n] >= f.nopt or spent(f.state, ops[n]):
                    break
                if n not in f.lin:
                    found.append(n)
                    break
        return sorted(found, key=rank.__getitem__)

    best = settle(_Frame(0, frozenset(), initial, frozenset(), 0, None, []), False)
    stack, verdict = [best], Verdict.NOT_LINEARIZABLE
    while stack:
        f = stack[-1]
        if f.i == len(events) and not f.pending - f.lin:
            verdict = Verdict.LINEARIZABLE
            break
        if len(seen) > max_states:
            verdict = Verdict.INCONCLUSIVE
            break
        if f.stuck is not None or f.next == len(f.moves) and f.stage == 2:
            stack.pop()  # dead, or every move tried
            continue
        if f.next == len(f.moves):  # the blocked op first, then the others pending, and unknown ops last
            blocked = [events[f.i][2]] if f.i < len(events) and f.stage == 0 else []
            f.moves += blocked + sorted(f.pending - f.lin - set(blocked), key=lambda n: (ops[n].invoke, n)) \
                if f.stage == 0 else unknown(f)
            f.stage += 1
            continue
        n = f.moves[f.next]
        f.next += 1
        state = step(f.state, ops[n])
        if state is None or (n in rank and state == f.state):
            continue
        lin = f.lin if n in rank and spent(state, ops[n]) else f.lin | {n}  # a spent unknown op need not be kept
        child = settle(_Frame(f.i, lin, state, f.pending, f.nopt, f, [n]), state != f.state)
        if (child.i, child.lin, state) not in seen:
            seen.add((child.i, child.lin, state))
            best = child if (child.i, len(child.lin)) > (best.i, len(best.lin)) else best
            stack.append(child)
    if verdict is Verdict.LINEARIZABLE:
        return KeyResult(key, verdict, len(seen))
    trails: list[list[int]] = []
    frame: _Frame[S] | None = best
    while frame is not None:
        trails.append(frame.trail)
        frame = frame.parent
    path = [n for trail in reversed(trails) for n in trail]
    waiting = sorted(best.pending - best.lin, key=lambda n: ops[n].invoke)
    stuck = best.stuck if best.stuck is not None else events[best.i][2] if best.i < len(events) else waiting[0]
    return KeyResult(key, verdict, len(seen), tuple(ops[n] for n in path), ops[stuck], best.state,
                     tuple(ops[n] for n in waiting if n != stuck))


class _Unread:
    """Stands for every written value that no read returned: they cannot be told apart."""

    def __repr__(self) -> str:
        return "<a value never read>"


UNREAD = _Unread()


def prepare_register(ops: Sequence[Op], initial: Znode = ABSENT, *, reads_linearizable: bool = False
                     ) -> tuple[list[Op], set[int]]:
    """The ops of one key worth searching, and the unknown ones known to have taken effect (see module doc)."""
    read_at: dict[object, set[int | None]] = {}
    writers: dict[object, int] = {}
    for op in ops:
        if op.kind == "read" and op.acked:
            read_at.setdefault(op.value, set()).add(op.version)
        elif op.kind in ("write", "cas", "create") and op.outcome is not Outcome.FAILED:
            writers[op.value] = writers.get(op.value, 0) + 1
    searched: list[Op] = []
    required: set[int] = set()
    for op in ops:
        if op.kind == "read":
            if not reads_linearizable or op.read_version() is None:
                continue
        elif op.outcome is Outcome.FAILED and op.error not in ERRORS_OBSERVED:
            continue
        elif op.outcome is Outcome.UNKNOWN and op.kind != "delete" and writers.get(op.value) == 1 and (
                versions := read_at.get(op.value)) and not (initial.exists and op.value == initial.value):
            required.add(op.id)  # a read saw its value
            if op.version is None and len(versions) == 1:
                op = replace(op, version=next(iter(versions)))
        if op.kind in ("write", "cas", "create") and op.value not in read_at:
            op = replace(op, value=UNREAD)
        searched.append(op)
    return searched, required


def check_history(ops: Iterable[Op], *, initial: Mapping[str, Znode] | None = None,
                  reads: Literal["sequential", "linearizable"] = "sequential",
                  max_states: int = DEFAULT_MAX_STATES) -> HistoryResult:
    """Check a whole history: each key's register ops by search, its sequential creates by their numbers,
    every session's order, and the scans for lost and duplicated writes. Keys start absent unless in ``initial``."""
    ops = list(ops)
    results: list[KeyResult] = []
    anomalies: list[Anomaly] = []
    for key, key_ops in sorted(by_key(ops).items()):
        sequential = [op for op in key_ops if op.kind == "create_seq"]
        register = [op for op in key_ops if op.kind != "create_seq"]
        if sequential:
            found = sequence_anomalies(sequential)
            anomalies += found
            results.append(KeyResult(key, Verdict.NOT_LINEARIZABLE, 0, found[0].ops[:-1], found[0].ops[-1])
                           if found else KeyResult(key, Verdict.LINEARIZABLE))
        if register:
            start = (initial or {}).get(key, ABSENT)
            anomalies += register_anomalies(register, start, reads_linearizable=reads == "linearizable")
            searched, required = prepare_register(register, start, reads_linearizable=reads == "linearizable")
            claimed = None if has_deletes(register) else {v for op in register if (v := op.new_version()) is not None}
            result = check_linearizable(searched, ZnodeRegister(claimed), start, key=key, required=required,
                                        max_states=max_states)
            original = {op.id: op for op in register}
            results.append(replace(result, prefix=tuple(original[op.id] for op in result.prefix),
                                   stuck=original[result.stuck.id] if result.stuck else None,
                                   concurrent=tuple(original[op.id] for op in result.concurrent)))
    anomalies += session_anomalies(ops)
    return HistoryResult(tuple(results), tuple(anomalies))
