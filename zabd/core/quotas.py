# -*- test-case-name: tests.unit.test_quotas -*-
"""ZooKeeper 3.8's quotas, the pure part: the StatsTrack text, the quota trie, the limit check.

A quota on ``/app`` lives in two nodes that clients (zkCli's setquota) write:
``/zookeeper/quota/app/zookeeper_limits`` (the limits) and
``.../zookeeper_stats`` (the usage, which the server rewrites as txns apply).
Both hold StatsTrack text, ``count=..,bytes=..`` optionally followed by
``=;byteHardLimit=..;countHardLimit=..``. The tree's bookkeeping lives in
``zabd.core.quotatree``; enforcement in ``zabd.pipeline.writes``.
"""
from __future__ import annotations

import builtins
import re
from dataclasses import dataclass, field

from zabd.java.limits import LONG_MIN, parse_long
from zabd.core.paths import QUOTA

LIMIT_NODE = "zookeeper_limits"
STAT_NODE = "zookeeper_stats"
COUNT = "count"
BYTES = "bytes"
COUNT_HARD_LIMIT = "countHardLimit"
BYTE_HARD_LIMIT = "byteHardLimit"

_PAIR_SEPARATOR = re.compile("[,;]+")
#: What Java's Long.parseLong accepts (ASCII digits; an optional sign).
#: Java's String.trim() strips every char up to U+0020.
_JAVA_BLANK = "".join(chr(c) for c in range(0x21))


def quota_path(path: str) -> str:
    return QUOTA + path


def limit_path(path: str) -> str:
    return f"{QUOTA}{path}/{LIMIT_NODE}"


def stat_path(path: str) -> str:
    return f"{QUOTA}{path}/{STAT_NODE}"


def trim_quota_path(path: str) -> str:
    """The quota'd path a node under /zookeeper/quota stands for (3.8's trimQuotaPath)."""
    return path[len(QUOTA):]


def wrap_long(value: int) -> int:
    """Java long arithmetic: the stats counters wrap as 3.8's do."""
    return (value - LONG_MIN) % (1 << 64) + LONG_MIN


class MalformedStats(ValueError):
    """Text that 3.8's StatsTrack constructor would throw on."""


@dataclass(frozen=True, slots=True)
class StatsTrack:
    """Named longs; a missing one reads as -1, as in 3.8."""

    values: dict[str, int] = field(default_factory=dict)

    @classmethod
    def parse(cls, data: builtins.bytes | None) -> StatsTrack:
        """Read ``key=long`` pairs split by runs of ``,`` or ``;``, as 3.8 does
        (Java's split: trailing empty pieces dropped, an empty value is -1).

        :raises MalformedStats: where 3.8 would throw.
        """
        text = (data or b"").decode("utf-8", "replace")
        values: dict[str, int] = {}
        if not text:
            return cls(values)
        for pair in _java_split(_PAIR_SEPARATOR.split(text)):
            parts = _java_split(pair.split("="))
            if len(parts) < 2:
                raise MalformedStats(f"no value in {pair!r}")
            values[parts[0]] = _parse_long(parts[1]) if parts[1] else -1
        return cls(values)

    def get(self, key: str) -> int:
        return self.values.get(key, -1)

    @property
    def count(self) -> int:
        return self.get(COUNT)

    @property
    def bytes(self) -> int:
        return self.get(BYTES)

    @property
    def count_hard_limit(self) -> int:
        return self.get(COUNT_HARD_LIMIT)

    @property
    def byte_hard_limit(self) -> int:
        return self.get(BYTE_HARD_LIMIT)

    def replace(self, **changes: int) -> StatsTrack:
        """A copy with some values set; keys as 3.8 spells them (``bytes``, ``countHardLimit``)."""
        return StatsTrack({**self.values, **changes})

    def __str__(self) -> str:
        # count and bytes come first, then an extra "=" so that the parser of
        # 3.4.3 and older skips the rest; the other keys follow sorted, after ";".
        text = f"{COUNT}={self.count},{BYTES}={self.bytes}"
        others = sorted(key for key in self.values if key not in (COUNT, BYTES))
        if others:
            text += "=" + "".join(f";{key}={self.values[key]}" for key in others)
        return text

    def encode(self) -> builtins.bytes:
        return str(self).encode("utf-8")


def usage(count: int, size: int) -> StatsTrack:
    """The stats text the server writes when it counts a subtree afresh."""
    return StatsTrack({COUNT: count, BYTES: size})


def _java_split(pieces: list[str]) -> list[str]:
    while pieces and not pieces[-1]:
        pieces.pop()
    return pieces


