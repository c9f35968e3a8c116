"""Tests for zabd.membership.hierarchy: 3.8's hierarchical quorums (group.G, weight.SID)."""

from __future__ import annotations

import itertools
import random
from collections.abc import Sequence

import pytest

from zabd.config.ensemble import (
    HierarchyError,
    LearnerType,
    QuorumHierarchical,
    QuorumMaj,
    QuorumServer,
    QuorumVerifier,
    hierarchy_from_properties,
    verifier_from_text,
)
from zabd.config.zoocfg import ConfigError, ZabdConfig, parse_config
from zabd.testing.ensemble import SimEnsemble


def member(sid: int, observer: bool = False) -> QuorumServer:
    kind = LearnerType.OBSERVER if observer else LearnerType.PARTICIPANT
    return QuorumServer(sid, ("127.0.0.1", 2000 + sid), ("127.0.0.1", 3000 + sid), kind)


def grouped(groups: dict[int, Sequence[int]], weights: dict[int, int] | None = None,
            observers: Sequence[int] = ()) -> QuorumHierarchical:
    servers = [member(sid) for sids in groups.values() for sid in sids]
    servers += [member(sid, observer=True) for sid in observers]
    return QuorumHierarchical(servers, list(groups.items()), list((weights or {}).items()))


def reference_quorum(groups: dict[int, Sequence[int]], weights: dict[int, int],
                     chosen: set[int]) -> bool:
    # 3.8's containsQuorum, spelt out: Java's integer division and all.
    totals = {gid: sum(weights.get(s, 1) for s in sids) for gid, sids in groups.items()}
    counted = sum(1 for total in totals.values() if total)
    won = sum(1 for gid, sids in groups.items()
              if sum(weights.get(s, 1) for s in sids if s in chosen) > totals[gid] // 2)
    return won > counted // 2


# ------------------------------------------------------------ quorum arithmetic

def test_three_groups_of_three_need_two_groups_by_two_members() -> None:
    qv = grouped({1: [1, 2, 3], 2: [4, 5, 6], 3: [7, 8, 9]})
    assert qv.counted_groups == 3
    assert qv.contains_quorum({1, 2, 4, 5})  # four of nine
    assert not qv.contains_quorum({1, 2, 3, 4})  # one group and a stray member
    assert not qv.contains_quorum({1, 4, 7, 2})
    assert qv.contains_quorum({1, 2, 3, 4, 5, 6})
    assert not qv.contains_quorum(set())


def test_two_groups_need_a_majority_in_both() -> None:
    qv = grouped({1: [1, 2, 3], 2: [4, 5, 6]})
    assert qv.contains_quorum({1, 2, 4, 5})
    assert not qv.contains_quorum({1, 2, 3, 4})
    assert not qv.contains_quorum({1, 2, 3})
    assert qv.contains_quorum({2, 3, 5, 6})


def test_one_group_is_a_majority_of_its_members() -> None:
    qv = grouped({7: [1, 2, 3, 4, 5]})
    maj = QuorumMaj([member(sid) for sid in range(1, 6)])
    for size in range(6):
        for chosen in itertools.combinations(range(1, 6), size):
            assert qv.contains_quorum(set(chosen)) is maj.contains_quorum(set(chosen))


def test_weights_decide_inside_a_group() -> None:
    qv = grouped({1: [1, 2, 3], 2: [4, 5, 6]}, {1: 3})
    assert qv.group_weight(1) == 5 and qv.group_weight(2) == 3
    assert qv.contains_quorum({1, 4, 5})  # 3 of 5 in group 1
    assert not qv.contains_quorum({2, 3, 4, 5})  # 2 of 5
    even = grouped({1: [1, 2, 3, 4]})  # weight 4: half is not enough
    assert not even.contains_quorum({1, 2}) and even.contains_quorum({1, 2, 3})


def test_weight_zero_servers_and_groups_never_count() -> None:
    qv = grouped({1: [1, 2, 3], 2: [4, 5, 6], 3: [7, 8]}, {3: 0, 7: 0, 8: 0})
    assert qv.counted_groups == 2  # group 3 weighs nothing and is left out
    assert qv.group_weight(1) == 2
    assert not qv.contains_quorum({1, 3, 4, 5})  # 1 of 2 in group 1
    assert qv.contains_quorum({1, 2, 4, 5})
    assert not qv.contains_quorum({1, 2, 7, 8})
    assert qv.voting_members == set(range(1, 9))  # weight 0 still votes
    assert [qv.weight(sid) for sid in (1, 3, 7)] == [1, 0, 0]


def test_observers_and_strangers_weigh_nothing() -> None:
    qv = grouped({1: [1, 2, 3]}, {1: 2, 9: 4}, observers=[9])
    assert qv.observing_members == {9} and qv.voting_members == {1, 2, 3}
    assert [qv.weight(sid) for sid in (1, 2, 9, 42)] == [2, 1, 0, 0]
    assert not qv.contains_quorum({9, 42, 2})
    assert not qv.contains_quorum({1, 9})  # 2 of 4 is not more than half
    assert qv.contains_quorum({1, 2, 9})


@pytest.mark.parametrize("seed", range(20))
def test_random_layouts_agree_with_3_8s_formula(seed: int) -> None:
    rng = random.Random(seed)
    sids = rng.sample(range(1, 60), rng.randint(2, 12))
    cuts = sorted(rng.sample(range(1, len(sids)), rng.randint(0, min(4, len(sids) - 1))))
    groups = {gid: sids[a:b] for gid, (a, b) in enumerate(zip([0] + cuts, cuts + [len(sids)]), 1)}
    weights = {sid: rng.choice([0, 1, 2, 3]) for sid in rng.sample(sids, len(sids) // 2)}
    if not any(weights.get(sid, 1) for sid in sids):
        weights[sids[0]] = 1
    qv = grouped(groups, weights)
    for _ in range(200):
        chosen = set(rng.sample(sids, rng.randint(0, len(sids))))
        assert qv.contains_quorum(chosen) is reference_quorum(groups, weights, chosen)


def test_fits_the_protocol_and_compares_by_content() -> None:
    qv: QuorumVerifier = grouped({1: [1, 2], 2: [3]})
    assert isinstance(qv, QuorumHierarchical)
    assert grouped({1: [1, 2], 2: [3]}) == grouped({1: [1, 2], 2: [3]}, {2: 1})
    assert grouped({1: [1, 2], 2: [3]}) != grouped({1: [1], 2: [2, 3]})
    assert hash(grouped({1: [1, 2]})) == hash(grouped({1: [2, 1]}))
    assert "groups=" in repr(qv)


# ------------------------------------------------------------ validation

SERVERS = ("server.1=127.0.0.1:2881:3881", "server.2=127.0.0.1:2882:3882",
           "server.3=127.0.0.1:2883:3883", "server.4=127.0.0.1:2884:3884:observer")


def ensemble_cfg(*lines: str, myid: str = "1\n") -> ZabdConfig:
    head = ("dataDir=/var/zabd", "initLimit=5", "syncLimit=2") + SERVERS
    return parse_config("\n".join(head + lines) + "\n", myid=myid)


# Lines 1-3 are settings, 4-7 the servers: the first extra line is line 8.
@pytest.mark.parametrize("lines, message", [
    (("weight.1=2",), "zoo.cfg line 8: weight.1: participants must be placed in groups"),
    (("group.1=1:2",), "zoo.cfg line 6: server.3: participant 3 is in no group"),
    # 3.8 reads group.2 before group.1 (java.util.Properties order), and so does zabd.
    (("group.1=1:2", "group.2=2:3"), "zoo.cfg line 8: group.1: server 2 is also in group.2"),
    (("group.1=1:2:3:9",), "zoo.cfg line 8: group.1: server 9 is not in the server list"),
    (("group.1=1:2:3:4",), "zoo.cfg line 8: group.1: server 4 is an observer"),
    (("group.1=1:2:3", "weight.9=1"), "zoo.cfg line 9: weight.9: server 9 is not in the server list"),
    (("group.1=1:2:3", "weight.2=-1"), "zoo.cfg line 9: weight.2: expected a weight"),
    (("group.1=1:2:3", "weight.2=x"), "zoo.cfg line 9: weight.2: expected a weight"),
    (("group.x=1:2:3",), "zoo.cfg line 8: group.x: expected a group id"),
    (("group.1=1:2:",), "zoo.cfg line 8: group.1: expected a server id (a non-negative integer), got ''"),
    (("group.1=1: 2:3",), "zoo.cfg line 8: group.1: expected a server id"),
    (("group.1=1", "group.01=2:3"), "zoo.cfg line 9: group.01: group 1 is given twice"),
    (("group.1=1:2:3", "weight.2=1", "weight.02=1"), "zoo.cfg line 9: weight.2: the weight of server 2"),
    (("group.1=1:2", "group.2=3", "weight.1=0", "weight.2=0", "weight.3=0"),
     "zoo.cfg line 9: group.2: every group weighs 0, so no quorum could ever form"),
])
def test_errors_name_key_and_line(lines: tuple[str, ...], message: str) -> None:
    with pytest.raises(ConfigError) as info:
        ensemble_cfg(*lines)
    assert str(info.value).startswith(message)


def test_a_participant_named_server_01_is_blamed_as_written() -> None:
    with pytest.raises(ConfigError, match=r"^zoo.cfg line 2: server.02: participant 2 is in no group"):
        parse_config("dataDir=/d\nserver.02=h:1:2\nserver.1=h:1:2\ninitLimit=5\nsyncLimit=2\n"
                     "group.1=1\n", myid="1")


def test_weights_for_observers_are_kept_and_printed() -> None:
    verifier = ensemble_cfg("group.1=1:2:3", "weight.4=3").ensemble.verifier
    assert isinstance(verifier, QuorumHierarchical)
    assert verifier.weight(4) == 0
    assert b"weight.4=3\n" in verifier.config_text()


def test_groups_without_server_lines_are_ignored_with_a_warning() -> None:
    # 3.8 fails on these (a NullPointerException); zabd runs standalone and says so.
    config = parse_config("dataDir=/d\ngroup.1=1:2:3\nweight.1=1\n")
    assert config.ensemble is None
    assert config.warnings == ("zoo.cfg line 3: weight.1: ignored: group and weight lines need "
                               "server lines (3.8 refuses to start with them)",)


def test_without_group_or_weight_lines_quorums_stay_majorities() -> None:
    assert isinstance(ensemble_cfg().ensemble.verifier, QuorumMaj)


def test_hierarchy_from_properties_refuses_other_keys() -> None:
    with pytest.raises(HierarchyError, match="expected group.G or weight.SID"):
        hierarchy_from_properties([member(1)], [("server.1", "x")])


# ------------------------------------------------------------ config text, from real 3.8.0

# Three Apache ZooKeeper 3.8.0 peers (1, 2 and 17) ran with these zoo.cfg lines
# (sids 3 and up never ran: group 1 is won by server 1's weight alone); every
# peer's `conf` and /zookeeper/config (kazoo) held REAL_TEXT.
REAL_ZOO_CFG = """\
tickTime=500
dataDir=/tmp/hq/run/1
initLimit=10
syncLimit=5
4lw.commands.whitelist=*
admin.enableServer=false
clientPort=49038
clientPortAddress=127.0.0.1
server.1=127.0.0.1:49036:49037
server.2=127.0.0.1:49039:49040
server.17=127.0.0.1:49084:49085
server.3=127.0.0.1:4003:4004
server.33=127.0.0.1:4033:4034
server.4=127.0.0.1:4005:4006
server.20=127.0.0.1:4020:4021
server.5=127.0.0.1:4050:4051
server.10=127.0.0.1:4010:4011:observer
group.1=1:3:33
group.17=17:4
group.2=2:20
group.5=5
weight.1=3
weight.33=1
weight.4=0
weight.20=0
weight.5=0
weight.10=2
"""
REAL_TEXT = (
    b"server.17=127.0.0.1:49084:49085:participant\nserver.33=127.0.0.1:4033:4034:participant\n"
    b"server.1=127.0.0.1:49036:49037:participant\nserver.2=127.0.0.1:49039:49040:participant\n"
    b"server.3=127.0.0.1:4003:4004:participant\nserver.20=127.0.0.1:4020:4021:participant\n"
    b"server.4=127.0.0.1:4005:4006:participant\nserver.5=127.0.0.1:4050:4051:participant\n"
    b"server.10=127.0.0.1:4010:4011:observer\n"
    b"group.17=17:4\ngroup.1=1:33:3\ngroup.2=2:20\ngroup.5=5\n"
    b"weight.33=1\nweight.1=3\nweight.17=1\nweight.2=1\nweight.3=1\nweight.20=0\nweight.4=0\n"
    b"weight.5=0\nweight.10=2\nversion=0"
)

# A second real run: 22 members (the HashMaps grow to 32 buckets), a config version.
_FAKES = (4, 5, 6, 18, 19, 34, 50, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16)
REAL_ZOO_CFG_2 = (
    "tickTime=500\ndataDir=/tmp/hq/run/2\ninitLimit=10\nsyncLimit=5\n4lw.commands.whitelist=*\n"
    "admin.enableServer=false\nclientPort=27554\nclientPortAddress=127.0.0.1\n"
    "server.1=127.0.0.1:27549:27550\nserver.2=127.0.0.1:27552:27553\nserver.17=127.0.0.1:27597:27598\n"
    + "".join(f"server.{s}=127.0.0.1:{5000 + s}:{6000 + s}\n" for s in _FAKES)
    + "server.3=127.0.0.1:5003:6003:observer\nserver.49=127.0.0.1:5049:6049:observer;127.0.0.1:7049\n"
    "group.1=1:4:5:6\ngroup.33=17:18:19\ngroup.17=2:34:50\ngroup.65=7:8:9:10:11:12:13:14\n"
    "group.2=15:16\nweight.1=4\nweight.18=0\nweight.19=0\nweight.2=3\nweight.15=0\nweight.16=0\n"
    "weight.49=5\nweight.12=1\nversion=1a\n"
)
_SERVER_LINES_2 = "".join(
    f"server.{s}=127.0.0.1:{5000 + s}:{6000 + s}:participant\n" for s in range(4, 17)).encode()
REAL_TEXT_2 = (
    b"server.1=127.0.0.1:27549:27550:participant\nserver.34=127.0.0.1:5034:6034:participant\n"
    b"server.2=127.0.0.1:27552:27553:participant\nserver.3=127.0.0.1:5003:6003:observer\n"
    + _SERVER_LINES_2
    + b"server.17=127.0.0.1:27597:27598:participant\n"
    b"server.49=127.0.0.1:5049:6049:observer;127.0.0.1:7049\n"
    b"server.18=127.0.0.1:5018:6018:participant\nserver.50=127.0.0.1:5050:6050:participant\n"
    b"server.19=127.0.0.1:5019:6019:participant\n"
    b"group.1=1:4:5:6\ngroup.17=2:34:50\ngroup.65=7:8:9:10:11:12:13:14\ngroup.33=17:18:19\n"
    b"group.2=15:16\n"
    b"weight.1=4\nweight.2=3\nweight.34=1\nweight.4=1\nweight.5=1\nweight.6=1\nweight.7=1\n"
    b"weight.8=1\nweight.9=1\nweight.10=1\nweight.11=1\nweight.12=1\nweight.13=1\nweight.14=1\n"
    b"weight.15=0\nweight.16=0\nweight.49=5\nweight.17=1\nweight.18=0\nweight.50=1\nweight.19=0\n"
    b"version=1a"
)


@pytest.mark.parametrize("zoo_cfg, text, myids", [
    (REAL_ZOO_CFG, REAL_TEXT, ("1", "2", "17")),
    (REAL_ZOO_CFG_2, REAL_TEXT_2, ("1", "2", "17")),
])
def test_config_text_is_what_3_8_wrote(zoo_cfg: str, text: bytes, myids: tuple[str, ...]) -> None:
    for myid in myids:
        ensemble = parse_config(zoo_cfg, myid=myid).ensemble
        assert ensemble is not None and isinstance(ensemble.verifier, QuorumHierarchical)
        assert ensemble.verifier.config_text() == text
        assert ensemble.conf_membership() == "membership: \n" + text.decode()
        # clientPort filled in the peer's own entry, which stays out of the text.
        assert ensemble.my_server.client_addr_from_static


def test_the_real_layouts_form_quorums_with_the_three_peers_that_ran() -> None:
    for zoo_cfg in (REAL_ZOO_CFG, REAL_ZOO_CFG_2):
        ensemble = parse_config(zoo_cfg, myid="1").ensemble
        assert ensemble is not None
        assert ensemble.verifier.contains_quorum({1, 2, 17})
    second = verifier_from_text(REAL_TEXT_2)
    assert isinstance(second, QuorumHierarchical)
    assert second.counted_groups == 4 and not second.contains_quorum({1, 2})


def test_text_reads_back() -> None:
    first = verifier_from_text(REAL_TEXT)
    assert isinstance(first, QuorumHierarchical)
    assert first.config_text() == REAL_TEXT
    assert first.groups == {1: {1, 3, 33}, 17: {17, 4}, 2: {2, 20}, 5: {5}}
    assert first.version == 0 and verifier_from_text(REAL_TEXT_2).version == 0x1a
    # Read back, every weight is explicit and read in Properties order, so
    # sids sharing a HashMap bucket change places: 3.8.0's own re-parse
    # (QuorumHierarchical(Properties) of this text) printed exactly this.
    again = verifier_from_text(REAL_TEXT_2).config_text()
    tail = b"weight.17=1\nweight.49=5\nweight.50=1\nweight.18=0\nweight.19=0\nversion=1a"
    assert again == REAL_TEXT_2[:REAL_TEXT_2.index(b"weight.49=5")] + tail
    assert verifier_from_text(again).config_text() == again


# ------------------------------------------------------------ a whole ensemble


class GroupedSimEnsemble(SimEnsemble):
    """SimEnsemble whose peers count quorums by groups."""

    def __init__(self, seed: int, groups: dict[int, Sequence[int]],
                 weights: dict[int, int] | None = None) -> None:
        super().__init__(seed, voters=sum(len(sids) for sids in groups.values()))
        self.verifier = QuorumHierarchical(  # type: ignore[assignment]
            self.verifier.all_members.values(), list(groups.items()), list((weights or {}).items()))


def commit(ensemble: SimEnsemble, count: int) -> list[int]:
    zxids = ensemble.write(count)
    assert ensemble.run_until(lambda: ensemble.committed_everywhere(zxids[-1]), 10_000)
    return zxids


NINE = {1: [1, 2, 3], 2: [4, 5, 6], 3: [7, 8, 9]}


@pytest.mark.parametrize("seed", range(3))
def test_four_of_nine_in_two_groups_elect_and_commit(seed: int) -> None:
    # A whole group down and one member of each other group: 4 of 9 live,
    # where a majority of 9 would need 5.
    ensemble = GroupedSimEnsemble(seed, NINE)
    ensemble.start(2, 3, 5, 6)
    leader = ensemble.settle(within_ms=10_000)
    assert leader == 6  # equal histories: the highest sid
    zxids = commit(ensemble, 10)
    assert len(set(ensemble.digests().values())) == 1
    # One more down leaves group 2 without a majority: the leader steps down.
    ensemble.crash(5)
    assert ensemble.run_until(lambda: not any(p.serving for p in ensemble.live_peers().values()), 10_000)
    assert ensemble.replica(6).last_processed_zxid == zxids[-1]


@pytest.mark.parametrize("seed", range(3))
def test_two_groups_of_three_keep_quorum_only_with_both_groups(seed: int) -> None:
    kept = GroupedSimEnsemble(seed, {1: [1, 2, 3], 2: [4, 5, 6]})
    kept.start(1, 2, 4, 5)  # one member of each group down
    kept.settle(within_ms=10_000)
    commit(kept, 5)
    # A whole group down plus one member of the other: 3.8's rule needs a
    # majority in both groups, so nobody may lead.
    lost = GroupedSimEnsemble(seed, {1: [1, 2, 3], 2: [4, 5, 6]})
    lost.start(1, 2, 3, 4)
    assert not lost.run_until(lambda: lost.leader() is not None, 10_000)
    assert all(peer.serving is False for peer in lost.live_peers().values())


def test_a_weight_zero_server_follows_but_never_leads() -> None:
    ensemble = GroupedSimEnsemble(0, {1: [1, 2, 3]}, {3: 0})
    ensemble.start()
    assert ensemble.settle(within_ms=10_000) == 2  # 3 has the highest sid but weighs 0
    commit(ensemble, 5)
    assert ensemble.peers[3].serving
    ensemble.crash(1)  # 2 alone holds 1 of the group's 2: no quorum with 3's help
    assert ensemble.run_until(lambda: not ensemble.peers[2].serving, 10_000)
