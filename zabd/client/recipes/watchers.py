"""DataWatch and ChildrenWatch: a function called with a node's data (or children) now and on every change.

kazoo's semantics, on Deferreds: the function runs once with the current
value as soon as it is read, then after every change, each one-shot watch
re-registered before the function runs. A node that does not exist is
reported as ``None`` and watched with ``exists`` until it appears. Returning
``False`` from the function stops the watch. Every CONNECTED (a reconnect,
or a new session after LOST) reads the node again, so a change missed while
disconnected is still reported, once.

    def show(data, stat):
        print("config is", data)

    watch = DataWatch(client, "/config", show)
    await watch.started    # show has run once
"""
from __future__ import annotations

import inspect
from collections import deque
from collections.abc import Awaitable, Callable
from typing import Any

from twisted.internet.defer import Deferred
from twisted.logger import Logger

from zabd.client.client import ZooKeeperClient
from zabd.client.errors import ConnectionClosedError, ConnectionLoss, NoNodeError, SessionExpiredError
from zabd.client.states import KazooState, WatchedEvent, ZnodeStat

__all__ = ["DataWatch", "ChildrenWatch", "SerialJobs"]

log = Logger()

#: Errors after which the next CONNECTED (or nothing, once closed) takes over: not worth a retry loop.
CONNECTION_ERRORS = (ConnectionLoss, SessionExpiredError, ConnectionClosedError)


class SerialJobs:
    """Runs async jobs one at a time in the order added; a failing job is logged and the next one runs."""

    def __init__(self) -> None:
        self._jobs: deque[Callable[[], Awaitable[object]]] = deque()
        self._running = False
        self._idle_waiters: list[Deferred[None]] = []

    def add(self, job: Callable[[], Awaitable[object]]) -> None:
        self._jobs.append(job)
        if not self._running:
            Deferred.fromCoroutine(self._drain())

    def when_idle(self) -> Deferred[None]:
        """Fires once every job added so far (and any they add) has finished."""
        waiter: Deferred[None] = Deferred()
        if self._running:
            self._idle_waiters.append(waiter)
        else:
            waiter.callback(None)
        return waiter

    async def _drain(self) -> None:
        self._running = True
        try:
            while self._jobs:
                job = self._jobs.popleft()
                try:
                    await job()
                except CONNECTION_ERRORS as error:
                    log.debug("Recipe job stopped by {error}; the next connection retries", error=repr(error))
                except Exception:
                    log.failure("Recipe job {job!r} failed", job=job)
        finally:
            self._running = False
            waiters, self._idle_waiters = self._idle_waiters, []
            for waiter in waiters:
                waiter.callback(None)


def _takes_event(func: Callable[..., object], plain_args: int) -> bool:
    """Whether ``func`` accepts one positional argument more than ``plain_args`` (the event)."""
    try:
        parameters = inspect.signature(func).parameters.values()
    except (TypeError, ValueError):
        return False
    if any(p.kind is p.VAR_POSITIONAL for p in parameters):
        return True
    positional = [p for p in parameters if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD)]
    return len(positional) > plain_args


