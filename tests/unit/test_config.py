"""Tests for zabd.config.zoocfg: the zoo.cfg reader."""

from __future__ import annotations

import os

import pytest

from zabd.config.zoocfg import (
    DEFAULT_FOUR_LETTER_WORDS,
    ConfigError,
    ZabdConfig,
    default_config,
    load_config,
    parse_config,
    read_properties,
)
from zabd.views.fourletter import COMMAND_NAMES


def cfg(*lines: str) -> ZabdConfig:
    return parse_config("\n".join(("dataDir=/var/zabd",) + lines) + "\n")


def error_for(*lines: str) -> ConfigError:
    with pytest.raises(ConfigError) as info:
        cfg(*lines)
    return info.value


# ------------------------------------------------------------ .properties syntax

def test_separators_comments_and_blank_lines() -> None:
    text = (
        "# a comment\n"
        "! another comment\n"
        "\n"
        "   \t \n"
        "a=1\n"
        "b: 2\n"
        "c 3\n"
        "  d  =  4  \n"
        "e\t=\t5\n"
        "f:=6\n"
        "g\n"
    )
    assert read_properties(text) == [
        ("a", "1", 5), ("b", "2", 6), ("c", "3", 7), ("d", "4", 8),
        ("e", "5", 9), ("f", "=6", 10), ("g", "", 11),
    ]


def test_continuations_escapes_and_line_endings() -> None:
    text = "a=one,\\\n    two\r\nb\\ c=x\\ty\rd=\\u0041\\\\\ne=end\\\\\n"
    assert read_properties(text) == [
        ("a", "one,two", 1), ("b c", "x\ty", 3), ("d", "A\\", 4), ("e", "end\\", 5),
    ]


def test_comment_lines_are_not_continued() -> None:
    assert read_properties("# note \\\nkey=v\n") == [("key", "v", 2)]


def test_malformed_unicode_escape_names_line() -> None:
    with pytest.raises(ConfigError, match=r"^zoo.cfg line 2: malformed \\uxxxx escape$"):
        parse_config("dataDir=/d\nkey=\\u12\n")


# ------------------------------------------------------------ defaults

def test_zookeeper_defaults_for_a_minimal_file() -> None:
    c = parse_config("dataDir=/var/zabd\n")
    assert c.tick_time == 3000
    assert c.data_dir == c.data_log_dir == "/var/zabd"
    assert c.client_port == 2181
    assert c.client_port_address is None
    assert c.max_client_cnxns == 60
    assert (c.min_session_timeout_ms, c.max_session_timeout_ms) == (6000, 60000)
    assert c.four_letter_words == DEFAULT_FOUR_LETTER_WORDS == frozenset(
        {"srvr", "ruok", "mntr", "isro", "stat"})
    assert c.jute_max_buffer == 1048575
    assert (c.extended_types_enabled, c.skip_acl, c.super_digest) == (False, False, None)
    assert (c.server_id, c.init_limit, c.sync_limit) == (1, 10, 5)
    assert (c.snap_count, c.pre_alloc_size_kb, c.force_sync) == (100000, 65536, True)
    assert (c.snap_retain_count, c.purge_interval_hours) == (3, 1)
    assert c.global_outstanding_limit == 1000
    assert (c.container_check_interval_ms, c.container_max_per_minute) == (60000, 10000)
    assert (c.digest_enabled, c.reconfig_enabled, c.standalone_enabled) == (True, False, True)
    assert (c.admin_enable_server, c.admin_server_address) == (True, "127.0.0.1")
    assert (c.admin_server_port, c.admin_command_url) == (8080, "/commands")
    assert c.read_only_mode_enabled is False
    assert (c.local_sessions_enabled, c.local_sessions_upgrading_enabled) == (False, False)
    assert (c.client_port_listen_backlog, c.max_cnxns) == (-1, 0)
    assert c.servers == {}
    assert c.raw == (("dataDir", "/var/zabd"),)
    assert c.unknown_keys == () and c.warnings == ()


def test_embedded_default() -> None:
    c = default_config()
    assert (c.client_port, c.client_port_address) == (2181, "127.0.0.1")
    assert (c.data_dir, c.data_log_dir, c.tick_time) == ("./zabd-data", "./zabd-data", 2000)
    assert (c.min_session_timeout_ms, c.max_session_timeout_ms) == (4000, 40000)


