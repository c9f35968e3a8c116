"""The C client (Debian's cli_mt, libzookeeper-mt 3.8) against real servers.

cli_mt reads commands from stdin and prints completions on stderr from its
completion thread, in reply order. Quirks: every request is asynchronous;
``create`` always stores the 3 bytes "new" with an open ACL (the rest of the
line is the path); ``get`` and ``ls`` always leave a watch; ``exists`` prints
nothing unless it fails; ``addauth <scheme> <credential>`` prints nothing
unless it fails; stats are printed in hex. To know when a command is done,
each one is followed by ``sync /``, whose completion comes after every earlier
reply on the connection.
"""

from __future__ import annotations

import re
import subprocess
import threading
from collections.abc import Iterator, Mapping
from contextlib import contextmanager

import pytest
from kazoo.security import make_acl, make_digest_acl

from tests.interop.conftest import kazoo_client, require_executable
from zabd.harness.processes import ServerProcess

CLI_MT = "/usr/lib/zookeeper/bin/cli_mt"
DEADLINE = 15.0
BARRIER = "sync /"
BARRIER_DONE = "\tname = /"
SESSION_LINE = re.compile(r"^Got a new session id: 0x([0-9a-f]+)$")


@pytest.fixture(scope="module")
def server_extra_cfg() -> Mapping[str, str]:
    return {}  # extended types (TTL) stay disabled here


@pytest.fixture(scope="module")
def cli_mt() -> str:
    return require_executable(CLI_MT)


class CClient:
    """A running cli_mt whose merged output is collected line by line."""

    def __init__(self, binary: str, server: ServerProcess) -> None:
        self.server = server
        self.lines: list[str] = []
        self._changed = threading.Condition()
        self.process = subprocess.Popen(
            [binary, server.address()],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
        )
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()
        index = self.wait_for(SESSION_LINE, 0, "a session")
        match = SESSION_LINE.match(self.lines[index])
        assert match is not None
        self.session_id = int(match.group(1), 16)

    def _read(self) -> None:
        assert self.process.stdout is not None
        for raw in self.process.stdout:
            with self._changed:
                self.lines.append(raw.decode("utf-8", "replace").rstrip("\n"))
                self._changed.notify_all()
        with self._changed:
            self.lines.append("<EOF>")
            self._changed.notify_all()

    def output(self) -> str:
        with self._changed:
            return "\n".join(self.lines)

    def wait_for(self, pattern: re.Pattern[str] | str, start: int, what: str, timeout: float = DEADLINE) -> int:
        """Index of the first line at or after ``start`` matching ``pattern`` (a regex or an exact line)."""

        def find() -> int | None:
            for index in range(start, len(self.lines)):
                line = self.lines[index]
                if (pattern.match(line) if isinstance(pattern, re.Pattern) else line == pattern):
                    return index
            return None

        with self._changed:
            found = self._changed.wait_for(find, timeout)
            if found is None:
                raise AssertionError(f"cli_mt: no {what} within {timeout}s; output so far:\n" + "\n".join(self.lines))
            return found

    def send(self, line: str) -> None:
        assert self.process.stdin is not None
        self.process.stdin.write(line.encode() + b"\n")
        self.process.stdin.flush()

    def run(self, command: str) -> list[str]:
        """Run one command and return the output lines it produced (barrier excluded)."""
        with self._changed:
            start = len(self.lines)
        self.send(command)
        self.send(BARRIER)
        done = self.wait_for(BARRIER_DONE, start, f"completion of {command!r}")
        with self._changed:
            produced = self.lines[start:done]
        assert produced[-1] == "[/]: rc = 0", produced
        return [line for line in produced[:-1] if not line.startswith("time = ")]

    def close(self) -> None:
        if self.process.poll() is None and self.process.stdin is not None:
            try:
                self.process.stdin.close()  # EOF: cli_mt closes its session and exits
                self.process.wait(DEADLINE)
            except (subprocess.TimeoutExpired, BrokenPipeError):
                self.process.kill()
                self.process.wait()
        self._reader.join(DEADLINE)


