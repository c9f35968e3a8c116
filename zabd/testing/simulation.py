# -*- test-case-name: tests.unit.test_simulation -*-
"""Virtual time for a deterministic in-process ensemble.

A :class:`Simulation` owns the clock (integer milliseconds), one queue of
pending calls and the one ``random.Random(seed)`` every other part of the
world draws from, so a scenario replays exactly from its seed. Calls due at
the same millisecond run in the order they were scheduled. Nothing here
reads real time or sleeps: time moves only when the next call is due.

Every callback runs from the queue, as from a reactor, never nested inside
the call that scheduled it. A :class:`Scope` groups the calls of one node's
process so that a crash cancels them all, and :class:`SimClock` is the
IReactorTime face of either, for code written against a Twisted clock.
"""
from __future__ import annotations

import heapq
import random
from collections import deque
from typing import Any, Callable

from twisted.internet.error import AlreadyCalled, AlreadyCancelled
from twisted.internet.interfaces import IDelayedCall, IReactorTime
from zope.interface import implementer

#: Calls that may run at one instant before the simulation calls itself stuck.
DEFAULT_STEP_LIMIT = 1_000_000
DEFAULT_TRACE_LIMIT = 100_000


class SimulationStuck(Exception):
    """Too many calls ran without time moving: something re-schedules itself at delay 0 forever."""


def seconds_to_ms(seconds: float) -> int:
    """A Twisted delay in seconds as whole virtual milliseconds (rounded, never negative)."""
    return max(0, round(seconds * 1000))


@implementer(IDelayedCall)
class Handle:
    """One pending call; an IDelayedCall, so Twisted code may cancel, delay or reset it.

    ``cancel`` of a call that already ran or was cancelled does nothing (what
    the sans-IO schedulers expect), except on handles made through
    :class:`SimClock`, which raise AlreadyCalled/AlreadyCancelled as Twisted's do.
    """

    __slots__ = ("_sim", "time_ms", "_seq", "_fn", "_args", "_kwargs", "_owner", "cancelled", "called", "strict")

    def __init__(
        self, sim: Simulation, time_ms: int, fn: Callable[..., object], args: tuple[Any, ...],
        kwargs: dict[str, Any], owner: dict[int, Handle] | None,
    ) -> None:
        self._sim = sim
        self.time_ms = time_ms
        self._seq = 0
        self._fn = fn
        self._args = args
        self._kwargs = kwargs
        self._owner = owner
        self.cancelled = False
        self.called = False
        self.strict = False

    @property
    def description(self) -> str:
        # The function's name only: reprs of arguments may hold memory addresses, which differ per run.
        return getattr(self._fn, "__qualname__", type(self._fn).__name__)

    def active(self) -> bool:
        return not (self.cancelled or self.called)

    def cancel(self) -> None:
        if not self.active():
            if self.strict:
                raise AlreadyCalled(self) if self.called else AlreadyCancelled(self)
            return
        self.cancelled = True
        self._forget()

    def getTime(self) -> float:
        return self.time_ms / 1000

    def delay(self, secondsLater: float) -> None:
        self._move(self.time_ms + seconds_to_ms(secondsLater))

    def reset(self, secondsFromNow: float) -> None:
        self._move(self._sim.now_ms + seconds_to_ms(secondsFromNow))

    def _move(self, time_ms: int) -> None:
        if not self.active():
            raise AlreadyCalled(self) if self.called else AlreadyCancelled(self)
        self._sim._push(self, time_ms)

    def _run(self) -> None:
        self.called = True
        self._forget()
        self._fn(*self._args, **self._kwargs)

    def _forget(self) -> None:
        if self._owner is not None:
            self._owner.pop(id(self), None)

    def __repr__(self) -> str:
        state = "called" if self.called else "cancelled" if self.cancelled else "pending"
        return f"<Handle {self.description} at {self.time_ms}ms {state}>"


