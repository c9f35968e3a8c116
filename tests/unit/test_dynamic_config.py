"""zoo.cfg.dynamic.<version>, zoo.cfg.dynamic.next and the rewritten zoo.cfg, as ZooKeeper 3.8.0 writes them.

The golden files are what a real 3.8.0 peer (reconfigEnabled, started from a
zoo.cfg with server lines) wrote when its ensemble formed and after reconfigs.
"""
from __future__ import annotations

import os
from pathlib import Path

import pytest

from zabd.config.ensemble import QuorumMaj, verifier_from_text
from zabd.config.zoocfg import ConfigError, load_config, parse_config
from zabd.config.dynamic import (
    backup_static_config,
    dynamic_file_path,
    dynamic_file_text,
    edited_static_text,
    next_file_path,
    read_next_config,
    remove_next_config,
    version_from_file_name,
    write_committed_config,
    write_next_config,
)

ORIGINAL = """tickTime=500
initLimit=10
syncLimit=5
dataDir=/tmp/zkrc/1/data
clientPort=55775
reconfigEnabled=true
standaloneEnabled=false
4lw.commands.whitelist=*
admin.enableServer=false
server.1=127.0.0.1:53131:41213
server.2=127.0.0.1:48179:57145
server.3=127.0.0.1:42407:35817
"""
# zoo.cfg once the ensemble formed (version 0x100000000), and after the next reconfig.
FIRST_EDIT = """dataDir=/tmp/zkrc/1/data
4lw.commands.whitelist=*
syncLimit=5
reconfigEnabled=true
standaloneEnabled=false
admin.enableServer=false
clientPort=55775
initLimit=10
tickTime=500
dynamicConfigFile=/tmp/zkrc/1/zoo.cfg.dynamic.100000000
"""
SECOND_EDIT = """standaloneEnabled=false
admin.enableServer=false
dataDir=/tmp/zkrc/1/data
4lw.commands.whitelist=*
clientPort=55775
initLimit=10
tickTime=500
syncLimit=5
reconfigEnabled=true
dynamicConfigFile=/tmp/zkrc/1/zoo.cfg.dynamic.100000002
"""
CONFIG_14 = (b"server.1=127.0.0.1:53131:41213:participant\n"
             b"server.17=127.0.0.1:40021:40022:observer;0.0.0.0:40023\n"
             b"server.2=127.0.0.1:48179:57145:participant\n"
             b"server.3=127.0.0.1:42407:35817:participant\n"
             b"server.25=127.0.0.1:40031:40032:observer;127.0.0.1:40033\n"
             b"server.9=127.0.0.1:40011:40012:observer\n"
             b"version=100000014")
FILE_14 = (b"server.17=127.0.0.1:40021:40022:observer;0.0.0.0:40023\n"
           b"server.1=127.0.0.1:53131:41213:participant\n"
           b"server.25=127.0.0.1:40031:40032:observer;127.0.0.1:40033\n"
           b"server.2=127.0.0.1:48179:57145:participant\n"
           b"server.3=127.0.0.1:42407:35817:participant\n"
           b"server.9=127.0.0.1:40011:40012:observer")


def test_dynamic_file_is_sorted_lines_without_version_or_final_newline() -> None:
    assert dynamic_file_text(verifier_from_text(CONFIG_14), keep_version=False) == FILE_14


def test_next_file_keeps_the_version_line() -> None:
    assert dynamic_file_text(verifier_from_text(CONFIG_14), keep_version=True) == (
        FILE_14 + b"\nversion=100000014")


def test_zoo_cfg_is_rewritten_as_3_8_rewrites_it() -> None:
    first = edited_static_text(ORIGINAL, "/tmp/zkrc/1/zoo.cfg.dynamic.100000000",
                               erase_client_address=False)
    assert first == FIRST_EDIT
    assert edited_static_text(first, "/tmp/zkrc/1/zoo.cfg.dynamic.100000002",
                              erase_client_address=False) == SECOND_EDIT


def test_client_keys_are_erased_when_the_server_line_has_a_client_address() -> None:
    text = ("dataDir=/d\nclientPort=2181\nclientPortAddress=10.0.0.1\n"
            "clientPortListenBacklog=5\npeerType=observer\ngroup.1=1\n")
    assert edited_static_text(text, "/d/zoo.cfg.dynamic.1", erase_client_address=True) == (
        "dataDir=/d\nclientPortListenBacklog=5\ndynamicConfigFile=/d/zoo.cfg.dynamic.1\n")


def test_values_that_would_read_back_otherwise_are_escaped() -> None:
    edited = edited_static_text("dataDir=C:\\\\zk\\\\data\n", "/d/x", erase_client_address=False)
    assert edited.startswith("dataDir=C:\\\\zk\\\\data\n")
    assert parse_config(edited.replace("dynamicConfigFile=/d/x\n", "")).data_dir == "C:\\zk\\data"


def test_version_from_file_name() -> None:
    assert version_from_file_name("/etc/zoo.cfg.dynamic.100000002") == 0x100000002
    assert version_from_file_name("zoo.cfg.dynamic") is None
    assert version_from_file_name("zoo.cfg.dynamic.0x10") is None
    assert version_from_file_name("nodot") is None


def write_cluster_member(tmp_path: Path, myid: int = 1, text: str = ORIGINAL) -> Path:
    data = tmp_path / "data"
    data.mkdir(exist_ok=True)
    (data / "myid").write_text(f"{myid}\n")
    config = tmp_path / "zoo.cfg"
    config.write_text(text.replace("/tmp/zkrc/1/data", str(data)))
    return config


