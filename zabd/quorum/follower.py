# -*- test-case-name: tests.unit.test_zab_follower -*-
"""A follower's side of broadcast (protocol doc 4.8): it logs each proposal and ACKs it once durable.

A PROPOSAL joins the pending proposals; outside synchronization it is logged
at once and its ACK leaves when the log reports it durable (in SYNC the
history is logged at NEWLEADER, see :mod:`zabd.quorum.learner_sync`).
COMMITANDACTIVATE commits a reconfig and names the leader of its config.
Observers take neither (:mod:`zabd.quorum.observer`).
"""
from __future__ import annotations

from zabd.quorum.learner_effects import SYNCED_OR_SYNCING, Phase
from zabd.quorum.learner_state import LearnerState, Transitions
from zabd.quorum.packets import PacketType, QuorumPacket, parse_activation
from zabd.quorum.snapstream import QuorumWireError


def proposal(state: LearnerState, p: QuorumPacket) -> None:
    """PROPOSAL: pending until its COMMIT; logged and acknowledged unless it is a sync's history."""
    txn = state.take_proposal(p)
    if state.phase is Phase.BROADCAST:
        state.latency(state.metrics.proposal_latency, txn)
        state.metrics.learner_proposal_received.add()
    if state.phase is not Phase.SYNC:
        state.log_and_ack(p.zxid, txn)


def commit_and_activate(state: LearnerState, p: QuorumPacket) -> None:
    """COMMITANDACTIVATE: the pending reconfig ``p.zxid`` commits, and its config is in force once applied."""
    leader, _ = parse_activation(p.data or b"")
    txn = next((t for z, t in state.pending if z == p.zxid), None)
    if txn is None:
        raise QuorumWireError(f"COMMITANDACTIVATE 0x{p.zxid:x} of no pending proposal")
    state.configs.activates(p.zxid, txn, leader)
    state.commit(p.zxid)


#: What only a follower takes, in every phase after discovery.
FOLLOWER_TRANSITIONS: Transitions = {
    **{(phase, PacketType.PROPOSAL): proposal for phase in SYNCED_OR_SYNCING},
    **{(phase, PacketType.COMMITANDACTIVATE): commit_and_activate for phase in SYNCED_OR_SYNCING},
}
