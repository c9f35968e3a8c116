"""Tests for zabd.membership.verifier: majority quorums and 3.8's config text."""

from __future__ import annotations

import itertools

import pytest

from zabd.config.ensemble import (
    LearnerType,
    QuorumMaj,
    QuorumServer,
    QuorumVerifier,
    parse_member,
    parse_server_id,
    parse_version,
    properties_key_order,
    verifier_from_text,
    version_hex,
)
from zabd.membership.verifier import java_hashmap_order

# Observed on Apache ZooKeeper 3.8.0: /zookeeper/config (read with kazoo) and the
# notification config of a peer started with this zoo.cfg. Keys that are not
# server lines matter too: 3.8 orders members that share a hash bucket by the
# order java.util.Properties hands out all the keys.
REAL_ZOO_CFG = """\
tickTime=500
dataDir=/tmp/c_ens/B/1
initLimit=10
syncLimit=5
4lw.commands.whitelist=*
admin.enableServer=false
clientPort=55001
server.1=127.0.0.1:39803:40807;55001
server.17=127.0.0.1:60173:47953:participant;127.0.0.1:46705
server.20=127.0.0.1:48739:54943:PARTICIPANT ;localhost:49911
server.2=myhost.invalid:4001:4002
server.10=[::1]:4011:4012:observer;[::1]:4013
server.30=localhost:4021:4022: Observer
server.33=[0:0:0:0:0:0:0:1]:4031:4032:observer;[fe80::1%lo]:4033
server.49=[::ffff:127.0.0.1]:4041:4042:observer;0.0.0.0:4043
server.65=127.000.000.001:4051:4052:observer
"""
REAL_CONFIG_TEXT = (
    b"server.49=127.0.0.1:4041:4042:observer;0.0.0.0:4043\n"
    b"server.17=127.0.0.1:60173:47953:participant;127.0.0.1:46705\n"
    b"server.65=127.0.0.1:4051:4052:observer\n"
    b"server.33=[0:0:0:0:0:0:0:1]:4031:4032:observer;[fe80::1%lo]:4033\n"
    b"server.1=127.0.0.1:39803:40807:participant;0.0.0.0:55001\n"
    b"server.2=myhost.invalid:4001:4002:participant\n"
    b"server.20=127.0.0.1:48739:54943:participant;localhost:49911\n"
    b"server.10=[0:0:0:0:0:0:0:1]:4011:4012:observer;[0:0:0:0:0:0:0:1]:4013\n"
    b"server.30=localhost:4021:4022:observer\n"
    b"version=0"
)


def member(sid: int, observer: bool = False) -> QuorumServer:
    kind = LearnerType.OBSERVER if observer else LearnerType.PARTICIPANT
    return QuorumServer(sid, ("127.0.0.1", 2000 + sid), ("127.0.0.1", 3000 + sid), kind)


def majority(voters: int, observers: int = 0) -> QuorumMaj:
    return QuorumMaj([member(sid) for sid in range(1, voters + 1)]
                     + [member(100 + n, observer=True) for n in range(observers)])


# ------------------------------------------------------------ quorum arithmetic

@pytest.mark.parametrize("voters", range(1, 8))
@pytest.mark.parametrize("observers", [0, 1, 3])
def test_quorum_is_a_strict_majority_of_voters(voters: int, observers: int) -> None:
    qv = majority(voters, observers)
    assert qv.half == voters // 2
    assert len(qv.voting_members) == voters and len(qv.observing_members) == observers
    sids = sorted(qv.voting_members)
    needed = voters // 2 + 1
    for size in range(voters + 1):
        for chosen in itertools.combinations(sids, size):
            assert qv.contains_quorum(set(chosen)) is (size >= needed)


@pytest.mark.parametrize("voters, needed", [(1, 1), (2, 2), (3, 2), (4, 3), (5, 3), (6, 4), (7, 4)])
def test_quorum_sizes(voters: int, needed: int) -> None:
    qv = majority(voters)
    assert qv.contains_quorum(set(range(1, needed + 1)))
    assert not qv.contains_quorum(set(range(1, needed)))


def test_observers_and_strangers_never_count() -> None:
    qv = majority(3, observers=3)
    assert not qv.contains_quorum({1, 100, 101, 102})
    assert not qv.contains_quorum({1, 99, 98, 97})
    assert qv.contains_quorum({1, 2, 100})
    assert qv.contains_quorum(frozenset({2, 3}))


def test_membership_and_weights() -> None:
    qv = majority(3, observers=2)
    assert qv.voting_members == {1, 2, 3}
    assert qv.observing_members == {100, 101}
    assert set(qv.all_members) == {1, 2, 3, 100, 101}
    assert qv.all_members[101].learner_type is LearnerType.OBSERVER
    assert [qv.weight(sid) for sid in (1, 2, 3, 100, 7)] == [1, 1, 1, 0, 0]
    assert qv.version == 0


def test_no_voters_means_no_quorum() -> None:
    qv = QuorumMaj([member(5, observer=True)])
    assert qv.half == 0
    assert not qv.contains_quorum(set())
    assert not qv.contains_quorum({5})


def test_quorum_maj_fits_the_protocol_and_compares_by_content() -> None:
    qv: QuorumVerifier = majority(3)
    assert isinstance(qv, QuorumMaj)
    assert majority(3) == QuorumMaj([member(3), member(1), member(2)])
    assert majority(3) != QuorumMaj(majority(3).all_members.values(), version=1)
    assert hash(majority(3)) == hash(QuorumMaj([member(2), member(3), member(1)]))
    assert "version=0x0" in repr(majority(1))


