"""Tests for zabd.config.ensemble: server.N lines, myid and the ensemble part of zoo.cfg."""

from __future__ import annotations

from pathlib import Path

import pytest

from zabd.config.ensemble import (
    LearnerType,
    MemberSyntaxError,
    QuorumServer,
    java_host_string,
    parse_member,
    parse_myid,
)
from zabd.config.zoocfg import ConfigError, ZabdConfig, load_config, parse_config

P, O = LearnerType.PARTICIPANT, LearnerType.OBSERVER
SERVERS = ("server.1=127.0.0.1:2881:3881", "server.2=127.0.0.1:2882:3882",
           "server.3=127.0.0.1:2883:3883")


def ensemble_cfg(*lines: str, myid: str | None = "1\n", servers: tuple[str, ...] = SERVERS,
                 ) -> ZabdConfig:
    head = ("dataDir=/var/zabd", "initLimit=5", "syncLimit=2")
    return parse_config("\n".join(head + lines + servers) + "\n", myid=myid)


def ensemble_error(*lines: str, myid: str | None = "1\n",
                   servers: tuple[str, ...] = SERVERS) -> ConfigError:
    with pytest.raises(ConfigError) as info:
        ensemble_cfg(*lines, myid=myid, servers=servers)
    return info.value


# ------------------------------------------------------------ member lines

@pytest.mark.parametrize("value, expected", [
    ("zk1:2888:3888", QuorumServer(7, ("zk1", 2888), ("zk1", 3888), P)),
    ("zk1:2888:3888:participant", QuorumServer(7, ("zk1", 2888), ("zk1", 3888), P)),
    ("zk1:2888:3888:observer", QuorumServer(7, ("zk1", 2888), ("zk1", 3888), O)),
    ("zk1:2888:3888: OBSERVER\t", QuorumServer(7, ("zk1", 2888), ("zk1", 3888), O)),
    ("zk1:2888:3888;2181", QuorumServer(7, ("zk1", 2888), ("zk1", 3888), P, ("0.0.0.0", 2181))),
    ("zk1:2888:3888:observer;10.0.0.1:2181",
     QuorumServer(7, ("zk1", 2888), ("zk1", 3888), O, ("10.0.0.1", 2181))),
    ("[::1]:2888:3888;[fe80::2]:2181", QuorumServer(
        7, ("0:0:0:0:0:0:0:1", 2888), ("0:0:0:0:0:0:0:1", 3888), P, ("fe80:0:0:0:0:0:0:2", 2181))),
    ("[2001:DB8::7]:1:2:participant", QuorumServer(
        7, ("2001:db8:0:0:0:0:0:7", 1), ("2001:db8:0:0:0:0:0:7", 2), P)),
    ("zk1:2888:3888:", QuorumServer(7, ("zk1", 2888), ("zk1", 3888), P)),  # empty tail dropped
    ("zk1:2888:3888;", QuorumServer(7, ("zk1", 2888), ("zk1", 3888), P)),
    ("zk1:+2888:03888", QuorumServer(7, ("zk1", 2888), ("zk1", 3888), P)),  # Integer.parseInt
    (":2888:3888", QuorumServer(7, ("localhost", 2888), ("localhost", 3888), P)),
])
def test_member_forms(value: str, expected: QuorumServer) -> None:
    assert parse_member(7, value) == expected


@pytest.mark.parametrize("value, spec", [
    ("127.0.0.1:2888:3888", "127.0.0.1:2888:3888:participant"),
    ("h:1:2:observer;2181", "h:1:2:observer;0.0.0.0:2181"),
    ("[::1]:1:2;[::1]:3", "[0:0:0:0:0:0:0:1]:1:2:participant;[0:0:0:0:0:0:0:1]:3"),
    ("127.000.000.001:1:2;localhost:5", "127.0.0.1:1:2:participant;localhost:5"),
])
def test_member_spec_is_what_zookeeper_prints(value: str, spec: str) -> None:
    assert parse_member(1, value).spec() == spec


