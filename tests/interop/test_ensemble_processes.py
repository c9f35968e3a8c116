"""Real ensembles of twistd peers on loopback: failover under load, catch-up by DIFF and SNAP, observers.

Every peer is its own process (zabd.harness.ensembleprocs) with tickTime
200 ms. Tests parametrized by ``target_kind`` also run on Apache ZooKeeper
3.8.0 (QuorumPeerMain), which proves the test right; the rest are zabd only.
Writes come from kazoo clients in driver threads; every wait is a condition
with a deadline.
"""

from __future__ import annotations

import re
import threading
import time
from collections.abc import Iterator
from contextlib import AbstractContextManager, contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from kazoo.client import KazooClient
from kazoo.exceptions import ConnectionLoss, OperationTimeoutError
from kazoo.handlers.threading import KazooTimeoutError
from kazoo.protocol.states import KazooState

from tests.interop.conftest import kazoo_client
from zabd.harness.ensembleprocs import (
    QUORUM_PEER_MAIN,
    Ensemble,
    EnsemblePeer,
    ensemble_settings,
    epoch_of,
    parse_mode,
    parse_zxid,
    quorum_peer_command,
    start_ensemble,
)
from zabd.harness.probes import wait_until

#: Room for a client to find another peer while an election runs (3.8's
#: default maximum at tickTime 200 would be 4 s).
SESSION_CFG = {"maxSessionTimeout": "20000"}
SESSION_TIMEOUT = 15.0
WRITERS = 3
ACKS_BEFORE_KILL = 30  # per writer
ACKS_AFTER_KILL = 30  # per writer, in the new epoch
DEADLINE = 60.0
SNAP_WRITES = 650  # beyond the 500-proposal committed log
#: Logs roll every 50-100 txns (3.8 and zabd alike), so a learner 650 writes
#: behind is in an older log file than the leader's newest, the later files
#: (preallocated to 64 MB) far outweigh a third of the snapshot, and the leader
#: cannot sync it from its txn log: SNAP.
CATCH_UP_CFG = {"snapCount": "100"}
#: zabd's leader logs one line per learner sync (zabd.quorum.learnerhandler).
ZABD_SYNC_LINE = r"Synchronizing learner {sid} \(at 0x[0-9a-f]+\) by (DIFF|TRUNC|SNAP)\b"
#: 3.8's LearnerHandler thread logs "Synchronizing with Learner sid: N", then
#: "Sending DIFF|TRUNC|SNAP ..." or "Sending snapshot ..." (which names no sid).
ZOOKEEPER_SYNC_START = r"\[(LearnerHandler-[^\]]+)\].*Synchronizing with Learner sid: {sid}\b"
ZOOKEEPER_SYNC_SENT = re.compile(r"Sending (DIFF|TRUNC|SNAP|snapshot)\b")


def test_config_lines_and_srvr_parsing(tmp_path: Path) -> None:
    settings = ensemble_settings(4, {1: 11, 4: 14}, {1: 21, 4: 24}, {1: 31, 4: 34}, {4}, {"tickTime": "100"})
    assert settings == {"tickTime": "100", "initLimit": "10", "syncLimit": "5",
                        "server.1": "127.0.0.1:21:31", "server.4": "127.0.0.1:24:34:observer", "peerType": "observer"}
    assert "peerType" not in ensemble_settings(1, {1: 11}, {1: 21}, {1: 31}, (), None)
    command = quorum_peer_command("zookeeper", tmp_path / "zoo.cfg", tmp_path, None)
    assert command[-2:] == [QUORUM_PEER_MAIN, str(tmp_path / "zoo.cfg")]
    zabd_command = quorum_peer_command("zabd", tmp_path / "zoo.cfg", tmp_path, None)
    assert zabd_command[-2:] == ["--config", str(tmp_path / "zoo.cfg")]
    assert parse_mode("Zxid: 0x200000003\nMode: follower\nNode count: 5\n") == "follower"
    assert parse_mode("This ZooKeeper instance is not currently serving requests\n") is None
    assert parse_zxid("Zxid: 0x200000003\nMode: leader\n") == 0x200000003
    assert epoch_of(0x200000003) == 2


