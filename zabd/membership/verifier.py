# -*- test-case-name: tests.unit.test_verifier -*-
"""The quorum verifier: which sets of servers form a quorum, and the config text.

:class:`QuorumMaj` is ZooKeeper 3.8's majority verifier. Its
:meth:`~QuorumMaj.config_text` is byte-exact with what 3.8 sends in election
notifications and NEWLEADER and stores in ``/zookeeper/config``: 3.8 prints
its members in ``HashMap<Long, QuorumServer>`` order, and members that share a
hash bucket in the order they were read out of a ``java.util.Properties``
(a ConcurrentHashMap keyed by the ``server.N`` strings). Both orders are
replayed here, so ``server.1`` and ``server.17`` come out as 3.8 prints them.
Grouped and weighted quorums are in :mod:`zabd.membership.hierarchy`; what both hold, in :mod:`zabd.membership.table`.
"""
from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from collections.abc import Set as AbstractSet
from typing import Protocol

from zabd.java.compat import java_string_hash, java_table_grown
from zabd.java.limits import LONG_MAX, LONG_MIN
from zabd.membership.hierarchy import QuorumHierarchical, hierarchy_from_properties
from zabd.membership.members import QuorumServer, parse_member
from zabd.membership.table import MemberTable, java_hashmap_order, version_hex

__all__ = [
    "MemberTable", "QuorumMaj", "QuorumVerifier", "java_hashmap_order", "parse_server_id", "parse_version",
    "properties_key_order", "verifier_from_entries", "verifier_from_text", "version_hex",
]

_JAVA_HEX_LONG = re.compile(r"[+-]?[0-9a-fA-F]+")


class QuorumVerifier(Protocol):
    """What the election and Zab layers ask of a verifier (3.8's QuorumVerifier)."""

    @property
    def version(self) -> int: ...

    @property
    def voting_members(self) -> frozenset[int]: ...

    @property
    def observing_members(self) -> frozenset[int]: ...

    @property
    def all_members(self) -> Mapping[int, QuorumServer]: ...

    def contains_quorum(self, sids: AbstractSet[int]) -> bool: ...

    def weight(self, sid: int) -> int: ...

    def config_text(self) -> bytes: ...


class QuorumMaj(MemberTable):
    """
    Majority quorums over the participants; observers never count.

    :param servers: the members, as for :class:`MemberTable`.
    :param version: the config version.
    """

    __slots__ = ("_half",)

    def __init__(self, servers: Iterable[QuorumServer], version: int = 0, *,
                 keep_order: bool = False) -> None:
        super().__init__(servers, version, keep_order=keep_order)
        self._half = len(self._voting) // 2

    def with_version(self, version: int) -> QuorumMaj:
        """The same members, in the same order, under another version (3.8's setVersion)."""
        return QuorumMaj(self._members.values(), version, keep_order=True)

    @property
    def half(self) -> int:
        """Half the voters, rounded down: a quorum is anything larger."""
        return self._half

    def contains_quorum(self, sids: AbstractSet[int]) -> bool:
        """
        Whether ``sids`` hold strictly more than half of the voters.

        3.8 counts the whole set and trusts callers to pass voters only; zabd
        counts only the voters in it, so a stray observer ack cannot tip it.
        """
        return len(self._voting.intersection(sids)) > self._half

    def weight(self, sid: int) -> int:
        """
        1 for a voter, 0 otherwise.

        3.8's QuorumMaj answers 1 for any sid; the election uses the weight only
        to refuse a vote for a server that cannot lead, and 0 says that.
        """
        return 1 if sid in self._voting else 0

    def config_text(self) -> bytes:
        """``server.N=...`` lines, then ``version=<hex>`` with no newline after it."""
        lines = [f"server.{sid}={server.spec()}\n" for sid, server in self._members.items()]
        return ("".join(lines) + f"version={version_hex(self._version)}").encode("utf-8")

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, QuorumMaj):
            return NotImplemented
        return self._version == other._version and self._members == other._members

    def __hash__(self) -> int:
        return hash((self._version, frozenset(self._members.items())))

    def __repr__(self) -> str:
        return f"QuorumMaj(version={self._version:#x}, members={list(self._members.values())!r})"


