# -*- test-case-name: tests.unit.test_watches -*-
"""One server-side watch table, with ZooKeeper 3.8's WatchManager semantics.

Watchers are opaque hashable objects (the server uses its connections). A
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

from zabd.core.paths import parent_or_root
from zabd.jute.opcodes import EventType

__all__ = ["WatchMode", "WatchManager", "WatchesSummary"]

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
                path = parent_or_root(path)
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