def test_config_is_frozen() -> None:
    with pytest.raises(AttributeError):
        default_config().tick_time = 5  # type: ignore[misc]


def test_every_field_key() -> None:
    c = cfg(
        "tickTime=100", "dataLogDir=/var/log/zabd", "clientPort=2999",
        "clientPortAddress=127.0.0.2", "maxClientCnxns=0", "minSessionTimeout=300",
        "maxSessionTimeout=900", "jute.maxbuffer=4096", "extendedTypesEnabled=true",
        "DigestAuthenticationProvider.superDigest=super:D/InIHSb7yEEbrWz8b9l71RjZJU=",
        "skipACL=yes", "serverId=3", "initLimit=4", "syncLimit=2", "snapCount=50",
        "preAllocSize=1024", "forceSync=no", "autopurge.snapRetainCount=7",
        "autopurge.purgeInterval=0", "globalOutstandingLimit=9",
        "znode.container.checkIntervalMs=500", "znode.container.maxPerMinute=20",
        "digest.enabled=false", "reconfigEnabled=true", "standaloneEnabled=true",
        "admin.enableServer=false", "admin.serverAddress=0.0.0.0", "admin.serverPort=0",
        "admin.commandURL=/zk", "readonlymode.enabled=true", "localSessionsEnabled=true",
        "localSessionsUpgradingEnabled=TRUE", "clientPortListenBacklog=50", "maxCnxns=77",
    )
    assert c == ZabdConfig(
        tick_time=100, data_dir="/var/zabd", data_log_dir="/var/log/zabd", client_port=2999,
        client_port_address="127.0.0.2", max_client_cnxns=0, min_session_timeout=300,
        max_session_timeout=900, jute_max_buffer=4096, extended_types_enabled=True,
        super_digest="super:D/InIHSb7yEEbrWz8b9l71RjZJU=", skip_acl=True, server_id=3,
        init_limit=4, sync_limit=2, snap_count=50, pre_alloc_size_kb=1024, force_sync=False,
        snap_retain_count=7, purge_interval_hours=0, global_outstanding_limit=9,
        container_check_interval_ms=500, container_max_per_minute=20, digest_enabled=False,
        reconfig_enabled=True, standalone_enabled=True, admin_enable_server=False,
        admin_server_address="0.0.0.0", admin_server_port=0, admin_command_url="/zk",
        read_only_mode_enabled=True, local_sessions_enabled=True,
        local_sessions_upgrading_enabled=True, client_port_listen_backlog=50, max_cnxns=77,
        raw=c.raw,
    )
    assert (c.min_session_timeout_ms, c.max_session_timeout_ms) == (300, 900)


# ------------------------------------------------------------ prefixes and duplicates

def test_system_property_spelling() -> None:
    c = cfg(
        "zookeeper.extendedTypesEnabled=true",
        "zookeeper.DigestAuthenticationProvider.superDigest=super:abc=",
        "zookeeper.snapCount=10",
        "zookeeper.4lw.commands.whitelist=ruok",
        "zookeeper.admin.enableServer=false",
        "zookeeper.someFutureKnob=1",
    )
    assert c.extended_types_enabled is True
    assert c.super_digest == "super:abc="
    assert c.snap_count == 10
    assert c.four_letter_words == {"ruok", "srvr"}
    assert c.admin_enable_server is False
    assert c.unknown_keys == ("zookeeper.someFutureKnob",)
    assert ("zookeeper.snapCount", "10") in c.raw


def test_last_occurrence_wins_in_either_spelling() -> None:
    c = cfg("snapCount=10", "zookeeper.snapCount=20", "tickTime=abc", "tickTime=5")
    assert (c.snap_count, c.tick_time) == (20, 5)
    assert c.raw[1:] == (("snapCount", "10"), ("zookeeper.snapCount", "20"),
                         ("tickTime", "abc"), ("tickTime", "5"))


def test_readonlymode_key_is_read_as_is() -> None:
    assert cfg("readonlymode.enabled=true").read_only_mode_enabled is True
    assert cfg("zookeeper.readonlymode.enabled=true").read_only_mode_enabled is True


# ------------------------------------------------------------ 4lw whitelist