@contextmanager
def c_client(binary: str, server: ServerProcess) -> Iterator[CClient]:
    client = CClient(binary, server)
    try:
        yield client
    finally:
        client.close()


def stat_fields(lines: list[str]) -> dict[str, str]:
    """Parse cli_mt's dumpStat lines (``czxid=..``, ``version=..``, ``ephemeralOwner = ..``)."""
    fields: dict[str, str] = {}
    for line in lines:
        for part in line.strip().split("\t"):
            key, sep, value = part.partition("=")
            if sep:
                fields[key.strip()] = value.strip()
    return fields


def test_create_get_set_delete(cli_mt: str, server: ServerProcess, node_path: str) -> None:
    with c_client(cli_mt, server) as cli:
        assert cli.run(f"create {node_path}") == [
            f"Creating [{node_path}] node (mode: 0)",
            f"[{node_path}]: rc = 0",
            f"\tname = {node_path}",
        ]
        got = cli.run(f"get {node_path}")
        assert got[:4] == [f"{node_path}: rc = 0", " value_len = 3", "new", "Stat:"], got
        stat = stat_fields(got[4:])
        assert (stat["version"], stat["aversion"], stat["ephemeralOwner"]) == ("0", "0", "0")
        assert stat["czxid"] == stat["mzxid"]
        changed = cli.run(f"set {node_path} hello")
        # the get above left a data watch: its event precedes the set's reply
        assert changed[0] == f"Watcher CHANGED_EVENT state = CONNECTED_STATE for path {node_path}", changed
        assert changed[1] == f"{node_path}: rc = 0 Stat:"
        after = stat_fields(changed[2:])
        assert after["version"] == "1" and int(after["mzxid"], 16) > int(stat["mzxid"], 16)
        assert cli.run(f"get {node_path}")[:3] == [f"{node_path}: rc = 0", " value_len = 5", "hello"]
        assert cli.run(f"delete {node_path}")[-1] == f"{node_path}: rc = 0"
        assert cli.run(f"get {node_path}") == [f"{node_path}: rc = -101", "", "Stat:", "null"]
        assert cli.run(f"delete {node_path}") == [f"{node_path}: rc = -101"]


def test_create_flags_and_errors(cli_mt: str, server: ServerProcess, node_path: str) -> None:
    with c_client(cli_mt, server) as cli:
        cli.run(f"create {node_path}")
        assert cli.run(f"create +s {node_path}/s-")[-1] == f"\tname = {node_path}/s-0000000000"
        assert cli.run(f"create +s {node_path}/s-")[-1] == f"\tname = {node_path}/s-0000000001"
        assert cli.run(f"create +e {node_path}/e")[-1] == f"\tname = {node_path}/e"
        assert cli.run(f"create +es {node_path}/es-")[-1] == f"\tname = {node_path}/es-0000000003"
        created = cli.run(f"create2 +e {node_path}/e2")
        assert created[:3] == [
            f"Creating [{node_path}/e2] node (mode: 1)",
            f"[{node_path}/e2]: rc = 0",
            f"\tname = {node_path}/e2",
        ]
        stat = stat_fields(created[3:])
        assert int(stat["ephemeralOwner"], 16) == cli.session_id
        assert stat["czxid"] == stat["mzxid"] and stat["version"] == "0"
        assert cli.run(f"create {node_path}/e")[-1] == f"[{node_path}/e]: rc = -110"
        assert cli.run(f"create {node_path}/e/child")[-1] == f"[{node_path}/e/child]: rc = -108"
        assert cli.run(f"create {node_path}/no/parent")[-1] == f"[{node_path}/no/parent]: rc = -101"
        assert cli.run(f"delete {node_path}") == [f"{node_path}: rc = -111"]
        listed = cli.run(f"ls {node_path}")
        assert listed[0] == f"{node_path}: rc = 0"
        assert {line.strip() for line in listed[1:]} == {
            "s-0000000000", "s-0000000001", "e", "es-0000000003", "e2",
        }  # fmt: skip
    # closing cli_mt closed its session: the ephemerals are gone
    with c_client(cli_mt, server) as cli:
        listed = cli.run(f"ls2 {node_path}")
        assert {line.strip() for line in listed[1:3]} == {"s-0000000000", "s-0000000001"}
        assert stat_fields(listed[3:])["version"] == "0"


