# -*- test-case-name: tests.unit.test_ensemble_sim -*-
"""A learner's attempts to reach its leader's quorum port (3.8's Learner.connectToLeader).

The leader may not listen yet (it decided later than this peer did), or may
turn a connection away before it leads: the learner dials again every
100 ms until initLimit runs out, then gives the role up.
"""
from __future__ import annotations

from collections.abc import Callable

from zabd.ensemble.transport import Cancellable, QuorumNetwork, Scheduler, Stream

#: Between a learner's attempts to reach its leader (3.8's leaderConnectDelayDuringRetryMs).
CONNECT_RETRY_MS = 100


class LeaderDial:
    """Dial ``sid`` until a connection is made, the deadline passes, or :meth:`cancel`."""

    def __init__(self, quorum: QuorumNetwork, scheduler: Scheduler, clock: Callable[[], int], sid: int,
                 give_up_ms: int, connected: Callable[[Stream], None], gave_up: Callable[[str], None]) -> None:
        self._quorum = quorum
        self._scheduler = scheduler
        self._clock = clock
        self.sid = sid
        self._give_up_ms = give_up_ms
        self._connected = connected
        self._gave_up = gave_up
        self._timer: Cancellable | None = None
        self._cancelled = False

    def start(self) -> None:
        self._dial()

    def retry(self) -> None:
        """Dial again after the retry delay, unless the deadline has passed."""
        if self._clock() >= self._give_up_ms:
            self._gave_up(f"cannot reach leader {self.sid}")
        else:
            self._timer = self._scheduler.call_later(CONNECT_RETRY_MS, self._dial)

    def cancel(self) -> None:
        """The role is over: a connection made from now on is closed at once."""
        self._cancelled = True
        if self._timer is not None:
            self._timer.cancel()  # a scheduler's cancel accepts a call that has already run

    def _dial(self) -> None:
        def connected(stream: Stream) -> None:
            if self._cancelled:
                stream.close()
            else:
                self._connected(stream)

        def failed() -> None:
            if not self._cancelled:
                self.retry()

        self._quorum.connect(self.sid, connected, failed)