@pytest.mark.parametrize("host, shown", [  # each checked against Java 17's getHostString
    ("127.1", "127.0.0.1"), ("2130706433", "127.0.0.1"), ("", "localhost"),
    ("0127.0.0.1", "127.0.0.1"), ("1.2.3", "1.2.0.3"), ("1.2.3.256", "1.2.3.256"),
    ("::1", "0:0:0:0:0:0:0:1"), ("::", "0:0:0:0:0:0:0:0"), ("ABCD::EF", "abcd:0:0:0:0:0:0:ef"),
    ("::ffff:127.0.0.1", "127.0.0.1"), ("::127.0.0.1", "0:0:0:0:0:0:7f00:1"),
    ("fe80::1%1", "fe80:0:0:0:0:0:0:1%1"), ("fe80::1%lo", "fe80::1%lo"),
    ("LOCALHOST", "LOCALHOST"), ("0x7f.0.0.1", "0x7f.0.0.1"), ("1.2.3.4.", "1.2.3.4."),
    ("example.invalid", "example.invalid"),
])
def test_hosts_as_java_shows_them(host: str, shown: str) -> None:
    assert java_host_string(host) == shown


@pytest.mark.parametrize("value, message", [
    ("zk1:2888", "expected host:quorumPort:electionPort"),
    ("zk1:2888:3888:observer:x", "expected host:quorumPort:electionPort"),
    ("zk1:2888:3888;a:b:2181", "expected host:quorumPort:electionPort"),
    ("zk1:2888:3888;2181;2182", "more than one ';'"),
    (";2181", "expected host:quorumPort:electionPort"),
    ("zk1:2888:3888|zk2:2888:3888", r"several '\|'-separated addresses .* not supported"),
    ("zk1:x:3888", "quorum port 'x' is not a number from 0 to 65535"),
    ("zk1:2888:70000", "election port '70000' is not a number from 0 to 65535"),
    ("zk1:2888:3888 ", "election port '3888 ' is not a number"),  # 3.8 does not trim
    ("zk1:2888:3888;-1", "client port '-1' is not a number"),
    ("zk1:2888:3888;h:", "client port 'h' is not a number"),  # Java drops the empty tail
    ("zk1:2888:2888", "the quorum and election ports must differ"),
    ("zk1:2888:3888:voter", "unknown peer type 'voter'"),
    ("[::1:2888:3888", "starts with '\\[' but has no matching '\\]'"),
    ("[::1]:", "has no port after the colon"),
    ("[::1]", "expected host:quorumPort:electionPort"),
])
def test_member_errors(value: str, message: str) -> None:
    with pytest.raises(MemberSyntaxError, match=message):
        parse_member(1, value)


@pytest.mark.parametrize("text, sid", [("1\n", 1), ("42", 42), (" 7 \r\nrest", 7), ("+3", 3)])
def test_myid(text: str, sid: int) -> None:
    assert parse_myid(text) == sid


@pytest.mark.parametrize("text", ["", "\n2", "one", "-1", "1.0", "99999999999999999999"])
def test_bad_myid(text: str) -> None:
    with pytest.raises(ValueError, match="expected a server id"):
        parse_myid(text)


# ------------------------------------------------------------ zoo.cfg: the ensemble

def test_three_participants() -> None:
    c = ensemble_cfg("clientPort=2191", myid="2\n")
    e = c.ensemble
    assert e is not None
    assert (e.myid, c.init_limit, c.sync_limit, e.is_observer) == (2, 5, 2, False)
    assert e.my_server == QuorumServer(2, ("127.0.0.1", 2882), ("127.0.0.1", 3882), P,
                                       ("0.0.0.0", 2191), client_addr_from_static=True)
    assert e.verifier.voting_members == {1, 2, 3} and e.verifier.version == 0
    assert (c.server_id, c.client_port, c.client_port_address) == (2, 2191, None)
    assert c.servers == {1: "127.0.0.1:2881:3881", 2: "127.0.0.1:2882:3882",
                         3: "127.0.0.1:2883:3883"}
    assert c.warnings == ()
    assert e.verifier.config_text().endswith(b"server.3=127.0.0.1:2883:3883:participant\nversion=0")


