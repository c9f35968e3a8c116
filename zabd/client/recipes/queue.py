"""Queue and LockingQueue: kazoo's distributed priority queues, on Deferreds.

Node layout (kazoo's, so kazoo clients share the queues):

- Queue: items are persistent sequential children ``<path>/entry-PPP-NNNNNNNNNN``.
- LockingQueue: items under ``<path>/entries`` (same names); a consumer locks
  an item by creating the ephemeral ``<path>/taken/<item name>`` holding its
  id, and consumes it by deleting both in one transaction.

``PPP`` is the priority, 000 to 999 (lower comes first); items of one
priority come in the order they were put.
"""
from __future__ import annotations

import uuid
from collections.abc import Sequence
from typing import Any

from twisted.internet.defer import Deferred

from zabd.client.client import ZooKeeperClient
from zabd.client.errors import NodeExistsError, NoNodeError, RolledBackError
from zabd.client.recipes.support import Deadline, Wakeup

__all__ = ["Queue", "LockingQueue"]

ENTRY_PREFIX = "entry-"


def _check_priority(priority: int) -> None:
    if not isinstance(priority, int) or isinstance(priority, bool):
        raise TypeError("priority must be an int")
    if not 0 <= priority <= 999:
        raise ValueError("priority must be between 0 and 999")


def _check_value(value: bytes) -> None:
    if not isinstance(value, bytes):
        raise TypeError("value must be a byte string")


def raise_if_failed(results: list[Any]) -> None:
    """Raise the error that failed a transaction (not the RolledBackError of the ops it took along)."""
    errors = [result for result in results if isinstance(result, Exception)]
    if errors:
        raise next((e for e in errors if not isinstance(e, RolledBackError)), errors[0])


class _BaseQueue:
    def __init__(self, client: ZooKeeperClient, path: str, entries_path: str, structure: Sequence[str]) -> None:
        self.client = client
        self.path = path
        self._entries_path = entries_path
        self._structure = tuple(structure)
        self._ensured = False

    async def _ensure_paths(self) -> None:
        if not self._ensured:
            for path in self._structure:
                await self.client.ensure_path(path)
            self._ensured = True

    def _entry_prefix(self, priority: int) -> str:
        return f"{self._entries_path}/{ENTRY_PREFIX}{priority:03d}-"

    def length(self) -> Deferred[int]:
        """The number of items (for a LockingQueue, locked ones included)."""
        async def count() -> int:
            await self._ensure_paths()
            _, stat = await self.client.get(self._entries_path)
            return stat.numChildren
        return Deferred.fromCoroutine(count())

    def put(self, value: bytes, priority: int = 100) -> Deferred[str]:
        """Add an item; fires with its node's path."""
        _check_value(value)
        _check_priority(priority)

        async def put() -> str:
            await self._ensure_paths()
            created: str = await self.client.create(self._entry_prefix(priority), value, sequence=True)
            return created
        return Deferred.fromCoroutine(put())

    def put_all(self, values: Sequence[bytes], priority: int = 100) -> Deferred[list[str]]:
        """Add several items in one transaction: all of them or none."""
        if not isinstance(values, (list, tuple)):
            raise TypeError("values must be a list of byte strings")
        for value in values:
            _check_value(value)
        _check_priority(priority)

        async def put_all() -> list[str]:
            await self._ensure_paths()
            transaction = self.client.transaction()
            for value in values:
                transaction.create(self._entry_prefix(priority), value, sequence=True)
            results: list[Any] = await transaction.commit()
            raise_if_failed(results)
            return [str(path) for path in results]
        return Deferred.fromCoroutine(put_all())