@pytest.mark.parametrize("value, expected", [
    ("*", COMMAND_NAMES),
    (" * ", COMMAND_NAMES),
    ("ruok, stat ,mntr", {"ruok", "stat", "mntr", "srvr"}),
    ("ruok,,bogus,STAT", {"ruok", "stat", "srvr"}),
    ("", {"srvr"}),
    ("srvr", {"srvr"}),
])
def test_whitelist(value: str, expected: frozenset[str]) -> None:
    assert cfg(f"4lw.commands.whitelist={value}").four_letter_words == expected


def test_unknown_whitelist_names_are_ignored_with_a_warning() -> None:
    c = cfg("4lw.commands.whitelist=ruok, kill ,Bogus")
    assert c.four_letter_words == {"ruok", "srvr"}
    assert c.warnings == (
        "zoo.cfg line 2: 4lw.commands.whitelist: ignoring unknown command 'bogus'",
        "zoo.cfg line 2: 4lw.commands.whitelist: ignoring unknown command 'kill'",
    )


def test_read_only_mode_always_enables_isro() -> None:
    c = cfg("4lw.commands.whitelist=ruok", "readonlymode.enabled=true")
    assert c.four_letter_words == {"ruok", "srvr", "isro"}
    assert "isro" not in cfg("4lw.commands.whitelist=ruok").four_letter_words


# ------------------------------------------------------------ validation

@pytest.mark.parametrize("line, message", [
    ("tickTime=abc", "tickTime: expected a positive integer, got 'abc'"),
    ("tickTime=0", "tickTime: expected a positive integer, got '0'"),
    ("tickTime=1_000", "tickTime: expected a positive integer, got '1_000'"),
    ("tickTime=99999999999", "tickTime: expected a positive integer, got '99999999999'"),
    ("clientPort=0", "clientPort: expected a port number from 1 to 65535, got '0'"),
    ("clientPort=70000", "clientPort: expected a port number from 1 to 65535, got '70000'"),
    ("maxClientCnxns=-1", "maxClientCnxns: expected a non-negative integer, got '-1'"),
    ("minSessionTimeout=-2", "minSessionTimeout: expected -1 or a non-negative integer, got '-2'"),
    ("forceSync=maybe", "forceSync: expected true, false, yes or no, got 'maybe'"),
    ("zookeeper.skipACL=1", "zookeeper.skipACL: expected true, false, yes or no, got '1'"),
    ("snapCount=1", "snapCount: expected an integer of at least 2, got '1'"),
    ("serverId=0", "serverId: expected an integer from 1 to 255, got '0'"),
    ("dataLogDir=", "dataLogDir: expected a value, got nothing"),
    ("admin.commandURL=commands",
     "admin.commandURL: expected a path starting with '/', got 'commands'"),
    ("DigestAuthenticationProvider.superDigest=nocolon",
     "DigestAuthenticationProvider.superDigest: expected user:base64-sha1-digest, got 'nocolon'"),
    ("server.x=localhost:2888:3888", "server.x: expected server.N with N a server id, got 'x'"),
    ("electionAlg=1", "electionAlg: only 3 (fast leader election) is supported, got '1'"),
    ("peerType=voter", "peerType: expected participant or observer, got 'voter'"),
    ("secureClientPort=abc", "secureClientPort: expected a port number from 0 to 65535, got 'abc'"),
    ("syncEnabled=nah", "syncEnabled: expected true, false, yes or no, got 'nah'"),
])
def test_errors_name_source_line_and_key(line: str, message: str) -> None:
    text = "# header\ndataDir=/var/zabd\n\n" + line + "\n"
    with pytest.raises(ConfigError) as info:
        parse_config(text, source="conf/zoo.cfg")
    assert str(info.value) == "conf/zoo.cfg line 4: " + message
    assert info.value.line == 4
    assert info.value.source == "conf/zoo.cfg"
    assert info.value.key == line.split("=", 1)[0]


def test_data_dir_is_required() -> None:
    with pytest.raises(ConfigError, match=r"^zoo.cfg: dataDir is not set$") as info:
        parse_config("tickTime=2000\n")
    assert info.value.key == "dataDir"


