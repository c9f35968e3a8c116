# -*- test-case-name: tests.unit.test_request_throttle -*-
"""ZooKeeper 3.8's RequestThrottler, sans-IO: client requests wait while too many are in process.

Every request a server takes from its clients (and the createSession and
expiry closeSession it makes for them) passes through here on its way to
the processor chain. With ``request_throttle_max_requests`` at 0, the
default, each goes straight on. Otherwise requests queue in arrival order,
and the head goes on only while fewer than that many client requests are in
process (``ServerStats.in_process``). Until then the throttler waits; a
wait ends when a request in process is answered, or after
``request_throttle_stall_time``. Each wait counts
``request_throttle_wait_count``.

A request is stale when its connection has closed (or, with
``request_stale_latency_check``, when it is older than its session
timeout); a closeSession never is. With ``request_throttle_drop_stale``, a
stale request at the head of a throttled queue is dropped: its connection
is closed and marked invalid, and its later requests are dropped with it,
so that nothing is answered out of order.

3.8 runs this as a thread woken by the final processor. Here the wake-up is
a call scheduled 0 ms ahead, never a nested call: the final stage is in the
middle of answering one request when another leaves the queue, and that
other's reply must not overtake it.
"""
from __future__ import annotations

from collections import deque
from typing import Callable, Protocol

from twisted.logger import Logger

from zabd.jute.opcodes import OpCode
from zabd.metrics.server import ServerMetrics
from zabd.pipeline.request import Client, Request
from zabd.pipeline.stats import ServerStats
from zabd.config.overload_settings import RequestThrottleSettings

log = Logger()

#: Requests the throttled-op rule never answers THROTTLEDOP (3.8's Request.isThrottlable).
_NOT_THROTTLABLE = frozenset({OpCode.ping, OpCode.closeSession, OpCode.createSession})


class Cancellable(Protocol):
    """A scheduled call that can be called off."""

    def cancel(self) -> None: ...


class Scheduler(Protocol):
    """Calls a function later (zabd.server.quorum_port.ReactorScheduler on a reactor or a Clock)."""

    def call_later(self, delay_ms: int, fn: Callable[[], object]) -> Cancellable: ...


