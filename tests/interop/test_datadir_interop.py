"""A data directory moves between zabd and Apache ZooKeeper 3.8.0, in both directions.

These are issue 3's three compatibility claims, each tested against Debian's ZooKeeper:

- ZooKeeper started on a zabd dataDir serves the same tree and sessions (zabd-to-zookeeper);
- zabd started on a ZooKeeper dataDir does the same (zookeeper-to-zabd);
- ZooKeeper's SnapshotFormatter and TxnLogToolkit read zabd's files without a complaint.

ZooKeeper-to-ZooKeeper runs as well (the one-log case only: it is cheap). It
shows what ZooKeeper itself keeps across a restart, so a failure there is in
the harness. ZABD_DATADIR_REFERENCE=1 adds the other ZooKeeper-only cases:
the rolled switch, the tools on ZooKeeper's own files, and a check that the
tool checks do catch damage.

The switch works like this. The first server takes the workload. A kazoo client
("holder") keeps its session open and owns ephemerals. The whole tree is read
through that client, then the first server is SIGKILLed, so no session is
closed. The second server starts on the same data directories and the same
port, well within the session timeout. The holder must resume the same
session, still own its ephemerals and read the same tree: data, all 11 Stat
fields and the ACL list of every node.
"""

from __future__ import annotations

import os
import shutil
import struct
from collections.abc import Iterator, Mapping
from contextlib import ExitStack, contextmanager
from pathlib import Path

import pytest
from kazoo.client import KazooClient
from kazoo.protocol.states import KazooState

from tests.interop.conftest import interop_targets, kazoo_client, start_server
from tests.interop.datadir_tools import (
    AUTH_DATA,
    ROOT,
    capture_tree,
    create_ephemerals,
    data_files,
    max_zxid,
    names_zookeeper_would_misread,
    snapshots_read,
    snapshots_sealed,
    tree_differences,
    write_bulk,
    write_workload,
    zookeeper_recovery_complaints,
)
from tests.interop.zk_tools import (
    logged_zxids,
    parse_snapshot_dump,
    run_tools,
    snapshot_disagreements,
    snapshot_formatter_complaints,
    txn_log_toolkit_complaints,
)
from zabd.harness.processes import ServerProcess
from zabd.harness.probes import wait_until

# (writer, reader): the first two are the claims; zookeeper-to-zookeeper checks the harness.
PAIRS = [("zabd", "zookeeper"), ("zookeeper", "zabd"), ("zookeeper", "zookeeper")]
SCENARIOS = ["one-log", "rolled"]
REFERENCE = os.environ.get("ZABD_DATADIR_REFERENCE", "") not in ("", "0")
SERVER_CFG = {
    "extendedTypesEnabled": "true",
    "znode.container.checkIntervalMs": "3600000",  # no container/TTL reaping during a test
}
ROLLING_CFG = {"zookeeper.snapCount": "50"}  # a snapshot and a new log every 26-50 txns
BULK_NODES = 100  # write_bulk: ~250 txns
SESSION_TIMEOUT = 30.0  # within ZooKeeper's default maximum (20 ticks = 40 s)
DEADLINE = 30.0
# Reconnect quickly while the second server starts.
RECONNECT = {"max_tries": -1, "delay": 0.05, "backoff": 1.5, "max_delay": 0.5}


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    """Cases whose servers are all among the interop targets; ZooKeeper-only ones mostly on request."""
    targets = set(interop_targets(metafunc.config))

    def wanted(*kinds: str, cheap: bool = False) -> bool:
        return set(kinds) <= targets and (REFERENCE or cheap or "zabd" in kinds)

    if {"writer", "reader", "scenario"} <= set(metafunc.fixturenames):
        cases = [(w, r, s) for w, r in PAIRS for s in SCENARIOS if wanted(w, r, cheap=s == "one-log")]
        metafunc.parametrize(("writer", "reader", "scenario"), cases,
                             ids=[f"{w}-to-{r}-{s}" for w, r, s in cases])
    elif "writer" in metafunc.fixturenames:
        metafunc.parametrize("writer", [kind for kind in ("zabd", "zookeeper") if wanted(kind)])


