# -*- test-case-name: tests.unit.test_client_api -*-
"""ZooKeeperClient: every ZooKeeper 3.8 call in kazoo's vocabulary, each returning a Deferred.

Paths are the caller's: with a chroot in the host string they are relative
to it, in requests, replies and watch events alike. Errors are the classes of
:mod:`zabd.client.errors`. Watches are callables taking a
:class:`~zabd.client.states.WatchedEvent` (or a :class:`DeferredWatch`).
"""
from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from twisted.internet.defer import Deferred
from twisted.python.failure import Failure

from zabd.client.base import ClientBase, DeferredWatch
from zabd.client.effects import Outcome
from zabd.client.errors import NodeExistsError, NoNodeError, NoWatcherError
from zabd.client.fourletter import four_letter_word
from zabd.client.states import EVENT_TYPES, KeeperState, WatchedEvent, ZnodeStat
from zabd.client.transaction import (
    GetChildren, GetData, Transaction, create_mode, create_op, multi_read_body, read_results,
)
from zabd.client.watches import KINDS_OF_TYPE, REMOVED_EVENT, WatchKind, Watcher
from zabd.jute.opcodes import AddWatchMode, OpCode, WatcherType
from zabd.jute.records import (
    ACL, Create2Response, CreateResponse, DeleteRequest, GetACLResponse, GetChildren2Response,
    GetChildrenResponse, GetDataResponse, GetEphemeralsResponse, IntResponse, PathRequest, PathResponse,
    PathWatchRequest, ReconfigRequest, SetACLRequest, SetDataRequest, StatResponse, WatchTypeRequest,
    WhoAmIResponse,
)
from zabd.jute.schema import decode

__all__ = ["ZooKeeperClient", "DeferredWatch"]


def _stat(body: bytes) -> ZnodeStat:
    return ZnodeStat.from_stat(decode(StatResponse, body).stat)


def _nothing(body: bytes) -> None:
    return None


