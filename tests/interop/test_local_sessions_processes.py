"""Local sessions on a real 3-peer ensemble, with kazoo clients on a follower.

Parametrized by ``target_kind``: the same test runs on Apache ZooKeeper
3.8.0, which proves it right. What it counts is txns, as the leader's zxid.
"""
from __future__ import annotations

from contextlib import AbstractContextManager
from pathlib import Path

import pytest
from kazoo.client import KazooClient
from kazoo.exceptions import EphemeralOnLocalSessionError

from tests.interop.conftest import kazoo_client
from zabd.harness.ensembleprocs import Ensemble, parse_zxid, start_ensemble
from zabd.harness.probes import wait_until

DEADLINE = 30.0
SESSION_CFG = {"maxSessionTimeout": "20000", "localSessionsEnabled": "true"}


def kazoo(hosts: str) -> AbstractContextManager[KazooClient]:
    return kazoo_client(hosts, session_timeout=15.0, start_timeout=DEADLINE)


def leader_zxid(ens: Ensemble, leader: int) -> int:
    """The leader's last zxid: every txn a client's acknowledged request wrote is counted in it."""
    zxid = parse_zxid(ens.peers[leader].srvr())
    assert zxid is not None, ens.describe()
    return zxid


def test_local_sessions_cost_no_txn_until_an_ephemeral_upgrades_them(target_kind: str, tmp_path: Path) -> None:
    cfg = {**SESSION_CFG, "localSessionsUpgradingEnabled": "true"}
    with start_ensemble(target_kind, tmp_path, voters=3, extra_cfg=cfg) as ens:
        leader = ens.wait_for_leader()
        follower = ens.peers[next(sid for sid in ens.voters() if sid != leader)]
        start = leader_zxid(ens, leader)
        with kazoo(follower.address()) as reader:
            assert reader.exists("/") is not None
            assert leader_zxid(ens, leader) == start  # connecting wrote nothing
        assert leader_zxid(ens, leader) == start  # and neither did closing
        with kazoo(follower.address()) as client:
            client.create("/persistent", b"p")
            assert leader_zxid(ens, leader) == start + 1
            client.create("/ephemeral", b"e", ephemeral=True)
            assert leader_zxid(ens, leader) == start + 3  # createSession, then the create
        # Now global: closing it is a txn that takes its ephemeral everywhere.
        wait_until(lambda: leader_zxid(ens, leader) == start + 4, DEADLINE, "the closeSession txn", ens.describe)
        with kazoo(ens.peers[leader].address()) as check:
            assert check.exists("/ephemeral") is None
            assert check.get("/persistent")[0] == b"p"


def test_an_ephemeral_on_a_local_session_fails_without_upgrading(target_kind: str, tmp_path: Path) -> None:
    cfg = {**SESSION_CFG, "localSessionsUpgradingEnabled": "false"}
    with start_ensemble(target_kind, tmp_path, voters=3, extra_cfg=cfg) as ens:
        leader = ens.wait_for_leader()
        follower = ens.peers[next(sid for sid in ens.voters() if sid != leader)]
        start = leader_zxid(ens, leader)
        with kazoo(follower.address()) as client:
            with pytest.raises(EphemeralOnLocalSessionError):
                client.create("/ephemeral", b"e", ephemeral=True)
            # As 3.8 does it, the refused create still went to the leader: an error txn.
            assert leader_zxid(ens, leader) == start + 1
            client.create("/persistent", b"p")
            assert leader_zxid(ens, leader) == start + 2
            assert client.exists("/ephemeral") is None
