"""Ports a peer cannot do without: bound, retried each second, or the process exits with 3.8's code."""
from __future__ import annotations

import pytest
from twisted.internet.error import CannotListenError
from twisted.internet.task import Clock

from zabd.server.binding import (
    UNABLE_TO_BIND_QUORUM_PORT, PortBinder, StartupError, bind_at_startup, bind_or_exit,
)


class Listener:
    """Fails its first ``failures`` binds, as a port someone else holds."""

    def __init__(self, failures: int) -> None:
        self.failures = failures
        self.calls = 0

    def __call__(self) -> None:
        self.calls += 1
        if self.calls <= self.failures:
            raise CannotListenError("127.0.0.1", 3888, OSError(98, "Address already in use"))


@pytest.mark.parametrize("attempts", [1, 3, 5])
def test_the_binder_exits_with_code_14_once_its_attempts_are_spent(attempts: int) -> None:
    clock, exits, listen = Clock(), [], Listener(failures=1000)
    binder = PortBinder(listen, "elections", attempts, clock, exits.append)
    binder.start()
    if attempts > 1:
        clock.pump([1] * (attempts - 2))
        assert exits == [] and listen.calls == attempts - 1
        clock.advance(1)
    assert (exits, listen.calls, binder.bound) == ([UNABLE_TO_BIND_QUORUM_PORT], attempts, False)
    assert clock.getDelayedCalls() == []


def test_a_port_freed_in_time_is_bound() -> None:
    clock, exits, listen = Clock(), [], Listener(failures=2)
    binder = PortBinder(listen, "elections", 3, clock, exits.append)
    binder.start()
    clock.pump([1, 1])
    assert (binder.bound, exits, listen.calls) == (True, [], 3)


def test_zero_attempts_means_forever_and_stop_cancels() -> None:
    clock, exits, listen = Clock(), [], Listener(failures=1000)
    binder = PortBinder(listen, "elections", 0, clock, exits.append)
    binder.start()
    clock.pump([1] * 50)
    assert exits == [] and listen.calls == 51
    binder.stop()
    assert clock.getDelayedCalls() == []


def test_a_port_without_retries_exits_at_once() -> None:
    exits: list[int] = []
    bind_or_exit(Listener(failures=1), "learners", exits.append)
    assert exits == [UNABLE_TO_BIND_QUORUM_PORT]
    bind_or_exit(Listener(failures=0), "learners", exits.append)
    assert exits == [UNABLE_TO_BIND_QUORUM_PORT]


def test_startup_binds_fail_with_one_line() -> None:
    with pytest.raises(StartupError, match=r"^zabd: cannot listen for clients on 127.0.0.1:3888: "):
        bind_at_startup(Listener(failures=1), "clients")
