"""The Java client, through Debian's zkCli.sh, against real servers.

zkCli.sh runs one command when given it as arguments (exit status 1 on a
failed command). Fed through stdin it runs a whole script in one session
(JLine is off, so there is no prompt). Each script command here is followed by
``version``, which prints a fixed line without touching the server; that line
splits the merged stdout+stderr into one block per command. Watch
notifications are printed asynchronously by the event thread, so they are
collected separately from the blocks.
"""

from __future__ import annotations

import os
import re
import signal
import subprocess
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import pytest
from kazoo.security import make_digest_acl_credential

from tests.interop.conftest import require_executable
from zabd.harness.processes import ServerProcess

ZKCLI = "/usr/share/zookeeper/bin/zkCli.sh"
MARKER = "ZooKeeper CLI version:"
RUN_DEADLINE = 90.0
NOISE_PREFIXES = ("SLF4J:", "Connecting to ", "Welcome to ZooKeeper!", "JLine support is ")
EVENT = re.compile(r"^WatchedEvent state:(\w+) type:(\w+) path:(\S+)$")


@pytest.fixture(scope="module")
def server_extra_cfg() -> Mapping[str, str]:
    return {"extendedTypesEnabled": "true"}


@pytest.fixture(scope="module")
def zkcli() -> str:
    require_executable("java")
    return require_executable(ZKCLI)


@dataclass
class ScriptRun:
    blocks: list[list[str]]  # output lines of each command, in order
    events: list[tuple[str, str]]  # (type, path) of watch notifications, None-type ones left out
    output: str

    def __getitem__(self, index: int) -> list[str]:
        return self.blocks[index]


def _clean(output: str) -> tuple[list[str], list[tuple[str, str]]]:
    lines, events = [], []
    for line in output.splitlines():
        match = EVENT.match(line)
        if match:
            if match.group(2) != "None":
                events.append((match.group(2), match.group(3)))
        elif line != "WATCHER::" and line.strip() and not line.startswith(NOISE_PREFIXES):
            lines.append(line)
    return lines, events


def _run_zkcli(command: list[str], stdin: bytes | None) -> tuple[int, str]:
    """Run zkCli.sh with a deadline. The script starts java as a child (no exec),
    so it runs in its own process group and the whole group is killed on expiry."""
    process = subprocess.Popen(
        command,
        stdin=subprocess.PIPE if stdin is not None else subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    try:
        output, _ = process.communicate(stdin, timeout=RUN_DEADLINE)
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)
        output, _ = process.communicate()
        raise AssertionError(
            f"zkCli.sh did not finish within {RUN_DEADLINE}s: {command}\n{output.decode('utf-8', 'replace')}"
        ) from None
    return process.returncode, output.decode("utf-8", "replace")


def run_script(zkcli: str, server: ServerProcess, commands: Sequence[str]) -> ScriptRun:
    script = "".join(f"{command}\nversion\n" for command in commands) + "quit\n"
    _, output = _run_zkcli([zkcli, "-server", server.address()], script.encode())
    lines, events = _clean(output)
    blocks: list[list[str]] = [[]]
    for line in lines:
        if line.startswith(MARKER):
            blocks.append([])
        else:
            blocks[-1].append(line)
    assert len(blocks) == len(commands) + 1, f"zkCli.sh output does not match the script:\n{output}"
    return ScriptRun(blocks[:-1], events, output)


def run_once(zkcli: str, server: ServerProcess, *args: str) -> tuple[int, list[str]]:
    status, output = _run_zkcli([zkcli, "-server", server.address(), *args], None)
    lines, _ = _clean(output)
    return status, lines


def parse_stat(lines: Sequence[str]) -> dict[str, str]:
    """The ``key = value`` lines zkCli prints for a Stat."""
    stat = {}
    for line in lines:
        key, sep, value = line.partition(" = ")
        if sep and key in STAT_KEYS:
            stat[key] = value
    assert set(stat) == STAT_KEYS, f"incomplete stat in {lines}"
    return stat