def test_quorum_settings_defaults_and_values() -> None:
    # The tick and reconfigEnabled are ZabdConfig's own fields, not repeated in the options.
    c = ensemble_cfg()
    o = c.ensemble.options  # type: ignore[union-attr]
    assert (c.tick_time, o.election_alg, o.sync_enabled, o.quorum_listen_on_all_ips) == (
        3000, 3, True, False)
    assert (o.cnx_timeout_ms, o.election_port_bind_retry, o.tcp_keep_alive) == (5000, 3, False)
    assert (o.leader_serves, o.commit_log_count, o.snapshot_size_factor) == (True, 500, 0.33)
    assert c.reconfig_enabled is False
    c = ensemble_cfg(
        "tickTime=200", "electionAlg=3", "syncEnabled=false", "quorumListenOnAllIPs=true",
        "zookeeper.cnxTimeout=900", "electionPortBindRetry=0", "zookeeper.tcpKeepAlive=true",
        "leaderServes=no", "zookeeper.commitLogCount=800", "zookeeper.snapshotSizeFactor=-1",
        "reconfigEnabled=true")
    o = c.ensemble.options  # type: ignore[union-attr]
    assert (c.tick_time, o.sync_enabled, o.quorum_listen_on_all_ips, o.cnx_timeout_ms) == (
        200, False, True, 900)
    assert (o.election_port_bind_retry, o.tcp_keep_alive, o.leader_serves) == (0, True, False)
    assert (o.commit_log_count, o.snapshot_size_factor, c.reconfig_enabled) == (800, -1.0, True)


def test_out_of_range_settings_are_replaced_with_warnings() -> None:
    c = ensemble_cfg("commitLogCount=10", "snapshotSizeFactor=1.5", "electionPortBindRetry=-2")
    o = c.ensemble.options  # type: ignore[union-attr]
    assert (o.commit_log_count, o.snapshot_size_factor, o.election_port_bind_retry) == (
        500, 0.33, 3)
    assert c.warnings == (
        "zoo.cfg line 4: commitLogCount: 10 is below the minimum 500; using 500",
        "zoo.cfg line 5: snapshotSizeFactor: 1.5 is above 1; using 0.33",
        "zoo.cfg line 6: electionPortBindRetry: -2 is negative; using 3",
    )


def test_observer_with_client_address_on_its_line() -> None:
    c = ensemble_cfg("peerType=observer", myid="4", servers=SERVERS + (
        "server.4=10.1.1.4:2884:3884:observer;10.1.1.4:2184",))
    e = c.ensemble
    assert e is not None and e.is_observer and e.peer_type is O
    assert (c.client_port, c.client_port_address, c.server_id) == (2184, "10.1.1.4", 4)
    assert e.client_address == ("10.1.1.4", 2184)
    assert e.verifier.observing_members == {4}


def test_same_client_port_on_the_line_and_key_is_fine() -> None:
    servers = ("server.1=h1:1:2;2181", "server.2=h2:1:2", "server.3=h3:1:2")
    c = ensemble_cfg("clientPort=2181", servers=servers)
    assert c.ensemble is not None and c.ensemble.client_address == ("0.0.0.0", 2181)
    assert b"server.1=h1:1:2:participant;0.0.0.0:2181\n" in c.ensemble.verifier.config_text()
    c = ensemble_cfg("clientPort=2181", "clientPortAddress=localhost",
                     servers=("server.1=h1:1:2;127.0.0.1:2181",) + servers[1:])
    assert (c.client_port, c.client_port_address) == (2181, "127.0.0.1")


