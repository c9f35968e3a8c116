"""A follower's transitions and effects, one real LearnerMachine against a scripted leader (Zab1_0Test).

Discovery (LEADERINFO -> ACKEPOCH), the three syncs (DIFF, TRUNC, SNAP),
NEWLEADER and its ACK after the sync is durable (3.9.4's order), UPTODATE,
broadcast (PROPOSAL, COMMIT, PING, SYNC, REVALIDATE), the silent leader, and
the illegal cases: each ends the role, closed and then reported to the peer.
"""
from __future__ import annotations

import errno
import posixpath

import pytest

from tests.unit.zab_script import MYID, TIMING, ScriptedLeader, tree_with, txn, zxid
from zabd.quorum.learner_effects import Close, Exit, Phase, Revalidated, Send, Serving, Synced
from zabd.quorum.learner_machine import FOLLOWER
from zabd.quorum.packets import (
    PROTOCOL_VERSION,
    LearnerInfo,
    PacketType,
    QuorumPacket,
    RequestForward,
    encode_leader_info,
    encode_revalidate_reply,
    parse_ack_epoch,
    parse_learner_info,
    parse_touches,
)
from zabd.core.zxid import first_zxid_of
from zabd.storage.epochs import ACCEPTED_EPOCH, CURRENT_EPOCH, UPDATING_EPOCH
from zabd.storage.layout import VERSION_DIR, snapshot_name
from zabd.storage.truncate import TruncateError
from zabd.testing.chaos_packets import durable_epoch
from zabd.testing.simreplica import SimReplica

E1, E2 = 1, 2


def synced_by_diff(leader: ScriptedLeader) -> None:
    """Epoch 2 over an empty history: DIFF, NEWLEADER, UPTODATE; the follower serves."""
    leader.discover(E2)
    leader.send(PacketType.DIFF, 0)
    leader.newleader(E2)
    leader.send(PacketType.UPTODATE, 0)
    assert leader.phase is Phase.BROADCAST


# -- discovery -----------------------------------------------------------------------------


def test_start_sends_followerinfo_with_the_accepted_epoch() -> None:
    leader = ScriptedLeader(history=(zxid(E1, 1),))
    [effect] = leader.start()
    assert isinstance(effect, Send) and effect.packet.type == PacketType.FOLLOWERINFO
    assert effect.packet.zxid == first_zxid_of(E1)
    assert parse_learner_info(effect.packet.data) == LearnerInfo(MYID, PROTOCOL_VERSION, 0)
    assert leader.phase is Phase.DISCOVERY


def test_leaderinfo_of_a_newer_epoch_is_accepted_durably_then_acked() -> None:
    leader = ScriptedLeader(history=(zxid(E1, 1), zxid(E1, 2)))
    [effect] = leader.discover(E2)
    assert isinstance(effect, Send) and effect.packet.type == PacketType.ACKEPOCH
    assert effect.packet.zxid == zxid(E1, 2)  # the last logged zxid
    assert parse_ack_epoch(effect.packet.data) == E1  # the current epoch
    assert durable_epoch(leader.disk, ACCEPTED_EPOCH) == E2
    assert leader.phase is Phase.SYNC and leader.state.new_epoch == E2


def test_leaderinfo_of_the_accepted_epoch_is_acked_with_minus_one() -> None:
    leader = ScriptedLeader(history=(zxid(E2, 1),))
    [effect] = leader.discover(E2)
    assert isinstance(effect, Send) and parse_ack_epoch(effect.packet.data) is None
    assert leader.phase is Phase.SYNC


def test_leaderinfo_older_than_the_accepted_epoch_ends_the_role() -> None:
    leader = ScriptedLeader(history=(zxid(E2, 1),))
    leader.discover(E1)
    assert leader.ended() and leader.exit_reason() == "leader epoch 1 is older than my accepted epoch 2"
    assert [name for name, _ in leader.sent()] == ["FOLLOWERINFO"]