STAT_KEYS = {
    "cZxid", "ctime", "mZxid", "mtime", "pZxid", "cversion", "dataVersion",
    "aclVersion", "ephemeralOwner", "dataLength", "numChildren",
}  # fmt: skip


def parse_list(line: str) -> set[str]:
    assert line.startswith("[") and line.endswith("]"), line
    return {item for item in line[1:-1].split(", ") if item}


def test_one_shot_commands_and_exit_status(zkcli: str, server: ServerProcess, node_path: str) -> None:
    assert run_once(zkcli, server, "create", node_path, "hello") == (0, [f"Created {node_path}"])
    assert run_once(zkcli, server, "get", node_path) == (0, ["hello"])
    status, lines = run_once(zkcli, server, "get", f"{node_path}/missing")
    assert (status, lines) == (1, [f"Node does not exist: {node_path}/missing"])
    assert run_once(zkcli, server, "delete", node_path) == (0, [])


def test_create_get_set_stat(zkcli: str, server: ServerProcess, node_path: str) -> None:
    run = run_script(zkcli, server, [
        f"create {node_path} data",      # 0
        f"get {node_path}",              # 1
        f"get -s {node_path}",           # 2
        f"set {node_path} new",          # 3
        f"stat {node_path}",             # 4
        f"set -s {node_path} third",     # 5
        f"set -v 0 {node_path} stale",   # 6
        f"create {node_path} again",     # 7
        f"create {node_path}/no-data",   # 8
        f"get {node_path}/no-data",      # 9
        f"create {node_path}/missing/child",  # 10
        f"sync {node_path}",             # 11
    ])  # fmt: skip
    assert run[0] == [f"Created {node_path}"]
    assert run[1] == ["data"]
    assert run[2][0] == "data"
    created = parse_stat(run[2][1:])
    assert created["cZxid"] == created["mZxid"] == created["pZxid"]
    assert created["ctime"] == created["mtime"]
    assert (created["dataVersion"], created["cversion"], created["aclVersion"]) == ("0", "0", "0")
    assert (created["ephemeralOwner"], created["dataLength"], created["numChildren"]) == ("0x0", "4", "0")
    assert run[3] == []
    after_set = parse_stat(run[4])
    assert (after_set["dataVersion"], after_set["dataLength"]) == ("1", "3")
    assert int(after_set["mZxid"], 16) > int(created["mZxid"], 16)
    assert after_set["cZxid"] == created["cZxid"]
    assert parse_stat(run[5])["dataVersion"] == "2"
    assert run[6] == [f"version No is not valid : {node_path}"]
    assert run[7] == [f"Node already exists: {node_path}"]
    assert run[8] == [f"Created {node_path}/no-data"]
    assert run[9] == ["null"]  # no data is kept as null, distinct from empty
    assert run[10] == [f"Node does not exist: {node_path}/missing/child"]
    assert run[11] == ["Sync is OK"]


