"""The reactor's SIGTERM/SIGINT handlers run from the reactor loop, never inside the signal handler."""
from __future__ import annotations

import signal
from collections.abc import Callable, Iterator
from types import FrameType
from typing import Any

import pytest

from zabd.server.signals import HANDLED, run_signal_handlers_in_reactor


class FakeReactor:
    """Twisted's reactor as far as signals go: its handlers are its own bound methods."""

    def __init__(self) -> None:
        self.handled: list[tuple[int, FrameType | None]] = []
        self.queued: list[tuple[Callable[..., Any], tuple[object, ...]]] = []

    def sigTerm(self, number: int, frame: FrameType | None = None) -> None:
        self.handled.append((number, frame))

    def sigInt(self, number: int, frame: FrameType | None = None) -> None:
        self.handled.append((number, frame))

    def callFromThread(self, f: Callable[..., Any], *args: object, **kwargs: object) -> None:
        self.queued.append((f, args))

    def run_queued(self) -> None:
        queued, self.queued = self.queued, []
        for f, args in queued:
            f(*args)


@pytest.fixture
def restore_handlers() -> Iterator[None]:
    saved = {signum: signal.getsignal(signum) for signum in HANDLED}
    try:
        yield
    finally:
        for signum, handler in saved.items():
            signal.signal(signum, handler)


@pytest.mark.usefixtures("restore_handlers")
@pytest.mark.parametrize("signum", HANDLED)
def test_the_signal_only_schedules_the_reactors_handler(signum: signal.Signals) -> None:
    reactor = FakeReactor()
    signal.signal(signal.SIGTERM, reactor.sigTerm)
    signal.signal(signal.SIGINT, reactor.sigInt)
    run_signal_handlers_in_reactor(reactor)

    signal.raise_signal(signum)

    # Nothing ran in the handler (Twisted's would log there): it is queued for the loop.
    assert reactor.handled == []
    assert len(reactor.queued) == 1
    reactor.run_queued()
    assert reactor.handled == [(signum, None)]


@pytest.mark.usefixtures("restore_handlers")
def test_handlers_that_are_not_the_reactors_stay() -> None:
    reactor = FakeReactor()
    seen: list[int] = []

    def debugger(number: int, frame: FrameType | None) -> None:
        seen.append(number)

    signal.signal(signal.SIGINT, debugger)
    signal.signal(signal.SIGTERM, signal.SIG_DFL)
    run_signal_handlers_in_reactor(reactor)

    assert signal.getsignal(signal.SIGINT) is debugger
    assert signal.getsignal(signal.SIGTERM) is signal.SIG_DFL
    signal.raise_signal(signal.SIGINT)
    assert (seen, reactor.queued) == ([signal.SIGINT], [])
