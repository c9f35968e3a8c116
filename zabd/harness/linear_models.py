# -*- test-case-name: tests.unit.test_linearizability -*-
"""The sequential specifications the linearizability checker (zabd.harness.linearizability) searches against:
a znode as a register, and the numbers of sequential creates."""
from __future__ import annotations

from collections.abc import Collection
from typing import Protocol, TypeVar

from zabd.harness.history import ABSENT, Op, Outcome, Znode, sequence_number

S = TypeVar("S")


class Model(Protocol[S]):
    """A sequential specification: the state after ``op``, or None if ``op`` with its result cannot happen in
    ``state``; an unknown op is asked whether it can take effect. A model may also have ``spent(state, op) ->
    bool``: ``op`` can happen neither in ``state`` nor later (then it is no longer offered, or the search backs
    off at once if it must still be placed)."""

    def step(self, state: S, op: Op) -> S | None: ...


class ZnodeRegister:
    """One znode as ZooKeeper runs it: created at version 0, +1 per set, a CAS is a set with a version.

    For a node never deleted, pass ``claimed``, the versions acknowledged to writes: as versions only grow, an op
    not acknowledged cannot have made one, and an op whose version is passed is spent.
    """

    def __init__(self, claimed: Collection[int] | None = None) -> None:
        self.never_deleted = claimed is not None
        self.claimed = frozenset(claimed or ())

    def spent(self, state: Znode, op: Op) -> bool:
        """Whether ``op`` with its result can happen neither in ``state`` nor in any later state."""
        if not self.never_deleted:
            return False
        if op.outcome is Outcome.FAILED:
            return op.error == "NoNode" and op.kind != "create" and state.exists
        if op.kind == "create":
            return state.exists
        expected = op.expected_version if op.kind == "cas" else None
        if expected is not None and expected >= 0:
            return expected < state.version
        target = op.version if op.kind == "read" else None if op.version is None else op.version - 1
        return target is not None and target < state.version

    def step(self, state: Znode, op: Op) -> Znode | None:
        exists = state.exists
        if op.outcome is Outcome.FAILED:
            fits = {"NoNode": not exists or op.kind == "create", "NodeExists": exists or op.kind != "create",
                    "BadVersion": op.kind not in ("cas", "delete") or exists and op.expected_version not in (
                        -1, state.version)}  # an error that does not fit the kind says nothing
            return state if fits.get(op.error or "", True) else None
        if op.kind == "read":
            return state if exists and (op.value, op.version) == state else None
        new: Znode | None = None
        if op.kind == "create" and not exists:
            new = Znode(op.value, 0)
        elif exists and (op.kind == "write" or op.kind == "cas" and op.expected_version in (-1, state.version)):
            new = Znode(op.value, state.version + 1)
        elif op.kind == "delete" and exists and op.expected_version in (None, -1, state.version):
            return ABSENT
        if new is None or op.version is not None and op.version != new.version:
            return None
        return None if not op.acked and new.version in self.claimed else new


class SequenceCounter:
    """Sequential creates on one parent: each acknowledged number exceeds all before it (state: the last one)."""

    def step(self, state: int, op: Op) -> int | None:
        number = sequence_number(op.name) if op.acked and op.name else None
        if number is None:
            return state  # a failed or unknown create tells nothing here
        return number if number > state else None