def test_warnings_for_small_even_and_mislabelled_ensembles() -> None:
    c = ensemble_cfg("peerType=observer", servers=SERVERS[:2])
    assert c.warnings == (
        "zoo.cfg: no server failure will be tolerated: an ensemble needs at least 3 participants",
        "zoo.cfg line 4: peerType: observer does not match the server list (participant); "
        "using the server list",
    )
    c = ensemble_cfg(servers=SERVERS + ("server.4=h:1:2",))
    assert c.warnings == ("zoo.cfg: non-optimal configuration: consider an odd number of "
                          "participants",)


def test_standalone_cases() -> None:
    one = parse_config("dataDir=/d\nserver.1=h:1:2\n")  # no myid needed
    assert one.ensemble is None and one.servers == {1: "h:1:2"}
    assert one.warnings == ("zoo.cfg: only one server is listed: running standalone",)
    assert parse_config("dataDir=/d\n").ensemble is None
    two = ensemble_cfg("standaloneEnabled=false", servers=SERVERS[:1])
    assert two.ensemble is not None and two.ensemble.verifier.voting_members == {1}


@pytest.mark.parametrize("lines, servers, message", [
    ((), ("server.1=h:1:2", "server.2=h:1:2:observer"),
     "zoo.cfg line 5: server.2: observers need a quorum of participants to follow"),
    ((), ("server.2=h:1:2:observer",),
     "zoo.cfg line 4: server.2: observers need a quorum of participants to follow"),
    (("standaloneEnabled=false",), (),
     "zoo.cfg line 4: standaloneEnabled: standaloneEnabled is false, so at least one "
     "participant (server.N line) is needed"),
    (("group.1=1:2",), SERVERS, "zoo.cfg line 7: server.3: participant 3 is in no group"),
    (("weight.2=2",), SERVERS, "zoo.cfg line 4: weight.2: participants must be placed in groups"),
    ((), SERVERS + ("server.01=h:1:2",),
     "zoo.cfg line 7: server.01: server id 1 is also given as server.1"),
    ((), ("server.1=h:1:2", "server.2=h:1:2|g:1:2"),
     "zoo.cfg line 5: server.2: 'h:1:2|g:1:2': several '|'-separated addresses"),
    (("clientPort=2181",), ("server.1=h:1:2;2182",) + SERVERS[1:],
     "zoo.cfg line 5: server.1: clientPort/clientPortAddress (0.0.0.0:2181) differ from the "
     "client address on the server line (0.0.0.0:2182)"),
    (("clientPort=2181", "clientPortAddress=10.0.0.1"), ("server.1=h:1:2;2181",) + SERVERS[1:],
     "zoo.cfg line 6: server.1: clientPort/clientPortAddress (10.0.0.1:2181) differ from the "
     "client address on the server line (0.0.0.0:2181)"),
    (("version=zz",), SERVERS, "zoo.cfg line 4: version: expected a hexadecimal config version"),
    (("dynamicConfigFile=/etc/zoo.cfg.dynamic",), (),
     "zoo.cfg line 4: dynamicConfigFile: /etc/zoo.cfg.dynamic was not read"),
    (("leaderServes=maybe",), SERVERS, "zoo.cfg line 4: leaderServes: expected yes or no"),
    (("snapshotSizeFactor=x",), SERVERS, "zoo.cfg line 4: snapshotSizeFactor: expected a number"),
    (("cnxTimeout=-5",), SERVERS, "zoo.cfg line 4: cnxTimeout: expected a non-negative integer"),
])
def test_ensemble_errors_name_key_and_line(lines: tuple[str, ...], servers: tuple[str, ...],
                                           message: str) -> None:
    assert str(ensemble_error(*lines, servers=servers)).startswith(message)


