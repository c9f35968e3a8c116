# -*- test-case-name: tests.unit.test_quotas -*-
"""The data tree's quota bookkeeping, as 3.8's DataTree keeps it.

As txns apply, each create, delete and setData under a path with a quota
rewrites that quota's ``zookeeper_stats`` data (count and bytes; its stat
fields stay as they are). Creating a ``zookeeper_limits`` node adds its path
to the trie, creating a ``zookeeper_stats`` node counts the subtree afresh,
and deleting a limits node removes the path. A loaded tree (snapshot, SNAP
sync) recounts every quota. Nodes under /zookeeper/ are outside the digest,
so none of this moves it.

Where 3.8 throws from inside txn application (malformed stats text, a limits
node directly under /zookeeper/quota) and so stops the server, zabd logs and
carries on.
"""
from __future__ import annotations

from twisted.logger import Logger

from zabd.core.nodes import DataNode
from zabd.core.paths import QUOTA, ZOOKEEPER
from zabd.core.quotas import (
    BYTES,
    COUNT,
    LIMIT_NODE,
    STAT_NODE,
    MalformedStats,
    QuotaBreach,
    QuotaTrie,
    StatsTrack,
    check_quota,
    limit_path,
    needs_usage,
    stat_path,
    trim_quota_path,
    usage,
    wrap_long,
)

log = Logger()
_LIMIT_SUFFIX = "/" + LIMIT_NODE


class QuotaBookkeeping:
    """Mixed into the DataTree (through TxnRules): the quota trie and the stats nodes."""

    nodes: dict[str, DataNode]
    data_size: int
    quota_trie: QuotaTrie

    def _rehash(self, path: str, node: DataNode) -> None:
        """Bring the digest up to date with ``node``, which has just changed."""
        raise NotImplementedError

    # -- as txns apply -------------------------------------------------------

    def _quota_node_added(self, path: str, parent_path: str, name: str, data: bytes | None) -> None:
        """After ``path`` is created (3.8's createNode tail)."""
        if parent_path.startswith(QUOTA):
            if name == LIMIT_NODE:
                self.quota_trie.add(trim_quota_path(parent_path))
            elif name == STAT_NODE:
                self._recount_quota(trim_quota_path(parent_path))
        if self.quota_trie.root.children:
            prefix = self.quota_trie.max_prefix(path)
            if prefix is not None:
                self._update_usage(prefix, len(data) if data is not None else 0, 1)

    def _quota_node_removed(self, path: str, parent_path: str, name: str, data: bytes | None) -> None:
        """After ``path`` is deleted (3.8's deleteNode tail). 3.8 tests the
        parent against "/zookeeper" here, not "/zookeeper/quota"."""
        if name == LIMIT_NODE and parent_path.startswith(ZOOKEEPER):
            self.quota_trie.delete(trim_quota_path(parent_path))
        if self.quota_trie.root.children:
            prefix = self.quota_trie.max_prefix(path)
            if prefix is not None:
                self._update_usage(prefix, -(len(data) if data is not None else 0), -1)

    def _quota_data_changed(self, path: str, bytes_diff: int) -> None:
        """After a setData of ``path``; the caller has checked that a quota exists."""
        prefix = self.quota_trie.max_prefix(path)
        if prefix is not None:
            self._update_usage(prefix, bytes_diff, 0)

    def _update_usage(self, quota: str, bytes_diff: int, count_diff: int) -> None:
        """3.8's updateQuotaStat: keeps the stats node's other keys."""
        path = stat_path(quota)
        node = self.nodes.get(path)
        if node is None:
            # Between zkCli's create of the limits node and of the stats node.
            log.error("Missing node for stat {stat_path}", stat_path=path)
            return
        try:
            used = StatsTrack.parse(node.data)
        except MalformedStats as e:
            log.error("Unreadable quota stats in {stat_path}: {problem}", stat_path=path, problem=str(e))
            return
        updated = used.replace(**{
            COUNT: wrap_long(used.count + count_diff),
            BYTES: wrap_long(used.bytes + bytes_diff),
        })  # fmt: skip
        self._rewrite_quota_node(path, node, updated.encode())

    def _rewrite_quota_node(self, path: str, node: DataNode, data: bytes) -> None:
        # 3.8 leaves its approximate data size stale here; zabd keeps it exact.
        self.data_size += len(data) - (len(node.data) if node.data is not None else 0)
        node.data = data
        self._rehash(path, node)

    # -- counting afresh -----------------------------------------------------

    def _recount_quota(self, quota: str) -> None:
        """3.8's updateQuotaForPath: count ``quota``'s subtree (itself included)
        and write only count and bytes to its stats node."""
        path = stat_path(quota)
        node = self.nodes.get(path)
        count, size = self._subtree_usage(quota)
        if node is None:
            log.warn("Missing quota stat node {stat_path}", stat_path=path)
            return
        self._rewrite_quota_node(path, node, usage(count, size).encode())

    def _subtree_usage(self, path: str) -> tuple[int, int]:
        # Child paths are joined as 3.8 joins them: "" stands for the root,
        # and below "/" nothing is found ("//child").
        count = size = 0
        stack = [path]
        nodes = self.nodes
        while stack:
            current = stack.pop()
            node = nodes.get(current or "/")
            if node is None:
                continue
            count += 1
            size += len(node.data) if node.data is not None else 0
            stack.extend(f"{current}/{child}" for child in node.children)
        return count, size

    def setup_quotas(self) -> None:
        """Rebuild the trie and recount every quota: 3.8's setupQuota after a
        snapshot loads. Only leaves named zookeeper_limits count."""
        self.quota_trie = QuotaTrie()
        if QUOTA not in self.nodes:
            return
        stack = [QUOTA]
        while stack:
            path = stack.pop()
            node = self.nodes[path]
            if node.children:
                stack.extend(f"{path}/{child}" for child in node.children)
            elif path.endswith(_LIMIT_SUFFIX):
                quota = path[len(QUOTA):path.index(_LIMIT_SUFFIX)]
                self._recount_quota(quota)
                self.quota_trie.add(quota)

    # -- for the prep stage --------------------------------------------------

    def quota_breaches(self, path: str, count_diff: int, bytes_diff: int) -> list[QuotaBreach]:
        """The limits that a change of ``path`` would go over, judged against
        the applied tree, as 3.8's checkQuota judges it."""
        quota = self.quota_trie.max_prefix(path)
        if quota is None:
            return []
        limits_path = limit_path(quota)
        limits_node = self.nodes.get(limits_path)
        if limits_node is None:
            log.error("Missing limit node for quota {limit_path}", limit_path=limits_path)
            return []
        try:
            limits = StatsTrack.parse(limits_node.data)
            if not needs_usage(limits, count_diff, bytes_diff):
                return []
            stats_node = self.nodes.get(stat_path(quota))
            if stats_node is None:
                log.error("Missing node for stat {stat_path}", stat_path=stat_path(quota))
                return []
            used = StatsTrack.parse(stats_node.data)
        except MalformedStats as e:
            # 3.8 fails the request with a NumberFormatException; zabd does not enforce.
            log.error("Unreadable quota for {quota_path}: {problem}", quota_path=quota, problem=str(e))
            return []
        return check_quota(quota, limits, used, count_diff, bytes_diff)