class _NodeWatch:
    """What DataWatch and ChildrenWatch share: one function, a fetch loop, the listener, stopping."""

    def __init__(self, client: ZooKeeperClient, path: str, func: Callable[..., object] | None) -> None:
        self.client = client
        self.path = path
        self.started: Deferred[None] = Deferred()  # fires after the function's first call
        self.stopped = False
        self._func: Callable[..., object] | None = None
        self._jobs = SerialJobs()
        self._fetch_queued = False
        self._event: WatchedEvent | None = None
        # Bound once: the client's watch table tells callbacks apart by identity.
        self._watcher = self._on_watch
        self._listener = self._on_state
        if func is not None:
            self(func)

    def __call__(self, func: Callable[..., object]) -> Callable[..., object]:
        """Attach the function (usable as a decorator); a watch takes one function only."""
        if self._func is not None or self.stopped:
            raise RuntimeError(f"a function is already attached to this watch of {self.path}")
        self._func = func
        self.client.add_listener(self._listener)
        self._refetch(None)
        return func

    def when_idle(self) -> Deferred[None]:
        """Fires once no read is in flight (for tests)."""
        return self._jobs.when_idle()

    def stop(self) -> None:
        self.stopped = True
        self._func = None
        self.client.remove_listener(self._listener)

    def _on_watch(self, event: WatchedEvent) -> None:
        self._refetch(event)

    def _on_state(self, state: KazooState) -> None:
        if state is KazooState.CONNECTED:
            self._refetch(None)

    def _refetch(self, event: WatchedEvent | None) -> None:
        if self.stopped:
            return
        self._event = event or self._event
        if not self._fetch_queued:
            self._fetch_queued = True
            self._jobs.add(self._fetch_once)

    async def _fetch_once(self) -> None:
        self._fetch_queued = False
        event, self._event = self._event, None
        if not self.stopped:
            await self._fetch(event)

    async def _fetch(self, event: WatchedEvent | None) -> None:
        raise NotImplementedError

    def _call(self, *args: Any) -> None:
        func = self._func
        if func is None:
            return
        try:
            keep_going = func(*args)
        finally:
            if not self.started.called:
                self.started.callback(None)
        if keep_going is False:
            self.stop()


class DataWatch(_NodeWatch):
    """Calls ``func(data, stat)`` (or ``func(data, stat, event)``) now and whenever the node changes.

    ``data`` and ``stat`` are None while the node does not exist; ``event``
    is the WatchedEvent behind the call, None for the first call and after a
    reconnect. The function is called again only when the node's mzxid moved
    (or it appeared or vanished).
    """

    def __init__(self, client: ZooKeeperClient, path: str, func: Callable[..., object] | None = None) -> None:
        self._mzxid: int | None = None
        self._ever_called = False
        self._with_event = False
        super().__init__(client, path, func)

    def __call__(self, func: Callable[..., object]) -> Callable[..., object]:
        self._with_event = _takes_event(func, 2)
        return super().__call__(func)

    async def _fetch(self, event: WatchedEvent | None) -> None:
        data: bytes | None = None
        stat: ZnodeStat | None = None
        while True:
            try:
                data, stat = await self.client.get(self.path, watch=self._watcher)
                break
            except NoNodeError:
                if await self.client.exists(self.path, watch=self._watcher) is None:
                    data = stat = None
                    break  # gone, and watched for its creation; else created meanwhile: read it
        mzxid = stat.mzxid if stat is not None else None
        if self._ever_called and mzxid == self._mzxid:
            return
        self._mzxid, self._ever_called = mzxid, True
        self._call(data, stat, event) if self._with_event else self._call(data, stat)


class ChildrenWatch(_NodeWatch):
    """Calls ``func(children)`` (or ``func(children, event)`` with ``send_event``) now and on every change.

    ``children`` is the list of names, or None while the node does not exist
    (kazoo stops the watch instead; here it goes on and reports the node's
    children once it is created again). The function is called again only
    when the list differs. With ``allow_session_lost=False`` the watch stops
    when the session is lost, as kazoo's does.
    """

    def __init__(self, client: ZooKeeperClient, path: str, func: Callable[..., object] | None = None,
                 allow_session_lost: bool = True, send_event: bool = False) -> None:
        self._prior: list[str] | None = None
        self._ever_called = False
        self._send_event = send_event
        self._allow_session_lost = allow_session_lost
        super().__init__(client, path, func)

    def _on_state(self, state: KazooState) -> None:
        if state is KazooState.LOST and not self._allow_session_lost:
            self.stop()
        super()._on_state(state)

    async def _fetch(self, event: WatchedEvent | None) -> None:
        children: list[str] | None
        while True:
            try:
                children = sorted(await self.client.get_children(self.path, watch=self._watcher))
                break
            except NoNodeError:
                if await self.client.exists(self.path, watch=self._watcher) is None:
                    children = None
                    break
        if self._ever_called and children == self._prior:
            return
        self._prior, self._ever_called = children, True
        self._call(children, event) if self._send_event else self._call(children)
