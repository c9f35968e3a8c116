# -*- test-case-name: tests.unit.test_snapformat -*-
"""Building a DataTree from nodes that arrive parents first (a snapshot's walk).

The structural checks live here; the bookkeeping (digest, data size, the
ephemeral, container and TTL indexes) is DataTree's own ``add_loaded_node``,
and the quotas are set up once the whole tree is in, as 3.8 does.
"""
from __future__ import annotations

from zabd.core.datatree import DataTree
from zabd.core.nodes import DataNode


class MalformedTree(ValueError):
    """The nodes do not form a tree: the message says why."""


class TreeLoader:
    """Accepts ``(path, node)`` in pre-order, the root first under the path ""."""

    __slots__ = ("tree", "_nodes")

    def __init__(self) -> None:
        self.tree = DataTree(system_nodes=False)
        self._nodes = self.tree.nodes

    def add(self, path: str, node: DataNode) -> None:
        nodes = self._nodes
        if not path:
            if "/" in nodes:
                raise MalformedTree("a second root node")
            self.tree.add_loaded_node("/", node, None, "")
            return
        cut = path.rfind("/")
        name = path[cut + 1 :]
        if cut < 0 or not name:
            raise MalformedTree(f"malformed path {path!r}")
        if path in nodes:
            raise MalformedTree(f"duplicate node {path!r}")
        parent_path = path[:cut] or "/"
        if parent_path not in nodes:
            raise MalformedTree(f"node {path!r} comes before its parent {parent_path!r}")
        self.tree.add_loaded_node(path, node, parent_path, name)

    def finish(self) -> DataTree:
        if "/" not in self._nodes:
            raise MalformedTree("no root node")
        # As 3.8 after a snapshot: the quota trie rebuilt, every quota recounted.
        self.tree.setup_quotas()
        return self.tree
