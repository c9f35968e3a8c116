# -*- test-case-name: tests.unit.test_zab_learnerhandler -*-
"""What a leader's learners ask of the server that answers clients (3.8's LeaderZooKeeperServer).

Learners forward their clients' write requests (REQUEST), ask whether a
session that moved to them is still alive (REVALIDATE) and report the
sessions their clients touched (PING). Only the leader's client-facing
server can answer, and it lives shorter than the leader: it starts once
the leader serves and ends with it. So the leader is constructed with a
``ServingHooks``, which answers as a leader without a server does (drop
the request, the session is not valid, ignore the touches) until the
server, when it starts, hands it its ``LeaderHooks`` with ``serve``.
"""
from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from zabd.jute.records import Id
from zabd.quorum.learnerhandler import LearnerHandler
from zabd.quorum.packets import RequestForward


def _drop(handler: LearnerHandler, forward: RequestForward, auth: list[Id]) -> None:
    pass


def _not_valid(handler: LearnerHandler, session_id: int, timeout_ms: int) -> bool:
    return False


def _ignore(touches: list[tuple[int, int]]) -> None:
    pass


@dataclass(frozen=True, slots=True)
class LeaderHooks:
    """The client side's answers to learners; the defaults are a leader's with no server."""

    #: A learner forwarded a client's request (its session id, cxid, type and body, with auth).
    forwarded: Callable[[LearnerHandler, RequestForward, list[Id]], None] = _drop
    #: Whether a session a client moved to the learner is alive; touches it if so.
    revalidate: Callable[[LearnerHandler, int, int], bool] = _not_valid
    #: Sessions (id, timeout ms) a learner's clients were heard from.
    touched: Callable[[list[tuple[int, int]]], None] = _ignore


NO_SERVER = LeaderHooks()


class ServingHooks:
    """The ``LeaderHooks`` of the server answering clients for one leader, once it runs."""

    def __init__(self) -> None:
        self.hooks = NO_SERVER

    def serve(self, hooks: LeaderHooks) -> None:
        """The leader's server started: learners' requests go to it from now on."""
        self.hooks = hooks