def test_create_modes(zkcli: str, server: ServerProcess, node_path: str) -> None:
    run = run_script(zkcli, server, [
        f"create {node_path}",               # 0
        f"create -s {node_path}/s- a",       # 1
        f"create -s {node_path}/s- b",       # 2
        f"create -e {node_path}/e x",        # 3
        f"create -e -s {node_path}/es- y",   # 4
        f"create -c {node_path}/c",          # 5
        f"create -t 600000 {node_path}/t z",  # 6
        f"create -t 600000 -s {node_path}/ts- z",  # 7
        f"stat {node_path}/e",               # 8
        f"stat {node_path}/c",               # 9
        f"stat {node_path}/t",               # 10
        f"getEphemerals {node_path}",        # 11
        f"ls {node_path}",                   # 12
        f"create -e {node_path}/e/child",    # 13
        f"getEphemerals {node_path}/e",      # 14
    ])  # fmt: skip
    assert run[1] == [f"Created {node_path}/s-0000000000"]
    assert run[2] == [f"Created {node_path}/s-0000000001"]
    assert run[3] == [f"Created {node_path}/e"]
    assert run[4] == [f"Created {node_path}/es-0000000003"]
    assert run[5] == [f"Created {node_path}/c"]
    assert run[6] == [f"Created {node_path}/t"]
    assert run[7] == [f"Created {node_path}/ts-0000000006"]
    ephemeral_owner = parse_stat(run[8])["ephemeralOwner"]
    assert ephemeral_owner != "0x0"
    assert parse_stat(run[9])["ephemeralOwner"] == "0x0"  # containers show no owner
    assert parse_stat(run[10])["ephemeralOwner"] == "0x0"  # nor do TTL nodes
    assert parse_list(run[11][0]) == {f"{node_path}/e", f"{node_path}/es-0000000003"}
    assert parse_list(run[12][0]) == {
        "s-0000000000", "s-0000000001", "e", "es-0000000003", "c", "t", "ts-0000000006",
    }  # fmt: skip
    assert run[13] == [f"Ephemerals cannot have children: {node_path}/e/child"]
    # a plain string-prefix match: "/e" also selects "/es-..."
    assert parse_list(run[14][0]) == {f"{node_path}/e", f"{node_path}/es-0000000003"}


def test_ttl_option_is_validated_by_the_client(zkcli: str, server: ServerProcess, node_path: str) -> None:
    run = run_script(zkcli, server, [f"create -t 0 {node_path} x", f"stat {node_path}"])
    assert run[0] == ["ttl must be positive and cannot be larger than: 1099511627775"]
    assert run[1] == [f"Node does not exist: {node_path}"]


def test_ls_variants_and_children_count(zkcli: str, server: ServerProcess, node_path: str) -> None:
    run = run_script(zkcli, server, [
        f"create {node_path} p",          # 0
        f"create {node_path}/a",          # 1
        f"create {node_path}/a/b",        # 2
        f"create {node_path}/c",          # 3
        f"delete {node_path}/c",          # 4
        f"create {node_path}/d",          # 5
        f"ls {node_path}",                # 6
        f"ls -s {node_path}",             # 7
        f"ls -R {node_path}",             # 8
        f"getAllChildrenNumber {node_path}",  # 9
        f"getAllChildrenNumber {node_path}/a/b",  # 10
        "ls /zookeeper",                  # 11
    ])  # fmt: skip
    assert parse_list(run[6][0]) == {"a", "d"}
    assert parse_list(run[7][0]) == {"a", "d"}
    stat = parse_stat(run[7][1:])
    assert (stat["numChildren"], stat["cversion"], stat["dataLength"]) == ("2", "4", "1")
    assert run[8][0] == node_path
    assert set(run[8]) == {node_path, f"{node_path}/a", f"{node_path}/a/b", f"{node_path}/d"}
    assert run[9] == ["3"]
    assert run[10] == ["0"]
    assert parse_list(run[11][0]) == {"config", "quota"}


def test_delete_and_deleteall(zkcli: str, server: ServerProcess, node_path: str) -> None:
    run = run_script(zkcli, server, [
        f"create {node_path}",             # 0
        f"create {node_path}/a",           # 1
        f"create {node_path}/a/b x",       # 2
        f"delete {node_path}/a",           # 3
        f"delete -v 5 {node_path}/a/b",    # 4
        f"delete -v 0 {node_path}/a/b",    # 5
        f"create {node_path}/a/b2",        # 6
        f"deleteall {node_path}",          # 7
        f"stat {node_path}",               # 8
        f"delete {node_path}",             # 9
    ])  # fmt: skip
    assert run[3] == [f"Node not empty: {node_path}/a"]
    assert run[4] == [f"version No is not valid : {node_path}/a/b"]
    assert run[5] == []
    assert run[7] == []
    assert run[8] == [f"Node does not exist: {node_path}"]
    assert run[9] == [f"Node does not exist: {node_path}"]