def test_min_session_timeout_above_max() -> None:
    e = error_for("tickTime=2000", "minSessionTimeout=50000")
    assert str(e) == ("zoo.cfg line 3: minSessionTimeout: minSessionTimeout (50000) "
                      "must not be larger than maxSessionTimeout (40000)")
    e = error_for("tickTime=2000", "maxSessionTimeout=1000")
    assert str(e).startswith("zoo.cfg line 3: maxSessionTimeout: minSessionTimeout (4000)")


def test_server_lines_beside_a_dynamic_config_file_are_refused() -> None:
    e = error_for("dynamicConfigFile=/etc/zoo.cfg.dynamic", "server.1=a:1:2")
    assert "server.1: must be in the separate dynamic config file" in str(e)


def test_snap_retain_count_is_raised_to_three_with_a_warning() -> None:
    c = cfg("autopurge.snapRetainCount=1")
    assert c.snap_retain_count == 3
    assert c.warnings == ("zoo.cfg line 2: autopurge.snapRetainCount: "
                          "1 is below the minimum 3; using 3",)


# ------------------------------------------------------------ known and unknown keys

def test_unknown_keys_are_collected_never_fatal() -> None:
    c = cfg("frobnicate=1", "tickTime=2000", "zookeeper.alsoUnknown=x", "frobnicate=2")
    assert c.unknown_keys == ("frobnicate", "zookeeper.alsoUnknown")


def test_known_zookeeper_keys_are_not_unknown() -> None:
    c = cfg(
        "syncEnabled=true", "secureClientPort=2281", "secureClientPortAddress=127.0.0.1",
        "electionAlg=3", "quorumListenOnAllIPs=false", "peerType=Participant",
        "connectToLearnerMasterLimit=5", "metricsProvider.className=x.Y",
        "metricsProvider.httpPort=7000", "admin.idleTimeout=30000", "ssl.keyStore.location=/k",
        "ssl.quorum.trustStore.location=/t", "quorum.auth.enableSasl=false", "sslQuorum=false",
        "portUnification=false",
        "serverCnxnFactory=org.apache.zookeeper.server.NettyServerCnxnFactory",
        "snapSizeLimitInKb=4194304", "txnLogSizeLimitInKb=-1", "fsync.warningthresholdms=1000",
        "commitLogCount=500", "group.1=1:2:3", "weight.1=1", "audit.enable=false",
        "authProvider.1=org.apache.zookeeper.server.auth.DigestAuthenticationProvider",
        "jvm.pause.monitor=false", "4lw.commands.whitelist=*", "multiAddress.enabled=false",
        "client.portUnification=false", "snapshot.trust.empty=true", "leaderServes=yes",
    )
    assert c.unknown_keys == ()
    assert len(c.raw) == 31


def test_kazoo_harness_config() -> None:
    # What kazoo.testing.common.ManagedZooKeeper writes (plus the harness's extra entries),
    # less its authProvider.1 line: SASL is refused (test_config_security), and the suite's
    # shim drops that line.
    text = """
tickTime=2000
dataDir=/tmp/kazoo/ZOOKEEPER-0/data
clientPort=20000
secureClientPort=20050
maxClientCnxns=0
admin.serverPort=20100
serverCnxnFactory=org.apache.zookeeper.server.NettyServerCnxnFactory
ssl.keyStore.location=/tmp/kazoo/ZOOKEEPER-0/keystore.jks
ssl.keyStore.password=apassword
ssl.trustStore.location=/tmp/kazoo/ZOOKEEPER-0/truststore.jks
ssl.trustStore.password=apassword
4lw.commands.whitelist=*
reconfigEnabled=true
admin.enableServer=false
standaloneEnabled=false

initLimit=4
syncLimit=2
server.1=localhost:20001:20002:participant;localhost:20000
server.2=localhost:20011:20012:participant;localhost:20010
server.3=localhost:20021:20022:observer;localhost:20020
peerType=participant
"""
    c = parse_config(text, source="/tmp/kazoo/ZOOKEEPER-0/zoo.cfg", myid="1")
    assert (c.client_port, c.max_client_cnxns, c.admin_server_port) == (20000, 0, 20100)
    assert c.ensemble is not None and c.ensemble.myid == c.server_id == 1
    assert c.ensemble.verifier.voting_members == {1, 2}
    assert c.ensemble.verifier.observing_members == {3}
    assert c.client_port_address == "localhost"
    assert c.warnings == ("/tmp/kazoo/ZOOKEEPER-0/zoo.cfg: no server failure will be "
                          "tolerated: an ensemble needs at least 3 participants",)
    assert c.four_letter_words == COMMAND_NAMES
    assert (c.reconfig_enabled, c.standalone_enabled, c.admin_enable_server) == (True, False, False)
    assert (c.init_limit, c.sync_limit) == (4, 2)
    assert c.servers == {
        1: "localhost:20001:20002:participant;localhost:20000",
        2: "localhost:20011:20012:participant;localhost:20010",
        3: "localhost:20021:20022:observer;localhost:20020",
    }
    assert c.unknown_keys == ()
    assert (c.security.secure_client_port, c.security.plain_client_port) == (20050, True)
    assert c.security.client.key_store is not None
    assert c.security.client.key_store.location == "/tmp/kazoo/ZOOKEEPER-0/keystore.jks"
    assert c.raw[0] == ("tickTime", "2000")


