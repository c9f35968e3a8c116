# -*- test-case-name: tests.unit.test_watches -*-
"""Server-side watch tables with ZooKeeper 3.8's WatchManager semantics.

Watchers are opaque hashable objects (the server uses its connections). Each
table maps a path to ``{watcher: mode}``; one mode per (path, watcher), so as
in 3.8 a later registration replaces the earlier mode (a standard watch set
by a read over a persistent one turns it back into a one-shot watch; 3.9's
ZOOKEEPER-4466 changed that). Everything iterates dicts, so the events come
out in a deterministic order.
"""
from __future__ import annotations

from collections.abc import Callable, Collection, Hashable
from enum import IntEnum
from typing import Generic, NamedTuple, TypeVar

from zabd.jute.opcodes import EventType, WatcherType

__all__ = ["WatchMode", "WatchManager", "Watches", "WatchesSummary", "WatchEvent"]

W = TypeVar("W", bound=Hashable)

_CHILDREN_CHANGED = EventType.NodeChildrenChanged


class WatchMode(IntEnum):
    """ZooKeeper's WatcherMode; the persistent values equal AddWatchMode's."""

    STANDARD = -1
    PERSISTENT = 0
    PERSISTENT_RECURSIVE = 1


_STANDARD = WatchMode.STANDARD
_RECURSIVE = WatchMode.PERSISTENT_RECURSIVE


class WatchesSummary(NamedTuple):
    """The numbers ``wchs`` prints: ``{connections} connections watching {paths} paths``."""

    connections: int
    paths: int
    total: int


def _parent(path: str) -> str:
    cut = path.rfind("/")
    return path[:cut] if cut > 0 else "/"


