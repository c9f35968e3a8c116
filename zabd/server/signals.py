# -*- test-case-name: tests.unit.test_signals -*-
"""SIGTERM and SIGINT handled on the reactor thread, not inside the signal handler.

Twisted's reactor handles SIGTERM with ``reactor.sigTerm``, which logs
"Received SIGTERM, shutting down." from inside the Python signal handler.
That handler runs in the main thread, between two bytecodes of whatever the
main thread was doing, and logging takes the lock of twistd's log file
(``twisted.python.threadable.synchronize`` on ``LogFile.write``). That lock is
the pure-Python ``threading._RLock``, which takes its raw lock and records
its owner in two steps. When the signal lands while the main thread is in
that lock's ``acquire`` and a pool thread is logging too (zabd's txn log
writer logs from its thread), the handler and the pool thread both wait on
the raw lock for good, and the peer never exits. kazoo's harness stops peers
with SIGTERM and waits for them, so a hung peer hung the test
(test_read_only, then the class teardown) until pytest-timeout failed it.
A small twistd-style program whose main thread and one pool thread log
hung on 21 of 60 SIGTERMs; none of 40 hung with Twisted's handler run from
the reactor loop instead (nor with the C RLock, nor with only the main
thread logging).

:func:`run_signal_handlers_in_reactor` keeps Twisted's handlers and their
effects (the log line, ``reactor.stop``, the exit status twistd takes from
the signal) but makes the handler itself only schedule them with
``callFromThread``, which appends to a list and writes to the waker pipe,
taking no lock.
"""
from __future__ import annotations

import signal
from collections.abc import Callable
from functools import partial
from types import FrameType
from typing import Any, Protocol

from twisted.logger import Logger

log = Logger()

#: The signals Twisted's reactor installs Python handlers for (SIGBREAK is Windows-only).
HANDLED = (signal.SIGTERM, signal.SIGINT)


class _CallsFromThread(Protocol):
    def callFromThread(self, f: Callable[..., Any], *args: object, **kwargs: object) -> None: ...


def run_signal_handlers_in_reactor(reactor: _CallsFromThread) -> None:
    """
    Wrap the reactor's own handlers for :data:`HANDLED` (others, such as a
    debugger's SIGINT handler, stay as they are) so that each runs on the
    reactor thread. Call it once the reactor has installed them
    (``reactor.callWhenRunning``), in the main thread.
    """
    for signum in HANDLED:
        handler = signal.getsignal(signum)
        if callable(handler) and getattr(handler, "__self__", None) is reactor:
            signal.signal(signum, partial(_schedule, reactor, handler))
    log.debug("Signal handlers run on the reactor thread: {signals}",
              signals=", ".join(s.name for s in HANDLED))


def _schedule(reactor: _CallsFromThread, handler: Callable[[int, FrameType | None], Any],
              signum: int, frame: FrameType | None) -> None:
    # Inside a signal handler: no logging, no locks; the frame is not kept.
    reactor.callFromThread(handler, signum, None)
