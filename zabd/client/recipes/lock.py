# -*- test-case-name: tests.unit.test_recipes_locks -*-
"""Locks on zabd.client, with kazoo's node layout and protocol: Lock, ReadLock, WriteLock.

A contender creates ``<path>/<uuid hex><name><seq>`` (ephemeral and sequential;
the name is ``__lock__``, or ``__rlock__`` for a reader), then lists the
children: it holds the lock when no child it is excluded by has a lower
sequence number, and otherwise watches only the nearest such predecessor (no
herd). The uuid prefix makes a create whose reply was lost findable again
(Curator's "protected" nodes). kazoo's clients and these interoperate.

Connection states (what a holder must do, and what the recipe does):

- SUSPENDED: the lock *may* be lost (if the session expires before the
  client reconnects). ``is_acquired`` stays True, as in kazoo, because the
  node is still there if the session resumes; the holder must stop its
  critical work at once. :func:`~zabd.client.recipes.support.while_connected`
  does that by cancelling the holder's Deferred.
- LOST: the session and its ephemeral node are gone, so the lock is lost:
  ``is_acquired`` becomes False (kazoo leaves it True).
- While waiting, a state change wakes the acquire, which checks again once
  reconnected; ConnectionLoss and SessionExpired restart the step (after an
  expiry with a new node, on the client's new session).
"""
from __future__ import annotations

import re
import uuid
from collections.abc import Iterable

from twisted.internet.defer import Deferred
from twisted.internet.defer import TimeoutError as DeferredTimeout
from twisted.python.failure import Failure
from twisted.logger import Logger

from zabd.client.client import ZooKeeperClient
from zabd.client.errors import ConnectionClosedError, NoNodeError, SessionExpiredError, ZookeeperError
from zabd.client.recipes.support import (
    RETRYABLE, CancelledError, Deadline, LockTimeout, Wakeup, child_path,
)
from zabd.client.states import KazooState

__all__ = ["Lock", "ReadLock", "WriteLock"]

log = Logger()


class _OwnNodeGone(Exception):
    """Our contender node is not among the children (the session that made it expired): create another."""


def _contender_pattern(names: Iterable[str]) -> re.Pattern[str]:
    return re.compile(r"(?:{})(-?\d{{10}})$".format("|".join(sorted(names))))