def test_myid_errors_name_the_file() -> None:
    assert str(ensemble_error(myid=None)) == "/var/zabd/myid: myid file is missing"
    e = ensemble_error(myid="one\n")
    assert str(e) == "/var/zabd/myid: expected a server id (a non-negative integer), got 'one'"
    assert (e.source, e.key, e.line) == ("/var/zabd/myid", None, None)
    assert str(ensemble_error(myid="9")) == (
        "/var/zabd/myid: my id 9 is not in the server list (no server.9 line)")


def test_limits_must_be_set_for_a_quorum_peer() -> None:
    text = "dataDir=/d\ninitLimit=5\n" + "\n".join(SERVERS) + "\n"
    with pytest.raises(ConfigError) as info:
        parse_config(text, myid="1")
    assert str(info.value) == "zoo.cfg: syncLimit: syncLimit is not set (a quorum peer needs it)"


def test_system_property_spelling_of_server_lines_is_not_a_server() -> None:
    c = ensemble_cfg("zookeeper.server.4=h:1:2")
    assert c.unknown_keys == ("zookeeper.server.4",)
    assert c.ensemble is not None and set(c.ensemble.verifier.all_members) == {1, 2, 3}


# ------------------------------------------------------------ files and conf

def test_load_config_reads_myid_from_data_dir(tmp_path: Path) -> None:
    cfg = tmp_path / "zoo.cfg"
    cfg.write_text(f"dataDir={tmp_path}\ninitLimit=5\nsyncLimit=2\n" + "\n".join(SERVERS) + "\n")
    with pytest.raises(ConfigError, match=f"^{tmp_path}/myid: myid file is missing$"):
        load_config(str(cfg))
    (tmp_path / "myid").write_text("3\n")
    loaded = load_config(str(cfg))
    assert loaded.ensemble is not None and loaded.ensemble.myid == 3 and loaded.server_id == 3
    (tmp_path / "myid").unlink()
    (tmp_path / "myid").mkdir()  # 3.8 only reads it when it is a file
    with pytest.raises(ConfigError, match="myid file is missing"):
        load_config(str(cfg))


def test_conf_output_matches_a_real_observer() -> None:
    # zoo.cfg of a real 3.8.0 observer and its `conf` reply (sizes given here).
    text = ("tickTime=500\ndataDir=/tmp/c_ens/C/4\ninitLimit=10\nsyncLimit=5\n"
            "4lw.commands.whitelist=*\nadmin.enableServer=false\nclientPort=48911\n"
            "clientPortAddress=127.0.0.1\npeerType=observer\n"
            "server.1=127.0.0.1:54651:35351\nserver.2=127.0.0.1:39529:33639\n"
            "server.3=127.0.0.1:56505:45761\nserver.4=127.0.0.1:48393:56495:observer\nversion=1a\n")
    c = parse_config(text, myid="4\n")
    assert c.conf_text(67109518, 67109518) == (
        "clientPort=48911\nsecureClientPort=-1\ndataDir=/tmp/c_ens/C/4/version-2\n"
        "dataDirSize=67109518\ndataLogDir=/tmp/c_ens/C/4/version-2\ndataLogSize=67109518\n"
        "tickTime=500\nmaxClientCnxns=60\nminSessionTimeout=1000\nmaxSessionTimeout=10000\n"
        "clientPortListenBacklog=-1\nserverId=4\ninitLimit=10\nsyncLimit=5\nelectionAlg=3\n"
        "electionPort=56495\nquorumPort=48393\npeerType=1\nmembership: \n"
        "server.1=127.0.0.1:54651:35351:participant\nserver.2=127.0.0.1:39529:33639:participant\n"
        "server.3=127.0.0.1:56505:45761:participant\nserver.4=127.0.0.1:48393:56495:observer\n"
        "version=1a")
    assert c.conf_lines(0, 0)[-6:] == [
        ("initLimit", "10"), ("syncLimit", "5"), ("electionAlg", "3"),
        ("electionPort", "56495"), ("quorumPort", "48393"), ("peerType", "1")]
    assert c.warnings == ()
