"""Dynamic reconfiguration with real peers: 3 -> 5 -> 3 under write load, no acknowledged write lost.

Peers 1-3 start; 4 and 5 start later with 3.8's joiner config (the members
plus themselves) and follow without a vote. One reconfig adds them, a second
removes the leader and one more voter, while three kazoo clients keep
writing. Afterwards every acknowledged write is on every voter, and each
peer's zoo.cfg points at a dynamic file of the final config.
"""
from __future__ import annotations

import threading
from pathlib import Path

from kazoo.client import KazooClient
from kazoo.exceptions import ConnectionLoss

from tests.interop.test_ensemble_processes import DEADLINE, SESSION_CFG, SESSION_TIMEOUT, Writer, children_through, kazoo
from zabd.harness.ensembleprocs import Ensemble
from zabd.harness.probes import wait_until
from zabd.harness.reconfigprocs import joining_list, prepare_growing_ensemble

WRITERS = 3
ACKS_PER_STEP = 20  # per writer, after each reconfig


def config_members(client: KazooClient) -> tuple[set[int], int]:
    """The voters and version of /zookeeper/config as ``client`` reads it."""
    client.sync("/zookeeper/config")
    data, _ = client.get("/zookeeper/config")
    voters, version = set(), -1
    for line in data.decode().splitlines():
        key, _, value = line.partition("=")
        if key.startswith("server.") and ":participant" in value:
            voters.add(int(key[len("server."):]))
        elif key == "version":
            version = int(value, 16)
    return voters, version


def reconfig_removing_the_leader(admin: KazooClient, leaving: list[int]) -> bytes:
    """The new config. The peer that answers goes back to LOOKING as the leader
    leaves (3.8's followers do, and so does the leader itself), and may drop
    the connection before its reply: then the outcome is read back."""
    try:
        data, _ = admin.reconfig(joining=None, leaving=",".join(map(str, leaving)), new_members=None)
        return bytes(data)
    except ConnectionLoss:
        admin.retry(admin.sync, "/zookeeper/config")
        data, _ = admin.retry(admin.get, "/zookeeper/config")
        return bytes(data)


def _wait_acks(writers: list[Writer], floor: list[int], ens: Ensemble, what: str) -> None:
    def enough() -> bool:
        failed = [w.error for w in writers if w.error is not None]
        if failed:
            raise AssertionError(f"a writer failed: {failed[0]!r}")
        return all(len(w.acked) - start >= ACKS_PER_STEP for w, start in zip(writers, floor))
    wait_until(enough, DEADLINE, what, ens.describe)


def test_three_to_five_to_three_under_load(target_kind: str, tmp_path: Path) -> None:
    ens = prepare_growing_ensemble(target_kind, tmp_path, voters=3, joiners=2, extra_cfg=SESSION_CFG)
    with ens:
        for sid in (1, 2, 3):
            ens.peers[sid].spawn()
        ens.wait_for_leader(timeout=DEADLINE)
        for sid in (4, 5):
            ens.peers[sid].spawn()
        wait_until(lambda: all(ens.mode(sid) == "follower" for sid in (4, 5)), DEADLINE,
                   "the joiners following without a vote", ens.describe)
        admin = KazooClient(hosts=ens.hosts([1, 2, 3]), timeout=SESSION_TIMEOUT, auth_data=[("digest", "super:test")])
        admin.start(timeout=DEADLINE / 2)
        clients = [KazooClient(hosts=ens.hosts([1, 2, 3]), timeout=SESSION_TIMEOUT) for _ in range(WRITERS)]
        stop = threading.Event()
        threads: list[threading.Thread] = []
        try:
            voters, version = config_members(admin)
            assert voters == {1, 2, 3} and version > 0
            admin.ensure_path("/load")
            writers = []
            for index, client in enumerate(clients):
                client.start(timeout=DEADLINE / 2)
                writers.append(Writer(client, index, stop))
            threads = [threading.Thread(target=w.run, daemon=True) for w in writers]
            for thread in threads:
                thread.start()
            _wait_acks(writers, [0] * WRITERS, ens, "writes before the reconfigs")

            floor = [len(w.acked) for w in writers]
            data, _ = admin.reconfig(joining=joining_list(ens, [4, 5]), leaving=None, new_members=None)
            assert b"server.4=" in data and b"server.5=" in data
            assert config_members(admin)[0] == {1, 2, 3, 4, 5}
            _wait_acks(writers, floor, ens, "writes on five voters")

            leader = ens.wait_for_leader(timeout=DEADLINE)
            leaving = [leader, next(sid for sid in (1, 2, 3, 4, 5) if sid != leader)]
            remaining = sorted(set(range(1, 6)) - set(leaving))
            floor = [len(w.acked) for w in writers]
            data = reconfig_removing_the_leader(admin, leaving)
            assert all(f"server.{sid}=".encode() not in data for sid in leaving)
            wait_until(lambda: ens.leader() in remaining, DEADLINE, "a leader among the remaining voters", ens.describe)
            _wait_acks(writers, floor, ens, "writes on three voters")
            stop.set()
            for thread in threads:
                thread.join(DEADLINE)
            assert all(w.error is None for w in writers), [w.error for w in writers]

            acked = {path.rsplit("/", 1)[1]: path.encode() for w in writers for path, _ in w.acked}
            assert len(acked) >= 3 * WRITERS * ACKS_PER_STEP
            for sid in remaining + leaving:  # the removed peers still follow, without a vote
                present = children_through(ens.peers[sid], "/load")
                missing = sorted(set(acked) - set(present))
                assert not missing, f"peer {sid} lacks {len(missing)} acknowledged writes, e.g. {missing[:5]}"
                with kazoo(ens.peers[sid].address()) as reader:
                    assert config_members(reader)[0] == set(remaining)
            for sid in range(1, 6):
                cfg = (ens.peers[sid].workdir / "zoo.cfg").read_text()
                assert "dynamicConfigFile=" in cfg, (sid, cfg)
        finally:
            stop.set()
            for thread in threads:
                thread.join(DEADLINE)
            for client in [admin, *clients]:
                client.stop()
                client.close()
