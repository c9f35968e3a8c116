# -*- test-case-name: tests.unit.test_binding -*-
"""
Ports that must be bound for a peer to be of any use, or the process ends.

A peer that cannot listen must not half-serve: 3.8's election listener
retries its bind once a second, ``electionPortBindRetry`` times in all (0:
forever), then exits with code 14 so that a supervisor restarts it.
:class:`PortBinder` does the same on the reactor, and :func:`bind_or_exit`
gives up at once for a port with no retry budget.  Either logs one clear
line before it exits.
"""
from __future__ import annotations

from collections.abc import Callable
from typing import Any

from twisted.internet.error import CannotListenError
from twisted.internet.interfaces import IDelayedCall, IReactorTime
from twisted.logger import Logger

log = Logger()

#: 3.8's ExitCode.UNABLE_TO_BIND_QUORUM_PORT.
UNABLE_TO_BIND_QUORUM_PORT = 14
#: Between two attempts, as in 3.8.
RETRY_INTERVAL_S = 1.0


class StartupError(SystemExit):
    """The server cannot start; the message says why, and the process exits 1."""


def cannot_listen(error: CannotListenError) -> str:
    return f"{error.interface or '0.0.0.0'}:{error.port}: {error.socketError}"


def bind_at_startup(listen: Callable[[], Any], what: str) -> None:
    """Bind before the reactor runs, or stop startup with one line (no traceback)."""
    try:
        listen()
    except CannotListenError as e:
        log.critical("Cannot listen for {what} on {address}", what=what, address=cannot_listen(e))
        raise StartupError(f"zabd: cannot listen for {what} on {cannot_listen(e)}") from None


def bind_or_exit(listen: Callable[[], Any], what: str, halt: Callable[[int], None]) -> None:
    """Bind now, or log one line and exit with 3.8's code."""
    try:
        listen()
    except CannotListenError as e:
        log.critical("Exiting: cannot listen for {what} on {address}", what=what, address=cannot_listen(e))
        halt(UNABLE_TO_BIND_QUORUM_PORT)


class PortBinder:
    """
    Binds with ``listen``, retrying each second up to ``attempts`` times in all (0: forever).

    :param halt: called with 14 once the attempts are spent.
    """

    def __init__(self, listen: Callable[[], Any], what: str, attempts: int, clock: IReactorTime,
                 halt: Callable[[int], None]) -> None:
        self._listen = listen
        self._what = what
        self._attempts = attempts
        self._clock = clock
        self._halt = halt
        self._retry: IDelayedCall | None = None
        self.bound = False

    def start(self) -> None:
        self._attempt(1)

    def stop(self) -> None:
        if self._retry is not None and self._retry.active():
            self._retry.cancel()
        self._retry = None

    def _attempt(self, number: int) -> None:
        self._retry = None
        try:
            self._listen()
        except CannotListenError as e:
            if self._attempts == 0 or number < self._attempts:
                budget = "unlimited" if self._attempts == 0 else str(self._attempts)
                log.error("Cannot listen for {what} on {address} (attempt {number} of {budget}); "
                          "trying again in {interval} s", what=self._what, address=cannot_listen(e),
                          number=number, budget=budget, interval=RETRY_INTERVAL_S)
                self._retry = self._clock.callLater(RETRY_INTERVAL_S, self._attempt, number + 1)
                return
            log.critical("Exiting: cannot listen for {what} on {address} after {number} attempts "
                         "(electionPortBindRetry sets how many)", what=self._what, address=cannot_listen(e),
                         number=number)
            self._halt(UNABLE_TO_BIND_QUORUM_PORT)
            return
        self.bound = True