class DataDirs:
    """dataDir (and optionally a separate dataLogDir) shared by both servers of a test."""

    def __init__(self, base: Path, separate_log_dir: bool) -> None:
        self.data = base / "datadir"
        self.log = base / "datalogdir" if separate_log_dir else self.data

    def cfg(self, *extra: Mapping[str, str]) -> dict[str, str]:
        settings = {"dataDir": str(self.data), **SERVER_CFG}
        if self.log != self.data:
            settings["dataLogDir"] = str(self.log)
        for more in extra:
            settings.update(more)
        return settings

    def sealed(self) -> bool:
        return snapshots_sealed(self.data, self.log)

    def newest_snapshot(self) -> Path | None:
        snapshots = data_files(self.data).snapshots
        return snapshots[-1][1] if snapshots else None


@contextmanager
def running(kind: str, workdir: Path, cfg: Mapping[str, str], port: int | None = None) -> Iterator[ServerProcess]:
    """A server that has loaded its database (srvr shows a zxid), always reaped."""
    server = start_server(kind, workdir, cfg, port)
    try:
        # ZooKeeper answers 4lw before loading its database and can still exit after that.
        wait_until(lambda: _serving(server), DEADLINE, f"{kind} to load its database", server.describe)
        yield server
    finally:
        server.stop()


def _serving(server: ServerProcess) -> bool:
    if not server.is_running():
        raise AssertionError(f"{server.kind} exited during startup\n{server.describe()}")
    try:
        return "Zxid: 0x" in server.four_letter("srvr", timeout=2.0)
    except OSError:
        return False


@contextmanager
def holder_client(server: ServerProcess, states: list[str]) -> Iterator[KazooClient]:
    client = KazooClient(
        hosts=server.address(), timeout=SESSION_TIMEOUT, auth_data=AUTH_DATA, connection_retry=RECONNECT
    )
    client.add_listener(lambda state: states.append(str(state)))
    try:
        client.start(timeout=DEADLINE)
        yield client
    finally:
        client.stop()
        client.close()


def test_switch_keeps_tree_and_session(writer: str, reader: str, scenario: str, tmp_path: Path) -> None:
    rolled = scenario == "rolled"
    dirs = DataDirs(tmp_path, separate_log_dir=rolled)
    cfg = dirs.cfg(ROLLING_CFG if rolled else {})
    states: list[str] = []
    with ExitStack() as stack:
        first = stack.enter_context(running(writer, tmp_path / f"first-{writer}", cfg))
        holder = stack.enter_context(holder_client(first, states))
        # The holder's createSession and ephemerals come first: with rolling they end up in snapshots.
        ephemerals = create_ephemerals(holder)
        with kazoo_client(first, auth_data=AUTH_DATA) as client:
            write_workload(client, first.address())
            if rolled:
                write_bulk(client, BULK_NODES)
        wait_until(dirs.sealed, DEADLINE, "snapshots to be complete", first.describe)
        if rolled:
            files = data_files(dirs.data, dirs.log)
            assert len(files.snapshots) >= 2 and len(files.logs) >= 3, f"{writer} did not roll: {files}"
        before = capture_tree(holder)
        session_id = holder.client_id[0]

        first.kill()
        newest_snapshot = dirs.newest_snapshot()
        assert not names_zookeeper_would_misread(dirs.data, dirs.log)
        second = stack.enter_context(running(reader, tmp_path / f"second-{reader}", cfg, port=first.port))
        wait_until(lambda: holder.state == KazooState.CONNECTED and len(states) >= 3, DEADLINE,
                   f"the holder to reconnect (states {states})", second.describe)

        assert holder.client_id[0] == session_id, f"new session {holder.client_id[0]:#x}; states {states}"
        assert KazooState.LOST not in states, f"session lost: {states}"
        after = capture_tree(holder)
        differences = tree_differences(before, after)
        assert not differences, f"{writer} -> {reader}: the trees differ:\n" + "\n".join(differences)
        for path in ephemerals:
            assert after[path].stat[7] == session_id

        if reader == "zookeeper":
            log = second.log_text()
            assert not zookeeper_recovery_complaints(log), zookeeper_recovery_complaints(log)
            read = snapshots_read(log)
            assert read[:1] == [str(newest_snapshot)], f"ZooKeeper read {read}, newest is {newest_snapshot}"

        # The reader takes writes after the old history, and the holder's close removes its ephemerals.
        with kazoo_client(second) as checker:
            _, stat = checker.create(f"{ROOT}/after-switch", b"new", include_data=True)
            assert stat.czxid > max_zxid(before)
            holder.stop()
            wait_until(lambda: not any(checker.exists(path) for path in ephemerals), DEADLINE,
                       "the closed session's ephemerals to go", second.describe)


