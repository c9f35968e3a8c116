# -*- test-case-name: tests.unit.test_linearizability -*-
"""A client history for the black-box fault test (issue 15, section 4): its records, and plain scans over them.

A workload records every operation with :class:`History`: ``invoke()`` just
before sending, then ``ok()``, ``fail()`` or ``unknown()`` when the answer (or
its absence) is known. An operation still open when ``ops()`` is called is
unknown. Times are any ordered numbers (``time.monotonic_ns`` by default).

Outcomes:

* ok: acknowledged; the result fields hold what the server returned;
* failed: the server answered with an error, so the operation did not take
  effect. The error is still an observation that the checker holds the server
  to: BadVersion says the node existed with another version at that moment,
  NodeExists that it existed, NoNode that it did not;
* unknown: a timeout or ConnectionLoss. It may take effect at any time after
  its invocation, so its completion is +infinity.

Fields by kind (``value`` is hashable, and should be unique per write):

=============  ===============================  ====================================
kind           arguments                        ok result
=============  ===============================  ====================================
read           --                               ``value``, ``version``
write          ``value`` (setData, version -1)  ``version``: the new version
cas            ``value``, ``expected_version``  ``version``: the new version
create         ``value``                        (version 0)
delete         ``expected_version`` or None     --
create_seq     key = the parent path/prefix     ``name``: the name with its number
=============  ===============================  ====================================

A read that fails with NoNode observed the node absent. The scans below need
no search: acknowledged writes lost or duplicated, reads of values never
written, per-session order (monotonic reads, read-your-writes) and the order
of sequential names; :mod:`zabd.harness.linearizability` does the search.
"""

from __future__ import annotations

import heapq
import math
import re
import time
from collections.abc import Callable, Hashable, Iterable, Sequence
from dataclasses import dataclass, replace

from zabd.harness.history_ops import ABSENT, ERRORS_OBSERVED, KINDS, Kind, Op, Outcome, Value, Znode

__all__ = ["ABSENT", "ERRORS_OBSERVED", "KINDS", "Anomaly", "History", "Kind", "Op", "Outcome", "Value", "Znode",
           "by_key", "has_deletes", "register_anomalies", "sequence_anomalies", "sequence_number",
           "session_anomalies"]

class History:
    """Records operations as a workload runs them; ``ops()`` gives the records."""

    def __init__(self, clock: Callable[[], float] = time.monotonic_ns) -> None:
        self._clock = clock
        self._ops: list[Op] = []
        self._open: set[int] = set()

    def invoke(self, session: Hashable, key: str, kind: Kind, *, value: Value = None,
               expected_version: int | None = None, at: float | None = None) -> int:
        op = Op(len(self._ops), session, key, kind, self._clock() if at is None else at, value=value,
                expected_version=expected_version)
        self._ops.append(op)
        self._open.add(op.id)
        return op.id

    def ok(self, op_id: int, *, value: Value = None, version: int | None = None, name: str | None = None,
           at: float | None = None) -> Op:
        """Acknowledged: ``value`` only for reads (a write's value is its argument)."""
        if value is not None and self._ops[op_id].kind != "read":
            raise ValueError(f"op {op_id}: only a read returns a value")
        op = self._take(op_id)
        return self._put(replace(op, complete=self._clock() if at is None else at, outcome=Outcome.OK,
                                 value=value if op.kind == "read" else op.value, version=version, name=name))

    def fail(self, op_id: int, error: str, *, at: float | None = None) -> Op:
        op = self._take(op_id)
        return self._put(replace(op, complete=self._clock() if at is None else at, outcome=Outcome.FAILED,
                                 error=error))

    def unknown(self, op_id: int) -> Op:
        """Timed out or lost with its connection: it may still take effect."""
        return self._take(op_id)

    def ops(self) -> tuple[Op, ...]:
        return tuple(self._ops)

    def _take(self, op_id: int) -> Op:
        if op_id not in self._open:
            raise ValueError(f"op {op_id} is not open")
        self._open.discard(op_id)
        return self._ops[op_id]

    def _put(self, op: Op) -> Op:
        self._ops[op.id] = op
        return op


@dataclass(frozen=True, slots=True)
class Anomaly:
    """A violation found by a scan, named plainly, with the operations involved."""
    kind: str
    key: str
    ops: tuple[Op, ...]
    detail: str

    def __str__(self) -> str:
        return "\n    ".join([f"{self.kind} on {self.key}: {self.detail}", *(op.describe() for op in self.ops)])


def by_key(ops: Iterable[Op]) -> dict[str, list[Op]]:
    keys: dict[str, list[Op]] = {}
    for op in ops:
        keys.setdefault(op.key, []).append(op)
    return keys


def has_deletes(ops: Iterable[Op]) -> bool:
    """Whether the node may have been deleted: then versions restart and version checks do not apply."""
    return any(op.kind == "delete" and op.outcome is not Outcome.FAILED for op in ops)


