"""next_verifier: the membership a reconfig request asks for, checked against ZooKeeper 3.8.0.

The golden texts are what a real 3.8.0 ensemble (three peers, reconfigEnabled)
wrote into its txn log for each reconfig issued with zkCli.sh and kazoo, in order.
"""
from __future__ import annotations

import pytest

from zabd.config.ensemble import QuorumHierarchical, QuorumMaj, verifier_from_text
from zabd.java.hashmap import JavaLongHashMap
from zabd.membership.reconfig import ReconfigArgumentError, address_conflict, next_verifier
from zabd.membership.members import parse_member
from zabd.jute.errors import Code, KeeperError

S1 = "server.1=127.0.0.1:53131:41213:participant"
S2 = "server.2=127.0.0.1:48179:57145:participant"
S3 = "server.3=127.0.0.1:42407:35817:participant"
S100 = "server.100=0.0.0.0:40001:40002:observer;0.0.0.0:40003"
S9 = "server.9=127.0.0.1:40011:40012:observer;0.0.0.0:40013"
S17 = "server.17=127.0.0.1:40021:40022:observer;0.0.0.0:40023"
S25 = "server.25=127.0.0.1:40031:40032:observer;127.0.0.1:40033"
S30 = "server.30=10.1.2.3:1:2:observer;0.0.0.0:3"
S33 = "server.33=10.1.2.4:7:8:observer;0.0.0.0:9"


def text(*lines: str, version: str) -> bytes:
    return ("\n".join(lines) + f"\nversion={version}").encode()


# The leader's config after ZOOKEEPER-1783 (re-read from its text, version of the new epoch).
ESTABLISHED = verifier_from_text(text(S1, S2, S3, version="100000000"))


def history() -> list[QuorumMaj | QuorumHierarchical]:
    """The reconfigs issued against 3.8.0, replayed; each from the one before."""
    add_100 = next_verifier(ESTABLISHED, S100, None, None, 0x100000002)
    add_9 = next_verifier(add_100, "server.9=127.0.0.1:40011:40012:observer;40013", None, None,
                          0x100000005)
    add_17_25 = next_verifier(add_9, "server.17=127.0.0.1:40021:40022:observer;40023, " + S25,
                              None, None, 0x100000007)
    remove_100 = next_verifier(add_17_25, None, "100", None, 0x100000009)
    members = ",".join([S25, "server.17=127.0.0.1:40021:40022:observer;40023", S3, S2, S1,
                        "server.9=127.0.0.1:40011:40012:observer"])
    replaced = next_verifier(remove_100, None, None, members, 0x100000014)
    add_30 = next_verifier(replaced, "server.30=10.1.2.3:1:2:observer;3", None, None, 0x100000019)
    add_33 = next_verifier(add_30, "=server.33=10.1.2.4:7:8:observer;9", None, None, 0x10000001D)
    return [add_100, add_9, add_17_25, remove_100, replaced, add_30, add_33]


GOLDEN = [
    text(S1, S2, S3, S100, version="100000002"),
    text(S1, S9, S2, S3, S100, version="100000005"),
    text(S1, S17, S2, S3, S100, S9, S25, version="100000007"),
    text(S1, S17, S2, S3, S9, S25, version="100000009"),
    text(S1, S17, S2, S3, S25, "server.9=127.0.0.1:40011:40012:observer", version="100000014"),
    text(S1, S17, S2, S3, S25, "server.9=127.0.0.1:40011:40012:observer", S30,
         version="100000019"),
    text(S1, S17, S33, S2, S3, S25, "server.9=127.0.0.1:40011:40012:observer", S30,
         version="10000001d"),
]


@pytest.mark.parametrize("step", range(len(GOLDEN)))
def test_config_text_is_byte_exact_with_3_8(step: int) -> None:
    assert history()[step].config_text() == GOLDEN[step]


