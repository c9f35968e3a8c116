# -*- test-case-name: tests.unit.test_datatree -*-
"""What each committed txn does to the tree: ZooKeeper's DataTree.processTxn.

``TxnRules.apply(txn)`` is pure bookkeeping: time comes from the txn header,
and the watch events it causes come back as data for the caller to deliver.
Application tolerates re-application (fuzzy snapshots replay txns the
snapshot already holds): an existing create or a missing delete is an error
result, never a crash, and a parent's cversion and pzxid only move forward.
``DataTree`` supplies the storage and the digest bookkeeping these rules use.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Callable

from zabd.core.nodes import CONTAINER_OWNER, DataNode, is_ttl_owner, ttl_owner
from zabd.core.paths import QUOTA, basename, parent_of
from zabd.core.quotas import LIMIT_NODE
from zabd.core.quotatree import QuotaBookkeeping
from zabd.jute.errors import Code
from zabd.jute.opcodes import EventType, OpCode
from zabd.jute.records import ACL, Stat
from zabd.jute.txns import (
    CloseSessionTxn, CreateContainerTxn, CreateTTLTxn, CreateTxn, DeleteTxn, ErrorTxn, MultiTxn, SetACLTxn,
    SetDataTxn, SingleBody, Txn, TxnHeader,
)

#: (type, path, ACL of the node, ACL of its parent): watchers only hear of a
#: change to a node they may read (ZooKeeper's fix for CVE-2024-23944).
Event = tuple[int, str, list[ACL], list[ACL]]


@dataclass(slots=True)
class TxnResult:
    """What applying one txn did: the reply's material and the watch events.

    ``events`` names only the node that changed (created, deleted, data
    changed); the parent's NodeChildrenChanged follows from it.
    """

    type: int
    err: int = 0
    path: str | None = None
    #: The node the txn created or changed; its stat is taken only when a
    #: reply needs it (building a Stat record costs more than the change).
    node: DataNode | None = None
    #: The stat as of this txn, for multi sub-results (later ops may change the node).
    stat: Stat | None = None
    events: list[Event] = field(default_factory=list)
    multi: list[TxnResult] | None = None


def data_length(data: bytes | None) -> int:
    return len(data) if data is not None else 0


class TxnRules(QuotaBookkeeping):
    """The txn semantics of a DataTree (mixed into it; see zabd.core.datatree),
    with 3.8's quota bookkeeping on every create, delete and setData."""

    nodes: dict[str, DataNode]
    ephemerals: dict[int, set[str]]
    containers: set[str]
    ttls: set[str]
    last_processed_zxid: int
    data_size: int

    def _add_node(self, path: str, node: DataNode) -> None:
        raise NotImplementedError

    def _remove_node(self, path: str, node: DataNode) -> None:
        raise NotImplementedError

    def _add_child(self, parent_path: str, name: str) -> None:
        raise NotImplementedError

    def _index(self, path: str, owner: int) -> None:
        raise NotImplementedError

    def apply(self, txn: Txn) -> TxnResult:
        header = txn.header
        body = txn.body
        change = _NODE_CHANGES.get(type(body))
        if change is not None:
            # One node's change, the commonest txn: dispatched here directly.
            result = TxnResult(header.type)
            change(self, header, body, result)
        else:
            result = self._apply_body(header, header.type, body)
        if header.zxid > self.last_processed_zxid:
            self.last_processed_zxid = header.zxid
        return result

    def _apply_body(self, header: TxnHeader, kind: int, body: object) -> TxnResult:
        if isinstance(body, MultiTxn):
            return self._apply_multi(header, body)
        if kind == OpCode.closeSession:
            return self._close_session(header, body)
        result = TxnResult(kind)
        change = _NODE_CHANGES.get(type(body))
        if change is not None:
            change(self, header, body, result)
        return result

    def _create(
        self, header: TxnHeader, body: CreateTxn | CreateContainerTxn | CreateTTLTxn, result: TxnResult
    ) -> None:
        path = body.path
        result.path = path
        # Existence first: the root (which has no parent) always exists.
        if path in self.nodes:
            result.err = Code.NODEEXISTS
            if result.type == OpCode.create and isinstance(body, CreateTxn) and path != "/":
                self._replay_parent_cversion(parent_of(path), body.parentCVersion, header.zxid)
            return
        if not path or path[0] != "/":  # not a path (a broken leader's txn): it has no parent either
            result.err = Code.NONODE
            return
        parent_path = parent_of(path)
        parent = self.nodes.get(parent_path)
        if parent is None:
            result.err = Code.NONODE
            return
        if isinstance(body, CreateContainerTxn):
            owner = CONTAINER_OWNER
        elif isinstance(body, CreateTTLTxn):
            owner = ttl_owner(body.ttl)
        else:
            owner = header.clientId if body.ephemeral else 0
        cversion = body.parentCVersion
        if cversion == -1:
            cversion = parent.cversion + 1
        if cversion > parent.cversion:
            self._touch_parent(parent_path, parent, cversion, header.zxid)
        zxid, time = header.zxid, header.time
        node = DataNode(body.data, body.acl)
        node.czxid = node.mzxid = node.pzxid = zxid
        node.ctime = node.mtime = time
        node.ephemeral_owner = owner
        name = basename(path)
        self._add_child(parent_path, name)
        self._add_node(path, node)
        self._index(path, owner)
        if self.quota_trie.root.children or parent_path.startswith(QUOTA):
            self._quota_node_added(path, parent_path, name, node.data)
        result.node = node
        result.events.append((EventType.NodeCreated, path, node.acl, parent.acl))

    def _replay_parent_cversion(self, parent_path: str, parent_cversion: int, zxid: int) -> None:
        """A create (type 1, not create2) that finds its node already there
        still moves the parent's cversion and pzxid forward, as ZooKeeper's
        setCversionPzxid does on replay over a fuzzy snapshot (ZOOKEEPER-1046).

        ZooKeeper reads a parentCVersion of -1 (only legacy CreateTxnV0 logs
        carry it; 3.8 and zabd always log the real value) as "current + 1",
        so a re-applied legacy create would bump the parent once more.  Here
        -1 leaves the parent alone, so that re-applying changes nothing.
        """
        parent = self.nodes.get(parent_path)
        if parent is None or parent_cversion == -1:
            return
        if parent_cversion > parent.cversion:
            self._touch_parent(parent_path, parent, parent_cversion, zxid)

    def _replay_parent_pzxid(self, path: str, zxid: int) -> None:
        """A delete of a node that is not there still moves its parent's pzxid
        forward, as ZooKeeper's deleteNode does: over a fuzzy snapshot, the
        node may be gone from the file but the parent written before that."""
        if not path:  # a null path (a broken leader's txn) has no parent
            return
        cut = path.rfind("/")
        parent_path = path[:cut] or "/"
        parent = self.nodes.get(parent_path) if cut >= 0 else None
        if parent is not None and zxid > parent.pzxid:
            parent.pzxid = zxid
            self._rehash(parent_path, parent)

    def _touch_parent(self, parent_path: str, parent: DataNode, cversion: int, zxid: int) -> None:
        parent.cversion = cversion
        parent.pzxid = zxid
        self._rehash(parent_path, parent)

    def _delete(self, path: str, zxid: int, result: TxnResult) -> None:
        node = self.nodes.get(path)
        if node is None or path == "/":
            result.err = Code.NONODE
            if node is None:
                self._replay_parent_pzxid(path, zxid)
            return
        # A valid log never deletes a node with children, but a replay over a
        # fuzzy snapshot can: drop the subtree too, so that no orphan outlives it.
        for child in list(node.children):
            self._delete(f"{path}/{child}", zxid, TxnResult(OpCode.delete))
        parent_path = parent_of(path)
        parent = self.nodes[parent_path]
        name = basename(path)
        del parent.children[name]
        if zxid > parent.pzxid:
            parent.pzxid = zxid
            self._rehash(parent_path, parent)
        self._remove_node(path, node)
        owner = node.ephemeral_owner
        if owner == CONTAINER_OWNER:
            self.containers.discard(path)
        elif is_ttl_owner(owner):
            self.ttls.discard(path)
        elif owner != 0:
            paths = self.ephemerals.get(owner)
            if paths is not None:
                paths.discard(path)
                if not paths:
                    del self.ephemerals[owner]
        if self.quota_trie.root.children or name == LIMIT_NODE:
            self._quota_node_removed(path, parent_path, name, node.data)
        result.events.append((EventType.NodeDeleted, path, node.acl, parent.acl))

    def _set_data(self, header: TxnHeader, body: SetDataTxn, result: TxnResult) -> None:
        node = self.nodes.get(body.path)
        if node is None:
            result.err = Code.NONODE
            return
        old, new = node.data, body.data
        self.data_size += data_length(new) - data_length(old)
        node.data = new
        node.version = body.version
        node.mzxid = header.zxid
        node.mtime = header.time
        self._rehash(body.path, node)
        if self.quota_trie.root.children:
            self._quota_data_changed(body.path, data_length(new) - data_length(old))
        result.path = body.path
        result.node = node
        result.events.append((EventType.NodeDataChanged, body.path, node.acl, node.acl))

    def _delete_txn(self, header: TxnHeader, body: DeleteTxn, result: TxnResult) -> None:
        self._delete(body.path, header.zxid, result)

    def _error(self, header: TxnHeader, body: ErrorTxn, result: TxnResult) -> None:
        result.err = body.err

    def _set_acl(self, header: TxnHeader, body: SetACLTxn, result: TxnResult) -> None:
        node = self.nodes.get(body.path)
        if node is None:
            result.err = Code.NONODE
            return
        node.acl = body.acl
        node.aversion = body.version
        self._rehash(body.path, node)
        result.path = body.path
        result.node = node

    def _close_session(self, header: TxnHeader, body: object) -> TxnResult:
        result = TxnResult(OpCode.closeSession)
        owned = self.ephemerals.pop(header.clientId, set())
        # A null list deletes what the session owns, as a bare closeSession (and 3.8's killSession) does.
        paths = (body.paths2Delete or []) if isinstance(body, CloseSessionTxn) else sorted(owned)
        for path in list(paths) + sorted(owned - set(paths)):
            node = self.nodes.get(path)
            if node is None:
                self._replay_parent_pzxid(path, header.zxid)
            elif node.ephemeral_owner == header.clientId:
                self.ephemerals.setdefault(header.clientId, set()).add(path)
                self._delete(path, header.zxid, result)
            elif node.czxid > header.zxid:
                # A later incarnation, met on replay over a fuzzy snapshot:
                # ZooKeeper deletes every listed path, and the replay of its
                # create brings it back with its parent's cversion in step.
                self._delete(path, header.zxid, result)
        self.ephemerals.pop(header.clientId, None)
        return result

    def _apply_multi(self, header: TxnHeader, body: MultiTxn) -> TxnResult:
        failed = any(kind == OpCode.error for kind, _ in body.txns)
        result = TxnResult(OpCode.multi, multi=[])
        assert result.multi is not None
        for kind, sub in body.txns:
            record: SingleBody = sub
            if failed and kind != OpCode.error:
                kind, record = OpCode.error, ErrorTxn(0)
            sub_result = self._apply_body(header, kind, record)
            if sub_result.node is not None:
                sub_result.stat = sub_result.node.stat()
            result.multi.append(sub_result)
            result.events += sub_result.events
            if sub_result.err and not result.err:
                result.err = sub_result.err
        return result


#: The txns that change one node, by body type (createSession has no body
#: effect on the tree; closeSession and multi have their own paths).
_NODE_CHANGES: dict[type, Callable[[TxnRules, TxnHeader, Any, TxnResult], None]] = {
    CreateTxn: TxnRules._create,
    CreateContainerTxn: TxnRules._create,
    CreateTTLTxn: TxnRules._create,
    DeleteTxn: TxnRules._delete_txn,
    SetDataTxn: TxnRules._set_data,
    SetACLTxn: TxnRules._set_acl,
    ErrorTxn: TxnRules._error,
}
