# -*- test-case-name: tests.unit.test_hierarchy -*-
"""Hierarchical (grouped, weighted) quorums: 3.8's QuorumHierarchical.

``group.G=sid:sid:...`` lines split the participants into disjoint groups and
``weight.SID=w`` lines weigh them (1 when not given). A set of servers is a
quorum when, in more than half of the groups that weigh anything, it holds
more than half of that group's weight. A server of weight 0 still votes and
follows but never tips a group, and the election never picks it as leader.

3.8 chooses this verifier as soon as any ``group``/``weight`` key is present.
Where 3.8 accepts a configuration that crashes it or can never form a quorum
(an unknown or observer sid in a group, negative weights, every group of
weight 0), zabd refuses it with the key at fault.
"""
from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence
from collections.abc import Set as AbstractSet

from zabd.java.limits import LONG_MAX
from zabd.membership.members import QuorumServer
from zabd.membership.table import MemberTable, java_hashmap_order, version_hex

_DECIMAL = re.compile(r"\+?[0-9]+")


class HierarchyError(ValueError):
    """
    A ``group.G`` or ``weight.SID`` setting that zabd refuses.

    :param problem: what is wrong.
    :param key: the key at fault (``group.G``, ``weight.SID`` or ``server.N``).
    :param sid: when a server line is at fault, its sid (the key may be spelt
        otherwise in zoo.cfg, ``server.01``).
    """

    def __init__(self, problem: str, key: str, sid: int | None = None) -> None:
        super().__init__(f"{key}: {problem}")
        self.problem = problem
        self.key = key
        self.sid = sid


class QuorumHierarchical(MemberTable):
    """
    Majority of groups, each by a majority of its weight.

    :param servers: the members in the order 3.8 read them (as for QuorumMaj).
    :param groups: (group id, its sids) in the order 3.8 read the group keys.
    :param weights: (sid, weight) in the order 3.8 read the weight keys.
    :param version: the config version.
    :param keep_order: the servers already come in 3.8's iteration order.
    :raises HierarchyError: on a layout zabd refuses (see the module doc).
    """

    __slots__ = ("_groups", "_weights", "_group_of", "_group_weight", "_counted_groups")

    def __init__(self, servers: Iterable[QuorumServer], groups: Sequence[tuple[int, Sequence[int]]],
                 weights: Sequence[tuple[int, int]] = (), version: int = 0, *,
                 keep_order: bool = False) -> None:
        super().__init__(servers, version, keep_order=keep_order)
        self._groups = tuple((gid, tuple(sids)) for gid, sids in groups)
        self._group_of = self._check_groups()
        self._weights = self._check_weights(tuple(weights))
        self._group_weight: dict[int, int] = {}
        for sid, gid in self._group_of.items():
            self._group_weight[gid] = self._group_weight.get(gid, 0) + self._weights[sid]
        # As in 3.8, a group of weight 0 is left out of the count of groups.
        self._counted_groups = sum(1 for total in self._group_weight.values() if total > 0)
        if self._counted_groups == 0:
            raise HierarchyError("every group weighs 0, so no quorum could ever form",
                                 f"group.{self._groups[0][0]}")

    def _check_groups(self) -> dict[int, int]:
        if not self._groups:
            raise HierarchyError("participants must be placed in groups (group.G=sid:sid:...) "
                                 "when weights are given", "weight")
        group_of: dict[int, int] = {}
        seen: set[int] = set()
        for gid, sids in self._groups:
            key = f"group.{gid}"
            if gid in seen:
                raise HierarchyError(f"group {gid} is given twice", key)
            seen.add(gid)
            for sid in sids:
                if sid not in self._members:
                    raise HierarchyError(f"server {sid} is not in the server list "
                                         f"(no server.{sid} line)", key)
                if sid in self._observing:
                    raise HierarchyError(f"server {sid} is an observer; only participants "
                                         "belong to groups", key)
                if sid in group_of:
                    raise HierarchyError(f"server {sid} is also in group.{group_of[sid]}", key)
                group_of[sid] = gid
        for sid in self._members:  # 3.8's order, so the first one named is 3.8's too
            if sid in self._voting and sid not in group_of:
                raise HierarchyError(f"participant {sid} is in no group (every participant "
                                     "needs a group.G line naming it)", f"server.{sid}", sid)
        return group_of

    def _check_weights(self, weights: tuple[tuple[int, int], ...]) -> dict[int, int]:
        # Insertion order is 3.8's: the weight keys first, then the defaults.
        configured: dict[int, int] = {}
        for sid, weight in weights:
            key = f"weight.{sid}"
            if sid in configured:
                raise HierarchyError(f"the weight of server {sid} is given twice", key)
            if sid not in self._members:
                raise HierarchyError(f"server {sid} is not in the server list "
                                     f"(no server.{sid} line)", key)
            if weight < 0:
                raise HierarchyError(f"a weight must not be negative, got {weight}", key)
            configured[sid] = weight
        for sid in self._members:
            if sid in self._voting and sid not in configured:
                configured[sid] = 1
        return configured

    @property
    def groups(self) -> Mapping[int, frozenset[int]]:
        """Each group id with its sids."""
        return {gid: frozenset(sids) for gid, sids in self._groups}

    @property
    def counted_groups(self) -> int:
        """The groups that weigh more than 0; a quorum needs a majority of them."""
        return self._counted_groups

    def group_weight(self, gid: int) -> int:
        """The total weight of a group's members."""
        return self._group_weight[gid]

    def contains_quorum(self, sids: AbstractSet[int]) -> bool:
        """Whether ``sids`` hold more than half the weight of more than half the counted groups."""
        held: dict[int, int] = {}
        for sid in sids:
            gid = self._group_of.get(sid)
            if gid is not None:  # observers and strangers are in no group
                held[gid] = held.get(gid, 0) + self._weights[sid]
        # 3.8 tests held > total / 2 in integer division, which is 2 * held > total.
        won = sum(1 for gid, weight in held.items() if 2 * weight > self._group_weight[gid])
        return won > self._counted_groups // 2

    def weight(self, sid: int) -> int:
        """A participant's weight; 0 for observers and strangers (3.8 would throw)."""
        return self._weights[sid] if sid in self._voting else 0

    def with_member(self, server: QuorumServer) -> QuorumHierarchical:
        """The same verifier with one member's entry replaced (its sid and type unchanged)."""
        # Fed back in 3.8's own order, the members keep it.
        members = [server if m.sid == server.sid else m for m in self._members.values()]
        # Defaults given explicitly land where they were: after the weight keys, in member order.
        return QuorumHierarchical(members, self._groups, list(self._weights.items()), self._version)

    def with_version(self, version: int) -> QuorumHierarchical:
        """The same members, groups and weights under another version (3.8's setVersion)."""
        return QuorumHierarchical(self._members.values(), self._groups, list(self._weights.items()),
                                  version, keep_order=True)

    def config_text(self) -> bytes:
        """Server lines, then group lines, then weight lines, then ``version=<hex>``; all in 3.8's order."""
        lines = [f"server.{sid}={server.spec()}\n" for sid, server in self._members.items()]
        # 3.8 builds each group's text walking its sid -> group HashMap, and
        # prints the groups from a HashMap filled in that walk.
        members_of: dict[int, list[int]] = {}
        for sid in java_hashmap_order(list(self._group_of)):
            members_of.setdefault(self._group_of[sid], []).append(sid)
        for gid in java_hashmap_order(list(members_of)):
            lines.append(f"group.{gid}={':'.join(str(sid) for sid in members_of[gid])}\n")
        for sid in java_hashmap_order(list(self._weights)):
            lines.append(f"weight.{sid}={self._weights[sid]}\n")
        return ("".join(lines) + f"version={version_hex(self._version)}").encode("utf-8")

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, QuorumHierarchical):
            return NotImplemented
        return (self._version, self._members, self._group_of, self._weights) == (
            other._version, other._members, other._group_of, other._weights)

    def __hash__(self) -> int:
        return hash((self._version, frozenset(self._members.items()),
                     frozenset(self._group_of.items()), frozenset(self._weights.items())))

    def __repr__(self) -> str:
        return (f"QuorumHierarchical(version={self._version:#x}, "
                f"members={list(self._members.values())!r}, groups={self.groups!r}, "
                f"weights={self._weights!r})")


