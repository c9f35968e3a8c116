# -*- test-case-name: tests.unit.test_pipeline -*-
"""Validate one write against the outstanding changes and build its txn body.

The order of checks follows ZooKeeper 3.8's PrepRequestProcessor, because it
decides which error a client sees when several apply.
"""
from __future__ import annotations

from twisted.logger import Logger

from zabd.core.acl import check_acl, normalize_acls
from zabd.core.nodes import (
    CONTAINER_OWNER,
    MAX_TTL,
    is_normal_ephemeral,
    ttl_owner,
)
from zabd.core.paths import parent_of, validate_path
from zabd.core.txnapply import data_length
from zabd.jute.errors import Code, KeeperError
from zabd.jute.opcodes import CreateMode, OpCode, Perms
from zabd.jute.records import (
    ACL,
    CheckVersionRequest,
    CreateRequest,
    CreateTTLRequest,
    DeleteRequest,
    ReconfigRequest,
    Id,
    SetACLRequest,
    SetDataRequest,
)
from zabd.jute.txns import (
    CheckVersionTxn,
    CloseSessionTxn,
    CreateContainerTxn,
    CreateTTLTxn,
    CreateTxn,
    DeleteTxn,
    SetACLTxn,
    SetDataTxn,
    SingleBody,
)
from zabd.pipeline.changes import ChangeRecord
from zabd.pipeline.context import ServerContext
from zabd.pipeline.reconfig import prepare_reconfig

log = Logger()
Prepared = tuple[int, SingleBody]

#: The flags of a create, by value (an Enum call per create costs more than the lookup).
_CREATE_MODES = {mode.value: mode for mode in CreateMode}


def _check_version(expected: int, current: int, path: str) -> int:
    if expected != -1 and expected != current:
        raise KeeperError(Code.BADVERSION, path)
    return current + 1


