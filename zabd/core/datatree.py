# -*- test-case-name: tests.unit.test_datatree -*-
"""The in-memory znode tree: nodes by path, their indexes, and the digest kept in step.

How each txn changes the tree lives in ``zabd.core.txnapply`` (mixed in as
``TxnRules``); this module keeps the storage and the bookkeeping that every
change goes through.
"""
from __future__ import annotations

from zabd.java.limits import MASK64
from zabd.core.digest import TreeDigest, node_digest
from zabd.core.nodes import CONTAINER_OWNER, DataNode, is_container_owner, is_ttl_owner
from zabd.core.quotas import QuotaTrie
from zabd.core.txnapply import Event, TxnResult, TxnRules, data_length
from zabd.jute.opcodes import Perms
from zabd.jute.records import ACL, Id

OPEN_ACL = [ACL(Perms.ALL, Id("world", "anyone"))]
CONFIG_NODE = "/zookeeper/config"
QUOTA_NODE = "/zookeeper/quota"

class DataTree(TxnRules):
    """Every znode by path, plus the ephemeral, container and TTL indexes."""

    def __init__(self, *, system_nodes: bool = True) -> None:
        """A fresh tree; ``system_nodes=False`` gives one without even a root,
        to be filled by ``add_loaded_node`` (a snapshot holds its own root,
        /zookeeper, /zookeeper/quota and /zookeeper/config)."""
        self.nodes: dict[str, DataNode] = {}
        self.ephemerals: dict[int, set[str]] = {}
        self.containers: set[str] = set()
        self.ttls: set[str] = set()
        self.digest = TreeDigest()
        self.last_processed_zxid = 0
        self.data_size = 0
        #: The paths with a quota (see zabd.core.quotatree).
        self.quota_trie = QuotaTrie()
        if system_nodes:
            self._add_system_nodes()

    def _add_system_nodes(self) -> None:
        self._add_node("/", DataNode(b"", OPEN_ACL))
        self._add_child("/", "zookeeper")
        self._add_node("/zookeeper", DataNode(b"", OPEN_ACL))
        self._add_child("/zookeeper", "quota")
        self._add_node(QUOTA_NODE, DataNode(b"", OPEN_ACL))
        self._add_child("/zookeeper", "config")
        config = DataNode(b"", [ACL(Perms.READ, Id("world", "anyone"))])
        config.aversion = -1
        self._add_node(CONFIG_NODE, config)

    # -- queries -----------------------------------------------------------

    def get(self, path: str) -> DataNode | None:
        # ZooKeeper keeps the root under "" as well as "/", so reads of "" find it.
        return self.nodes.get(path or "/")

    def node_count(self) -> int:
        # ZooKeeper's node map holds the root twice ("" and "/"), and every
        # count it reports (srvr, mntr, stat) includes both.
        return len(self.nodes) + 1

    def ephemeral_count(self) -> int:
        return sum(len(paths) for paths in self.ephemerals.values())

    def ephemerals_of(self, session_id: int) -> set[str]:
        return set(self.ephemerals.get(session_id, ()))

    def descendant_count(self, path: str) -> int:
        node = self.nodes.get(path)
        if node is None:
            return 0
        total = 0
        stack = [(path, node)]
        while stack:
            base, current = stack.pop()
            prefix = base if base != "/" else ""
            for name in current.children:
                child_path = f"{prefix}/{name}"
                child = self.nodes[child_path]
                total += 1
                if child.children:
                    stack.append((child_path, child))
        return total

    # -- node bookkeeping (keeps the digest and data size in step) ---------

    def add_loaded_node(self, path: str, node: DataNode, parent_path: str | None, name: str) -> None:
        """Put a node read from a snapshot into the tree, with all the bookkeeping
        (digest, data size, indexes). The caller has checked that ``path`` is new
        and that ``parent_path`` is in the tree (None for the root)."""
        if parent_path is not None:
            self._add_child(parent_path, name)
        self._add_node(path, node)
        if node.ephemeral_owner:
            self._index(path, node.ephemeral_owner)

    def _index(self, path: str, owner: int) -> None:
        if owner == CONTAINER_OWNER:
            self.containers.add(path)
        elif is_ttl_owner(owner):
            self.ttls.add(path)
        elif owner != 0:
            self.ephemerals.setdefault(owner, set()).add(path)

    def _add_node(self, path: str, node: DataNode) -> None:
        self.nodes[path] = node
        self.data_size += len(path) + data_length(node.data)
        node.digest = node_digest(path, node)
        self.digest.add(path, node.digest)

    def _remove_node(self, path: str, node: DataNode) -> None:
        del self.nodes[path]
        self.data_size -= len(path) + data_length(node.data)
        self.digest.remove(path, node.digest)

    def _add_child(self, parent_path: str, name: str) -> None:
        self.nodes[parent_path].children[name] = None

    def _rehash(self, path: str, node: DataNode) -> None:
        # node.digest still holds the value from before the change.
        value = node_digest(path, node)
        digest = self.digest
        digest.value = (digest.value - node.digest + value) & MASK64
        node.digest = value


__all__ = ["DataTree", "Event", "TxnResult", "is_container_owner", "OPEN_ACL", "CONFIG_NODE"]
