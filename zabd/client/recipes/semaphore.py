# -*- test-case-name: tests.unit.test_recipes_locks -*-
"""A counting semaphore on zabd.client, with kazoo's layout and protocol.

``<path>`` holds ``max_leases`` (decimal) as its data and one ephemeral child
``<uuid hex>`` per lease in use. To take a lease a contender first holds the
lock ``<path>-__lock__`` (so only one contender at a time watches the pool:
no herd), then creates its lease node if fewer than ``max_leases`` exist, or
else waits, still holding that lock, for a child to go.

Connection states: a lease is an ephemeral node, so it lasts as long as the
session: on SUSPENDED a holder *may* lose it and should pause its work; on
LOST it is gone and ``is_acquired`` becomes False. A pending acquire starts
again from the top after a session loss, as kazoo's does.
"""
from __future__ import annotations

import uuid

from twisted.internet.defer import Deferred

from zabd.client.client import ZooKeeperClient
from zabd.client.errors import NodeExistsError, NoNodeError, ZookeeperError
from zabd.client.recipes.lock import Lock
from zabd.client.recipes.support import RETRYABLE, CancelledError, Deadline, LockTimeout, Wakeup, child_path
from zabd.client.states import KazooState

__all__ = ["Semaphore"]


class _StartOver(Exception):
    """The session was lost while acquiring: go back to the top."""


class Semaphore:
    """At most ``max_leases`` holders at once (kazoo's Semaphore); every method returns a Deferred."""

    def __init__(self, client: ZooKeeperClient, path: str, identifier: str | None = None,
                 max_leases: int = 1) -> None:
        self.client = client
        self.path = path
        self.data = str(identifier or "").encode("utf-8")
        self.max_leases = max_leases
        self.create_path = child_path(path, uuid.uuid4().hex)
        self.lock_path = path + "-__lock__"
        self.is_acquired = False
        self.cancelled = False
        self._assured_path = False
        self._session_lost = False
        self._wake = Wakeup(client.reactor)

    def acquire(self, blocking: bool = True, timeout: float | None = None) -> Deferred[bool]:
        """Fires True with a lease held, False if none is free and ``blocking`` is False.

        Fails with LockTimeout after ``timeout`` seconds, CancelledError after
        :meth:`cancel`, ValueError if the pool was made with another ``max_leases``.
        """
        return Deferred.fromCoroutine(self._acquire(blocking, Deadline(self.client.reactor, timeout)))

    def release(self) -> Deferred[bool]:
        """Give the lease back; fires True if one was held."""
        return Deferred.fromCoroutine(self._release())

    def cancel(self) -> None:
        self.cancelled = True
        self._wake.set()

    def lease_holders(self) -> Deferred[list[str]]:
        """The identifiers of the current lease holders, in no particular order."""
        return Deferred.fromCoroutine(self._lease_holders())

    # -- acquiring -------------------------------------------------------------------------

    async def _acquire(self, blocking: bool, deadline: Deadline) -> bool:
        self.cancelled = False
        self.client.add_listener(self._session_changed)
        try:
            while True:
                try:
                    self.is_acquired = await self._attempt(blocking, deadline)
                    return self.is_acquired
                except RETRYABLE + (_StartOver,):
                    if deadline.passed:
                        self.is_acquired = False
                        return False
        except Exception:  # not GeneratorExit: a collected coroutine must not await
            await self._best_effort_cleanup()
            self.cancelled = False
            raise
        finally:
            if not self.is_acquired:
                self.client.remove_listener(self._session_changed)

    async def _ensure_pool(self) -> None:
        try:
            await self.client.create(self.path, str(self.max_leases).encode("utf-8"), makepath=True)
        except NodeExistsError:
            data, _stat = await self.client.get(self.path)
            try:
                leases = int(data.decode("utf-8"))
            except ValueError:
                pass  # not ours to judge: the node's data may serve something else
            else:
                if leases != self.max_leases:
                    raise ValueError(f"Inconsistent max leases: {leases}, expected: {self.max_leases}")
        self._assured_path = True

    async def _attempt(self, blocking: bool, deadline: Deadline) -> bool:
        self._session_lost = False
        if not self._assured_path:
            await self._ensure_pool()
        if await self.client.exists(self.create_path) is not None:
            return True  # a create whose reply was lost
        lock = Lock(self.client, self.lock_path, self.data.decode("utf-8"))
        if not await lock.acquire(blocking=blocking, timeout=deadline.left()):
            return False
        try:
            while True:
                self._wake.clear()
                if await self._get_lease():
                    return True
                if not blocking:
                    return False
                if not await self._wake.wait(deadline):
                    raise LockTimeout(f"failed to acquire semaphore on {self.path} in time")
        finally:
            await lock.release()

    async def _get_lease(self) -> bool:
        if self._session_lost:
            raise _StartOver()
        if self.cancelled:
            raise CancelledError(f"semaphore {self.path} cancelled")
        children = await self.client.get_children(self.path, watch=self._wake.set)
        if len(children) < self.max_leases:
            try:
                await self.client.create(self.create_path, self.data, ephemeral=True)
            except NodeExistsError:
                pass
        return await self.client.exists(self.create_path) is not None

    def _session_changed(self, state: KazooState) -> None:
        if state is KazooState.LOST:
            self._session_lost = True
            self.is_acquired = False  # the lease node went with the session
            self._wake.set()

    async def _best_effort_cleanup(self) -> None:
        try:
            await self.client.delete(self.create_path)
        except ZookeeperError:
            pass

    # -- the rest ------------------------------------------------------------------------------

    async def _release(self) -> bool:
        if not self.is_acquired:
            return False
        while True:
            try:
                await self.client.delete(self.create_path)
                break
            except NoNodeError:
                break
            except RETRYABLE:
                if self.client.state is KazooState.LOST:
                    break
        self.is_acquired = False
        self.client.remove_listener(self._session_changed)
        return True

    async def _lease_holders(self) -> list[str]:
        if await self.client.exists(self.path) is None:
            return []
        holders: list[str] = []
        for child in await self.client.get_children(self.path):
            try:
                data, _stat = await self.client.get(child_path(self.path, child))
            except NoNodeError:
                continue
            holders.append(data.decode("utf-8"))
        return holders
