"""TreeCache: a local copy of a subtree kept current by one persistent recursive watch.

kazoo's TreeCache vocabulary (events NODE_ADDED, NODE_UPDATED, NODE_REMOVED,
INITIALIZED and the CONNECTION_* ones; ``get_data``, ``get_children``), but
one ``addWatch(path, PERSISTENT_RECURSIVE)`` instead of a one-shot watch per
node. A recursive watch reports creations, changes and deletions anywhere
below the root (never child events), so each event is answered by reading
that one node again.

The server does not replay what a persistent watch missed while the client
was disconnected (setWatches re-arms it without comparing zxids), and a lost
session takes the watch with it. So on every CONNECTED after SUSPENDED or
LOST the cache re-adds the watch if needed and walks the tree again,
publishing the differences: it converges to the server's tree either way.

    cache = TreeCache(client, "/services")
    cache.listen(lambda event: print(event.event_type, event.event_data))
    await cache.start()   # fires after INITIALIZED
"""
from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from enum import IntEnum
from typing import Any

from twisted.internet.defer import Deferred, FirstError, gatherResults, succeed
from twisted.logger import Logger

from zabd.client.client import ZooKeeperClient
from zabd.client.errors import NoNodeError
from zabd.client.recipes.watchers import SerialJobs
from zabd.client.states import EventType, KazooState, WatchedEvent, ZnodeStat

__all__ = ["TreeCache", "TreeEvent", "NodeData"]

log = Logger()


class TreeEvent(IntEnum):
    """Event types, with kazoo's numbers."""

    NODE_ADDED = 0
    NODE_UPDATED = 1
    NODE_REMOVED = 2
    CONNECTION_SUSPENDED = 3
    CONNECTION_RECONNECTED = 4
    CONNECTION_LOST = 5
    INITIALIZED = 6


@dataclass(frozen=True, slots=True)
class NodeData:
    path: str
    data: bytes
    stat: ZnodeStat


@dataclass(frozen=True, slots=True)
class TreeCacheEvent:
    """What listeners receive; ``event_data`` is the node's (last known) NodeData, None for connection events."""

    event_type: TreeEvent
    event_data: NodeData | None = None


@dataclass(slots=True)
class _Node:
    data: NodeData
    children: set[str] = field(default_factory=set)


async def _all(deferreds: list[Deferred[Any]]) -> list[Any]:
    """Every result, in order, concurrently; the first failure is raised as itself (not a FirstError)."""
    try:
        return await gatherResults(deferreds, consumeErrors=True)
    except FirstError as error:
        error.subFailure.raiseException()
        raise


def _parent(path: str) -> str:
    return path.rsplit("/", 1)[0] or "/"


def _child_path(parent: str, name: str) -> str:
    return parent.rstrip("/") + "/" + name


