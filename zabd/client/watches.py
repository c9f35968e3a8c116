# -*- test-case-name: tests.unit.test_client_session -*-
"""The client's watch table (ZooKeeper's ZKWatchManager): who to call for an event, what to re-arm.

Paths are the server's (chroot included), as events and setWatches2 carry
them. One-shot watches leave the table when they fire; persistent ones stay
until removed. A callback registered twice for the same node is called once
per event, as Java's watcher sets do.
"""
from __future__ import annotations

from collections.abc import Callable, Iterable
from enum import Enum

from zabd.jute.opcodes import EventType, WatcherType
from zabd.jute.records import SetWatches2

Watcher = Callable[..., object]

#: The Java client cuts setWatches into batches of about this many bytes of paths.
SET_WATCHES_BATCH_BYTES = 128 * 1024


class WatchKind(Enum):
    """Which of the client's watch tables a watch is in, by the call that set it."""

    DATA = "data"  # getData, or exists on a node that exists
    EXIST = "exist"  # exists on a missing node
    CHILD = "child"  # getChildren
    PERSISTENT = "persistent"  # addWatch mode 0
    RECURSIVE = "recursive"  # addWatch mode 1

    @property
    def one_shot(self) -> bool:
        return self in (WatchKind.DATA, WatchKind.EXIST, WatchKind.CHILD)


#: The kinds removeWatches(type) takes away; persistent watches go with Any only (3.8 has no type 4 or 5).
KINDS_OF_TYPE: dict[WatcherType, tuple[WatchKind, ...]] = {
    WatcherType.Children: (WatchKind.CHILD,),
    WatcherType.Data: (WatchKind.DATA, WatchKind.EXIST),
    WatcherType.Any: tuple(WatchKind),
}
#: The event a watcher gets when its watch is removed.
REMOVED_EVENT: dict[WatchKind, int] = {
    WatchKind.DATA: EventType.DataWatchRemoved,
    WatchKind.EXIST: EventType.DataWatchRemoved,
    WatchKind.CHILD: EventType.ChildWatchRemoved,
    WatchKind.PERSISTENT: EventType.PersistentWatchRemoved,
    WatchKind.RECURSIVE: EventType.PersistentWatchRemoved,
}


def ancestors_and_self(path: str) -> Iterable[str]:
    yield path
    while path not in ("/", ""):
        path = path.rsplit("/", 1)[0] or "/"
        yield path


class WatchRegistry:
    """The client's watches by kind and path: who to call for an event, and what to set again on reconnect."""

    def __init__(self) -> None:
        self._table: dict[WatchKind, dict[str, list[Watcher]]] = {kind: {} for kind in WatchKind}

    def add(self, kind: WatchKind, path: str, watcher: Watcher) -> None:
        watchers = self._table[kind].setdefault(path, [])
        if not any(w is watcher for w in watchers):
            watchers.append(watcher)

    def has(self, kind: WatchKind, path: str) -> bool:
        return bool(self._table[kind].get(path))

    def is_empty(self) -> bool:
        return not any(self._table.values())

    def triggered(self, event_type: int, path: str) -> list[Watcher]:
        """The watchers an event from the server calls; the one-shot ones are removed."""
        found: list[Watcher] = []
        if event_type in (EventType.NodeCreated, EventType.NodeDataChanged):
            self._take(found, (WatchKind.DATA, WatchKind.EXIST), path)
        elif event_type == EventType.NodeDeleted:
            self._take(found, (WatchKind.DATA, WatchKind.EXIST, WatchKind.CHILD), path)
        elif event_type == EventType.NodeChildrenChanged:
            self._take(found, (WatchKind.CHILD,), path)
        self._extend(found, self._table[WatchKind.PERSISTENT].get(path, ()))
        if event_type != EventType.NodeChildrenChanged:  # a recursive watch never gets child events
            for node in ancestors_and_self(path):
                self._extend(found, self._table[WatchKind.RECURSIVE].get(node, ()))
        return found

    def remove(self, path: str, kinds: Iterable[WatchKind],
               watcher: Watcher | None = None) -> list[tuple[WatchKind, Watcher]]:
        """Remove ``watcher`` (every watcher when None) of ``kinds`` from ``path``; return what went."""
        removed: list[tuple[WatchKind, Watcher]] = []
        for kind in kinds:
            watchers = self._table[kind].get(path)
            if not watchers:
                continue
            gone = [w for w in watchers if watcher is None or w is watcher]
            removed += [(kind, w) for w in gone]
            rest = [w for w in watchers if not any(w is g for g in gone)]
            if rest:
                self._table[kind][path] = rest
            else:
                del self._table[kind][path]
        return removed

    def clear(self) -> None:
        for paths in self._table.values():
            paths.clear()

    def set_watches(self, relative_zxid: int) -> list[SetWatches2]:
        """setWatches2 records re-arming every watch, in batches of at most ~128 KiB of paths."""
        batches: list[SetWatches2] = []
        lists: dict[WatchKind, list[str]] = {kind: [] for kind in WatchKind}
        size = 0
        for kind in WatchKind:
            for path in self._table[kind]:
                if size + len(path) > SET_WATCHES_BATCH_BYTES and size:
                    batches.append(_record(relative_zxid, lists))
                    lists, size = {k: [] for k in WatchKind}, 0
                lists[kind].append(path)
                size += len(path)
        if size:
            batches.append(_record(relative_zxid, lists))
        return batches

    def _take(self, found: list[Watcher], kinds: tuple[WatchKind, ...], path: str) -> None:
        for kind in kinds:
            self._extend(found, self._table[kind].pop(path, ()))

    @staticmethod
    def _extend(found: list[Watcher], watchers: Iterable[Watcher]) -> None:
        for watcher in watchers:
            if not any(w is watcher for w in found):
                found.append(watcher)


def _record(relative_zxid: int, lists: dict[WatchKind, list[str]]) -> SetWatches2:
    return SetWatches2(relative_zxid, lists[WatchKind.DATA], lists[WatchKind.EXIST], lists[WatchKind.CHILD],
                       lists[WatchKind.PERSISTENT], lists[WatchKind.RECURSIVE])