def kazoo(hosts: str, start_timeout: float = DEADLINE / 2) -> AbstractContextManager[KazooClient]:
    return kazoo_client(hosts, session_timeout=SESSION_TIMEOUT, start_timeout=start_timeout)


@contextmanager
def ensemble(kind: str, workdir: Path, voters: int, observers: int = 0,
             extra_cfg: dict[str, str] | None = None) -> Iterator[Ensemble]:
    with start_ensemble(kind, workdir, voters=voters, observers=observers,
                        extra_cfg={**SESSION_CFG, **(extra_cfg or {})}) as started:
        yield started


def children_through(peer: EnsemblePeer, path: str) -> dict[str, bytes]:
    """Every child of ``path`` and its data, read through ``peer`` alone after a sync."""
    with kazoo(peer.address()) as client:
        client.sync(path)
        return {name: client.get(f"{path}/{name}")[0] for name in client.get_children(path)}


@dataclass(eq=False)
class Writer:
    """Creates /load/w<index>-<n> until stopped; keeps every acknowledged (path, czxid)."""

    client: KazooClient
    index: int
    stop: threading.Event
    acked: list[tuple[str, int]] = field(default_factory=list)
    lost: int = 0  # requests that failed with the connection: maybe applied, never acknowledged
    error: BaseException | None = None
    connected: threading.Event = field(default_factory=threading.Event)

    def __post_init__(self) -> None:
        self.connected.set()
        self.client.add_listener(self._state)

    def _state(self, state: KazooState) -> None:
        if state == KazooState.CONNECTED:
            self.connected.set()
        else:
            self.connected.clear()

    def run(self) -> None:
        n = 0
        try:
            while not self.stop.is_set():
                path = f"/load/w{self.index}-{n}"
                n += 1  # a name is never reused: a lost request may still have been applied
                try:
                    _, stat = self.client.create(path, path.encode(), include_data=True)
                except (ConnectionLoss, OperationTimeoutError):
                    self.lost += 1
                    self.connected.wait(1.0)
                    continue
                self.acked.append((path, stat.czxid))
        except BaseException as error:  # reported by the test
            self.error = error

    def acked_in_epoch_above(self, epoch: int) -> int:
        return sum(1 for _, zxid in list(self.acked) if epoch_of(zxid) > epoch)