def hierarchy_from_properties(servers: Sequence[QuorumServer], entries: Sequence[tuple[str, str]],
                              version: int = 0) -> QuorumHierarchical:
    """
    The verifier for zoo.cfg (or config text) holding ``group.``/``weight.`` keys.

    :param servers: the members, in 3.8's reading order.
    :param entries: the ``group.G`` and ``weight.SID`` (key, value) pairs in
        3.8's reading order (:func:`~zabd.membership.verifier.properties_key_order`).
    :param version: the config version.
    :raises HierarchyError: naming the key at fault.
    """
    groups: list[tuple[int, list[int]]] = []
    weights: list[tuple[int, int]] = []
    written: dict[str, str] = {}  # canonical key -> as written (group.01), for messages
    for key, value in entries:
        if key.startswith("group."):
            gid = _number(key[len("group."):], key, "a group id")
            # zabd refuses the empty names Java's split would drop ("1:2:").
            groups.append((gid, [_number(part, key, "a server id") for part in value.split(":")]))
            written.setdefault(f"group.{gid}", key)
        elif key.startswith("weight."):
            sid = _number(key[len("weight."):], key, "a server id")
            weights.append((sid, _number(value, key, "a weight")))
            written.setdefault(f"weight.{sid}", key)
            written.setdefault("weight", key)  # weights without groups blame the first one
        else:
            raise HierarchyError("expected group.G or weight.SID", key)
    try:
        return QuorumHierarchical(servers, groups, weights, version)
    except HierarchyError as e:
        raise HierarchyError(e.problem, written.get(e.key, e.key), e.sid) from None


def _number(text: str, key: str, what: str) -> int:
    # 3.8 reads these with Long.parseLong; zabd also wants them non-negative.
    if _DECIMAL.fullmatch(text) is None or int(text) > LONG_MAX:
        raise HierarchyError(f"expected {what} (a non-negative integer), got {text!r}", key)
    return int(text)