def test_a_restarted_peer_reads_its_membership_from_the_dynamic_file(tmp_path: Path) -> None:
    config = write_cluster_member(tmp_path)
    static = load_config(str(config))
    assert static.ensemble is not None and static.dynamic_config_file is None
    backup = backup_static_config(str(config))
    assert Path(backup).read_bytes() == config.read_bytes()

    assert isinstance(static.ensemble.verifier, QuorumMaj)
    established = static.ensemble.verifier.with_version(0x100000000)
    path = write_committed_config(str(config), established, 1)
    assert path == dynamic_file_path(str(config), 0x100000000)
    assert Path(path).read_bytes() == (b"server.1=127.0.0.1:53131:41213:participant\n"
                                       b"server.2=127.0.0.1:48179:57145:participant\n"
                                       b"server.3=127.0.0.1:42407:35817:participant")
    assert config.read_text().endswith(f"dynamicConfigFile={os.path.realpath(path)}\n")
    reconfigured = verifier_from_text(CONFIG_14)
    write_committed_config(str(config), reconfigured, 1)
    assert not [p for p in os.listdir(tmp_path) if p.endswith(".tmp")]

    restarted = load_config(str(config))
    assert restarted.ensemble is not None
    assert restarted.ensemble.verifier.version == 0x100000014
    assert restarted.ensemble.verifier.all_members.keys() == {1, 2, 3, 9, 17, 25}
    # The own line has no client address, so clientPort from zoo.cfg still serves.
    assert restarted.client_port == 55775
    assert restarted.ensemble.verifier.config_text() == CONFIG_14
    assert restarted.ensemble.last_seen is None


def test_a_client_address_on_the_own_line_erases_client_port(tmp_path: Path) -> None:
    config = write_cluster_member(tmp_path)
    new = verifier_from_text(CONFIG_14.replace(b"41213:participant\n", b"41213:participant;2999\n"))
    write_committed_config(str(config), new, 1)
    assert "clientPort" not in config.read_text()
    assert load_config(str(config)).client_port == 2999


def test_next_file_is_read_back_as_the_last_seen_config(tmp_path: Path) -> None:
    config = write_cluster_member(tmp_path)
    write_committed_config(str(config), verifier_from_text(CONFIG_14), 1)
    proposed = verifier_from_text(CONFIG_14.replace(b"version=100000014", b"version=100000020"))
    write_next_config(str(config), proposed)
    assert read_next_config(str(config)) == proposed
    loaded = load_config(str(config))
    assert loaded.ensemble is not None and loaded.ensemble.last_seen == proposed

    write_next_config(str(config), verifier_from_text(CONFIG_14.replace(b"100000014", b"5")))
    stale = load_config(str(config))
    assert stale.ensemble is not None and stale.ensemble.last_seen is None
    assert any("is not newer" in w for w in stale.warnings)
    remove_next_config(str(config))
    remove_next_config(str(config))
    assert not os.path.exists(next_file_path(str(config))) and read_next_config(str(config)) is None


def dynamic_error(tmp_path: Path, dynamic: str, extra: str = "") -> ConfigError:
    data = tmp_path / "data"
    data.mkdir(exist_ok=True)
    (data / "myid").write_text("1")
    dyn = tmp_path / "zoo.cfg.dynamic.100000000"
    dyn.write_text(dynamic)
    config = tmp_path / "zoo.cfg"
    config.write_text(f"dataDir={data}\ninitLimit=5\nsyncLimit=2\n{extra}dynamicConfigFile={dyn}\n")
    with pytest.raises(ConfigError) as info:
        load_config(str(config))
    return info.value


SERVERS = "server.1=h1:1:2\nserver.2=h2:1:2\nserver.3=h3:1:2\n"


def test_dynamic_file_errors_name_the_file_and_line(tmp_path: Path) -> None:
    e = dynamic_error(tmp_path, SERVERS + "version=3\n")
    assert str(e).endswith("zoo.cfg.dynamic.100000000 line 4: dynamic file shouldn't have version inside")
    e = dynamic_error(tmp_path, SERVERS + "tickTime=3\n")
    assert str(e).endswith("line 4: Unrecognised parameter: tickTime")
    e = dynamic_error(tmp_path, "server.1=h1:1:2\nserver.2=h2:1:1\nserver.3=h3:1:2\n")
    assert str(e).endswith("zoo.cfg.dynamic.100000000 line 2: server.2: "
                           "'h2:1:1': the quorum and election ports must differ (both 1)")
    e = dynamic_error(tmp_path, SERVERS, extra="server.4=h4:1:2\n")
    assert str(e).startswith(f"{tmp_path / 'zoo.cfg'} line 4: server.4: must be in the separate "
                             "dynamic config file")


def test_missing_dynamic_file(tmp_path: Path) -> None:
    config = tmp_path / "zoo.cfg"
    config.write_text(f"dataDir={tmp_path}\ndynamicConfigFile={tmp_path}/nothing\n")
    with pytest.raises(ConfigError, match="cannot read dynamic config"):
        load_config(str(config))
    with pytest.raises(ConfigError, match=r"^zoo.cfg line 1: dynamicConfigFile: /x was not read$"):
        parse_config("dynamicConfigFile=/x\ndataDir=/d\n")


def test_dynamic_membership_replaces_the_superseded_not_supported_error() -> None:
    # Formerly refused outright; now 3.8's rule: server lines must move to the dynamic file.
    with pytest.raises(ConfigError, match=r"^zoo.cfg line 3: server.1: must be in the separate"):
        parse_config("dataDir=/d\ndynamicConfigFile=/etc/zoo.cfg.dynamic\nserver.1=a:1:2\n")
    single = parse_config("dataDir=/d\ndynamicConfigFile=/etc/zoo.cfg.dynamic.0\n",
                          dynamic_text="server.1=a:1:2\n")
    assert single.ensemble is None and single.dynamic_config_file == "/etc/zoo.cfg.dynamic.0"