class WatchManager(Generic[W]):
    """One watch table (ZooKeeper keeps one for data watches, one for child watches)."""

    __slots__ = ("_by_path", "_by_watcher", "_recursive")

    def __init__(self) -> None:
        self._by_path: dict[str, dict[W, WatchMode]] = {}
        # watcher -> its paths (a dict as an ordered set). As in ZooKeeper, an
        # entry stays, possibly empty, until remove_watcher(): wchs counts it.
        self._by_watcher: dict[W, dict[str, None]] = {}
        self._recursive = 0  # recursive registrations; 0 means never walk ancestors

    def add(self, path: str, watcher: W, mode: WatchMode = _STANDARD) -> None:
        """Register (or re-register with a new mode) a watch on ``path``."""
        mode = WatchMode(mode)
        watchers = self._by_path.get(path)
        if watchers is None:
            watchers = self._by_path[path] = {}
        old = watchers.get(watcher)
        watchers[watcher] = mode
        if old is _RECURSIVE:
            self._recursive -= 1
        if mode is _RECURSIVE:
            self._recursive += 1
        paths = self._by_watcher.get(watcher)
        if paths is None:
            paths = self._by_watcher[watcher] = {}
        paths[path] = None

    def fire(self, path: str, event: int) -> dict[W, None]:
        """Every watcher ``event`` on ``path`` reaches, in order; drops fired one-shot watches."""
        watchers = self._by_path.get(path)
        if watchers is None and not self._recursive:
            return {}  # the common case: nobody watches this path
        fired: dict[W, None] = {}
        children = event == _CHILDREN_CHANGED
        if watchers is not None:
            one_shot: list[W] = []
            for watcher, mode in watchers.items():
                if mode is _RECURSIVE:
                    if not children:
                        fired[watcher] = None
                else:
                    fired[watcher] = None
                    if mode is _STANDARD:
                        one_shot.append(watcher)
            if one_shot:
                for watcher in one_shot:
                    del watchers[watcher]
                    self._by_watcher[watcher].pop(path, None)
                if not watchers:
                    del self._by_path[path]
        if self._recursive and not children:
            table = self._by_path
            while path != "/":
                path = _parent(path)
                ancestors = table.get(path)
                if ancestors is not None:
                    for watcher, mode in ancestors.items():
                        if mode is _RECURSIVE:
                            fired[watcher] = None
        return fired

    def trigger(self, path: str, event: int, suppress: Collection[W] | None = None) -> set[W]:
        """The watchers to notify of ``event`` on ``path``.

        Standard watches at ``path`` fire once and are removed (even when
        suppressed); persistent ones at ``path`` stay; recursive ones at
        ``path`` or an ancestor stay and never see NodeChildrenChanged.
        """
        fired = self.fire(path, event)
        if suppress:
            return {w for w in fired if w not in suppress}
        return set(fired)

    def remove_watcher(self, watcher: W) -> None:
        """Drop every watch of ``watcher`` (its connection closed)."""
        paths = self._by_watcher.pop(watcher, None)
        if paths is None:
            return
        for path in paths:
            watchers = self._by_path[path]
            if watchers.pop(watcher) is _RECURSIVE:
                self._recursive -= 1
            if not watchers:
                del self._by_path[path]

    def remove(self, path: str, watcher: W) -> bool:
        """Remove ``watcher``'s watch on ``path`` whatever its mode; False if none."""
        paths = self._by_watcher.get(watcher)
        if paths is None or path not in paths:
            return False
        del paths[path]
        watchers = self._by_path[path]  # the two indexes always agree
        if watchers.pop(watcher) is _RECURSIVE:
            self._recursive -= 1
        if not watchers:
            del self._by_path[path]
        return True

    def contains(self, path: str, watcher: W) -> bool:
        """Whether ``watcher`` has a watch (any mode) on exactly ``path``."""
        watchers = self._by_path.get(path)
        return watchers is not None and watcher in watchers

    def is_watched(self, path: str) -> bool:
        """Whether any watcher watches ``path`` (what 3.8's containsWatcher really tests)."""
        return path in self._by_path

    def mode_of(self, path: str, watcher: W) -> WatchMode | None:
        watchers = self._by_path.get(path)
        return None if watchers is None else watchers.get(watcher)

    def has_watches(self, watcher: W) -> bool:
        return bool(self._by_watcher.get(watcher))

    def count(self) -> int:
        """Total watches (ZooKeeper's WatchManager.size())."""
        return sum(len(watchers) for watchers in self._by_path.values())

    def paths(self) -> int:
        """How many distinct paths are watched."""
        return len(self._by_path)

    def recursive_count(self) -> int:
        return self._recursive

    def summary(self) -> WatchesSummary:
        """ZooKeeper's getWatchesSummary: connections include those whose watches all fired."""
        total = sum(len(paths) for paths in self._by_watcher.values())
        return WatchesSummary(len(self._by_watcher), len(self._by_path), total)

    def by_watcher(self) -> dict[W, set[str]]:
        """watcher -> watched paths (possibly empty, as in ZooKeeper's dumps)."""
        return {w: set(paths) for w, paths in self._by_watcher.items()}

    def by_path(self) -> dict[str, set[W]]:
        return {path: set(watchers) for path, watchers in self._by_path.items()}

    def watchers_by_path(self) -> dict[str, list[W]]:
        """:meth:`by_path` in registration order (for text dumps)."""
        return {path: list(watchers) for path, watchers in self._by_path.items()}

    def paths_by_watcher(self) -> dict[W, list[str]]:
        """:meth:`by_watcher` in registration order (for text dumps)."""
        return {w: list(paths) for w, paths in self._by_watcher.items()}


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
            parent = _parent(path)
            events.extend((w, _CHILDREN_CHANGED, parent) for w in self.child.fire(parent, _CHILDREN_CHANGED))
        return events

    def node_deleted(self, path: str) -> list[WatchEvent[W]]:
        """NodeDeleted once per watcher of either table, then the parent's NodeChildrenChanged."""
        deleted = EventType.NodeDeleted
        notified = self.data.fire(path, deleted)
        events = [(w, deleted, path) for w in notified]
        events.extend((w, deleted, path) for w in self.child.fire(path, deleted) if w not in notified)
        if path != "/":
            parent = _parent(path)
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
