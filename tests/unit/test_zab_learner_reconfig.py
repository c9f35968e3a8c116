"""The configs a learner meets on the quorum port, against a scripted leader (3.8's reconfig steps).

A reconfig PROPOSAL is reported seen; its COMMITANDACTIVATE (INFORMANDACTIVATE
for an observer) puts it in force, led by the sid it names, once applied;
NEWLEADER's config is in force at UPTODATE. When the peer answers that this
changes its role (its leader or its kind), the learner leaves.
"""
from __future__ import annotations

from tests.unit.zab_script import ScriptedLeader, config_text, reconfig_txn, txn, zxid
from zabd.quorum.learner_effects import Phase
from zabd.quorum.packets import PacketType, encode_activation
from zabd.core.zxid import first_zxid_of

E2 = 2
RECONFIG = zxid(E2, 1)


def synced(leader: ScriptedLeader) -> None:
    leader.discover(E2)
    leader.send(PacketType.DIFF, 0)
    leader.newleader(E2)
    leader.send(PacketType.UPTODATE, 0)
    assert leader.phase is Phase.BROADCAST


def test_a_committed_reconfig_is_in_force_once_applied_under_the_leader_it_names() -> None:
    leader = ScriptedLeader()
    synced(leader)
    leader.send(PacketType.PROPOSAL, RECONFIG, reconfig_txn(RECONFIG))
    assert leader.seen == [RECONFIG] and leader.in_force == []
    leader.settle()
    leader.send(PacketType.COMMITANDACTIVATE, RECONFIG, encode_activation(1))
    assert leader.in_force == [(RECONFIG, 1)]
    assert leader.phase is Phase.BROADCAST and leader.state.configs.version == RECONFIG


def test_a_reconfig_that_changes_the_role_ends_it_once_applied() -> None:
    leader = ScriptedLeader()
    leader.leave_on_config = True
    synced(leader)
    leader.send(PacketType.PROPOSAL, RECONFIG, reconfig_txn(RECONFIG))
    leader.send(PacketType.COMMITANDACTIVATE, RECONFIG, encode_activation(3))
    assert leader.replica.last_processed_zxid == RECONFIG
    assert leader.ended() and leader.exit_reason() == "the config of version 0x200000001 changes my role"


def test_an_activation_of_no_pending_proposal_ends_the_role() -> None:
    leader = ScriptedLeader()
    synced(leader)
    leader.send(PacketType.COMMITANDACTIVATE, RECONFIG, encode_activation(1))
    assert leader.ended()
    assert leader.exit_reason() == "bad packet from the leader: COMMITANDACTIVATE 0x200000001 of no pending proposal"


def test_the_config_newleader_carries_is_in_force_at_uptodate() -> None:
    leader = ScriptedLeader(config_version=5)
    leader.discover(E2)
    leader.send(PacketType.DIFF, 0)
    leader.send(PacketType.NEWLEADER, first_zxid_of(E2), config_text(0x100000007))
    leader.settle()
    assert leader.in_force == []
    leader.send(PacketType.UPTODATE, 0)
    assert leader.in_force == [(0x100000007, None)] and leader.phase is Phase.BROADCAST


def test_a_newleader_config_that_changes_the_role_is_left_before_uptodate_is_acked() -> None:
    leader = ScriptedLeader()
    leader.leave_on_config = True
    leader.discover(E2)
    leader.send(PacketType.DIFF, 0)
    leader.send(PacketType.NEWLEADER, first_zxid_of(E2), config_text(0x100000007, observers=(2,)))
    leader.settle()
    leader.send(PacketType.UPTODATE, 0)
    assert leader.ended() and leader.exit_reason() == "the config of version 0x100000007 changes my role"
    assert leader.acks() == [first_zxid_of(E2)]  # NEWLEADER's only


def test_an_older_config_in_newleader_changes_nothing() -> None:
    leader = ScriptedLeader(config_version=0x100000009)
    leader.discover(E2)
    leader.send(PacketType.DIFF, 0)
    leader.newleader(E2)
    leader.send(PacketType.UPTODATE, 0)
    assert leader.in_force == [] and leader.phase is Phase.BROADCAST


def test_a_bad_config_in_newleader_ends_the_role() -> None:
    leader = ScriptedLeader()
    leader.discover(E2)
    leader.send(PacketType.DIFF, 0)
    leader.send(PacketType.NEWLEADER, first_zxid_of(E2), b"server.x=nonsense")
    assert leader.ended() and (leader.exit_reason() or "").startswith("bad packet from the leader: bad config in NEWLEADER")


def test_an_observer_takes_a_reconfig_from_informandactivate() -> None:
    leader = ScriptedLeader(observer=True)
    synced(leader)
    leader.send(PacketType.INFORMANDACTIVATE, RECONFIG, encode_activation(1, reconfig_txn(RECONFIG)))
    assert leader.in_force == [(RECONFIG, 1)] and leader.replica.last_processed_zxid == RECONFIG
    leader.send(PacketType.INFORM, zxid(E2, 2), txn(zxid(E2, 2)))
    assert leader.phase is Phase.BROADCAST and leader.acks() == [first_zxid_of(E2), first_zxid_of(E2)]
