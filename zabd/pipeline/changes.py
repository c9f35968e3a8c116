# -*- test-case-name: tests.unit.test_pipeline -*-
"""Outstanding changes: the tree as it will be once every prepared txn applies.

Prep runs ahead of the tree (the log and, later, the quorum sit between them),
so it validates against these records, as ZooKeeper's ChangeRecords do.
"""
from __future__ import annotations

from collections import deque
from dataclasses import dataclass

from zabd.core.datatree import DataTree
from zabd.jute.errors import Code, KeeperError
from zabd.jute.records import ACL


@dataclass(slots=True)
class ChangeRecord:
    """One node as it will be once the prepared txns before it apply (ZooKeeper's ChangeRecord)."""

    zxid: int
    path: str
    exists: bool
    version: int
    cversion: int
    aversion: int
    ephemeral_owner: int
    child_count: int
    acl: list[ACL]

    def next(self, zxid: int, *, exists: bool = True, version: int | None = None,
             cversion: int | None = None, aversion: int | None = None,
             child_count: int | None = None, acl: list[ACL] | None = None) -> ChangeRecord:
        """A copy as of ``zxid`` with the given fields changed."""
        return ChangeRecord(
            zxid, self.path, exists,
            self.version if version is None else version,
            self.cversion if cversion is None else cversion,
            self.aversion if aversion is None else aversion,
            self.ephemeral_owner,
            self.child_count if child_count is None else child_count,
            self.acl if acl is None else acl,
        )


class PendingChanges:
    """The outstanding changes, newest last, over the tree: what prep validates a write against."""

    def __init__(self, tree: DataTree) -> None:
        self.tree = tree
        self.queue: deque[ChangeRecord] = deque()
        self.by_path: dict[str, ChangeRecord] = {}

    def __len__(self) -> int:
        return len(self.queue)

    def lookup(self, path: str) -> ChangeRecord | None:
        record = self.by_path.get(path)
        if record is not None:
            return record if record.exists else None
        node = self.tree.nodes.get(path)
        if node is None:
            return None
        return ChangeRecord(
            -1, path, True, node.version, node.cversion, node.aversion,
            node.ephemeral_owner, len(node.children), node.acl,
        )

    def with_version(self, record: ChangeRecord, zxid: int, version: int) -> ChangeRecord:
        """``record`` as of ``zxid`` with a new data version, added to the queue.

        A record fresh from the tree (zxid -1) belongs to its caller alone, so
        it is changed in place rather than copied: setData is the commonest write.
        """
        if record.zxid == -1:
            record.zxid = zxid
            record.version = version
        else:
            record = record.next(zxid, version=version)
        self.add(record)
        return record

    def require(self, path: str) -> ChangeRecord:
        record = self.lookup(path)
        if record is None:
            raise KeeperError(Code.NONODE, path)
        return record

    def add(self, record: ChangeRecord) -> None:
        self.queue.append(record)
        self.by_path[record.path] = record

    def applied(self, zxid: int) -> None:
        """The tree now holds every change up to ``zxid``: forget them."""
        queue, by_path = self.queue, self.by_path
        while queue and queue[0].zxid <= zxid:
            record = queue.popleft()
            if by_path.get(record.path) is record:
                del by_path[record.path]

    def rollback(self, zxid: int) -> None:
        """Undo the records a failed multi added under ``zxid``."""
        touched = set()
        while self.queue and self.queue[-1].zxid == zxid:
            touched.add(self.queue.pop().path)
        for path in touched:
            self.by_path.pop(path, None)
        for record in reversed(self.queue):
            if record.path in touched and record.path not in self.by_path:
                self.by_path[record.path] = record
