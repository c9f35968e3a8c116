"""kill -9 under sustained write load: every acknowledged write survives, whole, in order.

Each cycle runs several pipelined writers (zabd.harness.crashload), kills the
server with SIGKILL from inside the reply handler once enough writes of the
cycle are acknowledged (so every pipeline is full at that moment), restarts it
on the same port and dataDir, and reads everything back: each writer's applied
history must be one gap-free prefix that covers every acknowledged write, with
every value byte-exact. A small snapCount makes snapshots and log rolls happen
under load.

Sessions: a holder session (30 s timeout) owns an ephemeral across all kills.
After each restart it reconnects with its id, password and last seen zxid; it
must be taken back (same id) and still own the node. An ephemeral whose
session was closed before a kill must stay gone. The holder is a raw socket,
not kazoo, because ZooKeeper 3.8.0 accepts connections before it has loaded
its data and may then leave one open and silent (an NPE in removeCnxn while
zkDb is null), which stalls kazoo's reconnect for a whole session timeout.
"""

from __future__ import annotations

import os
import random
import re
import socket
import struct
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.interop.conftest import CLIENT_DEADLINE, RawSession, kazoo_client, read_exactly, start_server
from zabd.harness.crashload import ROOT, CrashLoad, counter_path, create_path, is_set
from zabd.harness.processes import ServerProcess

CYCLES = 6
WRITERS = 6
PIPELINE = 32
KILL_AFTER = (1700, 2600)  # acknowledged writes per cycle before its kill, drawn from a seeded rng
MIN_ACKED = 10_000
MIN_CYCLES = 5
HOLDER_TIMEOUT_MS = 30_000  # every outage plus verify is far shorter
CRASH_CFG = {
    "snapCount": "1000",  # ZooKeeper snapshots and rolls its log every 500-1000 txns
    "autopurge.purgeInterval": "0",  # keep every file, so the test can count them
}
HOLDER_PATH = f"{ROOT}-holder"
OP_EXISTS = 3
EPHEMERAL = 1
NO_NODE = -101
EPHEMERAL_OWNER = struct.Struct(">q")
EPHEMERAL_OWNER_OFFSET = 44  # in a Stat: four longs and three ints come first
SEED = 3


class Servers:
    """The one live server of the test, replaced at every restart; always stopped at the end."""

    def __init__(self, kind: str, workdir: Path) -> None:
        self.kind, self.workdir = kind, workdir
        self.current: ServerProcess = start_server(kind, workdir, CRASH_CFG)
        self.port = self.current.port

    def kill(self) -> None:
        self.current.kill()

    def restart(self) -> ServerProcess:
        assert not self.current.is_running()
        self.current = start_server(self.kind, self.workdir, CRASH_CFG, port=self.port)
        return self.current


#: Apache ZooKeeper 3.8.0 writes snapshots in place, and a kill during one can
#: leave a file it then fails to load (EOFException, exit 1): the run against
#: it is a reference for this harness (ZABD_CRASH_REFERENCE=1), not a CI case.
CRASH_KINDS = ["zabd"] + (["zookeeper"] if os.environ.get("ZABD_CRASH_REFERENCE", "") not in ("", "0") else [])


@pytest.fixture(params=CRASH_KINDS)
def servers(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Servers]:
    servers = Servers(request.param, tmp_path)
    try:
        yield servers
    finally:
        servers.current.stop()


def _connect(srv: ServerProcess, session_id: int = 0, password: bytes = bytes(16), last_zxid: int = 0) -> RawSession:
    """A raw session that reports the last zxid it saw, as a real client does when it reconnects."""
    sock = socket.create_connection((srv.host, srv.port), timeout=CLIENT_DEADLINE)
    body = struct.pack("!iqiqi", 0, last_zxid, HOLDER_TIMEOUT_MS, session_id, len(password)) + password + b"\x00"
    sock.sendall(struct.pack("!i", len(body)) + body)
    try:
        reply = _frame(sock)
    except ConnectionError as error:  # how ZooKeeper refuses a client that saw a newer zxid than it has
        raise AssertionError(f"session {session_id:#x} not taken back (last zxid seen {last_zxid:#x}): {error}")
    _, timeout_ms, new_id, length = struct.unpack_from("!iiqi", reply)
    assert timeout_ms > 0, f"session {session_id:#x} refused (expired, or the server is behind zxid {last_zxid:#x})"
    holder = RawSession(sock, timeout_ms, new_id, reply[20 : 20 + length])
    holder.last_zxid = last_zxid
    return holder


def _frame(sock: socket.socket) -> bytes:
    (length,) = struct.unpack("!i", read_exactly(sock, 4))
    return read_exactly(sock, length)


