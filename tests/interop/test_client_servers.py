"""zabd.client against real 3-peer ensembles, zabd's and Apache ZooKeeper 3.8.0's alike.

The client runs on the real reactor in a subprocess (tests/interop/scenario_client.py),
so a hang fails at the subprocess deadline instead of stalling the suite.
"""
from __future__ import annotations

from pathlib import Path
from typing import Any

from tests.interop.scenarios import run_scenario
from zabd.harness.ensembleprocs import start_ensemble

ENSEMBLE_CFG = {"maxSessionTimeout": "20000"}
DEADLINE_S = 120


def scenario(*args: str) -> dict[str, Any]:
    return run_scenario("scenario_client", *args, deadline_s=DEADLINE_S)


def test_every_call(target_kind: str, tmp_path: Path) -> None:
    with start_ensemble(target_kind, tmp_path, voters=3, extra_cfg=ENSEMBLE_CFG) as ensemble:
        out = scenario("calls", ensemble.hosts())
    assert out["ruok"] == "imok" and out["version"][:2] == [3, 8]  # type: ignore[index]
    assert out["create"] == "/a" and out["seq"] == "/a/s-0000000000" and out["makepath"] == "/x/y/z"
    assert out["get"] == ["1", 1] and out["set_version"] == 1 and out["bad_version"] is True
    assert out["exists_missing"] is True and out["children"] == ["y"] and out["all_children"] == 3
    assert out["ephemerals"] == ["/a/s-0000000000"] and out["sync"] == "/a"
    assert out["multi"] == ["/t", True, "stat"]
    assert out["multi_failed"] == ["RolledBackError", "BadVersionError"]
    assert out["multi_read"] == ["u", ["y"], True]
    assert out["acl"] == ["s", True] and out["set_acls"] == 1
    assert out["whoami"] == ["digest", "ip"]
    assert out["watch"] == ["CHANGED", "/a"]
    assert out["recursive"] == ["CREATED", "/x/new"]
    assert out["removed"] == ["PERSISTENT_WATCH_REMOVED", "/x"]
    assert out["reconfig"] == "ReconfigDisabledError"
    assert out["deleted"] is True and out["state_after_stop"] == "LOST"


def test_leader_kill_every_client_resumes_its_session(target_kind: str, tmp_path: Path) -> None:
    with start_ensemble(target_kind, tmp_path, voters=3, extra_cfg=ENSEMBLE_CFG) as ensemble:
        pids = ",".join(f"{peer.port}={peer.pid}" for peer in ensemble)
        out = scenario("leader-kill", ensemble.hosts(), pids)
    assert out["survived"] == [True, True, True]
    assert out["lost"] == []  # reconnected within the session timeout: the same session, ephemerals kept
    assert out["suspended"]  # at least the leader's client lost its connection
