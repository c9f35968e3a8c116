"""The HTTP admin endpoint of real twistd processes, asked with real treq, against ZooKeeper 3.8.0's.

A standalone server and a 3-peer ensemble with an observer are started for
zabd and for Debian's ZooKeeper, each with an admin port of its own; every
command is asked of each, and the JSON key sets are compared role by role
(values differ: ports, times, sizes).  Where zabd deliberately answers other
keys is listed in zabd.views.admin.compat.KEY_DIFFERENCES.
"""
from __future__ import annotations

import json
import subprocess
import sys
from contextlib import ExitStack
from pathlib import Path
from typing import Any

from kazoo.client import KazooClient

from tests.interop.conftest import kazoo_client
from zabd.views.admin.commands import BY_NAME, PRIMARY_NAMES
from zabd.views.admin.compat import (
    JAVA_ONLY_ENVIRONMENT,
    KEY_DIFFERENCES,
    MONITOR_ONLY_IN_ZABD,
    PER_PEER_MONITOR_KEY,
    expected_keys,
)
from zabd.harness.ensembleprocs import EnsemblePeer, start_ensemble
from zabd.harness.probes import listens_on, wait_until
from zabd.harness.processes import ServerProcess, start_zabd, start_zookeeper

DEADLINE = 60.0
Answers = dict[str, dict[str, Any]]


def ask(port: int, paths: list[str]) -> Answers:
    """Real treq (in a process of its own, which runs a reactor) against 127.0.0.1:port."""
    done = subprocess.run([sys.executable, "-m", "zabd.harness.adminquery", f"http://127.0.0.1:{port}", *paths],
                          capture_output=True, text=True, timeout=DEADLINE, check=True)
    answers: Answers = json.loads(done.stdout)
    return answers


def bodies(port: int) -> dict[str, Any]:
    """Every primary command's parsed JSON."""
    answers = ask(port, [f"/commands/{name}" for name in PRIMARY_NAMES])
    out = {}
    for name in PRIMARY_NAMES:
        answer = answers[f"/commands/{name}"]
        assert answer["status"] == 200 and answer["content_type"].startswith("application/json"), (name, answer)
        out[name] = json.loads(answer["body"])
    return out


def busy(client: KazooClient) -> None:
    """Give the server a session with an ephemeral node and a data watch, as 3.8's answers were captured."""
    client.create("/admin-eph", b"x", ephemeral=True)
    client.ensure_path("/admin-data")
    client.get("/admin-data", watch=lambda event: None)


def assert_same_keys(name: str, ours: dict[str, Any], theirs: dict[str, Any], role: str) -> None:
    mine, zk = set(ours), set(theirs)
    if name == "monitor":
        per_peer = {key for key in mine | zk if PER_PEER_MONITOR_KEY.match(key)}
        assert mine - zk - per_peer <= MONITOR_ONLY_IN_ZABD, (role, sorted(mine - zk - per_peer))
    elif name == "environment":
        assert zk - JAVA_ONLY_ENVIRONMENT <= mine, (role, sorted(zk - mine))
        assert all(k.startswith("python.") for k in mine - zk), sorted(mine - zk)
    elif name == "system_properties":
        # zookeeper.log.dir is a -D flag of the harness's java command, not a zoo.cfg key.
        assert {k for k in zk if k.startswith("zookeeper.")} - {"zookeeper.log.dir"} <= mine
    else:
        assert name not in KEY_DIFFERENCES
        assert mine == zk, (role, name, sorted(mine ^ zk))
        assert mine == expected_keys(name, role), (role, name)
    nested = {
        "server_stats": lambda b: b["server_stats"],
        "stats": lambda b: b["connections"][0] if b["connections"] else None,
        "connections": lambda b: b["connections"][0] if b["connections"] else None,
        "observers": lambda b: b["observers"][0] if b["observers"] else None,
        "voting_view": lambda b: next(iter(b["current_config"].values()), None),
        "zabstate": lambda b: b.get("quorum_address"),
    }.get(name)
    if nested is not None:
        a, b = nested(ours), nested(theirs)
        assert (a is None) == (b is None), (role, name)
        if a is not None:
            assert set(a) == set(b), (role, name, sorted(set(a) ^ set(b)))


