# -*- test-case-name: tests.unit.test_reconfig_plan -*-
"""The iteration order of a ``java.util.HashMap<Long, V>`` that is copied and edited.

3.8's incremental reconfig copies the last config's member map
(``new HashMap<>(members)``), removes the leaving sids and puts the joining
ones, and prints the result in that map's iteration order; that text is what
``/zookeeper/config`` holds. A copied map starts with the capacity Java sizes
it for (8 for up to 5 members, not 16), so the order depends on the whole
history, which :class:`JavaLongHashMap` replays: buckets by ``Long.hashCode``,
insertion order inside a bucket, and resizes that keep each bucket's order.
Exact until nine keys share a bucket in a table of 64 or more (Java makes
such a bucket a tree).
"""
from __future__ import annotations

from collections.abc import Iterable, Iterator
from typing import Generic, TypeVar

from zabd.java.limits import long_hash_code

V = TypeVar("V")

_MAX_CAPACITY = 1 << 30
_LOAD_FACTOR = 0.75
_TREEIFY_THRESHOLD = 8
_MIN_TREEIFY_CAPACITY = 64


def _spread_hash(key: int) -> int:
    # Long.hashCode, then HashMap.hash's h ^ (h >>> 16).
    h = long_hash_code(key)
    return h ^ (h >> 16)


def _table_size_for(wanted: int) -> int:
    # HashMap.tableSizeFor: the next power of two, at least 1.
    size = 1
    while size < wanted:
        size *= 2
    return min(size, _MAX_CAPACITY)


class JavaLongHashMap(Generic[V]):
    """
    A map from sid to value that iterates as Java's ``HashMap<Long, V>`` would.

    :param capacity: the table size Java would first allocate (a power of two).
    """

    __slots__ = ("_buckets", "_size")

    def __init__(self, capacity: int = 16) -> None:
        self._buckets: list[list[tuple[int, V]]] = [[] for _ in range(capacity)]
        self._size = 0

    @classmethod
    def copy_of(cls, items: Iterable[tuple[int, V]]) -> JavaLongHashMap[V]:
        """``new HashMap<>(source)``: sized for the source, filled in its iteration order."""
        entries = list(items)
        # putMapEntries: threshold = tableSizeFor((int)(size / 0.75f + 1)).
        wanted = int(len(entries) / _LOAD_FACTOR + 1.0) if entries else 0
        copied: JavaLongHashMap[V] = cls(_table_size_for(wanted) if entries else 16)
        for key, value in entries:
            copied.put(key, value)
        return copied

    def put(self, key: int, value: V) -> None:
        """Replace the value in place if the key is there, else append it to its bucket."""
        bucket = self._bucket(key)
        for index, (present, _) in enumerate(bucket):
            if present == key:
                bucket[index] = (key, value)
                return
        bucket.append((key, value))
        self._size += 1
        # A bucket past the treeify threshold in a small table makes Java resize instead.
        if len(bucket) > _TREEIFY_THRESHOLD and len(self._buckets) < _MIN_TREEIFY_CAPACITY:
            self._resize()
        if self._size > int(len(self._buckets) * _LOAD_FACTOR):
            self._resize()

    def remove(self, key: int) -> None:
        """Drop the key if present; the rest of its bucket keeps its order."""
        bucket = self._bucket(key)
        for index, (present, _) in enumerate(bucket):
            if present == key:
                del bucket[index]
                self._size -= 1
                return

    def __contains__(self, key: object) -> bool:
        return isinstance(key, int) and any(k == key for k, _ in self._bucket(key))

    def __len__(self) -> int:
        return self._size

    def values(self) -> Iterator[V]:
        """The values in Java's iteration order."""
        return (value for bucket in self._buckets for _, value in bucket)

    def keys(self) -> Iterator[int]:
        """The keys in Java's iteration order."""
        return (key for bucket in self._buckets for key, _ in bucket)

    def _bucket(self, key: int) -> list[tuple[int, V]]:
        return self._buckets[_spread_hash(key) & (len(self._buckets) - 1)]

    def _resize(self) -> None:
        # Doubling splits each bucket in two (stay or move up by the old size), order kept.
        old = self._buckets
        self._buckets = [[] for _ in range(len(old) * 2)]
        for bucket in old:
            for key, value in bucket:
                self._bucket(key).append((key, value))