class TreeCache:
    """A cache of the subtree at ``path`` (the root may not exist yet: it is added when created)."""

    def __init__(self, client: ZooKeeperClient, path: str) -> None:
        self.client = client
        self.root = path
        self._nodes: dict[str, _Node] = {}
        self._listeners: list[Callable[[TreeCacheEvent], object]] = []
        self._jobs = SerialJobs()
        self._watch = self._on_watch  # bound once: the watch table tells callbacks apart by identity
        self._on_state_change = self._on_state
        self._started = False
        self._closed = False
        self._watch_lost = False  # the session was lost: the server forgot our watch
        self._initialized: Deferred[None] = Deferred()

    # -- public -------------------------------------------------------------------

    def start(self) -> Deferred[None]:
        """Add the watch, load the tree, publish NODE_ADDED per node then INITIALIZED; fires then."""
        if self._started:
            raise RuntimeError("TreeCache already started")
        self._started = True
        self.client.add_listener(self._on_state_change)
        self._jobs.add(self._arm_and_load)
        return self._initialized

    def close(self) -> Deferred[None]:
        """Stop watching and forget the cache (no events after this)."""
        self._closed = True
        self.client.remove_listener(self._on_state_change)
        self._nodes.clear()
        if not self._started or not self.client.connected:
            return succeed(None)
        return self.client.remove_watch(self.root, self._watch).addErrback(lambda failure: None)

    def listen(self, listener: Callable[[TreeCacheEvent], object]) -> None:
        self._listeners.append(listener)

    def get_data(self, path: str, default: NodeData | None = None) -> NodeData | None:
        node = self._nodes.get(path)
        return node.data if node is not None else default

    def get_children(self, path: str, default: frozenset[str] | None = None) -> frozenset[str] | None:
        node = self._nodes.get(path)
        return frozenset(node.children) if node is not None else default

    def when_idle(self) -> Deferred[None]:
        """Fires once every event and refresh received so far is applied (for tests)."""
        return self._jobs.when_idle()

    # -- inputs ---------------------------------------------------------------------

    def _on_watch(self, event: WatchedEvent) -> None:
        if self._closed or event.type not in (EventType.CREATED, EventType.CHANGED, EventType.DELETED):
            return
        path = event.path
        if event.type is EventType.DELETED:
            self._jobs.add(lambda: self._removed(path))
        else:
            self._jobs.add(lambda: self._refresh_node(path))

    def _on_state(self, state: KazooState) -> None:
        if self._closed:
            return
        if state is KazooState.CONNECTED:
            if self._initialized.called:
                self._publish(TreeCacheEvent(TreeEvent.CONNECTION_RECONNECTED))
            # Events may have been missed while disconnected: walk the tree again (cheap if nothing moved).
            self._jobs.add(self._arm_and_load)
        elif state is KazooState.SUSPENDED:
            self._publish(TreeCacheEvent(TreeEvent.CONNECTION_SUSPENDED))
        else:
            self._watch_lost = True
            self._publish(TreeCacheEvent(TreeEvent.CONNECTION_LOST))

    # -- work (one job at a time) ------------------------------------------------------

    async def _arm_and_load(self) -> None:
        if self._closed:
            return
        if self._watch_lost or not self._initialized.called:
            await self.client.add_watch(self.root, self._watch, recursive=True)
            self._watch_lost = False
        await self._sync_subtree(self.root)
        if not self._initialized.called and not self._closed:
            self._publish(TreeCacheEvent(TreeEvent.INITIALIZED))
            self._initialized.callback(None)

    async def _read(self, path: str) -> tuple[NodeData, list[str]] | None:
        """The node's data and children as the server has them now, None if it does not exist."""
        try:
            (data, stat), children = await _all([self.client.get(path), self.client.get_children(path)])
        except NoNodeError:
            return None
        return NodeData(path, data, stat), list(children)

    async def _sync_subtree(self, path: str) -> None:
        """Make the cache's copy of ``path`` and below equal to the server's."""
        found = await self._read(path)
        if found is None:
            await self._removed(path)
            return
        data, children = found
        self._store(data)
        node = self._nodes[path]
        for gone in node.children - set(children):
            await self._removed(_child_path(path, gone))
        await _all([Deferred.fromCoroutine(self._sync_subtree(_child_path(path, name)))
                    for name in sorted(children)])

    async def _refresh_node(self, path: str) -> None:
        """After CREATED or CHANGED: read the node (and, if new to the cache, what is below it)."""
        if self._closed:
            return
        if path not in self._nodes:
            await self._sync_subtree(path)
            return
        found = await self._read(path)
        if found is None:
            await self._removed(path)
        else:
            self._store(found[0])

    async def _removed(self, path: str) -> None:
        """Drop ``path`` and its subtree, deepest first, one NODE_REMOVED each."""
        node = self._nodes.get(path)
        if node is None:
            return
        for child in sorted(node.children):
            await self._removed(_child_path(path, child))
        del self._nodes[path]
        parent = self._nodes.get(_parent(path))
        if parent is not None:
            parent.children.discard(path.rsplit("/", 1)[1])
        self._publish(TreeCacheEvent(TreeEvent.NODE_REMOVED, node.data))

    def _store(self, data: NodeData) -> None:
        if self._closed or not self._in_tree(data.path):
            return
        old = self._nodes.get(data.path)
        if old is None:
            self._nodes[data.path] = _Node(data)
            parent = self._nodes.get(_parent(data.path))
            if parent is not None and data.path != self.root:
                parent.children.add(data.path.rsplit("/", 1)[1])
            self._publish(TreeCacheEvent(TreeEvent.NODE_ADDED, data))
        elif old.data.stat.mzxid != data.stat.mzxid or old.data.stat.czxid != data.stat.czxid:
            old.data = data
            self._publish(TreeCacheEvent(TreeEvent.NODE_UPDATED, data))
        else:
            old.data = data  # same version; the stat's children fields may have moved

    def _in_tree(self, path: str) -> bool:
        """Whether the node belongs to the cache: the root, or below a node the cache holds."""
        return path == self.root or _parent(path) in self._nodes

    def _publish(self, event: TreeCacheEvent) -> None:
        if self._closed and event.event_type is not TreeEvent.NODE_REMOVED:
            return
        for listener in list(self._listeners):
            try:
                listener(event)
            except Exception:
                log.failure("TreeCache listener {listener!r} failed", listener=listener)