def test_a_pre_zab_1_leader_is_refused() -> None:
    leader = ScriptedLeader()
    leader.start()
    leader.send(PacketType.LEADERINFO, first_zxid_of(E2), encode_leader_info(0x1000))
    assert leader.ended() and leader.exit_reason() == "the leader speaks a pre-Zab-1.0 protocol"
    assert durable_epoch(leader.disk, ACCEPTED_EPOCH) != E2


def test_discovery_takes_leaderinfo_only() -> None:
    leader = ScriptedLeader()
    leader.start()
    leader.send(PacketType.NEWLEADER, first_zxid_of(E2))
    assert leader.ended() and leader.exit_reason() == "expected LEADERINFO, got NEWLEADER"


def test_ping_is_answered_with_the_touched_sessions_in_every_phase() -> None:
    leader = ScriptedLeader(touches=[(0x77, 4000)])
    leader.start()
    [pong] = leader.send(PacketType.PING, 5)
    assert isinstance(pong, Send) and pong.packet.type == PacketType.PING and pong.packet.zxid == 5
    assert parse_touches(pong.packet.data) == [(0x77, 4000)]
    synced_by_diff(leader)
    [pong] = leader.send(PacketType.PING, 6)
    assert isinstance(pong, Send) and pong.packet.zxid == 6


# -- synchronization -----------------------------------------------------------------------


def test_diff_history_is_logged_at_newleader_and_acked_after_the_epoch_is_durable() -> None:
    """3.9.4's order (ZOOKEEPER-4643, 4685): txns durable, then currentEpoch, then ACK NEWLEADER, then the proposals'."""
    leader = ScriptedLeader(history=(zxid(E1, 1),))
    leader.discover(E2)
    assert leader.send(PacketType.DIFF, zxid(E1, 3)) == []
    for counter in (2, 3):
        assert leader.send(PacketType.PROPOSAL, zxid(E1, counter), txn(zxid(E1, counter))) == []
    for counter in (2, 3):
        assert leader.send(PacketType.COMMIT, zxid(E1, counter)) == []
    assert leader.replica.txn_log.records()[-1][0] == zxid(E1, 1)  # nothing logged before NEWLEADER

    assert leader.send(PacketType.NEWLEADER, first_zxid_of(E2)) == []  # the log is not durable yet
    assert leader.phase is Phase.NEWLEADER
    assert leader.disk.exists(posixpath.join(VERSION_DIR, UPDATING_EPOCH))
    assert durable_epoch(leader.disk, CURRENT_EPOCH) == E1
    leader.settle()
    assert leader.acks() == [first_zxid_of(E2), zxid(E1, 2), zxid(E1, 3)]
    assert leader.epoch_when_sent("ACK", first_zxid_of(E2)) == E2
    assert not leader.disk.exists(posixpath.join(VERSION_DIR, UPDATING_EPOCH))
    assert leader.replica.tree.get(f"/n{zxid(E1, 2):x}") is None  # commits wait for UPTODATE

    effects = leader.send(PacketType.UPTODATE, 0)
    assert effects == [Send(QuorumPacket(PacketType.ACK, first_zxid_of(E2))), Serving()]
    assert leader.replica.tree.get(f"/n{zxid(E1, 3):x}") is not None
    assert leader.phase is Phase.BROADCAST and leader.state.sync_mode == "DIFF"
    assert not leader.disk.listdir(VERSION_DIR) or not any(
        name.startswith("snapshot.") for name in leader.disk.listdir(VERSION_DIR))  # a DIFF saves no snapshot