class Lock:
    """An exclusive, non-reentrant lock (kazoo's Lock); every method returns a Deferred.

        lock = Lock(client, "/locks/db", "worker-1")
        if await lock.acquire(timeout=5):
            try:
                ...  # stop if the client goes SUSPENDED (see the module's notes)
            finally:
                await lock.release()
    """

    #: The name of this kind's nodes, between the uuid and the sequence number.
    NODE_NAME = "__lock__"
    #: The node names that exclude this contender when they have a lower sequence number.
    EXCLUDE_NAMES: tuple[str, ...] = ("__lock__",)

    def __init__(self, client: ZooKeeperClient, path: str, identifier: str | None = None,
                 extra_lock_patterns: Iterable[str] = ()) -> None:
        self.client = client
        self.path = path
        self.data = str(identifier or "").encode("utf-8")
        self._exclude_names = set(self.EXCLUDE_NAMES) | set(extra_lock_patterns)
        self._contenders_re = _contender_pattern(self._exclude_names)
        self.prefix = uuid.uuid4().hex + self.NODE_NAME
        self.create_path = child_path(path, self.prefix)
        self.node: str | None = None  # our node's name under ``path``
        self.is_acquired = False
        self.cancelled = False
        self._ephemeral = True
        self._create_tried = False
        self._assured_path = False
        self._acquiring = False
        self._listening = False
        self._wake = Wakeup(client.reactor)  # a watch, a state change or cancel()
        self._idle = Wakeup(client.reactor)  # an acquire ended or a release: for a second acquire() to retry

    # -- the API ---------------------------------------------------------------------

    def acquire(self, blocking: bool = True, timeout: float | None = None, ephemeral: bool = True) -> Deferred[bool]:
        """Fires True once held (confirmed by the server); False if ``blocking`` is False and another holds it.

        Fails with LockTimeout after ``timeout`` seconds of waiting, with
        CancelledError after :meth:`cancel`. Not reentrant: acquiring a held
        lock waits for its release (or returns False when not blocking).
        With ``ephemeral=False`` a session expiry does not release the lock.
        """
        return Deferred.fromCoroutine(self._acquire(blocking, Deadline(self.client.reactor, timeout), ephemeral))

    def release(self) -> Deferred[bool]:
        """Delete our node; fires True if the lock was held, False otherwise."""
        return Deferred.fromCoroutine(self._release())

    def cancel(self) -> None:
        """Make a pending acquire fail with CancelledError."""
        self.cancelled = True
        self._wake.set()
        self._idle.set()

    def contenders(self) -> Deferred[list[str]]:
        """The identifiers of every contender (readers and writers alike), holders first."""
        return Deferred.fromCoroutine(self._contenders())

    # -- acquiring ---------------------------------------------------------------------

    async def _acquire(self, blocking: bool, deadline: Deadline, ephemeral: bool) -> bool:
        while self._acquiring or self.is_acquired:
            if not blocking or self.cancelled:
                return False
            self._idle.clear()
            if not await self._idle.wait(deadline):
                return False
        self._acquiring = True
        self._ephemeral = ephemeral
        self._listen(True)
        contending = Deferred.fromCoroutine(self._contend(blocking, deadline, ephemeral))
        left = deadline.left()
        if left is not None:
            # Also while a step waits for a connection: its requests wait, the caller does not.
            contending.addTimeout(left, self.client.reactor)
        try:
            gotten = await contending
        except Exception as error:  # not GeneratorExit: a collected coroutine must not await
            self.cancelled = False
            self._leave_line()
            if isinstance(error, DeferredTimeout):
                raise LockTimeout(f"failed to acquire lock on {self.path} in time") from None
            raise
        if gotten and self.client.state is KazooState.LOST and ephemeral:
            gotten = False  # the session ended as the answer came in
        self.is_acquired = gotten
        if gotten:
            self._acquiring = False
            self._idle.set()
        else:
            self._leave_line()
        return gotten

    def _leave_line(self) -> None:
        """Answer the caller now, and delete our node in the background.

        The delete waits for a connection if there is none; until it is done
        no other acquire of this lock starts (it would find the node again).
        """
        def done(result: object) -> None:
            if isinstance(result, Failure):
                log.failure("Removing the node of lock {path}", result, path=self.path)
            self._acquiring = False
            self._idle.set()

        Deferred.fromCoroutine(self._best_effort_cleanup()).addBoth(done)

    async def _contend(self, blocking: bool, deadline: Deadline, ephemeral: bool) -> bool:
        while True:
            try:
                return await self._attempt(blocking, deadline, ephemeral)
            except RETRYABLE + (_OwnNodeGone,):
                if deadline.passed:
                    return False  # kazoo: the retry ran out of time

    async def _attempt(self, blocking: bool, deadline: Deadline, ephemeral: bool) -> bool:
        if not self._assured_path:
            await self.client.ensure_path(self.path)
            self._assured_path = True
        node = None
        if self._create_tried:
            node = await self._find_node()  # our create may have succeeded though its reply was lost
        self._create_tried = True
        if node is None:
            created = await self.client.create(self.create_path, self.data, ephemeral=ephemeral, sequence=True)
            node = created.rsplit("/", 1)[1]
        self.node = node
        while True:
            self._wake.clear()
            if self.cancelled:
                raise CancelledError(f"acquire of {self.path} cancelled")
            predecessor = await self._predecessor(node)
            if predecessor is None:
                return True
            if not blocking:
                return False
            try:
                await self.client.get(child_path(self.path, predecessor), watch=self._wake.set)
            except NoNodeError:
                continue  # gone already
            if not await self._wake.wait(deadline):
                raise LockTimeout(f"failed to acquire lock on {self.path} in time")

    async def _predecessor(self, node: str) -> str | None:
        """The nearest child with a lower sequence that excludes us, or None when we hold the lock."""
        own_sequence = node[len(self.prefix):]
        earlier: list[tuple[str, str]] = []
        found_self = False
        for child in await self.client.get_children(self.path):
            match = self._contenders_re.search(child)
            # Sequences are fixed-width, so comparing the strings orders them (kazoo does the same).
            if match is not None and match.group(1) < own_sequence:
                earlier.append((match.group(1), child))
            found_self = found_self or child == node
        if not found_self:
            raise _OwnNodeGone(node)
        return max(earlier)[1] if earlier else None

    async def still_first(self) -> bool:
        """Whether our node is still there and has no excluding predecessor (after a reconnect, say)."""
        if self.node is None:
            return False
        try:
            return await self._predecessor(self.node) is None
        except _OwnNodeGone:
            return False

    async def _find_node(self) -> str | None:
        for child in await self.client.get_children(self.path):
            if child.startswith(self.prefix):
                return child
        return None

    async def _best_effort_cleanup(self) -> None:
        try:
            node = self.node or await self._find_node()
            if node:
                # Surely, not once: a node left in line would block every later contender.
                await self._delete(node)
        except ZookeeperError:
            pass
        self.node = None
        if not self.is_acquired:
            self._listen(False)

    # -- releasing and state -------------------------------------------------------------

    async def _release(self) -> bool:
        if not self.is_acquired or self.node is None:
            return False
        await self._delete(self.node)
        self._drop()
        return True

    async def _delete(self, node: str) -> None:
        """Delete our node, retrying through connection loss (a retry waits for the next connection)."""
        while True:
            try:
                await self.client.delete(child_path(self.path, node))
                return
            except (NoNodeError, ConnectionClosedError):
                return  # gone, or the client was stopped: nothing to retry on
            except SessionExpiredError:
                if self._ephemeral:
                    return  # the node went with the session
            except RETRYABLE:
                pass

    def _drop(self) -> None:
        self.is_acquired = False
        self.node = None
        self._listen(False)
        self._idle.set()

    def _session_changed(self, state: KazooState) -> None:
        self._wake.set()
        if state is KazooState.LOST and self.is_acquired and self._ephemeral:
            log.warn("Lock {path} lost with the session", path=self.path)
            self._drop()

    def _listen(self, on: bool) -> None:
        if on and not self._listening:
            self.client.add_listener(self._session_changed)
        elif not on and self._listening:
            self.client.remove_listener(self._session_changed)
        self._listening = on

    async def _contenders(self) -> list[str]:
        if not self._assured_path:
            await self.client.ensure_path(self.path)
            self._assured_path = True
        pattern = _contender_pattern(self._exclude_names | {self.NODE_NAME})
        ordered = sorted((match.group(1), child) for child in await self.client.get_children(self.path)
                         if (match := pattern.search(child)) is not None)
        identifiers: list[str] = []
        for _, child in ordered:
            try:
                data, _stat = await self.client.get(child_path(self.path, child))
            except NoNodeError:
                continue
            identifiers.append(data.decode("utf-8"))
        return identifiers