class RequestThrottler:
    """
    The queue in front of one server's processor chain.

    :param settings: the throttle's settings.
    :param submit_now: where a request goes once it may (the server's ``submit``).
    :param stats: the server's counters (``in_process``, ``queued``).
    :param metrics: the process's metrics.
    :param now_ms: the server clock, in milliseconds.
    :param scheduler: for the stall timeout and the wake-up; needed when throttling is on.
    """

    def __init__(self, settings: RequestThrottleSettings, submit_now: Callable[[Request], None],
                 stats: ServerStats, metrics: ServerMetrics, now_ms: Callable[[], float],
                 scheduler: Scheduler | None = None) -> None:
        if settings.max_requests > 0 and scheduler is None:
            raise ValueError("request throttling needs a scheduler")
        self.settings = settings
        self._max = settings.max_requests
        self._submit_now = submit_now
        self._stats = stats
        self._metrics = metrics
        self._now_ms = now_ms
        self._scheduler = scheduler
        self._queue_time = metrics.request_throttle_queue_time
        #: Waiting requests, with when each was queued.
        self._queue: deque[tuple[Request, float]] = deque()
        #: Connections a drop made invalid; their queued requests are dropped too.
        self._invalid: set[Client] = set()
        self._waiting = False
        self._stall: Cancellable | None = None
        self._wake_call: Cancellable | None = None
        self.stopped = False
        if self._max > 0:
            stats.on_in_process_fell = self._in_process_fell

    @property
    def inflight(self) -> int:
        """Requests waiting here (3.8's getInflight)."""
        return len(self._queue)

    def submit(self, request: Request) -> None:
        """Take one request; it reaches the chain now or once the server is below the limit."""
        if self.stopped:
            self._drop(request)
            return
        if self._max <= 0:
            # Throttling is off: nothing waits, so the queue stays empty, the
            # request leaves as it arrives (0 ms queued, too soon to be stale
            # or throttled), and nobody needs the count in process.
            self._queue_time.add(0)
            self._submit_now(request)
            return
        self._queue.append((request, self._now_ms()))
        if self._waiting:
            self._sync_queued()
        else:
            self._run()

    def stop(self) -> None:
        """The server is going away: drop whatever waits, and anything submitted from now on."""
        self.stopped = True
        self._cancel_calls()
        self._waiting = False
        dropped = 0
        while self._queue:
            request, _ = self._queue.popleft()
            self._drop(request)
            dropped += 1
        self._invalid.clear()
        self._sync_queued()
        if dropped:
            log.info("Request throttler stopped: dropped {dropped} requests", dropped=dropped)

    def is_stale(self, request: Request, now_ms: float) -> bool:
        """3.8's Request.isStale."""
        client = request.client
        if client is None or request.type == OpCode.closeSession:
            return False
        settings = self.settings
        if settings.stale_connection_check and (not client.connected or client in self._invalid):
            return True
        # Only a client connection has a session timeout (a sync a learner forwarded has none).
        timeout = getattr(client, "timeout", None) if settings.stale_latency_check else None
        return timeout is not None and now_ms - request.received_ms > timeout

    # -- the loop ---------------------------------------------------------------

    def _run(self) -> None:
        """Pass requests on from the head until the queue is empty or the head must wait.

        Re-entry is safe: a request passed on may make its connection submit
        more (a session's held requests), which join the tail and are taken
        by whichever call of this loop sees them first.
        """
        queue = self._queue
        settings = self.settings
        stats = self._stats
        while queue and not self._waiting and not self.stopped:
            request, queued = queue[0]
            client = request.client
            if client is not None and client in self._invalid:
                # An earlier request of this connection was dropped: so is this one.
                queue.popleft()
                self._stats.request_finished(request)
                continue
            now = self._now_ms()
            if settings.drop_stale and self.is_stale(request, now):
                queue.popleft()
                self._drop(request)
                self._metrics.stale_requests_dropped.add()
                continue
            if stats.in_process >= self._max:
                self._wait()
                break
            queue.popleft()
            self._issue(request, queued, now)
        if not queue:
            self._invalid.clear()
        self._sync_queued()

    def _issue(self, request: Request, queued_ms: float, now: float) -> None:
        metrics = self._metrics
        if self.is_stale(request, now):
            metrics.stale_requests.add()
        waited = int(now - queued_ms)
        metrics.request_throttle_queue_time.add(waited)
        wait_limit = self.settings.throttled_op_wait_time_ms
        if 0 < wait_limit < waited and request.type not in _NOT_THROTTLABLE:
            request.throttled = True
            metrics.throttled_ops.add()
        if request.client is not None:
            request.in_process = True
            self._stats.in_process += 1
        self._submit_now(request)

    def _drop(self, request: Request) -> None:
        """3.8's dropRequest: the connection is closed and invalid; what the request held is given back."""
        client = request.client
        if client is not None:
            self._invalid.add(client)
            if client.connected:
                log.debug("Dropping a stale request of session 0x{session:x}: closing its connection",
                          session=request.session_id)
                client.close()
        self._stats.request_finished(request)

    # -- waiting ----------------------------------------------------------------

    def _wait(self) -> None:
        self._metrics.request_throttle_wait_count.add()
        self._waiting = True
        stall = self.settings.stall_time_ms
        if stall > 0:
            assert self._scheduler is not None
            self._stall = self._scheduler.call_later(stall, self._wake)

    def _in_process_fell(self) -> None:
        """A request in process was answered (3.8's throttleWake); look at the head on the next turn."""
        if self._waiting and self._wake_call is None:
            assert self._scheduler is not None
            self._wake_call = self._scheduler.call_later(0, self._wake)

    def _wake(self) -> None:
        self._cancel_calls()
        if self._waiting:
            self._waiting = False
            self._run()

    def _cancel_calls(self) -> None:
        for call in (self._stall, self._wake_call):
            if call is not None:
                call.cancel()
        self._stall = self._wake_call = None

    def _sync_queued(self) -> None:
        queued = len(self._queue)
        if queued != self._stats.queued:
            self._stats.queue_changed(queued)