def test_trunc_drops_the_log_tail_and_newleader_saves_a_snapshot() -> None:
    leader = ScriptedLeader(history=(zxid(E1, 1), zxid(E1, 2), zxid(E1, 3)))
    leader.discover(E2)
    leader.send(PacketType.TRUNC, zxid(E1, 1))
    assert leader.replica.last_logged_zxid == zxid(E1, 1)
    assert leader.replica.tree.get(f"/n{zxid(E1, 2):x}") is None
    leader.newleader(E2)
    assert leader.disk.exists(posixpath.join(VERSION_DIR, snapshot_name(zxid(E1, 1))))
    assert leader.acks() == [first_zxid_of(E2)] and leader.epoch_when_sent("ACK", first_zxid_of(E2)) == E2
    leader.send(PacketType.UPTODATE, 0)
    assert leader.phase is Phase.BROADCAST and leader.state.sync_mode == "TRUNC"


class UnlandableTruncate(SimReplica):
    def truncate(self, zxid: int) -> None:
        raise TruncateError(VERSION_DIR, zxid, "the files reload to 0x0")


def test_a_trunc_the_files_cannot_land_on_ends_the_sync() -> None:
    leader = ScriptedLeader(history=(zxid(E1, 1),), replica_type=UnlandableTruncate)
    leader.discover(E2)
    leader.send(PacketType.TRUNC, zxid(E1, 1))
    assert leader.ended()
    assert leader.exit_reason() == "TRUNC 0x100000001 cannot land exactly (the files reload to 0x0); reloaded 0x100000001"


def test_snap_installs_the_tree_and_newleader_makes_it_durable() -> None:
    leader = ScriptedLeader(history=(zxid(E1, 1),))
    leader.discover(E2)
    leader.send(PacketType.SNAP, zxid(E1, 4))
    leader.send_snapshot(tree_with(zxid(E1, 2), zxid(E1, 4)))
    assert leader.replica.last_processed_zxid == zxid(E1, 4)
    assert leader.replica.tree.get(f"/n{zxid(E1, 4):x}") is not None
    leader.newleader(E2)
    assert leader.disk.exists(posixpath.join(VERSION_DIR, snapshot_name(zxid(E1, 4))))
    assert leader.acks() == [first_zxid_of(E2)]
    leader.send(PacketType.UPTODATE, 0)
    assert leader.state.sync_mode == "SNAP"


def test_a_sync_that_ends_before_newleader_takes_the_replica_back_to_its_files() -> None:
    leader = ScriptedLeader(history=(zxid(E1, 1),))
    leader.discover(E2)
    leader.send(PacketType.SNAP, zxid(E1, 4))
    leader.send_snapshot(tree_with(zxid(E1, 4)))
    leader.machine.lost()
    assert leader.replica.last_processed_zxid == zxid(E1, 1)
    assert leader.replica.tree.get(f"/n{zxid(E1, 4):x}") is None


def test_a_snapshot_stream_without_snap_is_a_breach() -> None:
    leader = ScriptedLeader()
    leader.discover(E2)
    leader.send(PacketType.DIFF, 0)
    leader.send_snapshot(tree_with(zxid(E1, 1)))
    assert leader.ended() and leader.exit_reason() == "bad packet from the leader: a snapshot stream without a SNAP packet"


def test_newleader_of_another_epoch_ends_the_role() -> None:
    leader = ScriptedLeader(history=(zxid(E1, 1),))
    leader.discover(E2)
    leader.send(PacketType.DIFF, zxid(E1, 1))
    leader.send(PacketType.NEWLEADER, first_zxid_of(E1))
    assert leader.ended() and leader.exit_reason() == "NEWLEADER for epoch 1, expected 2"
    assert durable_epoch(leader.disk, CURRENT_EPOCH) == E1 and leader.acks() == []


class EpochWriteFails(SimReplica):
    """A replica whose currentEpoch cannot be written past epoch 1."""

    def set_current_epoch(self, epoch: int) -> None:
        if epoch > E1:
            raise OSError(errno.EIO, "injected")
        super().set_current_epoch(epoch)


