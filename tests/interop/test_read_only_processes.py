"""Read-only mode with real peers: a 3-peer twistd ensemble loses two peers, the third serves kazoo read-only.

Also run on Apache ZooKeeper 3.8.0 (QuorumPeerMain), which proves the test
right. 3.8 needs localSessionsEnabled for read-only sessions (without it its
read-only server answers a new session with a reply header no client can
parse); zabd's read-only sessions are always local, so it runs without.
Every wait is a condition with a deadline.
"""
from __future__ import annotations

from pathlib import Path

import pytest
from kazoo.client import KazooClient
from kazoo.exceptions import NotReadOnlyCallError
from kazoo.handlers.threading import KazooTimeoutError
from kazoo.protocol.states import KeeperState

from tests.interop.conftest import kazoo_client
from zabd.harness.ensembleprocs import start_ensemble
from zabd.harness.probes import wait_until

DEADLINE = 60.0
READ_ONLY_CFG = {"readonlymode.enabled": "true", "maxSessionTimeout": "20000"}
#: 3.8 only: see the module docstring.
ZOOKEEPER_CFG = {"localSessionsEnabled": "true", "localSessionsUpgradingEnabled": "true"}


def test_a_lone_peer_serves_read_only_clients_until_the_quorum_returns(target_kind: str, tmp_path: Path) -> None:
    extra = {**READ_ONLY_CFG, **(ZOOKEEPER_CFG if target_kind == "zookeeper" else {})}
    with start_ensemble(target_kind, tmp_path, voters=3, extra_cfg=extra) as ens:
        leader = ens.wait_for_leader()
        with kazoo_client(ens.hosts(), session_timeout=15.0) as writer:
            writer.create("/ro", b"kept")
            writer.create("/ro/child", b"")
        for peer in ens:
            wait_until(lambda: peer.four_letter("isro") == "rw", DEADLINE, f"peer {peer.sid} rw")
        lone = next(peer for peer in ens if peer.sid != leader)
        # Every peer has the writes before two of them go (the lone one syncs first).
        with kazoo_client(lone.address(), session_timeout=15.0) as reader:
            reader.sync("/ro")
            assert reader.get("/ro")[0] == b"kept"
        others = [peer for peer in ens if peer is not lone]
        for peer in others:
            peer.kill()

        wait_until(lambda: lone.four_letter("isro") == "ro", DEADLINE, "the lone peer in read-only mode", ens.describe)
        srvr = lone.four_letter("srvr")
        assert "READ-ONLY mode; serving only read-only clients" in srvr and "Mode: read-only" in srvr

        # A client that did not ask for read-only is refused.
        plain = KazooClient(hosts=lone.address(), timeout=10.0, connection_retry={"max_tries": 1})
        try:
            with pytest.raises(KazooTimeoutError):
                plain.start(timeout=3.0)
        finally:
            plain.stop()
            plain.close()

        states: list[KeeperState] = []
        client = KazooClient(hosts=lone.address(), timeout=10.0, read_only=True)
        client.add_listener(lambda _state: states.append(client.client_state))
        try:
            client.start(timeout=DEADLINE / 2)
            assert client.client_state == KeeperState.CONNECTED_RO
            assert client.get("/ro")[0] == b"kept"
            assert client.get_children("/ro") == ["child"]
            with pytest.raises(NotReadOnlyCallError):
                client.create("/ro/new", b"")
            with pytest.raises(NotReadOnlyCallError):
                client.set("/ro", b"changed")

            for peer in others:
                peer.spawn()
            ens.wait_for_leader(timeout=DEADLINE)
            assert lone.four_letter("isro") == "rw"
            # kazoo finds the read-write server with isro and moves there; its
            # read-only session was local, so it gets a new one.
            wait_until(lambda: client.client_state == KeeperState.CONNECTED, DEADLINE,
                       "the client back in a read-write session", ens.describe)
            client.create("/ro/after", b"rw")
            assert sorted(client.get_children("/ro")) == ["after", "child"]
            assert client.get("/ro")[0] == b"kept"
            assert KeeperState.CONNECTED_RO in states
        finally:
            client.stop()
            client.close()
