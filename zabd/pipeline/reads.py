# -*- test-case-name: tests.unit.test_pipeline -*-
"""Requests answered from the tree without a txn: reads and watch bookkeeping.

Each handler takes the decoded payload and returns the reply body, or raises
KeeperError.  Watches are registered exactly where ZooKeeper registers them:
exists arms a watch even on a missing node, getData and getChildren do not.
"""
from __future__ import annotations

import struct
from typing import Callable

from zabd.core.acl import check_acl, mask_for_get_acl, who_am_i
from zabd.core.nodes import DataNode
from zabd.core.watchmanager import WatchManager
from zabd.jute import multi
from zabd.jute.codec import Reader
from zabd.jute.errors import Code, KeeperError
from zabd.jute.opcodes import AddWatchMode, EventType, OpCode, Perms, WatcherType
from zabd.jute.records import (
    ClientInfo,
    GetACLResponse,
    GetChildren2Response,
    GetChildrenResponse,
    GetDataResponse,
    GetEphemeralsResponse,
    IntResponse,
    PathRequest,
    PathResponse,
    PathWatchRequest,
    SetWatches,
    SetWatches2,
    WatchTypeRequest,
    WhoAmIResponse,
)
from zabd.jute.schema import Record
from zabd.pipeline.context import ServerContext
from zabd.pipeline.request import Client, Reply, Request

Handler = Callable[["Reads", Request, Client, Reader], Reply]
_LENGTH = struct.Struct(">i")
_NULL_BUFFER = _LENGTH.pack(-1)