class Queue(_BaseQueue):
    """A queue whose ``get`` removes the item: each item goes to exactly one consumer."""

    def __init__(self, client: ZooKeeperClient, path: str) -> None:
        super().__init__(client, path, path, [path])
        self._children: list[str] = []  # names read by the last listing, first one next

    def get(self) -> Deferred[bytes | None]:
        """Take the first item (by priority, then age) and return its value; None if the queue is empty."""
        async def get() -> bytes | None:
            await self._ensure_paths()
            while True:
                if not self._children:
                    self._children = sorted(await self.client.get_children(self.path))
                if not self._children:
                    return None
                name = self._children.pop(0)
                try:
                    data, _ = await self.client.get(f"{self.path}/{name}")
                    await self.client.delete(f"{self.path}/{name}")
                except NoNodeError:
                    continue  # another consumer took it first; the delete decides who wins
                return data
        return Deferred.fromCoroutine(get())


class LockingQueue(_BaseQueue):
    """A queue whose ``get`` locks the item; ``consume`` removes it, ``release`` gives it back.

    A consumer that dies (its session ends) releases its item with its
    ephemeral lock. The queue does not follow the connection: after a
    SUSPENDED or LOST, check ``holds_lock`` before trusting the lock.
    """

    def __init__(self, client: ZooKeeperClient, path: str) -> None:
        self._lock_path = path + "/taken"
        super().__init__(client, path, path + "/entries", [self._lock_path, path + "/entries"])
        self.id = uuid.uuid4().hex.encode()
        self.processing_element: tuple[str, bytes] | None = None  # (item name, value) held now

    def get(self, timeout: float | None = None) -> Deferred[bytes | None]:
        """Lock the first free item and return its value, waiting up to ``timeout`` seconds (None: for ever).

        Fires with None on timeout. Returns the held item again while it is
        neither consumed nor released.
        """
        if self.processing_element is not None:
            held: Deferred[bytes | None] = Deferred()
            held.callback(self.processing_element[1])
            return held
        return Deferred.fromCoroutine(self._get(timeout))

    async def _get(self, timeout: float | None) -> bytes | None:
        await self._ensure_paths()
        deadline = Deadline(self.client.reactor, timeout)
        wakeup = Wakeup(self.client.reactor)
        while True:
            wakeup.clear()  # before reading: a change after the read sets it again
            entries = await self.client.get_children(self._entries_path, watch=wakeup.set)
            taken = set(await self.client.get_children(self._lock_path, watch=wakeup.set))
            for name in sorted(set(entries) - taken):
                value = await self._take(name)
                if value is not None:
                    self.processing_element = (name, value)
                    return value
            if deadline.passed or not await wakeup.wait(deadline):
                return None

    async def _take(self, name: str) -> bytes | None:
        try:
            await self.client.create(f"{self._lock_path}/{name}", self.id, ephemeral=True)
        except NodeExistsError:
            return None  # locked by another consumer
        try:
            value, _ = await self.client.get(f"{self._entries_path}/{name}")
        except NoNodeError:
            await self.client.delete(f"{self._lock_path}/{name}")  # consumed meanwhile
            return None
        return value

    def holds_lock(self) -> Deferred[bool]:
        """Whether this consumer still holds its item's lock, as the leader has it (sync, then read)."""
        async def check() -> bool:
            if self.processing_element is None:
                return False
            lock = f"{self._lock_path}/{self.processing_element[0]}"
            await self.client.sync(lock)
            try:
                value, _ = await self.client.get(lock)
            except NoNodeError:
                return False
            return value == self.id
        return Deferred.fromCoroutine(check())

    def consume(self) -> Deferred[bool]:
        """Remove the held item from the queue; False if none is held (or the lock was lost)."""
        return Deferred.fromCoroutine(self._finish(remove_entry=True))

    def release(self) -> Deferred[bool]:
        """Unlock the held item without removing it, for another consumer; False if none is held."""
        return Deferred.fromCoroutine(self._finish(remove_entry=False))

    async def _finish(self, remove_entry: bool) -> bool:
        if self.processing_element is None or not await self.holds_lock():
            return False
        name = self.processing_element[0]
        transaction = self.client.transaction()
        if remove_entry:
            transaction.delete(f"{self._entries_path}/{name}")
        transaction.delete(f"{self._lock_path}/{name}")
        raise_if_failed(await transaction.commit())
        self.processing_element = None
        return True