class TxnBuilder:
    """Builds the txn of one write for one session at one zxid.

    Each single write's step takes the opcode and the decoded request.
    """

    __slots__ = ("ctx", "pending", "session_id", "auth_ids", "zxid", "time")

    def __init__(self, ctx: ServerContext, session_id: int, auth_ids: tuple[Id, ...], zxid: int, time: int):
        self.ctx = ctx
        self.pending = ctx.pending
        self.session_id = session_id
        self.auth_ids = auth_ids
        self.zxid = zxid
        self.time = time

    def check_session(self) -> None:
        if not self.ctx.sessions.is_alive(self.session_id):
            raise KeeperError(Code.SESSIONEXPIRED)

    def check_acl(self, acl: list[ACL], perm: int, path: str) -> None:
        check_acl(acl, perm, self.auth_ids, self.ctx.providers, self.ctx.settings.skip_acl)

    def _normalize(self, acl: list[ACL] | None, path: str) -> list[ACL]:
        try:
            return normalize_acls(acl, self.auth_ids, self.ctx.providers)
        except KeeperError as e:
            raise KeeperError(e.code, path) from None

    def create(self, op: int, request: CreateRequest | CreateTTLRequest) -> Prepared:
        mode = _CREATE_MODES.get(request.flags)
        if mode is None:
            raise KeeperError(Code.BADARGUMENTS, request.path)
        is_ttl = mode.is_ttl
        ttl = request.ttl if isinstance(request, CreateTTLRequest) else -1
        if op == OpCode.createTTL and not is_ttl:
            # ZooKeeper rejects this only when ttl >= 0, and with a negative
            # ttl creates a txn its own log replay dies on; zabd always refuses.
            raise KeeperError(Code.BADARGUMENTS, request.path)
        if is_ttl and not self.ctx.settings.extended_types:
            raise KeeperError(Code.UNIMPLEMENTED, request.path)
        if (is_ttl and not 0 < ttl <= MAX_TTL) or (not is_ttl and ttl >= 0):
            raise KeeperError(Code.BADARGUMENTS, request.path)
        self.check_session()
        path = request.path or ""
        # As ZooKeeper: only the last slash is checked before the parent is
        # looked up, so "/missing//x" is NONODE; the full check comes after.
        parent_path = _parent_for_write(path)
        acl = self._normalize(request.acl, path)
        parent = self.pending.require(parent_path)
        self.check_acl(parent.acl, Perms.CREATE, path)
        if mode.is_sequential:
            path += _sequence_suffix(parent.cversion)
        validate_path(path)
        if self.pending.lookup(path) is not None:
            raise KeeperError(Code.NODEEXISTS, path)
        if is_normal_ephemeral(parent.ephemeral_owner):
            raise KeeperError(Code.NOCHILDRENFOREPHEMERALS, path)
        cversion = parent.cversion + 1
        data = request.data
        if self.ctx.tree.quota_trie.root.children:
            self._check_quota(path, 1, data_length(data))
        body: SingleBody
        # createContainer makes a container whatever the flags say (they
        # still choose the sequence suffix), as ZooKeeper 3.8 does.
        if mode == CreateMode.CONTAINER or op == OpCode.createContainer:
            kind, owner = OpCode.createContainer, CONTAINER_OWNER
            body = CreateContainerTxn(path, data, acl, cversion)
        elif is_ttl:
            kind, owner = OpCode.createTTL, ttl_owner(ttl)
            body = CreateTTLTxn(path, data, acl, cversion, ttl)
        else:
            ephemeral = mode.is_ephemeral
            kind, owner = OpCode.create, self.session_id if ephemeral else 0
            body = CreateTxn(path, data, acl, ephemeral, cversion)
        z = self.zxid
        self.pending.add(parent.next(z, cversion=cversion, child_count=parent.child_count + 1))
        self.pending.add(ChangeRecord(z, path, True, 0, 0, 0, owner, 0, acl))
        return kind, body

    def _check_quota(self, path: str, count_diff: int, bytes_diff: int) -> None:
        """3.8's ZooKeeperServer.checkQuota: every limit the write goes over is
        a WARN; with enforceQuota a hard one fails it with QUOTAEXCEEDED.

        3.8 checks nothing (and so logs nothing) unless enforceQuota is on,
        though its guide promises a WARN for soft quotas; zabd always warns.
        """
        enforce = self.ctx.settings.enforce_quota
        for breach in self.ctx.tree.quota_breaches(path, count_diff, bytes_diff):
            log.warn(
                "Quota exceeded: {quota_path} [current {measure}={current}, {limit_name}={limit}]",
                quota_path=breach.quota_path, measure=breach.measure, current=breach.current,
                limit_name=breach.limit_name, limit=breach.limit, hard=breach.hard,
                enforced=enforce and breach.hard, path=path, session_id=self.session_id,
            )
            if enforce and breach.hard:
                raise KeeperError(Code.QUOTAEXCEEDED, breach.quota_path)

    def delete(self, op: int, request: DeleteRequest) -> Prepared:
        self.check_session()
        path = request.path or ""
        if path in SPECIAL_PATHS:
            raise KeeperError(Code.BADARGUMENTS, path)
        parent = self.pending.require(_parent_for_write(path))
        self.check_acl(parent.acl, Perms.DELETE, path)
        node = self.pending.require(path)
        _check_version(request.version, node.version, path)
        if node.child_count > 0:
            raise KeeperError(Code.NOTEMPTY, path)
        self._remove(parent, node)
        return OpCode.delete, DeleteTxn(path)

    def delete_container(self, path: str) -> Prepared:
        if path in SPECIAL_PATHS:
            raise KeeperError(Code.BADARGUMENTS, path)
        parent_path = _parent_for_write(path)
        node = self.pending.require(path)
        if node.child_count > 0:
            raise KeeperError(Code.NOTEMPTY, path)
        if is_normal_ephemeral(node.ephemeral_owner):
            raise KeeperError(Code.BADVERSION, path)
        self._remove(self.pending.require(parent_path), node)
        return OpCode.deleteContainer, DeleteTxn(path)

    def _remove(self, parent: ChangeRecord, node: ChangeRecord) -> None:
        z = self.zxid
        self.pending.add(parent.next(z, child_count=parent.child_count - 1))
        self.pending.add(node.next(z, exists=False, child_count=-1))

    def set_data(self, op: int, request: SetDataRequest) -> Prepared:
        self.check_session()
        path = validate_path(request.path)
        node = self.pending.require(path)
        self.check_acl(node.acl, Perms.WRITE, path)
        tree = self.ctx.tree
        if tree.quota_trie.root.children:
            # The size it replaces is the applied node's: 3.8 takes it from the
            # outstanding change, but judges against the applied usage anyway.
            applied = tree.nodes.get(path)
            old = data_length(applied.data) if applied is not None else 0
            self._check_quota(path, 0, data_length(request.data) - old)
        version = _check_version(request.version, node.version, path)
        self.pending.with_version(node, self.zxid, version)
        return OpCode.setData, SetDataTxn(path, request.data, version)

    def set_acl(self, op: int, request: SetACLRequest) -> Prepared:
        self.check_session()
        path = validate_path(request.path)
        acl = self._normalize(request.acl, path)
        node = self.pending.require(path)
        self.check_acl(node.acl, Perms.ADMIN, path)
        aversion = _check_version(request.version, node.aversion, path)
        self.pending.add(node.next(self.zxid, aversion=aversion, acl=acl))
        return OpCode.setACL, SetACLTxn(path, acl, aversion)

    def check(self, op: int, request: CheckVersionRequest) -> Prepared:
        self.check_session()
        path = validate_path(request.path)
        node = self.pending.require(path)
        self.check_acl(node.acl, Perms.READ, path)
        return OpCode.check, CheckVersionTxn(path, _check_version(request.version, node.version, path))

    def reconfig(self, request: ReconfigRequest) -> Prepared:
        return prepare_reconfig(self, request)

    def close_session(self) -> CloseSessionTxn:
        owned = self.ctx.tree.ephemerals_of(self.session_id)
        for record in self.pending.queue:
            if not record.exists:
                owned.discard(record.path)
            elif record.ephemeral_owner == self.session_id:
                owned.add(record.path)
        paths = sorted(owned)
        for path in paths:
            node = self.pending.lookup(path)
            parent = self.pending.lookup(parent_of(path))
            if node is not None and parent is not None:
                self._remove(parent, node)
        return CloseSessionTxn(paths)


#: Nodes a client may never delete (ZooKeeper's DataTree.isSpecialPath).
SPECIAL_PATHS = frozenset({"/", "/zookeeper", "/zookeeper/quota", "/zookeeper/config"})


def _parent_for_write(path: str) -> str:
    """The parent ZooKeeper looks up first: everything before the last slash."""
    cut = path.rfind("/")
    if cut == -1 or "\0" in path:
        raise KeeperError(Code.BADARGUMENTS, path)
    return path[:cut] or "/"


def _sequence_suffix(counter: int) -> str:
    # Java's %010d: zero-padded to ten characters, sign included.
    return f"{counter:010d}"