class Simulation:
    """Virtual time, the call queue, the RNG and the trace of one simulated world."""

    def __init__(
        self, seed: int, *, trace_events: bool = False, trace_limit: int = DEFAULT_TRACE_LIMIT,
        step_limit: int = DEFAULT_STEP_LIMIT,
    ) -> None:
        self.seed = seed
        self.rng = random.Random(seed)
        #: (virtual ms, what happened): the newest ``trace_limit`` entries, to print when a test fails.
        self.trace: deque[tuple[int, str]] = deque(maxlen=trace_limit)
        self.trace_events = trace_events
        self.step_limit = step_limit
        self.clock = SimClock(self)
        self._now_ms = 0
        self._queue: list[tuple[int, int, Handle]] = []
        self._seq = 0
        self._calls_this_instant = 0

    @property
    def now_ms(self) -> int:
        return self._now_ms

    def note(self, description: str) -> None:
        """Add a line to the trace at the current time."""
        self.trace.append((self._now_ms, description))

    def format_trace(self, last: int | None = None) -> str:
        entries = list(self.trace)[-last:] if last else list(self.trace)
        return "\n".join(f"{time_ms:>9}ms  {description}" for time_ms, description in entries)

    def call_later(self, delay_ms: int, fn: Callable[..., object], *args: Any) -> Handle:
        return self._schedule(delay_ms, fn, args, {}, None)

    def call_at(self, time_ms: int, fn: Callable[..., object], *args: Any) -> Handle:
        """Schedule at absolute virtual time ``time_ms`` (not before now)."""
        return self._schedule(max(0, time_ms - self._now_ms), fn, args, {}, None)

    def scope(self, name: str) -> Scope:
        """A group of calls (one node's process) that :meth:`Scope.kill` cancels at once."""
        return Scope(self, name)

    def _schedule(
        self, delay_ms: int, fn: Callable[..., object], args: tuple[Any, ...], kwargs: dict[str, Any],
        owner: dict[int, Handle] | None,
    ) -> Handle:
        if delay_ms < 0:
            raise ValueError(f"negative delay {delay_ms}ms")
        handle = Handle(self, self._now_ms + delay_ms, fn, args, kwargs, owner)
        if owner is not None:
            owner[id(handle)] = handle
        self._push(handle, handle.time_ms)
        return handle

    def _push(self, handle: Handle, time_ms: int) -> None:
        # A moved handle gets a new sequence number; its old queue entry is then stale and skipped.
        self._seq += 1
        handle.time_ms = max(time_ms, self._now_ms)
        handle._seq = self._seq
        heapq.heappush(self._queue, (handle.time_ms, self._seq, handle))

    def next_time_ms(self) -> int | None:
        """When the next pending call is due, or None when nothing is pending."""
        queue = self._queue
        while queue:
            time_ms, seq, handle = queue[0]
            if handle._seq == seq and handle.active():
                return time_ms
            heapq.heappop(queue)
        return None

    def pending(self) -> list[Handle]:
        """Every active call, in the order they will run."""
        live = [(t, s, h) for t, s, h in self._queue if h._seq == s and h.active()]
        return [h for _, _, h in sorted(live, key=lambda entry: entry[:2])]

    def step(self) -> bool:
        """Run the next pending call, moving time to it; False when nothing is pending."""
        time_ms = self.next_time_ms()
        if time_ms is None:
            return False
        _, _, handle = heapq.heappop(self._queue)
        if time_ms == self._now_ms:
            self._calls_this_instant += 1
            if self._calls_this_instant > self.step_limit:
                raise SimulationStuck(f"more than {self.step_limit} calls at {time_ms}ms; last: {handle!r}")
        else:
            self._now_ms = time_ms
            self._calls_this_instant = 1
        if self.trace_events:
            self.note(f"run {handle.description}")
        handle._run()
        return True

    def run_for(self, ms: int) -> None:
        """Run every call due within the next ``ms`` milliseconds; time then stands ``ms`` later."""
        end = self._now_ms + ms
        while (due := self.next_time_ms()) is not None and due <= end:
            self.step()
        self._now_ms = max(self._now_ms, end)

    def run_until(self, predicate: Callable[[], bool], deadline_ms: int) -> bool:
        """Run calls until ``predicate()`` holds (True) or virtual time ``deadline_ms`` is reached.

        The deadline is absolute virtual time (``sim.now_ms + 5000`` for "within 5 s"); when it
        passes first, time stands at the deadline and the predicate's last answer is returned.
        """
        if predicate():
            return True
        while (due := self.next_time_ms()) is not None and due <= deadline_ms:
            self.step()
            if predicate():
                return True
        self._now_ms = max(self._now_ms, deadline_ms)
        return predicate()


class Scope:
    """The calls of one node's process: :meth:`kill` (a crash) cancels every one still pending."""

    def __init__(self, sim: Simulation, name: str) -> None:
        self.sim = sim
        self.name = name
        self.alive = True
        self.clock = SimClock(sim, self)
        self._handles: dict[int, Handle] = {}

    @property
    def rng(self) -> random.Random:
        return self.sim.rng

    @property
    def now_ms(self) -> int:
        return self.sim.now_ms

    def call_later(self, delay_ms: int, fn: Callable[..., object], *args: Any) -> Handle:
        return self.schedule(delay_ms, fn, args, {})

    def schedule(
        self, delay_ms: int, fn: Callable[..., object], args: tuple[Any, ...], kwargs: dict[str, Any],
    ) -> Handle:
        handle = self.sim._schedule(delay_ms, fn, args, kwargs, self._handles)
        if not self.alive:  # a dead process schedules nothing; callers still get a handle
            handle.cancel()
        return handle

    def pending(self) -> list[Handle]:
        return [handle for handle in self.sim.pending() if id(handle) in self._handles]

    def kill(self) -> None:
        """Cancel every pending call of this scope; later calls are cancelled as they are made."""
        self.alive = False
        for handle in list(self._handles.values()):
            handle.cancel()
        self.sim.note(f"{self.name}: killed")


@implementer(IReactorTime)
class SimClock:
    """IReactorTime over a Simulation (or one Scope of it): seconds are virtual ms / 1000."""

    def __init__(self, sim: Simulation, scope: Scope | None = None) -> None:
        self._sim = sim
        self._scope = scope

    def seconds(self) -> float:
        return self._sim.now_ms / 1000

    def callLater(self, delay: float, callable: Callable[..., Any], *args: object, **kw: object) -> IDelayedCall:
        if self._scope is not None:
            handle = self._scope.schedule(seconds_to_ms(delay), callable, args, kw)
        else:
            handle = self._sim._schedule(seconds_to_ms(delay), callable, args, kw, None)
        handle.strict = True
        return handle

    def getDelayedCalls(self) -> list[IDelayedCall]:
        return list(self._scope.pending() if self._scope is not None else self._sim.pending())
