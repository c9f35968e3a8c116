# -*- test-case-name: tests.unit.test_datatree -*-
"""Which container and TTL nodes are due for deletion (ZooKeeper's ContainerManager)."""
from __future__ import annotations

from zabd.core.datatree import DataTree
from zabd.core.nodes import ttl_of


def expired_nodes(tree: DataTree, now_ms: int, ttl_enabled: bool) -> list[str]:
    """Empty containers that have had a child, and empty TTL nodes unmodified for their TTL."""
    due = []
    for path in sorted(tree.containers):
        node = tree.get(path)
        if node is not None and not node.children and node.cversion > 0:
            due.append(path)
    if ttl_enabled:
        for path in sorted(tree.ttls):
            node = tree.get(path)
            if node is not None and not node.children and now_ms - node.mtime > ttl_of(node.ephemeral_owner):
                due.append(path)
    return due
