# -*- test-case-name: tests.unit.test_ensemble_sim -*-
"""Fast Leader Election's effects carried out: notifications sent, the one timer armed, decisions reported.

:class:`~zabd.election.fle.FastLeaderElection` decides and returns effects;
this runs them on the election links and the peer's scheduler, through a
table, and tells the peer of a decision or of a newer config some peer sent.
"""
from __future__ import annotations

from collections.abc import Callable
from typing import Any

from twisted.logger import Logger

from zabd.election.fle import FastLeaderElection
from zabd.election.links import ElectionNetwork
from zabd.election.messages import ElectionWireError, PeerState, parse_notification
from zabd.election.votes import ArmTimer, Decided, Effect, NewerConfig, ReconnectAll, Send, Vote
from zabd.ensemble.transport import Cancellable, Scheduler
from zabd.membership.verifier import QuorumVerifier, verifier_from_text

log = Logger(namespace="zabd.ensemble.peer")  # its lines read as the peer's


class ElectionDriver:
    """One peer's FLE on its links and timer.

    :param decided: told of the election's outcome.
    :param newer_config: told of a readable newer config from a notification (the peer looks again).
    """

    def __init__(self, fle: FastLeaderElection, links: ElectionNetwork, scheduler: Scheduler,
                 clock: Callable[[], int], decided: Callable[[PeerState, Vote], None],
                 newer_config: Callable[[QuorumVerifier], None]) -> None:
        self.fle = fle
        self.links = links
        self._scheduler = scheduler
        self._clock = clock
        self._decided = decided
        self._newer_config = newer_config
        self._timer: Cancellable | None = None
        self.stopped = False

    def look(self, last_zxid: int, epoch: int) -> None:
        self._run(self.fle.look(self._clock(), last_zxid, epoch))

    def message(self, sid: int, payload: bytes) -> None:
        try:
            notification = parse_notification(payload)
        except ElectionWireError as e:
            log.warn("Dropping a notification from {sid}: {error}", sid=sid, error=str(e))
            return
        self._run(self.fle.receive(self._clock(), sid, notification))

    def cancel_timer(self) -> None:
        if self._timer is not None:
            self._timer.cancel()  # a scheduler's cancel accepts a call that has already run

    def _timeout(self) -> None:
        self._timer = None
        if not self.stopped:
            self._run(self.fle.timer_fired(self._clock(), self.links.any_delivered()))

    def _run(self, effects: list[Effect]) -> None:
        for effect in effects:
            _EFFECTS[type(effect)](self, effect)

    def _send(self, effect: Send) -> None:
        self.links.send(effect.sid, effect.notification.encode())

    def _arm(self, effect: ArmTimer) -> None:
        self.cancel_timer()
        self._timer = self._scheduler.call_later(effect.delay_ms, self._timeout)

    def _reconnect(self, effect: ReconnectAll) -> None:
        self.links.connect_all()

    def _settle(self, effect: Decided) -> None:
        self.cancel_timer()
        self._decided(effect.state, effect.vote)

    def _config(self, effect: NewerConfig) -> None:
        try:
            verifier = verifier_from_text(effect.config)
        except ValueError as e:
            log.warn("Peer {sid} sent a config I cannot read: {error}", sid=effect.sid, error=str(e))
            return
        self.cancel_timer()
        self._newer_config(verifier)


#: What the driver does with each of FLE's effects.
_EFFECTS: dict[type, Callable[[ElectionDriver, Any], None]] = {
    Send: ElectionDriver._send,
    ArmTimer: ElectionDriver._arm,
    ReconnectAll: ElectionDriver._reconnect,
    Decided: ElectionDriver._settle,
    NewerConfig: ElectionDriver._config,
}