def failover_under_load(ens: Ensemble) -> None:
    old_leader = ens.wait_for_leader()
    session_ids: dict[int, int] = {}
    with kazoo(ens.hosts()) as setup:
        setup.create("/load")
        setup.create("/eph")
    clients = [KazooClient(hosts=ens.hosts(), timeout=SESSION_TIMEOUT) for _ in range(WRITERS)]
    stop = threading.Event()
    writers: list[Writer] = []
    threads: list[threading.Thread] = []
    try:
        for index, client in enumerate(clients):
            client.start(timeout=DEADLINE / 2)
            client.create(f"/eph/c{index}", ephemeral=True)
            session_ids[index] = client.client_id[0]
            writers.append(Writer(client, index, stop))
        threads = [threading.Thread(target=w.run, name=f"writer-{w.index}", daemon=True) for w in writers]
        for thread in threads:
            thread.start()

        def progress(epoch: int, count: int) -> bool:
            failed = [w.error for w in writers if w.error is not None]
            if failed:
                raise AssertionError(f"a writer failed: {failed[0]!r}")
            return all(w.acked_in_epoch_above(epoch) >= count for w in writers)

        wait_until(lambda: progress(-1, ACKS_BEFORE_KILL), DEADLINE, "writes before the kill", ens.describe)
        old_epoch = max(epoch_of(zxid) for w in writers for _, zxid in list(w.acked))
        ens.peers[old_leader].kill()
        new_leader = ens.wait_for_leader(exclude={old_leader}, timeout=DEADLINE)
        wait_until(lambda: progress(old_epoch, ACKS_AFTER_KILL), DEADLINE, "writes in the new epoch", ens.describe)
        stop.set()
        for thread in threads:
            thread.join(DEADLINE)
            assert not thread.is_alive(), f"{thread.name} did not stop"
        assert all(w.error is None for w in writers), [w.error for w in writers]
        assert new_leader != old_leader
        new_zxid = ens.peers[new_leader].zxid()
        assert new_zxid is not None and epoch_of(new_zxid) > old_epoch, (hex(new_zxid or 0), old_epoch)
        # The sessions rode through: same ids, still connected, ephemerals kept.
        for index, client in enumerate(clients):
            assert client.client_id[0] == session_ids[index]
            assert client.state == KazooState.CONNECTED
        acked = {path.rsplit("/", 1)[1]: path.encode() for w in writers for path, _ in w.acked}
        for sid, peer in ens.live().items():
            present = children_through(peer, "/load")
            missing = sorted(set(acked) - set(present))
            assert not missing, f"peer {sid} lacks {len(missing)} acknowledged writes, e.g. {missing[:5]}"
            assert all(present[name] == data for name, data in acked.items())
            with kazoo(peer.address()) as reader:
                reader.sync("/eph")
                owners = {index: reader.exists(f"/eph/c{index}") for index in range(WRITERS)}
            assert all(stat is not None and stat.ephemeralOwner == session_ids[index]
                       for index, stat in owners.items()), (sid, owners)
    finally:
        stop.set()
        for thread in threads:
            thread.join(DEADLINE)
        for client in clients:
            client.stop()
            client.close()


def test_leader_kill_under_load_3_peers(target_kind: str, tmp_path: Path) -> None:
    with ensemble(target_kind, tmp_path, voters=3) as ens:
        failover_under_load(ens)


def test_leader_kill_under_load_5_peers(tmp_path: Path) -> None:
    with ensemble("zabd", tmp_path, voters=5) as ens:
        failover_under_load(ens)


def logged_sync_mode(kind: str, leader_log: str, learner: int) -> str | None:
    """DIFF, TRUNC or SNAP: how the leader's log says it last synchronized ``learner``."""
    if kind == "zabd":
        modes = re.findall(ZABD_SYNC_LINE.format(sid=learner), leader_log)
        return modes[-1] if modes else None
    mode = None
    start = re.compile(ZOOKEEPER_SYNC_START.format(sid=learner))
    thread = None
    for line in leader_log.splitlines():
        began = start.search(line)
        if began:
            thread, mode = began.group(1), None
        elif thread is not None and f"[{thread}]" in line and (sent := ZOOKEEPER_SYNC_SENT.search(line)):
            mode, thread = sent.group(1), None
    return "SNAP" if mode == "snapshot" else mode


def sync_mode(ens: Ensemble, leader: int, learner: int, log_offset: int) -> str:
    """How the leader synchronized ``learner`` since ``log_offset`` of its log (waits for the line)."""
    found: list[str] = []

    def logged() -> bool:
        mode = logged_sync_mode(ens.kind, ens.peers[leader].log_text()[log_offset:], learner)
        if mode is not None:
            found.append(mode)
        return mode is not None

    wait_until(logged, DEADLINE, f"the leader's sync line for learner {learner}", ens.describe)
    return found[-1]


def restart_and_sync_mode(ens: Ensemble, leader: int, learner: int) -> str:
    offset = len(ens.peers[leader].log_text())
    ens.peers[learner].restart(timeout=DEADLINE)
    assert ens.wait_for_leader(timeout=DEADLINE) == leader
    return sync_mode(ens, leader, learner, offset)


def create_many(client: KazooClient, parent: str, count: int) -> dict[str, bytes]:
    names = {f"n{i:04d}": f"{parent}/{i}".encode() for i in range(count)}
    pending = [client.create_async(f"{parent}/{name}", data) for name, data in names.items()]
    for result in pending:
        result.get(timeout=DEADLINE)
    return names