def test_repeated_sid_keeps_its_place_and_takes_the_last_value() -> None:
    qv = QuorumMaj([member(1), member(2), member(1, observer=True)])
    assert list(qv.all_members) == [1, 2]
    assert qv.voting_members == {2} and qv.observing_members == {1}


# ------------------------------------------------------------ config text

def test_config_text_three_participants_as_observed() -> None:
    # A real 3.8.0 ensemble with clientPort as a separate key: no ";client" part.
    qv = QuorumMaj([parse_member(s, v) for s, v in (
        (1, "127.0.0.1:38415:53131"), (2, "127.0.0.1:54101:52805"), (3, "127.0.0.1:38865:59369"))])
    assert qv.config_text() == (
        b"server.1=127.0.0.1:38415:53131:participant\n"
        b"server.2=127.0.0.1:54101:52805:participant\n"
        b"server.3=127.0.0.1:38865:59369:participant\n"
        b"version=0")


def test_config_text_with_observer_and_version_as_observed() -> None:
    members = [parse_member(4, "127.0.0.1:48393:56495:observer")] + [
        parse_member(s, v) for s, v in ((1, "127.0.0.1:54651:35351"), (2, "127.0.0.1:39529:33639"),
                                        (3, "127.0.0.1:56505:45761"))]
    assert QuorumMaj(members, parse_version("1a")).config_text() == (
        b"server.1=127.0.0.1:54651:35351:participant\n"
        b"server.2=127.0.0.1:39529:33639:participant\n"
        b"server.3=127.0.0.1:56505:45761:participant\n"
        b"server.4=127.0.0.1:48393:56495:observer\n"
        b"version=1a")


def test_config_text_of_mixed_members_matches_real_zookeeper() -> None:
    from zabd.java.properties import parse_properties
    settings = {key: value for key, value, _ in parse_properties(REAL_ZOO_CFG)}
    servers = [key for key in properties_key_order(settings) if key.startswith("server.")]
    qv = QuorumMaj([parse_member(parse_server_id(key), settings[key]) for key in servers])
    assert qv.config_text() == REAL_CONFIG_TEXT
    assert qv.voting_members == {1, 2, 17, 20}
    assert qv.observing_members == {10, 30, 33, 49, 65}


def test_config_text_read_back_as_real_zookeeper_reads_it() -> None:
    # 3.8's QuorumMaj(Properties) on that text (run against the 3.8.0 jar): the
    # same members, but those sharing bucket 1 come out in the text's key order.
    qv = verifier_from_text(REAL_CONFIG_TEXT)
    lines = REAL_CONFIG_TEXT.split(b"\n")
    assert qv.config_text() == b"\n".join([lines[2], lines[3], lines[4], lines[0], lines[1]]
                                          + lines[5:])
    assert verifier_from_text(qv.config_text()).config_text() == qv.config_text()
    assert qv == verifier_from_text(REAL_CONFIG_TEXT.decode())
    assert qv.all_members[1].client_addr == ("0.0.0.0", 55001)
    assert verifier_from_text(REAL_CONFIG_TEXT.decode() + "\n# note\n") == qv
    assert verifier_from_text("server.3=h:1:2\nversion=100000000").version == 0x100000000
    with pytest.raises(ValueError, match="hexadecimal"):
        verifier_from_text("server.3=h:1:2\nversion=xyz")


@pytest.mark.parametrize("text, value, back", [
    ("0", 0, "0"), ("1a", 0x1a, "1a"), ("100000003", 0x100000003, "100000003"),
    ("00010", 16, "10"), ("+A", 10, "a"), ("-1", -1, "ffffffffffffffff"),
    ("7fffffffffffffff", (1 << 63) - 1, "7fffffffffffffff"),
])
def test_version_is_java_hex(text: str, value: int, back: str) -> None:
    assert parse_version(text) == value
    assert version_hex(value) == back


@pytest.mark.parametrize("text", ["", "0x10", "g", "ffffffffffffffff", " 1", "1_0"])
def test_bad_versions(text: str) -> None:
    with pytest.raises(ValueError, match="expected a hexadecimal config version"):
        parse_version(text)


# ------------------------------------------------------------ Java's orders

def test_hashmap_order_buckets_then_insertion() -> None:
    assert java_hashmap_order([1, 2, 3]) == [1, 2, 3]
    assert java_hashmap_order([10, 20, 30]) == [20, 10, 30]  # buckets 10, 4, 14
    assert java_hashmap_order([17, 1, 33]) == [17, 1, 33]  # one bucket: as inserted
    assert java_hashmap_order(list(range(13, 0, -1))) == list(range(1, 14))  # 32 buckets
    assert java_hashmap_order([1 << 32, 1]) == [1 << 32, 1]  # Long.hashCode folds the halves


def test_properties_order_matches_java() -> None:
    # As Java 17's Properties hands out the keys of REAL_ZOO_CFG (16 keys, one resize).
    keys = ["tickTime", "dataDir", "initLimit", "syncLimit", "4lw.commands.whitelist",
            "admin.enableServer", "clientPort"] + [f"server.{n}" for n in
                                                   (1, 17, 20, 2, 10, 30, 33, 49, 65)]
    assert properties_key_order(keys) == [
        "dataDir", "4lw.commands.whitelist", "syncLimit", "server.49", "server.17",
        "server.10", "server.65", "server.33", "server.30", "server.20", "server.2",
        "admin.enableServer", "server.1", "initLimit", "tickTime", "clientPort"]
    assert properties_key_order(["b", "a", "b"]) == ["a", "b"]
