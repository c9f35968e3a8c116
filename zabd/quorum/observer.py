# -*- test-case-name: tests.unit.test_zab_observer -*-
"""An observer's side of broadcast: committed txns arrive as INFORM; it never ACKs and never votes.

While syncing, an observer takes the leader's history as PROPOSAL and COMMIT
like a follower (it logs it at NEWLEADER and acknowledges nothing but
NEWLEADER and UPTODATE). From then on the leader sends each committed txn
once, as INFORM: between NEWLEADER and UPTODATE it is logged and applied at
UPTODATE, after it it is logged (unless syncEnabled=false) and applied at
once. INFORMANDACTIVATE also puts a reconfig's config in force.
"""
from __future__ import annotations

from zabd.quorum.learner_effects import SYNCED_OR_SYNCING, Phase
from zabd.quorum.learner_state import LearnerState, Transitions
from zabd.quorum.packets import PacketType, QuorumPacket, parse_activation
from zabd.quorum.snapstream import QuorumWireError
from zabd.storage.logformat import TXN_HEADER_SIZE


def history_proposal(state: LearnerState, p: QuorumPacket) -> None:
    """A PROPOSAL of the sync's history: pending until its COMMIT, logged at NEWLEADER, never acknowledged."""
    state.take_proposal(p)


def inform(state: LearnerState, p: QuorumPacket) -> None:
    """INFORM: a committed txn; applied now when serving, else at UPTODATE in order."""
    if p.data is None or len(p.data) < TXN_HEADER_SIZE:
        raise QuorumWireError("INFORM without a txn")
    state.check_rising(p)
    replica = state.replica
    if state.phase is Phase.BROADCAST:
        state.metrics.learner_commit_received.add()
        state.latency(state.metrics.commit_propagation_latency, p.data)
        if state.logs_txns:
            replica.log(p.zxid, p.data)
        replica.apply(p.zxid, p.data)
        state.applied(p.zxid)
        return
    state.pending.append((p.zxid, p.data))
    if state.phase is Phase.NEWLEADER and state.logs_txns:
        replica.log(p.zxid, p.data)
    state.commit(p.zxid)


def inform_and_activate(state: LearnerState, p: QuorumPacket) -> None:
    """INFORMANDACTIVATE: an INFORM of a reconfig, whose config is in force once applied."""
    leader, txn = parse_activation(p.data or b"")
    state.configs.activates(p.zxid, txn, leader)
    inform(state, QuorumPacket(PacketType.INFORM, p.zxid, txn))


#: What only an observer takes: the history's proposals while syncing, then INFORMs.
OBSERVER_TRANSITIONS: Transitions = {
    (Phase.SYNC, PacketType.PROPOSAL): history_proposal,
    **{(phase, PacketType.INFORM): inform for phase in SYNCED_OR_SYNCING},
    **{(phase, PacketType.INFORMANDACTIVATE): inform_and_activate for phase in SYNCED_OR_SYNCING},
}