def test_an_epoch_that_cannot_be_written_is_never_acked() -> None:
    leader = ScriptedLeader(history=(zxid(E1, 1),), replica_type=EpochWriteFails)
    leader.discover(E2)
    leader.send(PacketType.DIFF, zxid(E1, 2))
    leader.send(PacketType.PROPOSAL, zxid(E1, 2), txn(zxid(E1, 2)))
    leader.newleader(E2)
    assert leader.ended() and leader.exit_reason() == "local failure: [Errno 5] injected"
    assert leader.acks() == []


def test_proposals_after_newleader_are_acked_after_the_newleader_ack_and_applied_at_uptodate() -> None:
    leader = ScriptedLeader()
    leader.discover(E2)
    leader.send(PacketType.DIFF, 0)
    leader.send(PacketType.NEWLEADER, first_zxid_of(E2))  # acknowledged at once: nothing to make durable
    leader.send(PacketType.PROPOSAL, zxid(E2, 1), txn(zxid(E2, 1)))
    leader.send(PacketType.COMMIT, zxid(E2, 1))
    leader.settle()
    assert leader.acks() == [first_zxid_of(E2), zxid(E2, 1)]
    assert leader.replica.tree.get(f"/n{zxid(E2, 1):x}") is None
    leader.send(PacketType.UPTODATE, 0)
    assert leader.replica.tree.get(f"/n{zxid(E2, 1):x}") is not None


# -- broadcast -----------------------------------------------------------------------------


def test_a_proposal_is_acked_once_durable_and_a_commit_applies_it() -> None:
    leader = ScriptedLeader()
    synced_by_diff(leader)
    assert leader.send(PacketType.PROPOSAL, zxid(E2, 1), txn(zxid(E2, 1))) == []
    assert leader.settle() == [Send(QuorumPacket(PacketType.ACK, zxid(E2, 1)))]
    assert leader.replica.txn_log.records()[-1][0] == zxid(E2, 1)
    assert leader.send(PacketType.COMMIT, zxid(E2, 1)) == []
    assert leader.replica.tree.get(f"/n{zxid(E2, 1):x}") is not None
    assert leader.state.metrics.learner_commit_received.value == 1


def test_a_proposal_whose_zxid_does_not_rise_ends_the_role() -> None:
    leader = ScriptedLeader()
    synced_by_diff(leader)
    leader.send(PacketType.PROPOSAL, zxid(E2, 2), txn(zxid(E2, 2)))
    leader.send(PacketType.PROPOSAL, zxid(E2, 1), txn(zxid(E2, 1)))
    assert leader.ended()
    assert leader.exit_reason() == "bad packet from the leader: PROPOSAL 0x200000001 after 0x200000002: zxids must rise"


def test_a_gap_in_the_proposals_zxids_is_taken_as_3_8_does() -> None:
    # 3.8's Learner only warns ("Got zxid ... expected ..."): the leader numbers its own proposals.
    leader = ScriptedLeader()
    synced_by_diff(leader)
    leader.send(PacketType.PROPOSAL, zxid(E2, 1), txn(zxid(E2, 1)))
    leader.send(PacketType.PROPOSAL, zxid(E2, 5), txn(zxid(E2, 5)))
    leader.settle()
    assert leader.phase is Phase.BROADCAST and leader.acks()[-2:] == [zxid(E2, 1), zxid(E2, 5)]


def test_a_proposal_without_a_txn_ends_the_role() -> None:
    leader = ScriptedLeader()
    synced_by_diff(leader)
    leader.send(PacketType.PROPOSAL, zxid(E2, 1), b"short")
    assert leader.ended() and leader.exit_reason() == "bad packet from the leader: PROPOSAL without a txn"


@pytest.mark.parametrize("pending", [False, True])
def test_a_commit_of_anything_but_the_oldest_pending_proposal_ends_the_role(pending: bool) -> None:
    leader = ScriptedLeader()
    synced_by_diff(leader)
    if pending:
        leader.send(PacketType.PROPOSAL, zxid(E2, 1), txn(zxid(E2, 1)))
    leader.send(PacketType.COMMIT, zxid(E2, 9))
    head = "0x200000001" if pending else "nothing"
    assert leader.ended()
    assert leader.exit_reason() == f"bad packet from the leader: COMMIT 0x200000009 but the next pending proposal is {head}"