class ZooKeeperClient(ClientBase):
    """A native Twisted ZooKeeper client; see :class:`~zabd.client.base.ClientBase` for the parameters."""

    # -- nodes ------------------------------------------------------------------

    def create(self, path: str, value: bytes = b"", acl: list[ACL] | None = None, ephemeral: bool = False,
               sequence: bool = False, makepath: bool = False, include_data: bool = False,
               container: bool = False, ttl: int = 0) -> Deferred[Any]:
        """Create a node; fires with its path, or ``(path, ZnodeStat)`` with ``include_data``.

        ``makepath`` creates missing parents (persistent, with the same ACL);
        ``container`` and ``ttl`` (ms) need a server with those node types
        enabled (TTL: ``extendedTypesEnabled``).
        """
        mode = create_mode(ephemeral, sequence, container, ttl)
        opcode, request = create_op(self._server_path(path, trailing_slash=sequence), value,
                                    acl or self.default_acl, mode, ttl, include_data)
        with_stat = opcode != OpCode.create

        def parse(body: bytes) -> Any:
            if with_stat:
                reply = decode(Create2Response, body)
                created = self.chroot.to_client(reply.path)
                return (created, ZnodeStat.from_stat(reply.stat)) if include_data else created
            return self.chroot.to_client(decode(CreateResponse, body).path)

        first = self._call(opcode, request, parse, path)
        if not makepath:
            return first

        async def with_parents() -> Any:
            try:
                return await first
            except NoNodeError:
                parent = path.rstrip("/").rsplit("/", 1)[0] or "/"
                await self.ensure_path(parent, acl)
                return await self._call(opcode, request, parse, path)
        return Deferred.fromCoroutine(with_parents())

    def get(self, path: str, watch: Watcher | None = None) -> Deferred[tuple[bytes, ZnodeStat]]:
        """The node's data and stat; ``watch`` fires once on its next change or deletion."""
        def parse(body: bytes) -> tuple[bytes, ZnodeStat]:
            reply = decode(GetDataResponse, body)
            return reply.data or b"", ZnodeStat.from_stat(reply.stat)
        request = PathWatchRequest(self._server_path(path), watch is not None)
        return self._call(OpCode.getData, request, parse, path, (WatchKind.DATA, watch) if watch else None)

    def exists(self, path: str, watch: Watcher | None = None) -> Deferred[ZnodeStat | None]:
        """The node's stat, or None; ``watch`` fires once when it is created, changed or deleted."""
        request = PathWatchRequest(self._server_path(path), watch is not None)
        found = self._call(OpCode.exists, request, _stat, path, (WatchKind.EXIST, watch) if watch else None)

        def missing(failure: Failure) -> None:
            failure.trap(NoNodeError)
            return None
        return found.addErrback(missing)

    def get_children(self, path: str, watch: Watcher | None = None, include_data: bool = False) -> Deferred[Any]:
        """The children's names, or ``(children, ZnodeStat)`` with ``include_data``."""
        request = PathWatchRequest(self._server_path(path), watch is not None)
        how = (WatchKind.CHILD, watch) if watch else None
        if include_data:
            def parse2(body: bytes) -> tuple[list[str], ZnodeStat]:
                reply = decode(GetChildren2Response, body)
                return list(reply.children), ZnodeStat.from_stat(reply.stat)
            return self._call(OpCode.getChildren2, request, parse2, path, how)
        return self._call(OpCode.getChildren, request, lambda body: list(decode(GetChildrenResponse, body).children),
                          path, how)

    def set(self, path: str, value: bytes, version: int = -1) -> Deferred[ZnodeStat]:
        """Set the data (only at ``version`` unless -1); fires with the new stat."""
        return self._call(OpCode.setData, SetDataRequest(self._server_path(path), value, version), _stat, path)

    def delete(self, path: str, version: int = -1, recursive: bool = False) -> Deferred[None]:
        """Delete the node; ``recursive`` deletes its descendants first (not atomically)."""
        if not recursive:
            return self._call(OpCode.delete, DeleteRequest(self._server_path(path), version), _nothing, path)

        async def tree(node: str, node_version: int) -> None:
            try:
                children = await self.get_children(node)
            except NoNodeError:
                return
            for child in children:
                await tree(node.rstrip("/") + "/" + child, -1)
            try:
                await self.delete(node, node_version)
            except NoNodeError:
                pass
        return Deferred.fromCoroutine(tree(path, version))

    def ensure_path(self, path: str, acl: list[ACL] | None = None) -> Deferred[None]:
        """Create the node and its missing ancestors as empty persistent nodes."""
        async def ensure() -> None:
            if path == "/" or await self.exists(path) is not None:
                return
            parent = path.rstrip("/").rsplit("/", 1)[0] or "/"
            await self.ensure_path(parent, acl)
            try:
                await self.create(path, b"", acl)
            except NodeExistsError:
                pass
        return Deferred.fromCoroutine(ensure())

    def sync(self, path: str) -> Deferred[str]:
        """Wait until the server this client uses has every write committed before now; fires with the path."""
        return self._call(OpCode.sync, PathRequest(self._server_path(path)),
                          lambda body: self.chroot.to_client(decode(PathResponse, body).path or path), path)

    def get_acls(self, path: str) -> Deferred[tuple[list[ACL], ZnodeStat]]:
        def parse(body: bytes) -> tuple[list[ACL], ZnodeStat]:
            reply = decode(GetACLResponse, body)
            return list(reply.acl), ZnodeStat.from_stat(reply.stat)
        return self._call(OpCode.getACL, PathRequest(self._server_path(path)), parse, path)

    def set_acls(self, path: str, acls: list[ACL], version: int = -1) -> Deferred[ZnodeStat]:
        return self._call(OpCode.setACL, SetACLRequest(self._server_path(path), acls, version), _stat, path)

    def get_ephemerals(self, prefix: str = "/") -> Deferred[list[str]]:
        """This session's ephemeral nodes whose paths start with ``prefix``."""
        return self._call(OpCode.getEphemerals, PathRequest(self._server_path(prefix, trailing_slash=True)),
                          lambda body: [self.chroot.to_client(p) for p in decode(GetEphemeralsResponse, body).ephemerals],
                          prefix)

    def get_all_children_number(self, path: str) -> Deferred[int]:
        """The number of descendants of the node (not counting itself)."""
        return self._call(OpCode.getAllChildrenNumber, PathRequest(self._server_path(path)),
                          lambda body: decode(IntResponse, body).value, path)

    # -- many ops at once ------------------------------------------------------------

    def transaction(self) -> Transaction:
        """A multi: ``t = client.transaction(); t.create(...); t.check(...); results = await t.commit()``."""
        return Transaction(self.chroot, self.default_acl,
                           lambda opcode, body: self._call(opcode, body, lambda b: read_results(b, self.chroot)))

    def multi_read(self, ops: Sequence[GetData | GetChildren]) -> Deferred[list[Any]]:
        """multiRead: per op ``(data, ZnodeStat)``, a list of children, or the op's exception (never fails as a whole)."""
        for op in ops:
            self._server_path(op.path)
        return self._call(OpCode.multiRead, multi_read_body(ops, self.chroot),
                          lambda body: read_results(body, self.chroot))

    def get_many(self, paths: Sequence[str]) -> Deferred[list[Any]]:
        """multiRead of the data of each path (``(data, ZnodeStat)`` or the exception, per path)."""
        return self.multi_read([GetData(path) for path in paths])

    # -- session and ensemble ------------------------------------------------------------

    def add_auth(self, scheme: str, credential: str | bytes) -> Deferred[None]:
        """Authenticate (``"digest"``, ``"user:password"``); replayed on every reconnect of the session."""
        done: Deferred[None] = Deferred()

        def on_done(outcome: Outcome) -> None:
            done.errback(outcome.error) if outcome.error is not None else done.callback(None)
        self._add_auth(scheme, credential, on_done)
        return done

    def whoami(self) -> Deferred[list[tuple[str, str]]]:
        """The connection's identities as ``(scheme, user)`` pairs (3.8's whoAmI)."""
        return self._call(OpCode.whoAmI, None,
                          lambda body: [(i.authScheme, i.user) for i in decode(WhoAmIResponse, body).clientInfo])

    def reconfig(self, joining: str | None, leaving: str | None, new_members: str | None,
                 from_config: int = -1) -> Deferred[tuple[bytes, ZnodeStat]]:
        """Dynamic reconfiguration; fires with the new config text and the stat of /zookeeper/config."""
        def parse(body: bytes) -> tuple[bytes, ZnodeStat]:
            reply = decode(GetDataResponse, body)
            return reply.data or b"", ZnodeStat.from_stat(reply.stat)
        return self._call(OpCode.reconfig, ReconfigRequest(joining, leaving, new_members, from_config), parse)

    def command(self, cmd: bytes = b"ruok", timeout: float = 10.0) -> Deferred[str]:
        """A four-letter word sent over a fresh connection (TLS with ``use_ssl``) to the current (or first) host."""
        host = self._core.host or self._core.ring.order[0]
        return four_letter_word(self.reactor, host.host, host.port, cmd, timeout, tls=self._tls)

    def server_version(self) -> Deferred[tuple[int, ...]]:
        """The server's version from ``srvr`` (whitelisted by default on zabd and ZooKeeper), e.g. (3, 8, 0)."""
        def parse(answer: str) -> tuple[int, ...]:
            for line in answer.splitlines():
                if line.startswith("Zookeeper version:"):
                    text = line.split(":", 1)[1].strip().split("-", 1)[0].split(",", 1)[0]
                    return tuple(int(part) for part in text.split(".") if part.isdigit())
            raise ValueError(f"no version in srvr answer {answer!r}")
        return self.command(b"srvr").addCallback(parse)

    # -- watches ------------------------------------------------------------------

    def add_watch(self, path: str, callback: Watcher, recursive: bool = False) -> Deferred[None]:
        """A persistent watch (addWatch): ``callback`` gets every event on the node (and, with
        ``recursive``, on every descendant, child events excepted) until removed."""
        mode = AddWatchMode.PERSISTENT_RECURSIVE if recursive else AddWatchMode.PERSISTENT
        kind = WatchKind.RECURSIVE if recursive else WatchKind.PERSISTENT
        return self._call(OpCode.addWatch, WatchTypeRequest(self._server_path(path), mode), _nothing, path,
                          (kind, callback))

    def remove_watch(self, path: str, callback: Watcher, watcher_type: WatcherType = WatcherType.Any) -> Deferred[None]:
        """Remove one callback's watches of ``watcher_type`` on the node (NoWatcherError if it has none).

        The callback gets a DATA/CHILD/PERSISTENT_WATCH_REMOVED event. The
        server's watch goes too once no other callback needs it.
        """
        server_path = self._server_path(path)
        removed = self._core.watches.remove(server_path, KINDS_OF_TYPE[watcher_type], callback)
        if not removed:
            failed: Deferred[None] = Deferred()
            failed.errback(NoWatcherError(path))
            return failed
        return self._remove_on_server(path, server_path, watcher_type, removed, only_check=self._still_watched(
            server_path, frozenset(kind for kind, _ in removed)))

    def remove_all_watches(self, path: str, watcher_type: WatcherType = WatcherType.Any) -> Deferred[None]:
        """removeWatches: drop every watch of ``watcher_type`` this session has on the node."""
        server_path = self._server_path(path)
        removed = self._core.watches.remove(server_path, KINDS_OF_TYPE[watcher_type])
        return self._remove_on_server(path, server_path, watcher_type, removed, only_check=False)

    def _still_watched(self, server_path: str, kinds: frozenset[WatchKind]) -> bool:
        """Whether the server must keep its watch (another callback still needs one of these kinds)."""
        watches = self._core.watches
        if any(watches.has(kind, server_path) for kind in kinds):
            return True
        persistent = kinds & {WatchKind.PERSISTENT, WatchKind.RECURSIVE}
        return bool(persistent) and any(watches.has(kind, server_path) for kind in WatchKind)

    def _remove_on_server(self, path: str, server_path: str, watcher_type: WatcherType,
                          removed: list[tuple[WatchKind, Watcher]], only_check: bool) -> Deferred[None]:
        opcode = OpCode.checkWatches if only_check else OpCode.removeWatches
        sent = self._call(opcode, WatchTypeRequest(server_path, watcher_type), _nothing, path)

        def tell(result: object) -> object:
            if isinstance(result, Failure):
                if not removed:
                    return result
                result.trap(NoWatcherError)  # the watch fired meanwhile: gone all the same
            for kind, watcher in removed:
                event = WatchedEvent(EVENT_TYPES[REMOVED_EVENT[kind]], KeeperState.CONNECTED, path)
                self._driver._call_user(watcher, event)
            return None
        return sent.addBoth(tell)