def _ephemeral_owner(holder: RawSession, path: str) -> int | None:
    err, stat = holder.request(OP_EXISTS, struct.pack("!i", len(path)) + path.encode() + b"\x00")
    if err == NO_NODE:
        return None
    assert err == 0, f"exists {path}: error {err}"
    return int(EPHEMERAL_OWNER.unpack_from(stat, EPHEMERAL_OWNER_OFFSET)[0])


def _resume(srv: ServerProcess, holder: RawSession) -> RawSession:
    """Reconnect the holder session to the restarted server; it must still own its ephemeral."""
    holder.close()
    again = _connect(srv, holder.session_id, holder.password, holder.last_zxid)
    assert again.session_id == holder.session_id, f"got session {again.session_id:#x}, not {holder.session_id:#x}"
    owner = _ephemeral_owner(again, HOLDER_PATH)
    assert owner == holder.session_id, f"ephemeral {HOLDER_PATH}: owner {owner}, want {holder.session_id:#x}"
    return again


def _closed_session_ephemeral(srv: ServerProcess, cycle: int) -> str:
    """An ephemeral whose session closes (a txn) before this cycle's kill; returns its path."""
    path = f"{ROOT}-closed-{cycle}"
    with kazoo_client(srv) as client:
        client.create(path, b"gone after close", ephemeral=True)
    return path


def test_acknowledged_writes_survive_kill_9(servers: Servers) -> None:
    rng = random.Random(SEED)
    load = CrashLoad(WRITERS, PIPELINE)
    host, port = servers.current.host, servers.port
    load.setup(host, port)
    holder = _connect(servers.current)
    try:
        assert holder.create(HOLDER_PATH, b"held", EPHEMERAL) == (0, HOLDER_PATH)
        lines = []
        for cycle in range(CYCLES):
            gone = _closed_session_ephemeral(servers.current, cycle)
            run = load.run_until_crash(host, port, cycle, rng.randint(*KILL_AFTER), servers.kill)
            assert not load.problems, load.problems
            srv = servers.restart()
            check = load.verify(host, port)
            assert not check.problems, "\n".join(check.problems[:20]) + f"\n{srv.describe()}"
            holder = _resume(srv, holder)
            assert _ephemeral_owner(holder, gone) is None, f"{gone}: its session was closed before the kill"
            lines.append(f"cycle {cycle}: kill at {run.acked_at_kill} acks, {run.acked} acked, {run.sent} sent, "
                         f"{check.adopted} unacknowledged found applied, {check.nodes_read} nodes verified")
        names = [path.name for path in (servers.workdir / "data" / "version-2").iterdir()]
        snapshots, logs = (len([name for name in names if re.fullmatch(rf"{kind}\.[0-9a-f]+", name)])
                           for kind in ("snapshot", "log"))
        lines.append(f"total: {load.acked} acknowledged writes over {CYCLES} kill cycles; "
                     f"{snapshots} snapshots, {logs} logs in the dataDir")
        print(f"\n{servers.kind}: " + "\n".join(lines))
        assert load.acked >= MIN_ACKED and CYCLES >= MIN_CYCLES, lines[-1]
        assert snapshots > CYCLES + 1, f"snapshots were not taken under load: {lines[-1]}"
    finally:
        holder.close()


def test_the_check_catches_holes_torn_values_stale_counters_and_lost_writes(target_kind: str, tmp_path: Path) -> None:
    """The harness itself: a clean cycle verifies clean, then each kind of damage is named."""
    load = CrashLoad(WRITERS, PIPELINE)
    with start_server(target_kind, tmp_path) as srv:
        load.setup(srv.host, srv.port)
        run = load.run_until_crash(srv.host, srv.port, 0, 600, lambda: None)
        assert run.acked == run.sent and not load.problems, (run, load.problems)
        clean = load.verify(srv.host, srv.port)
        assert clean.problems == [] and clean.adopted == 0, clean
        top = load.ledgers[4].durable_through
        with kazoo_client(srv) as client:
            client.delete(create_path(0, 10))
            client.set(create_path(1, 20), load.ledgers[1].expected_value(20)[:-1])
            client.set(counter_path(2), load.ledgers[2].expected_value(1))  # a stale counter
            for seq in range(top - 3, top + 1):  # the newest creates, and the counter back to version 0
                if not is_set(seq):
                    client.delete(create_path(4, seq))
            client.delete(counter_path(4))
            client.create(counter_path(4), b"")
        damaged = load.verify(srv.host, srv.port).problems
    assert any(p.startswith("writer 0: HOLES") and "[10]" in p for p in damaged), damaged
    assert any(p.startswith("writer 1: seq 20 reads") for p in damaged), damaged
    assert any(p.startswith("writer 2: counter is") for p in damaged), damaged
    assert any(p.startswith("writer 4: LOST WRITES") for p in damaged), damaged
    assert not any(p.startswith(("writer 3", "writer 5")) for p in damaged), damaged