def test_restarted_followers_catch_up_by_diff_and_by_snap(target_kind: str, tmp_path: Path) -> None:
    with ensemble(target_kind, tmp_path, voters=3, extra_cfg=CATCH_UP_CFG) as ens:
        leader = ens.wait_for_leader()
        first, second = (sid for sid in ens.voters() if sid != leader)
        with kazoo(ens.peers[leader].address()) as client:
            client.create("/diff")
            expected = create_many(client, "/diff", 5)
            ens.peers[first].stop()
            later: dict[str, bytes] = {}
            for i in range(5):
                name = f"after{i}"
                client.create(f"/diff/{name}", name.encode())
                later[name] = name.encode()
            assert restart_and_sync_mode(ens, leader, first) == "DIFF"
            assert children_through(ens.peers[first], "/diff") == {**expected, **later}

            client.create("/snap")
            ens.peers[second].stop()
            expected = create_many(client, "/snap", SNAP_WRITES)
            assert restart_and_sync_mode(ens, leader, second) == "SNAP"
            assert children_through(ens.peers[second], "/snap") == expected
            assert children_through(ens.peers[second], "/diff") == children_through(ens.peers[leader], "/diff")


def test_observer_serves_reads_and_never_votes(target_kind: str, tmp_path: Path) -> None:
    with ensemble(target_kind, tmp_path, voters=3, observers=1) as ens:
        leader = ens.wait_for_leader()
        observer = ens.peers[4]
        assert observer.observer and ens.mode(4) == "observer"
        assert "zk_server_state\tobserver" in observer.four_letter("mntr")
        with kazoo(ens.peers[leader].address()) as writer:
            writer.create("/seen-by-observer", b"hello")
        assert children_through(observer, "/")["seen-by-observer"] == b"hello"
        with kazoo(observer.address()) as through_observer:  # an observer forwards writes
            through_observer.create("/written-via-observer", b"too")
            assert through_observer.get("/written-via-observer")[0] == b"too"

        survivor = next(sid for sid in ens.voters() if sid != leader)
        for sid in ens.voters():
            if sid != survivor:
                ens.peers[sid].kill()
        # One voter and the observer are two live peers, but only one vote.
        wait_until(lambda: ens.modes() == {survivor: None, 4: None}, DEADLINE,
                   "the survivor and the observer to stop serving", ens.describe)
        quiet_until = time.monotonic() + 15 * 0.2  # well past initLimit * tickTime = 2 s

        def nobody_served_until_quiet() -> bool:
            assert ens.modes() == {survivor: None, 4: None}, ens.describe()
            return time.monotonic() >= quiet_until

        wait_until(nobody_served_until_quiet, DEADLINE, "the quiet period")
        with pytest.raises(KazooTimeoutError):
            with kazoo(ens.hosts([survivor, 4]), start_timeout=3.0) as nobody_serves:
                nobody_serves.create("/never")


def test_connections_to_a_peer_between_roles_are_released(target_kind: str, tmp_path: Path) -> None:
    limit = 10
    with ensemble(target_kind, tmp_path, voters=3, extra_cfg={"maxClientCnxns": str(limit)}) as ens:
        leader = ens.wait_for_leader()
        survivor = next(sid for sid in ens.voters() if sid != leader)
        others = [sid for sid in ens.voters() if sid != survivor]
        for sid in others:
            ens.peers[sid].kill()
        wait_until(lambda: ens.modes() == {survivor: None}, DEADLINE, "the survivor to stop serving", ens.describe)
        for _ in range(3 * limit):  # each one connects, is answered and closes
            assert "not currently serving" in ens.peers[survivor].four_letter("srvr")
        for sid in others:
            ens.peers[sid].restart(timeout=DEADLINE)
        ens.wait_for_leader(timeout=15.0)
        with kazoo(ens.peers[survivor].address()) as client:
            assert client.exists("/") is not None
