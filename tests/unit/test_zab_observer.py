"""An observer's transitions and effects, one real LearnerMachine against a scripted leader (Zab1_0Test).

An observer syncs as a follower does (its history comes as PROPOSAL and
COMMIT), then takes committed txns as INFORM: it acknowledges NEWLEADER and
UPTODATE and nothing else, and never takes a PROPOSAL once synced.
"""
from __future__ import annotations

import pytest

from tests.unit.zab_script import ScriptedLeader, txn, zxid
from zabd.quorum.learner_effects import Phase, Send, Serving
from zabd.quorum.learner_machine import FOLLOWER, OBSERVER
from zabd.quorum.packets import PacketType, QuorumPacket, encode_activation
from zabd.core.zxid import first_zxid_of

E1, E2 = 1, 2


def synced(leader: ScriptedLeader) -> None:
    leader.discover(E2)
    leader.send(PacketType.DIFF, 0)
    leader.newleader(E2)
    leader.send(PacketType.UPTODATE, 0)
    assert leader.phase is Phase.BROADCAST


def test_start_sends_observerinfo() -> None:
    leader = ScriptedLeader(observer=True)
    [effect] = leader.start()
    assert isinstance(effect, Send) and effect.packet.type == PacketType.OBSERVERINFO


def test_the_sync_history_is_logged_and_only_newleader_and_uptodate_are_acked() -> None:
    leader = ScriptedLeader(observer=True, history=(zxid(E1, 1),))
    leader.discover(E2)
    leader.send(PacketType.DIFF, zxid(E1, 2))
    leader.send(PacketType.PROPOSAL, zxid(E1, 2), txn(zxid(E1, 2)))
    leader.send(PacketType.COMMIT, zxid(E1, 2))
    leader.newleader(E2)
    assert leader.acks() == [first_zxid_of(E2)] and leader.epoch_when_sent("ACK", first_zxid_of(E2)) == E2
    assert leader.replica.txn_log.records()[-1][0] == zxid(E1, 2)

    # Between NEWLEADER and UPTODATE: logged now, applied at UPTODATE, in order.
    assert leader.send(PacketType.INFORM, zxid(E2, 1), txn(zxid(E2, 1))) == []
    leader.settle()
    assert leader.replica.tree.get(f"/n{zxid(E2, 1):x}") is None
    effects = leader.send(PacketType.UPTODATE, 0)
    assert effects == [Send(QuorumPacket(PacketType.ACK, first_zxid_of(E2))), Serving()]
    assert leader.replica.tree.get(f"/n{zxid(E1, 2):x}") is not None
    assert leader.replica.tree.get(f"/n{zxid(E2, 1):x}") is not None
    assert leader.acks() == [first_zxid_of(E2), first_zxid_of(E2)]
    assert leader.state.metrics.observer_sync_time.count == 1


@pytest.mark.parametrize("logs", [True, False])
def test_an_inform_is_applied_at_once_and_never_acked(logs: bool) -> None:
    leader = ScriptedLeader(observer=True, observer_logs=logs)
    synced(leader)
    assert leader.send(PacketType.INFORM, zxid(E2, 1), txn(zxid(E2, 1))) == []
    assert leader.settle() == []
    assert leader.replica.tree.get(f"/n{zxid(E2, 1):x}") is not None
    logged = [at for at, _ in leader.replica.txn_log.records()]
    assert (zxid(E2, 1) in logged) is logs  # syncEnabled=false: no txn log
    assert leader.acks() == [first_zxid_of(E2), first_zxid_of(E2)]


def test_an_inform_whose_zxid_does_not_rise_ends_the_role() -> None:
    leader = ScriptedLeader(observer=True)
    synced(leader)
    leader.send(PacketType.INFORM, zxid(E2, 2), txn(zxid(E2, 2)))
    leader.send(PacketType.INFORM, zxid(E2, 2), txn(zxid(E2, 2)))
    assert leader.ended()
    assert leader.exit_reason() == "bad packet from the leader: INFORM 0x200000002 after 0x200000002: zxids must rise"


def test_an_inform_without_a_txn_ends_the_role() -> None:
    leader = ScriptedLeader(observer=True)
    synced(leader)
    leader.send(PacketType.INFORM, zxid(E2, 1))
    assert leader.ended() and leader.exit_reason() == "bad packet from the leader: INFORM without a txn"


def test_an_informandactivate_of_no_reconfig_ends_the_role() -> None:
    leader = ScriptedLeader(observer=True)
    synced(leader)
    leader.send(PacketType.INFORMANDACTIVATE, zxid(E2, 1), encode_activation(1, txn(zxid(E2, 1))))
    assert leader.ended()
    assert leader.exit_reason() == "bad packet from the leader: an activation of 0x200000001, which is no reconfig"


@pytest.mark.parametrize(("phase", "kind"), [
    (Phase.NEWLEADER, PacketType.PROPOSAL),
    (Phase.BROADCAST, PacketType.PROPOSAL),
    (Phase.BROADCAST, PacketType.COMMITANDACTIVATE),
    (Phase.SYNC, PacketType.COMMITANDACTIVATE),
])
def test_what_only_a_follower_takes_ends_an_observers_role(phase: Phase, kind: PacketType) -> None:
    leader = ScriptedLeader(observer=True)
    leader.discover(E2)
    leader.send(PacketType.DIFF, 0)
    if phase is not Phase.SYNC:
        leader.newleader(E2)
    if phase is Phase.BROADCAST:
        leader.send(PacketType.UPTODATE, 0)
    assert leader.phase is phase and (phase, kind) not in OBSERVER and (phase, kind) in FOLLOWER
    leader.send(kind, zxid(E2, 1), txn(zxid(E2, 1)))
    assert leader.ended()
    assert leader.exit_reason() == f"unexpected packet {kind.name} 0x200000001 in phase {phase.value}"


def test_the_tables_differ_only_in_what_each_kind_takes() -> None:
    only_follower = {kind for _, kind in FOLLOWER.keys() - OBSERVER.keys()}
    only_observer = {kind for _, kind in OBSERVER.keys() - FOLLOWER.keys()}
    assert only_follower == {PacketType.PROPOSAL, PacketType.COMMITANDACTIVATE}
    assert only_observer == {PacketType.INFORM, PacketType.INFORMANDACTIVATE}
    assert {phase for phase, kind in OBSERVER if kind == PacketType.PROPOSAL} == {Phase.SYNC}
    assert not any(phase is Phase.DONE for phase, _ in FOLLOWER.keys() | OBSERVER.keys())
