# -*- test-case-name: tests.unit.test_watches -*-
"""A server's watches: the data and child tables (:mod:`zabd.core.watchmanager`), and what each change of the tree triggers.
"""
from __future__ import annotations

from collections.abc import Callable, Hashable
from typing import Generic, TypeVar

from zabd.core.watchmanager import WatchesSummary, WatchManager, WatchMode
from zabd.core.paths import parent_or_root
from zabd.jute.opcodes import EventType, WatcherType

W = TypeVar("W", bound=Hashable)

_CHILDREN_CHANGED = EventType.NodeChildrenChanged

WatchEvent = tuple[W, int, str]



class Watches(Generic[W]):
    """The data and child tables, with the triggers DataTree fires."""

    __slots__ = ("data", "child")

    def __init__(self) -> None:
        self.data: WatchManager[W] = WatchManager()
        self.child: WatchManager[W] = WatchManager()

    def __bool__(self) -> bool:
        """False when no watch is set at all: then no change needs looking up."""
        return bool(self.data._by_path or self.child._by_path)

    def add_data_watch(self, path: str, watcher: W) -> None:
        """A standard watch set by exists or getData."""
        self.data.add(path, watcher)

    def add_child_watch(self, path: str, watcher: W) -> None:
        """A standard watch set by getChildren."""
        self.child.add(path, watcher)

    def add_persistent(self, path: str, watcher: W, recursive: bool) -> None:
        """addWatch: one registration in each table."""
        mode = WatchMode.PERSISTENT_RECURSIVE if recursive else WatchMode.PERSISTENT
        self.data.add(path, watcher, mode)
        self.child.add(path, watcher, mode)

    def node_created(self, path: str) -> list[WatchEvent[W]]:
        created = EventType.NodeCreated
        events = [(w, created, path) for w in self.data.fire(path, created)]
        if path != "/":
            parent = parent_or_root(path)
            events.extend((w, _CHILDREN_CHANGED, parent) for w in self.child.fire(parent, _CHILDREN_CHANGED))
        return events

    def node_deleted(self, path: str) -> list[WatchEvent[W]]:
        """NodeDeleted once per watcher of either table, then the parent's NodeChildrenChanged."""
        deleted = EventType.NodeDeleted
        notified = self.data.fire(path, deleted)
        events = [(w, deleted, path) for w in notified]
        events.extend((w, deleted, path) for w in self.child.fire(path, deleted) if w not in notified)
        if path != "/":
            parent = parent_or_root(path)
            events.extend((w, _CHILDREN_CHANGED, parent) for w in self.child.fire(parent, _CHILDREN_CHANGED))
        return events

    def data_changed(self, path: str) -> list[WatchEvent[W]]:
        changed = EventType.NodeDataChanged
        return [(w, changed, path) for w in self.data.fire(path, changed)]

    def remove_watches(self, path: str, watcher_type: WatcherType, watcher: W) -> bool:
        """removeWatches: whether anything was removed (False means NOWATCHER)."""
        if watcher_type == WatcherType.Children:
            return self.child.remove(path, watcher)
        if watcher_type == WatcherType.Data:
            return self.data.remove(path, watcher)
        removed_child = self.child.remove(path, watcher)
        removed_data = self.data.remove(path, watcher)
        return removed_child or removed_data

    def check_watches(self, path: str, watcher_type: WatcherType, watcher: W, strict: bool = False) -> bool:
        """checkWatches: False means NOWATCHER.

        ZooKeeper 3.8.x's containsWatcher answers whether *any* connection
        watches ``path`` in the table(s), ignoring ``watcher``; that is the
        default here. ``strict=True`` checks ``watcher`` itself (3.9 behaviour).
        """
        tables = self._tables(watcher_type)
        if strict:
            return any(table.contains(path, watcher) for table in tables)
        return any(table.is_watched(path) for table in tables)

    def _tables(self, watcher_type: WatcherType) -> tuple[WatchManager[W], ...]:
        if watcher_type == WatcherType.Children:
            return (self.child,)
        if watcher_type == WatcherType.Data:
            return (self.data,)
        return (self.child, self.data)

    def remove_watcher(self, watcher: W) -> None:
        self.data.remove_watcher(watcher)
        self.child.remove_watcher(watcher)

    def has_watches(self, watcher: W) -> bool:
        return self.data.has_watches(watcher) or self.child.has_watches(watcher)

    def count(self) -> int:
        """Both tables' watches: mntr's ``zk_watch_count``."""
        return self.data.count() + self.child.count()

    def summary(self) -> WatchesSummary:
        """What ``wchs`` and the admin ``watch_summary`` report: the data table only."""
        return self.data.summary()

    # -- four-letter word text (ZooKeeper prints the data table only) -------

    def wchs_text(self) -> str:
        s = self.summary()
        return f"{s.connections} connections watching {s.paths} paths\nTotal watches:{s.total}\n"

    def wchc_text(self, session_id_of: Callable[[W], int] | None = None) -> str:
        sid = session_id_of or _session_id
        lines: list[str] = []
        for watcher, paths in self.data.paths_by_watcher().items():
            lines.append(f"0x{sid(watcher) & 0xFFFFFFFFFFFFFFFF:x}\n")
            lines.extend(f"\t{path}\n" for path in paths)
        lines.append("\n")
        return "".join(lines)

    def wchp_text(self, session_id_of: Callable[[W], int] | None = None) -> str:
        sid = session_id_of or _session_id
        lines: list[str] = []
        for path, watchers in self.data.watchers_by_path().items():
            lines.append(f"{path}\n")
            lines.extend(f"\t0x{sid(w) & 0xFFFFFFFFFFFFFFFF:x}\n" for w in watchers)
        lines.append("\n")
        return "".join(lines)


def _session_id(watcher: object) -> int:
    value = getattr(watcher, "session_id")
    assert isinstance(value, int)
    return value