def test_debian_sample_zoo_cfg_shape() -> None:
    text = (
        "# The number of milliseconds of each tick\ntickTime=2000\n"
        "# The number of ticks that the initial\n# synchronization phase can take\n"
        "initLimit=10\nsyncLimit=5\n"
        "# the directory where the snapshot is stored.\ndataDir=/var/lib/zookeeper\n"
        "# the port at which the clients will connect\nclientPort=2181\n"
        "#maxClientCnxns=60\n#autopurge.snapRetainCount=3\n#autopurge.purgeInterval=1\n"
        "#metricsProvider.className="
        "org.apache.zookeeper.metrics.prometheus.PrometheusMetricsProvider\n"
        "#server.1=zookeeper1:2888:3888\n"
    )
    c = parse_config(text)
    assert (c.tick_time, c.data_dir, c.client_port) == (2000, "/var/lib/zookeeper", 2181)
    assert len(c.raw) == 5


# ------------------------------------------------------------ conf lines and files

def test_conf_lines_match_zookeeper_order() -> None:
    c = cfg("tickTime=2000", "clientPort=45869", "dataLogDir=/var/log/zabd")
    assert c.conf_lines(data_dir_size=457, log_dir_size=67109337) == [
        ("clientPort", "45869"), ("secureClientPort", "-1"),
        ("dataDir", "/var/zabd/version-2"), ("dataDirSize", "457"),
        ("dataLogDir", "/var/log/zabd/version-2"), ("dataLogSize", "67109337"),
        ("tickTime", "2000"), ("maxClientCnxns", "60"),
        ("minSessionTimeout", "4000"), ("maxSessionTimeout", "40000"),
        ("clientPortListenBacklog", "-1"), ("serverId", "1"),
    ]


def test_load_config_reads_file_and_names_it(tmp_path: "os.PathLike[str]") -> None:
    path = os.path.join(os.fspath(tmp_path), "zoo.cfg")
    with open(path, "w", encoding="utf-8") as f:
        f.write("dataDir=/var/zabd\ntickTime=x\n")
    with pytest.raises(ConfigError) as info:
        load_config(path)
    assert str(info.value) == f"{path} line 2: tickTime: expected a positive integer, got 'x'"
    with open(path, "w", encoding="utf-8") as f:
        f.write("dataDir=/var/zabd/d\u00e9j\u00e0\n")
    assert load_config(path).data_dir == "/var/zabd/d\u00e9j\u00e0"


def test_load_config_missing_file() -> None:
    with pytest.raises(ConfigError, match=r"^/nonexistent/zoo.cfg: cannot read config: "):
        load_config("/nonexistent/zoo.cfg")


def test_storage_settings_are_typed_fields() -> None:
    c = cfg()
    assert (c.db_autocreate, c.trust_empty_snapshot, c.fsync_warning_threshold_ms) == (True, False, 1000)
    c = cfg("db.autocreate=false", "zookeeper.snapshot.trust.empty=true", "fsync.warningthresholdms=25")
    assert (c.db_autocreate, c.trust_empty_snapshot, c.fsync_warning_threshold_ms) == (False, True, 25)
    # Both spellings are one key; the last written wins.
    assert cfg("zookeeper.db.autocreate=false", "db.autocreate=TRUE").db_autocreate is True
    assert "db.autocreate" in str(error_for("db.autocreate=maybe"))