def test_exists_and_sync(cli_mt: str, server: ServerProcess, node_path: str) -> None:
    with c_client(cli_mt, server) as cli:
        assert cli.run(f"exists {node_path}") == [f"Error -101 for {node_path}"]
        cli.run(f"create {node_path}")
        assert cli.run(f"exists {node_path}") == []
        assert cli.run(f"sync {node_path}") == [f"[{node_path}]: rc = 0", f"\tname = {node_path}"]


def test_child_watch_and_other_clients(cli_mt: str, server: ServerProcess, node_path: str) -> None:
    with c_client(cli_mt, server) as watcher, c_client(cli_mt, server) as writer:
        writer.run(f"create {node_path}")
        assert watcher.run(f"ls {node_path}") == [f"{node_path}: rc = 0"]
        assert watcher.run(f"get {node_path}")[0] == f"{node_path}: rc = 0"
        start = len(watcher.lines)
        writer.run(f"create {node_path}/kid")
        watcher.wait_for(f"Watcher CHILD_EVENT state = CONNECTED_STATE for path {node_path}", start, "child event")
        writer.run(f"set {node_path} data")
        watcher.wait_for(f"Watcher CHANGED_EVENT state = CONNECTED_STATE for path {node_path}", start, "data event")
        own = watcher.run(f"ls {node_path}")
        assert own == [f"{node_path}: rc = 0", "\tkid"]
        created = watcher.run(f"create {node_path}/kid2")
        assert created[1] == f"Watcher CHILD_EVENT state = CONNECTED_STATE for path {node_path}", created
        assert created[2] == f"[{node_path}/kid2]: rc = 0"


def test_container_and_ttl_without_extended_types(cli_mt: str, server: ServerProcess, node_path: str) -> None:
    with c_client(cli_mt, server) as cli:
        assert cli.run(f"create +c {node_path}") == [
            f"Creating [{node_path}] node (mode: 4)",
            f"[{node_path}]: rc = 0",
            f"\tname = {node_path}",
        ]
        assert cli.run(f"create +t=5000 {node_path}/ttl") == [
            f"Creating [{node_path}/ttl] node (mode: 5)",
            f"[{node_path}/ttl]: rc = -6",  # UNIMPLEMENTED: extendedTypesEnabled is off
        ]


def test_digest_auth(cli_mt: str, server: ServerProcess, node_path: str) -> None:
    with kazoo_client(server, auth_data=[("digest", "u:pw")]) as owner:
        owner.create(node_path, b"secret", acl=[make_digest_acl("u", "pw", all=True), make_acl("world", "anyone", create=True)])
    with c_client(cli_mt, server) as cli:
        assert cli.run(f"get {node_path}")[0] == f"{node_path}: rc = -102"
        assert cli.run(f"create {node_path}/c")[-2:] == [f"[{node_path}/c]: rc = 0", f"\tname = {node_path}/c"]
        assert cli.run("addauth digest u:pw") == []
        got = cli.run(f"get {node_path}")
        assert got[:3] == [f"{node_path}: rc = 0", " value_len = 6", "secret"]


def test_unknown_auth_scheme_ends_the_session(cli_mt: str, server: ServerProcess) -> None:
    with c_client(cli_mt, server) as cli:
        start = len(cli.lines)
        cli.send("addauth no-such-scheme whatever")
        cli.wait_for("Watcher SESSION_EVENT state = AUTH_FAILED_STATE", start, "AUTH_FAILED")
        cli.wait_for("Authentication failure. Shutting down...", start, "shutdown")
