# -*- test-case-name: tests.unit.test_linearizability -*-
"""One operation of a client history (zabd.harness.history): its kind, arguments, outcome and result."""
from __future__ import annotations

import enum
import math
from collections.abc import Hashable
from dataclasses import dataclass
from typing import Literal, NamedTuple

Kind = Literal["read", "write", "cas", "create", "delete", "create_seq"]
Value = Hashable
KINDS: frozenset[str] = frozenset({"read", "write", "cas", "create", "delete", "create_seq"})
ERRORS_OBSERVED = frozenset({"NoNode", "NodeExists", "BadVersion"})  # errors that say something about the node


class Outcome(enum.Enum):
    """How an operation ended: acknowledged, refused by the server, or not known."""

    OK = "ok"
    FAILED = "failed"
    UNKNOWN = "unknown"


class Znode(NamedTuple):
    """A znode's state as a register: its data and version; version -1 is an absent node."""
    value: Value
    version: int

    @property
    def exists(self) -> bool:
        return self.version >= 0


ABSENT = Znode(None, -1)


@dataclass(frozen=True, slots=True)
class Op:
    """One operation of the history; see the module docstring for the fields of each kind."""
    id: int
    session: Hashable
    key: str
    kind: Kind
    invoke: float
    complete: float = math.inf
    outcome: Outcome = Outcome.UNKNOWN
    value: Value = None
    expected_version: int | None = None
    version: int | None = None
    name: str | None = None
    error: str | None = None

    def __post_init__(self) -> None:
        if self.kind not in KINDS:
            raise ValueError(f"op {self.id}: unknown kind {self.kind!r}")
        if (self.outcome is Outcome.UNKNOWN) != (self.complete == math.inf):
            raise ValueError(f"op {self.id}: exactly the unknown ops complete at +inf")
        if self.complete < self.invoke:
            raise ValueError(f"op {self.id}: completes before it is invoked")
        if (self.outcome is Outcome.FAILED) != (self.error is not None):
            raise ValueError(f"op {self.id}: exactly the failed ops carry an error")
        if self.kind == "read" and self.outcome is Outcome.OK and self.version is None:
            raise ValueError(f"op {self.id}: a read acknowledged without the version it read")

    @property
    def acked(self) -> bool:
        return self.outcome is Outcome.OK

    def new_version(self) -> int | None:
        """The version an acknowledged write claims to have made, if it says."""
        if not self.acked or self.kind not in ("write", "cas", "create"):
            return None
        return 0 if self.kind == "create" and self.version is None else self.version

    def read_version(self) -> int | None:
        """The version a read observed: -1 for NoNode, None if it observed nothing."""
        if self.kind != "read":
            return None
        if self.acked:
            return self.version
        return -1 if self.error == "NoNode" else None

    def describe(self) -> str:
        args = {"write": f"({self.value!r})", "cas": f"({self.expected_version} -> {self.value!r})",
                "create": f"({self.value!r})", "delete": f"({self.expected_version})"}.get(self.kind, "()")
        if self.outcome is Outcome.FAILED:
            result = f"failed {self.error}"
        elif self.outcome is Outcome.UNKNOWN:
            result = "unknown" + (f" (seen as version {self.version})" if self.version is not None else "")
        elif self.kind == "read":
            result = f"ok ({self.value!r}, version {self.version})"
        else:
            result = "ok" + (f" version {self.version}" if self.version is not None else "") + (
                f" {self.name}" if self.name is not None else "")
        end = "inf" if self.complete == math.inf else f"{self.complete:g}"
        return f"#{self.id} {self.session} {self.key} {self.kind}{args} {result} [{self.invoke:g}, {end}]"