@pytest.mark.parametrize(("phase", "kind"), [
    (Phase.SYNC, PacketType.UPTODATE),
    (Phase.SYNC, PacketType.LEADERINFO),
    (Phase.NEWLEADER, PacketType.NEWLEADER),
    (Phase.NEWLEADER, PacketType.DIFF),
    (Phase.BROADCAST, PacketType.SNAP),
    (Phase.BROADCAST, PacketType.UPTODATE),
    (Phase.BROADCAST, PacketType.INFORM),
    (Phase.BROADCAST, PacketType.ACK),
])
def test_a_packet_with_no_transition_in_the_phase_ends_the_role(phase: Phase, kind: PacketType) -> None:
    leader = ScriptedLeader()
    leader.discover(E2)
    if phase is not Phase.SYNC:
        leader.send(PacketType.DIFF, 0)
        leader.newleader(E2)
    if phase is Phase.BROADCAST:
        leader.send(PacketType.UPTODATE, 0)
    assert leader.phase is phase and (phase, kind) not in FOLLOWER
    leader.send(kind, first_zxid_of(E2) + 1)
    assert leader.ended()
    assert leader.exit_reason() == f"unexpected packet {kind.name} 0x200000001 in phase {phase.value}"


def test_an_unknown_packet_type_ends_the_role() -> None:
    leader = ScriptedLeader()
    synced_by_diff(leader)
    leader.send(99, 0)  # type: ignore[arg-type]
    assert leader.ended() and leader.exit_reason() == "unexpected packet 99 0x0 in phase broadcast"


def test_forwarded_requests_syncs_and_revalidations() -> None:
    leader = ScriptedLeader()
    synced_by_diff(leader)
    request = RequestForward(0x77, 1, 1, b"")
    [forward] = leader.machine.forward(request, [])
    assert forward == Send(QuorumPacket(PacketType.REQUEST, -1, request.encode(), []))
    assert leader.send(PacketType.SYNC, 0) == [Synced()]
    answers: list[bool] = []
    [ask] = leader.machine.revalidate(0x77, 4000, answers.append)
    assert isinstance(ask, Send) and ask.packet.type == PacketType.REVALIDATE
    [answer] = leader.send(PacketType.REVALIDATE, -1, encode_revalidate_reply(0x77, True))
    assert isinstance(answer, Revalidated) and answer.valid
    leader.send(PacketType.REVALIDATE, -1, encode_revalidate_reply(0x77, False))  # nobody asked again
    assert leader.ended()
    assert leader.exit_reason() == (
        "bad packet from the leader: REVALIDATE answer for session 0x77, which nobody asked about")


# -- the end ---------------------------------------------------------------------------------


@pytest.mark.parametrize("serving", [False, True])
def test_a_silent_leader_is_left_after_init_limit_then_sync_limit(serving: bool) -> None:
    leader = ScriptedLeader()
    if serving:
        synced_by_diff(leader)
    else:
        leader.discover(E2)
    limit = TIMING.sync_ms if serving else TIMING.init_ms
    leader.sim.run_for(limit)
    assert leader.machine.tick() == []
    leader.sim.run_for(1)
    assert leader.machine.tick() == [Close(), Exit(f"no word from the leader for {limit} ms")]


def test_nothing_happens_after_the_end() -> None:
    leader = ScriptedLeader()
    leader.start()
    assert leader.machine.abandon() == [Close()]
    assert leader.send(PacketType.LEADERINFO, first_zxid_of(E2), encode_leader_info()) == []
    assert leader.machine.stop("again") == [] and leader.machine.tick() == []
    assert not leader.state.received_any