class Reads:
    """Answers the requests that need no txn, from the tree, registering watches as ZooKeeper does."""

    def __init__(self, ctx: ServerContext) -> None:
        self.ctx = ctx
        self.tree = ctx.tree
        self.watches = ctx.watches

    def handle(self, request: Request, client: Client) -> Reply:
        handler = _HANDLERS.get(request.type)
        if handler is None:
            raise KeeperError(Code.UNIMPLEMENTED)
        return handler(self, request, client, Reader(request.payload))

    def _node(self, path: str | None, perm: int, request: Request) -> DataNode:
        node = self.tree.get(path) if path is not None else None
        if node is None:
            raise KeeperError(Code.NONODE, path)
        check_acl(node.acl, perm, request.auth_ids, self.ctx.providers, self.ctx.settings.skip_acl)
        return node

    def sync(self, request: Request, client: Client, r: Reader) -> Record:
        return PathResponse(PathRequest.read(r).path)

    def exists(self, request: Request, client: Client, r: Reader) -> Reply:
        req = PathWatchRequest.read(r)
        path = req.path or ""
        if "\0" in path:
            raise KeeperError(Code.BADARGUMENTS, path)
        if req.watch:
            self.watches.data.add(path, client)
        node = self.tree.get(path)
        if node is None:
            raise KeeperError(Code.NONODE, path)
        return node.stat_bytes()

    def _watched_node(self, r: Reader, request: Request, client: Client, table: WatchManager[Client]) -> DataNode:
        """getData / getChildren: READ on an existing node, then arm the watch if asked."""
        req = PathWatchRequest.read(r)
        node = self._node(req.path, Perms.READ, request)
        if req.watch:
            table.add(req.path or "", client)
        return node

    def get_data(self, request: Request, client: Client, r: Reader) -> Reply:
        node = self._watched_node(r, request, client, self.watches.data)
        data = node.data
        if data is None:
            return _NULL_BUFFER + node.stat_bytes()
        return _LENGTH.pack(len(data)) + data + node.stat_bytes()

    def get_children(self, request: Request, client: Client, r: Reader) -> Record:
        node = self._watched_node(r, request, client, self.watches.child)
        return GetChildrenResponse(list(node.children))

    def get_children2(self, request: Request, client: Client, r: Reader) -> Record:
        node = self._watched_node(r, request, client, self.watches.child)
        return GetChildren2Response(list(node.children), node.stat())

    def get_acl(self, request: Request, client: Client, r: Reader) -> Record:
        node = self._node(PathRequest.read(r).path, Perms.READ | Perms.ADMIN, request)
        acl = node.acl
        try:
            check_acl(acl, Perms.ADMIN, request.auth_ids, self.ctx.providers, self.ctx.settings.skip_acl)
        except KeeperError:
            acl = mask_for_get_acl(acl)
        return GetACLResponse(list(acl), node.stat())

    def all_children_number(self, request: Request, client: Client, r: Reader) -> Record:
        path = PathRequest.read(r).path
        self._node(path, Perms.READ, request)
        return IntResponse(self.tree.descendant_count(path or ""))

    def ephemerals(self, request: Request, client: Client, r: Reader) -> Record:
        prefix = PathRequest.read(r).path
        owned = sorted(self.tree.ephemerals_of(request.session_id))
        if prefix is not None and prefix.strip() not in ("", "/"):
            owned = [path for path in owned if path.startswith(prefix)]
        return GetEphemeralsResponse(owned)

    def who_am_i(self, request: Request, client: Client, r: Reader) -> Record:
        return WhoAmIResponse([ClientInfo(scheme, user) for scheme, user in who_am_i(request.auth_ids)])

    def check_watches(self, request: Request, client: Client, r: Reader) -> Record | None:
        req = WatchTypeRequest.read(r)
        if not self.watches.check_watches(req.path or "", WatcherType(req.type), client):
            raise KeeperError(Code.NOWATCHER, req.path)
        return None

    def remove_watches(self, request: Request, client: Client, r: Reader) -> Record | None:
        req = WatchTypeRequest.read(r)
        if not self.watches.remove_watches(req.path or "", WatcherType(req.type), client):
            raise KeeperError(Code.NOWATCHER, req.path)
        return None

    def add_watch(self, request: Request, client: Client, r: Reader) -> Record:
        req = WatchTypeRequest.read(r)
        recursive = AddWatchMode(req.type) == AddWatchMode.PERSISTENT_RECURSIVE
        self.watches.add_persistent(req.path or "", client, recursive)
        return IntResponse(0)

    def set_watches(self, request: Request, client: Client, r: Reader) -> Record | None:
        if request.type == OpCode.setWatches2:
            req2 = SetWatches2.read(r)
            base = SetWatches(req2.relativeZxid, req2.dataWatches, req2.existWatches, req2.childWatches)
            persistent = [(p, False) for p in req2.persistentWatches or ()]
            persistent += [(p, True) for p in req2.persistentRecursiveWatches or ()]
        else:
            base, persistent = SetWatches.read(r), []
        self._rearm(base, client)
        for path, recursive in persistent:
            self.watches.add_persistent(path, client, recursive)
        return None

    def _rearm(self, req: SetWatches, client: Client) -> None:
        since = req.relativeZxid
        for path in req.dataWatches or ():
            node = self.tree.get(path)
            if node is None:
                client.send_event(EventType.NodeDeleted, path)
            elif node.mzxid > since:
                client.send_event(EventType.NodeDataChanged, path)
            else:
                self.watches.data.add(path, client)
        for path in req.existWatches or ():
            if self.tree.get(path) is not None:
                client.send_event(EventType.NodeCreated, path)
            else:
                self.watches.data.add(path, client)
        for path in req.childWatches or ():
            node = self.tree.get(path)
            if node is None:
                client.send_event(EventType.NodeDeleted, path)
            elif node.pzxid > since:
                client.send_event(EventType.NodeChildrenChanged, path)
            else:
                self.watches.child.add(path, client)

    def multi_read(self, request: Request, client: Client, r: Reader) -> Record:
        results = []
        for kind, op in multi.read_ops(request.payload, multi.READ_OPS):
            assert isinstance(op, PathWatchRequest)
            try:
                # ZooKeeper's multiRead ignores the watch flag: its Op records have none.
                node = self._node(op.path, Perms.READ, request)
                body: Record = (
                    GetDataResponse(node.data, node.stat()) if kind == OpCode.getData
                    else GetChildrenResponse(list(node.children))
                )
                results.append(multi.OpResult(kind, 0, body))
            except KeeperError as e:
                results.append(multi.OpResult(OpCode.error, e.code, None))
        return multi.MultiResponse(tuple(results))


_HANDLERS: dict[int, Handler] = {
    OpCode.sync: Reads.sync,
    OpCode.exists: Reads.exists,
    OpCode.getData: Reads.get_data,
    OpCode.getChildren: Reads.get_children,
    OpCode.getChildren2: Reads.get_children2,
    OpCode.getACL: Reads.get_acl,
    OpCode.getAllChildrenNumber: Reads.all_children_number,
    OpCode.getEphemerals: Reads.ephemerals,
    OpCode.whoAmI: Reads.who_am_i,
    OpCode.checkWatches: Reads.check_watches,
    OpCode.removeWatches: Reads.remove_watches,
    OpCode.addWatch: Reads.add_watch,
    OpCode.setWatches: Reads.set_watches,
    OpCode.setWatches2: Reads.set_watches,
    OpCode.multiRead: Reads.multi_read,
}
