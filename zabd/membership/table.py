# -*- test-case-name: tests.unit.test_verifier -*-
"""What every quorum verifier holds besides its quorum rule: the members, in 3.8's order, and the version.

Both verifiers (:mod:`zabd.membership.verifier`'s majority and
:mod:`zabd.membership.hierarchy`'s groups) build on :class:`MemberTable`,
so it lives apart from both and neither imports the other to get it.
"""
from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence

from zabd.java.formats import java_hex
from zabd.java.limits import long_hash_code
from zabd.membership.members import QuorumServer


class MemberTable:
    """
    What every verifier holds besides its quorum rule: the members and the version.

    :param servers: the members, in the order 3.8 would have read them (see
        :func:`properties_key_order`); a repeated sid keeps its first place
        and takes the last value, as ``HashMap.put`` does.
    :param version: the config version (the zxid of the reconfig that made
        it); 0 for a static config.
    :param keep_order: the servers already come in 3.8's iteration order (a
        map that was copied and edited, :mod:`zabd.java.hashmap`): keep it.
    """

    __slots__ = ("_members", "_version", "_voting", "_observing")

    def __init__(self, servers: Iterable[QuorumServer], version: int = 0, *,
                 keep_order: bool = False) -> None:
        by_sid: dict[int, QuorumServer] = {}
        for server in servers:
            by_sid[server.sid] = server
        order = list(by_sid) if keep_order else java_hashmap_order(list(by_sid))
        self._members = {sid: by_sid[sid] for sid in order}
        self._version = version
        self._voting = frozenset(s.sid for s in by_sid.values() if s.is_participant)
        self._observing = frozenset(by_sid) - self._voting

    @property
    def version(self) -> int:
        return self._version

    @property
    def voting_members(self) -> frozenset[int]:
        return self._voting

    @property
    def observing_members(self) -> frozenset[int]:
        return self._observing

    @property
    def all_members(self) -> Mapping[int, QuorumServer]:
        """Every member by sid, in the order 3.8 prints them."""
        return self._members


def version_hex(version: int) -> str:
    """Java's ``Long.toHexString``: lower case, unsigned two's complement."""
    return java_hex(version)


def java_hashmap_order(sids: Sequence[int]) -> list[int]:
    """
    The order a ``HashMap<Long, ...>`` fed ``sids`` in this order iterates them.

    Buckets first (16 of them, doubling past 3/4 load); inside a bucket,
    insertion order, which resizing keeps. Exact below eight sids per bucket.
    """
    capacity = 16
    while len(sids) > capacity * 3 // 4:
        capacity *= 2

    def bucket(sid: int) -> int:
        h = long_hash_code(sid)
        return (h ^ (h >> 16)) & (capacity - 1)

    return sorted(sids, key=bucket)  # sorted() is stable: ties keep insertion order