def parse_version(text: str) -> int:
    """
    Java's ``Long.parseLong(text, 16)``, as 3.8 reads ``version=``.

    :raises ValueError: if Java would throw.
    """
    if _JAVA_HEX_LONG.fullmatch(text) is None or not LONG_MIN <= int(text, 16) <= LONG_MAX:
        raise ValueError(f"expected a hexadecimal config version, got {text!r}")
    return int(text, 16)


def parse_server_id(key: str) -> int:
    """
    N of a ``server.N`` key, as 3.8 reads it (``Long.parseLong``); zabd wants N >= 0.

    :raises ValueError: if N is not a server id.
    """
    digits = key[len("server."):]
    if re.fullmatch(r"[+-]?[0-9]+", digits) is None or not 0 <= int(digits) <= LONG_MAX:
        raise ValueError(f"expected server.N with N a server id, got {digits!r}")
    return int(digits)


def verifier_from_text(text: bytes | str) -> QuorumMaj | QuorumHierarchical:
    """
    Read config text as 3.8 prints it (notifications, NEWLEADER, ``/zookeeper/config``).

    Only ``key=value`` lines are understood, which is all 3.8 writes there.
    ``group.``/``weight.`` lines make it hierarchical, as in 3.8's parseDynamicConfig.

    :raises ValueError: on a member, version or group 3.8 would refuse.
    """
    if isinstance(text, bytes):
        text = text.decode("utf-8")
    entries: list[tuple[str, str]] = []
    for line in text.splitlines():
        key, _, value = line.lstrip(" \t\f").partition("=")
        if key and key[0] not in "#!":
            entries.append((key.strip(), value.lstrip(" \t\f")))
    return verifier_from_entries(entries)


def verifier_from_entries(properties: Iterable[tuple[str, str]]) -> QuorumMaj | QuorumHierarchical:
    """
    The verifier 3.8 builds from loaded ``Properties`` (``createQuorumVerifier``).

    :param properties: (key, value) in the order they were loaded; a repeated
        key keeps its first place and its last value, as in ``Properties``.
        Keys other than ``server.N``, ``group.G``, ``weight.SID`` and
        ``version`` are ignored, as 3.8's verifiers ignore them.
    :raises ValueError: on a member, version or group 3.8 would refuse.
    """
    entries: dict[str, str] = {}
    for key, value in properties:
        entries[key] = value
    order = properties_key_order(entries)
    servers = [parse_member(parse_server_id(key), entries[key])
               for key in order if key.startswith("server.")]
    version = parse_version(entries["version"]) if "version" in entries else 0
    hierarchy = [(key, entries[key]) for key in order if key.startswith(("group.", "weight."))]
    if hierarchy:
        return hierarchy_from_properties(servers, hierarchy, version)
    return QuorumMaj(servers, version)


def properties_key_order(keys: Iterable[str]) -> list[str]:
    """
    The order ``java.util.Properties`` (Java 9+) iterates keys put in this order.

    Properties is a ConcurrentHashMap of 16 bins that doubles when it holds 3/4
    of its size; a resize moves each bin's longest tail that goes one way as it
    is and pushes the nodes before it, one by one, onto the front of their new
    bin. Exact unless eight keys share a bin. A repeated key keeps its place.
    """
    bins: list[list[tuple[int, str]]] = [[] for _ in range(16)]
    count, threshold = 0, 12
    for key in keys:
        h = java_string_hash(key)
        spread = (h ^ (h >> 16)) & 0x7FFFFFFF
        nodes = bins[spread & (len(bins) - 1)]
        if any(present == key for _, present in nodes):
            continue
        nodes.append((spread, key))
        count += 1
        if count >= threshold:
            bins = java_table_grown(bins)
            threshold = len(bins) * 3 // 4
    return [key for nodes in bins for _, key in nodes]