def test_zookeeper_tools_read_files(writer: str, tmp_path: Path) -> None:
    """SnapshotFormatter and TxnLogToolkit read every snapshot and log the writer left."""
    dirs = DataDirs(tmp_path, separate_log_dir=True)
    with running(writer, tmp_path / writer, dirs.cfg(ROLLING_CFG)) as server:
        with kazoo_client(server, auth_data=AUTH_DATA) as client:
            create_ephemerals(client)  # a session with ephemerals in the snapshots
            write_workload(client, server.address())
            write_bulk(client, BULK_NODES)
            final = capture_tree(client)
        last_zxid = int(server.four_letter("srvr").split("Zxid: 0x", 1)[1].split()[0], 16)
        wait_until(dirs.sealed, DEADLINE, "snapshots to be complete", server.describe)
    files = data_files(dirs.data, dirs.log)
    assert not names_zookeeper_would_misread(dirs.data, dirs.log)
    assert data_files(dirs.data).logs == [] and data_files(dirs.log).snapshots == [], \
        f"logs belong in dataLogDir, snapshots in dataDir: {files}"
    # Logs roll at every snapCount trigger; a snapshot is skipped while the previous one runs.
    assert len(files.snapshots) >= 2 and len(files.logs) >= 3, f"{writer} did not roll: {files}"

    snapshot_runs, log_runs = run_tools([p for _, p in files.snapshots], [p for _, p in files.logs])

    for run in snapshot_runs:
        problems = snapshot_formatter_complaints(run)
        assert not problems, f"{problems}\n{run.describe()}"
    newest_zxid, newest = files.snapshots[-1]
    dump = parse_snapshot_dump(snapshot_runs[-1].stdout)
    assert dump.last_zxid >= newest_zxid
    disagreements = snapshot_disagreements(dump, newest_zxid, final)
    assert not disagreements, f"{newest}:\n" + "\n".join(disagreements)

    all_zxids: list[int] = []
    for (name_zxid, path), run in zip(files.logs, log_runs, strict=True):
        problems = txn_log_toolkit_complaints(run)
        assert not problems, f"{problems}\n{run.describe()}"
        zxids = logged_zxids(run)
        assert zxids and zxids[0] == name_zxid, f"{path.name} starts with {zxids[:1]}"
        all_zxids += zxids
    assert all_zxids == list(range(all_zxids[0], last_zxid + 1)), "logs are not one consecutive history"
    assert all_zxids[0] <= files.snapshots[0][0] + 1, "the oldest snapshot cannot be replayed forward"

    # The same checks do see damage in these very files.
    bad_log, bad_snapshot = damaged_copies(files.logs[-1][1], newest, tmp_path / "damaged")
    bad_snapshot_run, bad_log_run = run_tools([bad_snapshot], [bad_log])
    assert txn_log_toolkit_complaints(bad_log_run[0]), bad_log_run[0].describe()
    assert snapshot_formatter_complaints(bad_snapshot_run[0]), bad_snapshot_run[0].describe()


def damaged_copies(log: Path, snapshot: Path, into: Path) -> tuple[Path, Path]:
    """A copy of ``log`` with a bit flipped in its first record's body (a CRC error) and
    a copy of ``snapshot`` cut in half."""
    into.mkdir()
    bad_log, bad_snapshot = into / log.name, into / snapshot.name
    shutil.copyfile(log, bad_log)
    with open(bad_log, "r+b") as file:
        file.seek(16 + 8)
        (length,) = struct.unpack(">i", file.read(4))
        file.seek(16 + 12 + length // 2)
        byte = file.read(1)
        file.seek(-1, 1)
        file.write(bytes([byte[0] ^ 0x01]))
    content = snapshot.read_bytes()
    bad_snapshot.write_bytes(content[: len(content) // 2])
    return bad_log, bad_snapshot
