# -*- test-case-name: tests.unit.test_zab_follower -*-
"""A follower's or an observer's side of Zab as a sans-IO machine (protocol doc 4.4, 4.7, 4.8).

Inputs are calls (``start``, ``receive``, ``durable``, ``tick``, ``lost``,
``stop``, ``abandon``, and this peer's own ``forward`` and ``revalidate``);
each returns the effects to carry out (:mod:`zabd.quorum.learner_effects`).
The replica is driven directly: its writes are durable when they return,
and its log reports durability later through ``durable``.

Which packet is legal when is data: one transition table per kind of
learner, (phase, packet type) -> handler, made of the discovery and sync
transitions (:mod:`zabd.quorum.learner_sync`), the ones both kinds take in
broadcast (below), and the follower's (:mod:`zabd.quorum.follower`) or the
observer's (:mod:`zabd.quorum.observer`). A packet with no transition in the
current phase, a malformed one, or a local failure ends the role: the peer
goes back to LOOKING, as ZooKeeper's learner does when its leader misbehaves.
"""
from __future__ import annotations

from collections import deque
from collections.abc import Callable

from twisted.logger import Logger

from zabd.jute.records import Id
from zabd.membership.verifier import QuorumVerifier
from zabd.metrics.server import ServerMetrics
from zabd.quorum.follower import FOLLOWER_TRANSITIONS
from zabd.quorum.learner_effects import SYNCED_OR_SYNCING, Effect, Phase, Revalidated, Synced, packet_name
from zabd.quorum.learner_state import LearnerState, Touches, Transitions
from zabd.quorum.learner_sync import SYNC_TRANSITIONS, durable, learner_info, not_leader_info, snapshot
from zabd.quorum.learnerconfig import LearnerConfigs
from zabd.quorum.observer import OBSERVER_TRANSITIONS
from zabd.quorum.packets import (
    PacketType,
    QuorumPacket,
    RequestForward,
    encode_revalidate_request,
    parse_revalidate_reply,
)
from zabd.quorum.roles import Replica, Timing
from zabd.quorum.snapstream import QuorumWireError, SnapshotStream

log = Logger(namespace="zabd.quorum.learner")  # the learner's lines keep one namespace


def answer_ping(state: LearnerState, p: QuorumPacket) -> None:
    """PING: answered with the sessions this peer's clients touched (in every phase)."""
    state.answer_ping(p)


def commit(state: LearnerState, p: QuorumPacket) -> None:
    """COMMIT: the oldest pending proposal is committed."""
    state.commit(p.zxid)


def synced(state: LearnerState, p: QuorumPacket) -> None:
    """SYNC: the oldest sync this peer forwarded is complete."""
    state.emit(Synced())


def revalidated(state: LearnerState, p: QuorumPacket) -> None:
    """REVALIDATE: the answer to the oldest question about that session."""
    session_id, valid = parse_revalidate_reply(p.data)
    waiting = state.revalidating.get(session_id)
    if not waiting:
        raise QuorumWireError(f"REVALIDATE answer for session 0x{session_id:x}, which nobody asked about")
    answer = waiting.popleft()
    if not waiting:
        del state.revalidating[session_id]
    state.emit(Revalidated(answer, valid))


#: What both kinds of learner take outside their own transitions.
COMMON_TRANSITIONS: Transitions = {
    (Phase.DISCOVERY, PacketType.PING): answer_ping,
    **{(phase, PacketType.PING): answer_ping for phase in SYNCED_OR_SYNCING},
    **{(phase, PacketType.COMMIT): commit for phase in SYNCED_OR_SYNCING},
    **{(phase, PacketType.SYNC): synced for phase in SYNCED_OR_SYNCING},
    **{(phase, PacketType.REVALIDATE): revalidated for phase in SYNCED_OR_SYNCING},
}
FOLLOWER: Transitions = {**COMMON_TRANSITIONS, **SYNC_TRANSITIONS, **FOLLOWER_TRANSITIONS}
OBSERVER: Transitions = {**COMMON_TRANSITIONS, **SYNC_TRANSITIONS, **OBSERVER_TRANSITIONS}