def test_acls_and_addauth(zkcli: str, server: ServerProcess, node_path: str) -> None:
    credential = make_digest_acl_credential("u", "pw")
    run = run_script(zkcli, server, [
        f"create {node_path} data",                                      # 0
        f"getAcl {node_path}",                                           # 1
        f"setAcl {node_path} digest:{credential}:cdrwa,world:anyone:r",  # 2
        f"getAcl -s {node_path}",                                        # 3
        f"get {node_path}",                                              # 4
        f"set {node_path} nope",                                         # 5
        f"setAcl {node_path} world:anyone:cdrwa",                        # 6
        "whoami",                                                        # 7
        "addauth digest u:pw",                                           # 8
        f"getAcl {node_path}",                                           # 9
        f"set {node_path} yes",                                          # 10
        f"get {node_path}",                                              # 11
        "whoami",                                                        # 12
        f"create {node_path}/mine x auth::cdrwa",                        # 13
        f"getAcl {node_path}/mine",                                      # 14
        f"setAcl -v 0 {node_path} world:anyone:cdrwa",                   # 15
    ])  # fmt: skip
    assert run[1] == ["'world,'anyone", ": cdrwa"]
    assert run[2] == []
    # without ADMIN the digest's hash is masked
    assert run[3][:4] == ["'digest,'u:x", ": cdrwa", "'world,'anyone", ": r"]
    assert parse_stat(run[3][4:])["aclVersion"] == "1"
    assert run[4] == ["data"]
    assert run[5] == [f"Insufficient permission : {node_path}"]
    assert run[6] == [f"Insufficient permission : {node_path}"]
    assert run[7] == ["Auth scheme: User", "ip: 127.0.0.1"]
    assert run[8] == []
    assert run[9] == [f"'digest,'{credential}", ": cdrwa", "'world,'anyone", ": r"]
    assert run[10] == []
    assert run[11] == ["yes"]
    assert run[12][0] == "Auth scheme: User"
    assert sorted(run[12][1:]) == ["digest: u", "ip: 127.0.0.1"]
    assert run[13] == [f"Created {node_path}/mine"]
    assert run[14] == [f"'digest,'{credential}", ": cdrwa"]
    assert run[15] == [f"version No is not valid : {node_path}"]


def test_watches(zkcli: str, server: ServerProcess, node_path: str) -> None:
    run = run_script(zkcli, server, [
        f"create {node_path}",                   # 0
        f"addWatch {node_path}",                 # 1 recursive by default
        f"create {node_path}/w",                 # 2
        f"set {node_path}/w 1",                  # 3
        f"delete {node_path}/w",                 # 4
        f"create {node_path}-p",                 # 5
        f"addWatch -m PERSISTENT {node_path}-p", # 6
        f"create {node_path}-p/kid",             # 7
        f"set {node_path}-p x",                  # 8
        f"set {node_path}-p y",                  # 9
        f"create {node_path}-o",                 # 10
        f"get -w {node_path}-o",                 # 11
        f"ls -w {node_path}-o",                  # 12
        f"set {node_path}-o a",                  # 13
        f"set {node_path}-o b",                  # 14
        f"create {node_path}-o/kid",             # 15
        f"create {node_path}-o/kid2",            # 16
        f"stat -w {node_path}-missing",          # 17
        f"create {node_path}-missing",           # 18
    ])  # fmt: skip
    assert run[1] == [] and run[6] == []
    assert run[11] == ["null"]
    assert run[17] == [f"Node does not exist: {node_path}-missing"]
    assert run.events == [
        ("NodeCreated", f"{node_path}/w"),
        ("NodeDataChanged", f"{node_path}/w"),
        ("NodeDeleted", f"{node_path}/w"),
        ("NodeChildrenChanged", f"{node_path}-p"),
        ("NodeDataChanged", f"{node_path}-p"),
        ("NodeDataChanged", f"{node_path}-p"),
        ("NodeDataChanged", f"{node_path}-o"),
        ("NodeChildrenChanged", f"{node_path}-o"),
        ("NodeCreated", f"{node_path}-missing"),
    ], run.output