def _parse_long(text: str) -> int:
    value = parse_long(text)
    if value is None:
        raise MalformedStats(f"not a Java long: {text!r}")
    return value


class _TrieNode:
    __slots__ = ("name", "parent", "children", "has_quota")

    def __init__(self, name: str, parent: _TrieNode | None) -> None:
        self.name = name
        self.parent = parent
        self.children: dict[str, _TrieNode] = {}
        self.has_quota = False


class QuotaTrie:
    """The paths that have a quota (3.8's PathTrie, with its way of splitting paths).

    ``root.children`` is empty exactly when no quota exists: the hot paths test it.
    """

    __slots__ = ("root",)

    def __init__(self) -> None:
        self.root = _TrieNode("/", None)

    def add(self, path: str) -> None:
        # 3.8 throws on "" (a limits node directly under /zookeeper/quota),
        # which takes the server down from inside txn application; zabd ignores it.
        if not path:
            return
        node = self.root
        for part in _components(path):
            child = node.children.get(part)
            if child is None:
                child = node.children[part] = _TrieNode(part, node)
            node = child
        node.has_quota = True

    def delete(self, path: str) -> None:
        node = self.root
        for part in _components(path):
            child = node.children.get(part)
            if child is None:
                return
            node = child
        parent = node.parent
        # 3.8 throws here for "" and "/"; there is nothing to delete.
        if parent is None:
            return
        node.has_quota = False
        # 3.8 drops only the leaf; dropping the bare ancestors too changes no
        # answer, and lets an empty trie mean "no quota" on the hot paths.
        while parent is not None and not node.children and not node.has_quota:
            del parent.children[node.name]
            node, parent = parent, parent.parent

    def max_prefix(self, path: str) -> str | None:
        """The deepest path with a quota that ``path`` lies in (itself included),
        or None (3.8's getMaxPrefixWithQuota: never the root)."""
        node = self.root
        deepest: _TrieNode | None = None
        for part in _components(path):
            child = node.children.get(part)
            if child is None:
                break
            node = child
            if node.has_quota:
                deepest = node
        if deepest is None:
            return None
        names = []
        while deepest.parent is not None:
            names.append(deepest.name)
            deepest = deepest.parent
        return "/" + "/".join(reversed(names))


def _components(path: str) -> list[str]:
    # PathTrie leaves out empty and blank (Java-trim-empty) components.
    return [part for part in path.split("/") if part.strip(_JAVA_BLANK)]


@dataclass(frozen=True, slots=True)
class QuotaBreach:
    """One limit a write would go over (3.8's "Quota exceeded" WARN)."""

    quota_path: str
    #: "count" or "bytes"
    measure: str
    #: The usage once the write applies.
    current: int
    limit: int
    hard: bool

    @property
    def limit_name(self) -> str:
        # As 3.8's message words it: softCountLimit, hardByteLimit, ...
        kind = "hard" if self.hard else "soft"
        return f"{kind}{'Count' if self.measure == COUNT else 'Byte'}Limit"


def needs_usage(limits: StatsTrack, count_diff: int, bytes_diff: int) -> bool:
    """Whether any limit applies to this change (otherwise the usage is not read)."""
    return (count_diff != 0 and (limits.count > -1 or limits.count_hard_limit > -1)) or (
        bytes_diff != 0 and (limits.bytes > -1 or limits.byte_hard_limit > -1)
    )


def check_quota(
    quota_path: str, limits: StatsTrack, used: StatsTrack, count_diff: int, bytes_diff: int
) -> list[QuotaBreach]:
    """The limits a change of ``count_diff`` nodes and ``bytes_diff`` bytes under
    ``quota_path`` goes over, count first, as 3.8's ZooKeeperServer.checkQuota
    judges it: a hard limit, when set, replaces the soft one of its measure."""
    breaches = []
    if count_diff != 0 and (limits.count > -1 or limits.count_hard_limit > -1):
        breach = _judge(quota_path, COUNT, used.count + count_diff, limits.count, limits.count_hard_limit)
        if breach is not None:
            breaches.append(breach)
    if bytes_diff != 0 and (limits.bytes > -1 or limits.byte_hard_limit > -1):
        breach = _judge(quota_path, BYTES, used.bytes + bytes_diff, limits.bytes, limits.byte_hard_limit)
        if breach is not None:
            breaches.append(breach)
    return breaches


def _judge(quota_path: str, measure: str, current: int, soft: int, hard: int) -> QuotaBreach | None:
    is_hard = hard > -1
    limit = hard if is_hard else soft
    if current > limit:
        return QuotaBreach(quota_path, measure, current, limit, is_hard)
    return None