class LearnerMachine:
    """One learner's connection to its leader, from FOLLOWERINFO/OBSERVERINFO to the end; see the module docstring."""

    def __init__(
        self,
        myid: int,
        replica: Replica,
        clock: Callable[[], int],
        timing: Timing,
        *,
        observer: bool = False,
        observer_logs: bool = True,
        config_version: int = 0,
        touches: Touches = list,
        on_config_seen: Callable[[QuorumVerifier], None] = lambda verifier: None,
        on_config: Callable[[QuorumVerifier, int | None], bool] = lambda verifier, leader: False,
        metrics: ServerMetrics | None = None,
    ) -> None:
        self.state = LearnerState(
            myid, replica, clock, timing, LearnerConfigs(config_version, on_config_seen, on_config),
            observer=observer, logs_txns=observer_logs or not observer, touches=touches,
            metrics=metrics if metrics is not None else ServerMetrics(),
        )
        self.transitions = OBSERVER if observer else FOLLOWER

    # -- inputs ---------------------------------------------------------------------

    def start(self) -> list[Effect]:
        self.state.send(learner_info(self.state))
        return self.state.drain()

    def receive(self, item: QuorumPacket | SnapshotStream, now_ms: int | None = None) -> list[Effect]:
        state = self.state
        if state.phase is Phase.DONE:
            return state.drain()
        state.last_heard_ms = state.clock() if now_ms is None else now_ms
        state.received_any = True
        try:
            if isinstance(item, SnapshotStream):
                snapshot(state, item)
            else:
                self._packet(item)
        except QuorumWireError as e:
            state.stop(f"bad packet from the leader: {e}")
        except Exception as e:  # the replica failed (e.g. a rewrite with appends in flight)
            log.failure("Learner {myid} cannot go on", myid=state.myid)
            state.stop(f"local failure: {e}")
        return state.drain()

    def durable(self, zxid: int) -> list[Effect]:
        durable(self.state, zxid)
        return self.state.drain()

    def tick(self) -> list[Effect]:
        """Give up on a silent leader: initLimit ticks while syncing, syncLimit after."""
        state = self.state
        if state.phase is not Phase.DONE:
            limit = state.timing.sync_ms if state.phase is Phase.BROADCAST else state.timing.init_ms
            if state.clock() - state.last_heard_ms > limit:
                state.stop(f"no word from the leader for {limit} ms")
        return state.drain()

    def lost(self) -> list[Effect]:
        return self.stop("lost the connection to the leader")

    def stop(self, reason: str) -> list[Effect]:
        self.state.stop(reason)
        return self.state.drain()

    def abandon(self) -> list[Effect]:
        """End quietly: the connection never got going, and the peer will dial again."""
        self.state.abandon()
        return self.state.drain()

    # -- requests from this peer's clients ----------------------------------------------

    def forward(self, request: RequestForward, auth: list[Id]) -> list[Effect]:
        """Send a client's write (or sync, createSession, closeSession) to the leader."""
        self.state.send(QuorumPacket(PacketType.REQUEST, -1, request.encode(), auth))
        return self.state.drain()

    def revalidate(self, session_id: int, timeout_ms: int, answer: Callable[[bool], None]) -> list[Effect]:
        """Ask the leader whether a reconnecting client's session is still alive."""
        self.state.revalidating.setdefault(session_id, deque()).append(answer)
        self.state.send(QuorumPacket(PacketType.REVALIDATE, -1, encode_revalidate_request(session_id, timeout_ms)))
        return self.state.drain()

    # -- packets ----------------------------------------------------------------------

    def _packet(self, p: QuorumPacket) -> None:
        state = self.state
        handler = self.transitions.get((state.phase, p.type))
        if handler is not None:
            handler(state, p)
        elif state.phase is Phase.DISCOVERY:
            not_leader_info(state, p)
        else:
            state.stop(f"unexpected packet {packet_name(p.type)} 0x{p.zxid:x} in phase {state.phase.value}")