def test_a_follower_prints_the_same_members_in_its_own_order() -> None:
    # A follower re-reads the leader's text; 3.8.0's reply to the reconfig came from it.
    follower = verifier_from_text(GOLDEN[2])
    assert follower.config_text() == text(S1, S17, S2, S3, S100, S25, S9, version="100000007")
    assert follower == history()[2]


def test_the_new_version_is_the_zxid_and_the_members_are_classified() -> None:
    new = next_verifier(ESTABLISHED, S100, None, None, 0x500000007)
    assert new.version == 0x500000007
    assert new.voting_members == {1, 2, 3}
    assert new.observing_members == {100}


def test_kazoo_joining_string_appears_verbatim_and_leaves_again() -> None:
    joining = "server.100=0.0.0.0:41111:41112:observer;0.0.0.0:41113"
    added = next_verifier(ESTABLISHED, joining, None, None, 0x100000002)
    assert joining.encode() in added.config_text()
    removed = next_verifier(added, None, "100", None, 0x100000003)
    assert joining.encode() not in removed.config_text()
    assert removed.all_members.keys() == {1, 2, 3}


def test_a_member_given_again_is_replaced_and_moves_to_the_end_of_its_bucket() -> None:
    with_9 = history()[1]  # 1, 9, 2, 3, 100: 9 shares a bucket with 1 in the copied map
    again = next_verifier(with_9, "server.1=127.0.0.1:53131:41213:participant;2181", None, None, 6)
    assert list(again.all_members) == [9, 1, 2, 3, 100]
    assert again.all_members[1].client_addr == ("0.0.0.0", 2181)


def bad(joining: str | None = None, leaving: str | None = None, new_members: str | None = None,
        last_seen: QuorumMaj | QuorumHierarchical = ESTABLISHED, standalone: bool = True) -> str:
    with pytest.raises(ReconfigArgumentError) as info:
        next_verifier(last_seen, joining, leaving, new_members, 7, standalone_enabled=standalone)
    assert isinstance(info.value, KeeperError) and info.value.code is Code.BADARGUMENTS
    return info.value.reason


def test_kazoo_bad_input_is_bad_arguments() -> None:
    assert bad(joining="some thing") == "Wrong format of server string"


@pytest.mark.parametrize("joining, reason", [
    ("server.5=127.0.0.1:1:2", "Wrong format of server string - each server should have 3 ports"),
    ("x=y=z", "Wrong format of server string"),
    ("server.5=10.0.0.1:1:1;3", "Reconfiguration failed: "),
    ("server.5=10.0.0.1:1:2:witness;3", "Reconfiguration failed: "),
    ("server.5=10.0.0.1:70000:2;3", "Reconfiguration failed: "),  # 3.8: MARSHALLINGERROR
    ("server.x=10.0.0.1:1:2;3", "'server.x=10.0.0.1:1:2;3': 'x' is not a server id"),
    ("server.-4=10.1.2.5:7:8:observer;9", "'server.-4=10.1.2.5:7:8:observer;9': a server id"),
])
def test_joining_errors(joining: str, reason: str) -> None:
    assert bad(joining=joining).startswith(reason)


def test_a_joiner_may_not_reuse_another_members_address() -> None:
    with_30 = history()[5]
    # 3.8.0 answered BADARGUMENTS: 10.1.2.3:2 is server.30's election address.
    assert bad(joining="server.31=10.1.2.3:2:5:observer;6", last_seen=with_30) == (
        "/10.1.2.3:2 of server.31 conflicts /10.1.2.3:2 of server.30")
    # Wildcard and loopback addresses may be shared.
    assert next_verifier(with_30, "server.31=127.0.0.1:40011:5:observer;0.0.0.0:3", None, None, 9)
    # A member may keep its own addresses when it is given again.
    assert next_verifier(with_30, "server.30=10.1.2.3:1:2:participant;3", None, None, 9)