def register_anomalies(ops: Sequence[Op], initial: Znode = ABSENT, *, reads_linearizable: bool = False
                       ) -> list[Anomaly]:
    """Lost and duplicated acknowledged writes and impossible reads, on one key's register ops.

    A write counts as lost when no read saw its version or a later one although reads were sent after it was
    acknowledged: as ZooKeeper's followers may lag, a workload should sync before its last reads of a key.
    """
    key = ops[0].key if ops else ""
    found: list[Anomaly] = []
    written: dict[Value, list[Op]] = {}
    for op in ops:
        if op.kind in ("write", "cas", "create"):
            written.setdefault(op.value, []).append(op)
    reads = sorted((op for op in ops if op.read_version() is not None), key=lambda op: op.invoke)
    for r in reads:
        if r.acked and not (initial.exists and r.value == initial.value):
            writers = written.get(r.value, [])
            if not any(w.outcome is not Outcome.FAILED for w in writers):
                why = "only failed ops wrote it" if writers else "no op wrote it"
                found.append(Anomaly("phantom-read", key, (r, *writers), f"read {r.value!r}, but {why}"))
    if has_deletes(ops):
        return found
    claims: dict[int, list[Op]] = {}
    for op in ops:
        if (v := op.new_version()) is not None:
            claims.setdefault(v, []).append(op)
    for version, claimants in sorted(claims.items()):
        if len(claimants) > 1:
            found.append(Anomaly("duplicate-version", key, tuple(sorted(claimants, key=lambda op: op.complete)),
                                 f"{len(claimants)} acknowledged writes claim version {version}"))
    for r in reads:
        for w in claims.get(r.version, []) if r.acked and r.version is not None else []:
            if w.value != r.value:
                found.append(Anomaly("lost-write", key, (w, r), f"version {r.version} was acknowledged for "
                                     f"{w.value!r}, but a read saw {r.value!r} there"))
    top = max((v for r in reads if (v := r.read_version()) is not None), default=-1)
    last_read = max((r.invoke for r in reads), default=-math.inf)
    for version, claimants in claims.items():
        for w in claimants:
            if version > top and w.complete < last_read:
                found.append(Anomaly("lost-write", key, (w,), f"acknowledged as version {version}, but no read "
                                     f"after it saw version {version} or later (highest read: {top})"))
    if reads_linearizable:
        found += _sweep(key, sorted(ops, key=lambda op: op.invoke),
                        lambda earlier, later: "stale-read" if later.kind == "read" else None)
    return found


def session_anomalies(ops: Iterable[Op]) -> list[Anomaly]:
    """ZooKeeper's per-session guarantees: reads never go backwards, and a session sees its own writes.

    Orders two ops of a session only when one completed before the other was invoked, which holds
    whatever the client's pipelining. Keys that may have been deleted are skipped (versions restart).
    """
    found: list[Anomaly] = []
    for key, key_ops in by_key(ops).items():
        if has_deletes(key_ops):
            continue
        sessions: dict[Hashable, list[Op]] = {}
        for op in sorted(key_ops, key=lambda op: op.invoke):
            sessions.setdefault(op.session, []).append(op)
        for session_ops in sessions.values():
            found += _sweep(key, session_ops, lambda earlier, later: (
                "session-order" if later.kind != "read" else
                "monotonic-read" if earlier.kind == "read" else "read-your-writes"))
    return found


def _version_seen(op: Op) -> int | None:
    return op.read_version() if op.kind == "read" else op.new_version()


def _sweep(key: str, ops: Sequence[Op], kind_of: Callable[[Op, Op], str | None],
           observed: Callable[[Op], int | None] = _version_seen, what: str = "version") -> list[Anomaly]:
    """Each op's observation must not be below one made by an op completed before it was invoked (``ops`` sorted
    by invocation); an acknowledged write must be above, as it makes a new version."""
    found: list[Anomaly] = []
    done: list[tuple[float, int, int, Op]] = []
    best: tuple[int, Op] | None = None
    for op in ops:
        while done and done[0][0] < op.invoke:
            _, number, _, earlier = heapq.heappop(done)
            if best is None or number > best[0]:
                best = (number, earlier)
        if (seen := observed(op)) is None:
            continue
        if best is not None and (seen < best[0] or seen == best[0] and op.kind in ("write", "cas", "create")):
            if (kind := kind_of(best[1], op)) is not None:
                found.append(Anomaly(kind, key, (best[1], op), f"{what} {seen} after {what} {best[0]} was seen"))
        heapq.heappush(done, (op.complete, seen, op.id, op))
    return found


_SEQUENCE = re.compile(r"\d{10}$")


def sequence_number(name: str) -> int | None:
    """The counter ZooKeeper appends to a sequential node's name: ten digits (its overflow past 2**31 aside)."""
    match = _SEQUENCE.search(name)
    return int(match.group(0)) if match else None


def sequence_anomalies(ops: Sequence[Op]) -> list[Anomaly]:
    """Acknowledged sequential names on one parent are unique, and ordered as real time orders their creates."""
    acked = sorted((op for op in ops if op.kind == "create_seq" and op.acked), key=lambda op: op.invoke)
    owners: dict[int | None, list[Op]] = {}
    for op in acked:
        owners.setdefault(sequence_number(op.name or ""), []).append(op)
    found = [Anomaly("duplicate-name" if number is not None else "sequence-order", named[0].key, tuple(named),
                     f"number {number} acknowledged {len(named)} times" if number is not None else "no number")
             for number, named in owners.items() if len(named) > 1 or number is None]
    return found + _sweep(acked[0].key if acked else "", acked, lambda earlier, later: "sequence-order",
                          lambda op: sequence_number(op.name or ""), "number")