def test_standalone_answers_every_command_with_zookeepers_keys(tmp_path: Path) -> None:
    with ExitStack() as stack:
        answers = {}
        for kind, start in (("zabd", start_zabd), ("zookeeper", start_zookeeper)):
            server: ServerProcess = stack.enter_context(start(tmp_path / kind, admin=True))
            assert server.admin_port is not None
            busy(stack.enter_context(kazoo_client(server)))
            answers[kind] = bodies(server.admin_port)
            if kind == "zabd":
                zabd_port = server.admin_port
            else:
                zk_port = server.admin_port
        for name in PRIMARY_NAMES:
            assert_same_keys(name, answers["zabd"][name], answers["zookeeper"][name], "standalone")
        assert answers["zabd"]["dump"]["session_id_to_ephemeral_paths"] != {}
        assert answers["zabd"]["watch_summary"]["num_total_watches"] == 1

        # Every alias; and errors, parameters and methods, answered as ZooKeeper answers them.
        aliases = ask(zabd_port, [f"/commands/{alias}" for alias in BY_NAME])
        assert all(json.loads(a["body"])["command"] == BY_NAME[p.rsplit("/", 1)[1]].primary_name
                   for p, a in aliases.items())
        odd = ["/commands/nonexist", "/commands/stmk?traceMask=abc", "/commands/stmk?traceMask=7",
               "POST /commands/ruok", "PUT /commands/ruok", "/commands"]
        ours, theirs = ask(zabd_port, odd), ask(zk_port, odd)
        for path in odd:
            assert ours[path]["status"] == theirs[path]["status"], path
            if ours[path]["content_type"].startswith("application/json"):
                assert json.loads(ours[path]["body"]) == json.loads(theirs[path]["body"]), path
        assert ours["/commands"]["body"].count("<a href") == theirs["/commands"]["body"].count("<a href") == 26


def admin_listening(peer: EnsemblePeer) -> bool:
    return peer.pid is not None and peer.admin_port is not None and listens_on(peer.pid, peer.admin_port)


def ensemble_bodies(kind: str, workdir: Path) -> dict[str, dict[str, Any]]:
    """role -> command -> JSON, from a 3-peer ensemble with an observer."""
    with start_ensemble(kind, workdir, voters=3, observers=1, admin=True, timeout=DEADLINE) as ensemble:
        for peer in ensemble:
            assert peer.admin_port is not None and peer.pid is not None
            wait_until(lambda: admin_listening(peer), DEADLINE,
                       f"{kind} peer {peer.sid} admin port", ensemble.describe)
        leader = ensemble.wait_for_leader()
        follower = next(sid for sid in ensemble.voters() if sid != leader)
        with kazoo_client(ensemble.peers[follower].address()) as client:
            busy(client)
            out = {}
            for role, sid in (("leader", leader), ("follower", follower), ("observer", 4)):
                port = ensemble.peers[sid].admin_port
                assert port is not None
                out[role] = bodies(port)
        return out


def test_ensemble_roles_answer_every_command_with_zookeepers_keys(tmp_path: Path) -> None:
    ours = ensemble_bodies("zabd", tmp_path / "zabd")
    theirs = ensemble_bodies("zookeeper", tmp_path / "zookeeper")
    for role in ("leader", "follower", "observer"):
        for name in PRIMARY_NAMES:
            assert_same_keys(name, ours[role][name], theirs[role][name], role)
    assert ours["leader"]["leader"]["is_leader"] is True
    assert ours["observer"]["zabstate"]["voting"] is False
    assert ours["leader"]["observers"]["synced_observers"] == 1
    assert ours["follower"]["server_stats"]["server_stats"]["server_state"] == "follower"