def test_address_conflict_compares_quorum_client_and_election_addresses() -> None:
    a = parse_member(1, "10.0.0.1:1:2;10.0.0.9:3")
    assert address_conflict(parse_member(2, "10.0.0.9:3:4;5"), a) is not None
    assert address_conflict(parse_member(2, "10.0.0.1:5:6;[::1]:2"), a) is None
    assert address_conflict(parse_member(2, "[fe80::1]:5:6;7"),
                            parse_member(3, "[fe80:0::1]:6:8;9")) == (
        "/[fe80:0:0:0:0:0:0:1]:6 of server.2 conflicts /[fe80:0:0:0:0:0:0:1]:6 of server.3")


def test_leaving_errors_and_unknown_sids() -> None:
    assert bad(leaving="abc") == "'abc': 'abc' is not a server id"  # 3.8: MARSHALLINGERROR
    assert next_verifier(ESTABLISHED, None, " 42 , ,", None, 8).all_members.keys() == {1, 2, 3}


def test_the_new_config_needs_enough_participants() -> None:
    assert bad(leaving="2,3") == "Reconfig failed - new configuration must include at least 2 followers"
    one = next_verifier(ESTABLISHED, None, "2,3", None, 8, standalone_enabled=False)
    assert one.voting_members == {1}
    assert bad(leaving="1,2,3", standalone=False) == (
        "Reconfig failed - new configuration must include at least 1 follower")


def test_incremental_reconfig_needs_a_majority_verifier() -> None:
    grouped = verifier_from_text(text(S1, S2, S3, "group.1=1:2:3", version="100000000"))
    assert bad(joining=S100, last_seen=grouped) == (
        "Incremental reconfiguration requested but last configuration seen has a "
        "non-majority quorum system")


def test_new_members_may_be_hierarchical_and_take_the_zxid_as_version() -> None:
    new = next_verifier(ESTABLISHED, None, None, f"{S1}\n{S2},{S3},group.1=1:2:3,version=99", 0x42)
    assert isinstance(new, QuorumHierarchical)
    assert new.version == 0x42
    assert new.config_text().endswith(b"group.1=1:2:3\nweight.1=1\nweight.2=1\nweight.3=1\nversion=42")


@pytest.mark.parametrize("members, reason", [
    ("foo=bar", "Unrecognised parameter: foo"),
    (S1, "Reconfig failed - new configuration must include at least 2 followers"),
    ("server.9=127.0.0.1:40011:40012:observer",  # 3.8: MARSHALLINGERROR
     "Observers w/o participants is an invalid configuration"),
    (f"{S1},{S2},server.3=h:1:70000", "election port '70000'"),
    ("server.x=127.0.0.1:53131:41213:participant", "expected server.N"),
    (f"{S1},{S2},{S3},version=zz", "expected a hexadecimal config version"),
])
def test_new_members_errors(members: str, reason: str) -> None:
    assert reason in bad(new_members=members)


def test_new_members_win_over_joining_and_leaving() -> None:
    new = next_verifier(ESTABLISHED, "some thing", "abc", f"{S1},{S2}", 9)
    assert new.all_members.keys() == {1, 2}


def test_with_version_keeps_members_and_order() -> None:
    add_9 = history()[1]
    assert add_9.with_version(0x77).config_text() == GOLDEN[1].replace(b"100000005", b"77")


def test_java_hashmap_copy_is_sized_for_its_source() -> None:
    # Three entries copy into 8 buckets, where 9 shares bucket 1 with 1; fresh maps have 16.
    copied = JavaLongHashMap.copy_of([(1, "a"), (2, "b"), (3, "c")])
    copied.put(9, "d")
    assert list(copied.keys()) == [1, 9, 2, 3]
    fresh: JavaLongHashMap[str] = JavaLongHashMap()
    for sid in (1, 2, 3, 9):
        fresh.put(sid, "x")
    assert list(fresh.keys()) == [1, 2, 3, 9]
    for sid in range(10, 20):  # past 3/4 of 16: doubled, buckets split in order
        fresh.put(sid, "x")
    assert len(fresh) == 14 and list(fresh.keys())[:3] == [1, 2, 3]
    fresh.remove(2)
    assert 2 not in fresh and 3 in fresh and len(fresh) == 13
