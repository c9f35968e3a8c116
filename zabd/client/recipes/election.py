# -*- test-case-name: tests.unit.test_recipes_election -*-
"""Leader election on zabd.client: kazoo's Election, and a Curator-style LeaderLatch.

Both are contenders of a :class:`~zabd.client.recipes.lock.Lock` on the
election path (kazoo's ``<uuid>__lock__<seq>`` nodes), so they interoperate
with kazoo's Election and with each other: the leader is the holder of the lock.

Connection states:

- :class:`Election`: the leader function runs under
  :func:`~zabd.client.recipes.support.while_connected`: on SUSPENDED or LOST
  its Deferred is cancelled at once and ``run`` fails with
  SessionInterrupted (kazoo's Election does nothing and leaves it to the
  function). The lock is then released (on reconnect) or gone (LOST).
- :class:`LeaderLatch`: ``is_leader`` turns False and ``on_lost`` is called
  the moment the client goes SUSPENDED. If the same session comes back, the
  latch checks with the server that its node is still first and is leader
  again (``on_gained``); Curator instead deletes its node and queues anew.
  After LOST it contends again with a new node on the new session.
"""
from __future__ import annotations

from collections.abc import Callable
from typing import Any

from twisted.internet.defer import Deferred, succeed
from twisted.logger import Logger
from twisted.python.failure import Failure

from zabd.client.client import ZooKeeperClient
from zabd.client.errors import ConnectionClosedError, ZookeeperError
from zabd.client.recipes.lock import Lock
from zabd.client.recipes.support import (
    RETRYABLE, CancelledError, Deadline, SessionInterrupted, Wakeup, while_connected,
)
from zabd.client.states import KazooState

__all__ = ["Election", "LeaderLatch"]

log = Logger()


class Election:
    """kazoo's Election: ``await election.run(func, *args)`` waits to win, runs ``func``, then steps down."""

    def __init__(self, client: ZooKeeperClient, path: str, identifier: str | None = None) -> None:
        self.client = client
        self.lock = Lock(client, path, identifier)

    def run(self, func: Callable[..., Any], *args: Any, **kwargs: Any) -> Deferred[Any]:
        """Contend; once leader, run ``func`` (plain, Deferred-returning or ``async``) and then release.

        Fires with ``func``'s result, or None if :meth:`cancel` was called
        before winning; fails with SessionInterrupted at once if the connection
        was suspended or lost while ``func`` ran (``func`` is cancelled then, and
        the lock's node deleted once reconnected, or gone with the session).
        """
        if not callable(func):
            raise ValueError("leader function is not callable")
        return Deferred.fromCoroutine(self._run(func, args, kwargs))

    async def _run(self, func: Callable[..., Any], args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
        try:
            await self.lock.acquire()
        except CancelledError:
            return None
        try:
            outcome = await while_connected(self.client, func, *args, **kwargs)
        except SessionInterrupted:
            # Tell the caller now; the delete waits for a reconnect (or goes with the session).
            self.lock.release().addErrback(self._release_failed)
            raise
        except Exception:
            await self.lock.release().addErrback(self._release_failed)
            raise
        await self.lock.release().addErrback(self._release_failed)
        return outcome

    def _release_failed(self, failure: Failure) -> None:
        failure.trap(ZookeeperError)  # the client was stopped meanwhile: the node goes with the session
        log.info("Election {path}: release failed: {error}", path=self.lock.path, error=failure.value)

    def cancel(self) -> None:
        """Stop waiting to be elected (a running leader function is not interrupted)."""
        self.lock.cancel()

    def contenders(self) -> Deferred[list[str]]:
        """The contenders' identifiers, the leader first."""
        return self.lock.contenders()


class LeaderLatch:
    """Curator's LeaderLatch: contend in the background, ask ``is_leader`` at any time, hear of changes.

        latch = LeaderLatch(client, "/service/leader", "node-1", on_gained=start_work, on_lost=stop_work)
        latch.start()
        if await latch.wait_for_leadership(timeout=30): ...
        await latch.stop()
    """

    def __init__(self, client: ZooKeeperClient, path: str, identifier: str | None = None,
                 on_gained: Callable[[], object] | None = None, on_lost: Callable[[], object] | None = None) -> None:
        self.client = client
        self.path = path
        self.lock = Lock(client, path, identifier)
        self.on_gained = on_gained
        self.on_lost = on_lost
        self.is_leader = False
        self._running = False
        self._states_seen = 0  # bumped on every state change: a check begun before one is stale
        self._state_changed = Wakeup(client.reactor)
        self._leadership = Wakeup(client.reactor)
        self._loop: Deferred[None] | None = None

    def start(self) -> None:
        """Begin contending (in the background)."""
        if self._running:
            return
        self._running = True
        self.client.add_listener(self._session_changed)
        self._loop = Deferred.fromCoroutine(self._contend())
        self._loop.addErrback(lambda failure: log.failure("LeaderLatch {path} stopped", failure, path=self.path))

    def stop(self) -> Deferred[None]:
        """Give up: lose leadership (calling ``on_lost``) and delete the latch's node."""
        if not self._running:
            return succeed(None)
        self._running = False
        self.client.remove_listener(self._session_changed)
        self._set_leader(False)
        self.lock.cancel()
        self._state_changed.set()
        loop = self._loop or succeed(None)

        async def stopped() -> None:
            await loop
            self.lock.cancelled = False
            if self.lock.is_acquired:
                await self.lock.release()
        return Deferred.fromCoroutine(stopped())

    def wait_for_leadership(self, timeout: float | None = None) -> Deferred[bool]:
        """Fires True once this latch is leader (at once if it is), False after ``timeout`` seconds."""
        if self.is_leader:
            return succeed(True)
        self._leadership.clear()
        return self._leadership.wait(Deadline(self.client.reactor, timeout))

    def contenders(self) -> Deferred[list[str]]:
        return self.lock.contenders()

    # -- the background loop ----------------------------------------------------------

    async def _contend(self) -> None:
        while self._running:
            try:
                if not self.lock.is_acquired and not await self.lock.acquire():
                    continue
                await self._hold()
            except (CancelledError, ConnectionClosedError):
                return
            except RETRYABLE:
                continue

    async def _hold(self) -> None:
        """Leader while connected and first; returns when the lock is gone (LOST) or the latch stopped."""
        while self._running and self.lock.is_acquired:
            seen = self._states_seen
            self._state_changed.clear()
            if self.client.state is KazooState.CONNECTED and not self.is_leader:
                first = await self.lock.still_first()
                if not first:
                    self.lock.is_acquired = False  # our node is gone: contend anew
                    return
                if seen == self._states_seen and self.client.state is KazooState.CONNECTED and self._running:
                    self._set_leader(True)
            if seen == self._states_seen:
                await self._state_changed.wait(Deadline(self.client.reactor, None))

    def _session_changed(self, state: KazooState) -> None:
        self._states_seen += 1
        if state is not KazooState.CONNECTED:
            self._set_leader(False)  # SUSPENDED: may be lost; LOST: lost
        self._state_changed.set()

    def _set_leader(self, leader: bool) -> None:
        if leader == self.is_leader:
            return
        self.is_leader = leader
        log.info("LeaderLatch {path}: {what} leadership", path=self.path, what="gained" if leader else "lost")
        callback = self.on_gained if leader else self.on_lost
        if leader:
            self._leadership.set()
        if callback is not None:
            try:
                callback()
            except Exception:
                log.failure("LeaderLatch {path}: callback failed", path=self.path)
