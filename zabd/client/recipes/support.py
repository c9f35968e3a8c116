# -*- test-case-name: tests.unit.test_recipes_locks -*-
"""What every recipe needs: waiting with a deadline on the client's reactor, and the holder's guard.

Recipes never sleep and never read the wall clock: deadlines come from the
client's reactor (``reactor.seconds()``), so a test's fake clock drives them.
"""
from __future__ import annotations

from collections.abc import Callable
from typing import Any

from twisted.internet.defer import CancelledError as DeferredCancelled
from twisted.internet.defer import Deferred, maybeDeferred, succeed

from twisted.python.failure import Failure

from zabd.client.client import ZooKeeperClient
from zabd.client.errors import ConnectionLoss, SessionExpiredError
from zabd.client.states import KazooState

__all__ = ["LockTimeout", "CancelledError", "SessionInterrupted", "Deadline", "Wakeup", "while_connected",
           "RETRYABLE", "child_path"]

#: Errors after which a recipe starts its step again: the request is queued for the next connection
#: (or the next session, which the client opens by itself after an expiry).
RETRYABLE: tuple[type[BaseException], ...] = (ConnectionLoss, SessionExpiredError)


class LockTimeout(Exception):
    """A blocking acquire did not succeed within its timeout (kazoo's LockTimeout)."""


class CancelledError(Exception):
    """``cancel()`` was called while an acquire (or an election's wait) was pending (kazoo's CancelledError)."""


class SessionInterrupted(Exception):
    """The connection was SUSPENDED or the session LOST while a lock or leadership was held."""

    def __init__(self, state: KazooState) -> None:
        super().__init__(f"the session went {state.value} while held")
        self.state = state


def child_path(parent: str, name: str) -> str:
    return parent.rstrip("/") + "/" + name


class Deadline:
    """A point on the reactor's clock (None: never)."""

    def __init__(self, reactor: Any, timeout: float | None) -> None:
        self.reactor = reactor
        self.at = None if timeout is None else reactor.seconds() + timeout

    def left(self) -> float | None:
        return None if self.at is None else max(self.at - self.reactor.seconds(), 0.0)

    @property
    def passed(self) -> bool:
        return self.at is not None and self.reactor.seconds() >= self.at


class Wakeup:
    """kazoo's ``wake_event`` for Deferreds: set by watches, state changes or cancel; waited on with a deadline."""

    def __init__(self, reactor: Any) -> None:
        self.reactor = reactor
        self.is_set = False
        self._waiters: list[Deferred[bool]] = []

    def clear(self) -> None:
        self.is_set = False

    def set(self, *_: object) -> None:
        """Wake every waiter (a watch callback or a listener may be passed straight in)."""
        self.is_set = True
        waiters, self._waiters = self._waiters, []
        for waiter in waiters:
            if not waiter.called:
                waiter.callback(True)

    def wait(self, deadline: Deadline) -> Deferred[bool]:
        """Fires True once set (at once if it already is), False when the deadline passes first."""
        if self.is_set:
            return succeed(True)
        woken: Deferred[bool] = Deferred(lambda d: self._forget(d))
        self._waiters.append(woken)
        left = deadline.left()
        if left is None:
            return woken
        timer = self.reactor.callLater(left, lambda: self._time_up(woken))
        return woken.addBoth(lambda result: (timer.cancel() if timer.active() else None, result)[1])

    def _time_up(self, waiter: Deferred[bool]) -> None:
        self._forget(waiter)
        if not waiter.called:
            waiter.callback(False)

    def _forget(self, waiter: Deferred[bool]) -> None:
        if waiter in self._waiters:
            self._waiters.remove(waiter)


def while_connected(client: ZooKeeperClient, func: Callable[..., Any], *args: Any, **kwargs: Any) -> Deferred[Any]:
    """Run ``func`` (plain, Deferred-returning or ``async``) as the holder of a lock or leadership.

    The moment the client goes SUSPENDED or LOST, ``func``'s Deferred is
    cancelled (an ``async`` func sees :class:`twisted.internet.defer.CancelledError`
    at its current ``await``) and the result fails with :class:`SessionInterrupted`:
    with the connection gone, another client may hold the lock as soon as this
    session expires, so the holder must stop now rather than when it learns more.
    """
    if client.state is not KazooState.CONNECTED:
        failed: Deferred[Any] = Deferred()
        failed.errback(SessionInterrupted(client.state))
        return failed
    running = maybeDeferred(func, *args, **kwargs)
    interrupted: list[KazooState] = []

    def on_state(state: KazooState) -> None:
        if state is not KazooState.CONNECTED and not interrupted and not running.called:
            interrupted.append(state)
            running.cancel()

    def finished(result: object) -> object:
        client.remove_listener(on_state)
        if interrupted:
            if isinstance(result, Failure):
                result.trap(DeferredCancelled, SessionInterrupted, *RETRYABLE)
            raise SessionInterrupted(interrupted[0])
        if isinstance(result, Failure) and result.check(*RETRYABLE):
            # The work failed because the connection or session went: an interruption too.
            raise SessionInterrupted(client.state)
        return result

    client.add_listener(on_state)
    return running.addBoth(finished)
