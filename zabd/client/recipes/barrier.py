# -*- test-case-name: tests.unit.test_recipes_election -*-
"""Barriers on zabd.client, with kazoo's layout: Barrier and DoubleBarrier.

:class:`Barrier`: the barrier is up while ``<path>`` exists; waiters watch it
for deletion. :class:`DoubleBarrier`: each member has an ephemeral child
``<path>/<uuid hex>``; the member that brings the count to ``num_clients``
creates ``<path>/ready``, which lets everyone in; leaving, members delete
their nodes and wait, as kazoo's protocol says, until every one has gone.

Connection states: waits survive a reconnect (requests queue for the next
connection and watches are re-armed; ConnectionLoss restarts the step), so
unlike kazoo's ``Barrier.wait`` these never fail on a connection loss. A
DoubleBarrier member whose session is LOST has left the barrier (its node was
ephemeral); its pending ``enter`` or ``leave`` starts again on the new session.
"""
from __future__ import annotations

import os
import socket
import uuid

from twisted.internet.defer import Deferred

from zabd.client.client import ZooKeeperClient
from zabd.client.errors import NodeExistsError, NoNodeError, ZookeeperError
from zabd.client.recipes.support import RETRYABLE, Deadline, Wakeup, child_path

__all__ = ["Barrier", "DoubleBarrier"]

_FOREVER_S = None


class Barrier:
    """Hold clients back until the barrier node is removed (kazoo's Barrier); methods return Deferreds."""

    def __init__(self, client: ZooKeeperClient, path: str) -> None:
        self.client = client
        self.path = path

    def create(self) -> Deferred[None]:
        """Put the barrier up (if it is not up already)."""
        return Deferred.fromCoroutine(self._create())

    async def _create(self) -> None:
        while True:
            try:
                await self.client.ensure_path(self.path)
                return
            except RETRYABLE:
                continue

    def remove(self) -> Deferred[bool]:
        """Take the barrier down; fires whether it was up."""
        return Deferred.fromCoroutine(self._remove())

    async def _remove(self) -> bool:
        tried = False
        while True:
            try:
                await self.client.delete(self.path)
                return True
            except NoNodeError:
                return tried  # after a lost reply our own delete may be why it is gone
            except RETRYABLE:
                tried = True

    def wait(self, timeout: float | None = None) -> Deferred[bool]:
        """Fires True once the barrier is down, False if it is still up after ``timeout`` seconds."""
        return Deferred.fromCoroutine(self._wait(Deadline(self.client.reactor, timeout)))

    async def _wait(self, deadline: Deadline) -> bool:
        wake = Wakeup(self.client.reactor)
        while True:
            wake.clear()
            try:
                if await self.client.exists(self.path, watch=wake.set) is None:
                    return True
            except RETRYABLE:
                continue
            # Any event (kazoo's waits only on DELETED and hangs on a data change) means: look again.
            if not await wake.wait(deadline):
                return False


class DoubleBarrier:
    """Start and finish a task together (kazoo's DoubleBarrier): ``enter()`` waits for ``num_clients``
    members, ``leave()`` for all of them to leave."""

    def __init__(self, client: ZooKeeperClient, path: str, num_clients: int, identifier: str | None = None) -> None:
        self.client = client
        self.path = path
        self.num_clients = num_clients
        self.identifier = identifier or f"{socket.getfqdn()}-{os.getpid()}"
        self.participating = False
        self.node_name = uuid.uuid4().hex
        self.create_path = child_path(path, self.node_name)
        self.ready_path = child_path(path, "ready")
        self._assured_path = False

    def enter(self) -> Deferred[None]:
        """Join; fires once ``num_clients`` members have joined. On an error the member node is removed."""
        return Deferred.fromCoroutine(self._enter())

    def leave(self) -> Deferred[None]:
        """Leave; fires once every member has left."""
        return Deferred.fromCoroutine(self._leave())

    async def _enter(self) -> None:
        try:
            while True:
                try:
                    await self._inner_enter()
                    break
                except RETRYABLE:
                    continue
        except Exception:  # not GeneratorExit: a collected coroutine must not await
            # kazoo swallows the error here; a caller awaiting enter() should learn it did not get in.
            await self._best_effort_cleanup()
            self.participating = False
            raise
        self.participating = True

    async def _inner_enter(self) -> None:
        if not self._assured_path:
            await self.client.ensure_path(self.path)
            self._assured_path = True
        try:
            await self.client.create(self.create_path, self.identifier.encode("utf-8"), ephemeral=True)
        except NodeExistsError:
            pass
        ready = Wakeup(self.client.reactor)
        if await self.client.exists(self.ready_path, watch=ready.set) is not None:
            return  # the barrier is open already
        members = [child for child in await self.client.get_children(self.path) if child != "ready"]
        if len(members) >= self.num_clients:
            await self.client.ensure_path(self.ready_path)
            return
        while True:
            await ready.wait(Deadline(self.client.reactor, _FOREVER_S))
            ready.clear()
            if await self.client.exists(self.ready_path, watch=ready.set) is not None:
                return

    async def _leave(self) -> None:
        try:
            while True:
                try:
                    await self._inner_leave()
                    break
                except RETRYABLE:
                    continue
        except Exception:  # not GeneratorExit: a collected coroutine must not await
            await self._best_effort_cleanup()
            raise
        finally:
            self.participating = False

    async def _inner_leave(self) -> None:
        try:
            await self.client.delete(self.ready_path)
        except NoNodeError:
            pass
        while True:
            children = sorted(child for child in await self.client.get_children(self.path) if child != "ready")
            if not children:
                return
            if children == [self.node_name]:
                await self._delete_own()
                return
            gone = Wakeup(self.client.reactor)  # any event on the watched node: list the members again
            if children[0] == self.node_name:
                watched = children[-1]  # lowest: wait for the highest to go
            else:
                await self._delete_own()
                watched = children[0]  # the others: wait for the lowest to go
            if await self.client.exists(child_path(self.path, watched), watch=gone.set) is None:
                continue
            await gone.wait(Deadline(self.client.reactor, _FOREVER_S))

    async def _delete_own(self) -> None:
        try:
            await self.client.delete(self.create_path)
        except NoNodeError:
            pass

    async def _best_effort_cleanup(self) -> None:
        try:
            await self.client.delete(self.create_path)
        except ZookeeperError:
            pass
