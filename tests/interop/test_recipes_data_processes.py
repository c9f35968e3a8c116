"""The data recipes (queues, counter, party, watches, lease, TreeCache) against real 3-peer ensembles,
zabd's and Apache ZooKeeper 3.8.0's alike; the client runs in a subprocess (tests/interop/scenario_data_recipes.py).
"""
from __future__ import annotations

from pathlib import Path
from typing import Any

from tests.interop.test_client_servers import ENSEMBLE_CFG
from tests.interop.scenarios import run_scenario
from zabd.harness.ensembleprocs import start_ensemble

DEADLINE_S = 150


def scenario(*args: str) -> dict[str, Any]:
    return run_scenario("scenario_data_recipes", *args, deadline_s=DEADLINE_S)


def test_every_data_recipe(target_kind: str, tmp_path: Path) -> None:
    with start_ensemble(target_kind, tmp_path, voters=3, extra_cfg=ENSEMBLE_CFG) as ensemble:
        out = scenario("recipes", ensemble.hosts())
    assert out["queue"] == ["high", "p1", "p2", "low", None]
    assert out["locking_queue"] == ["j1", "j2", None, True, True, 1]
    assert out["counter"] == [20, "20"]
    assert out["party"] == [["alice", "carol"], ["bob"]]
    assert out["data_watch"] == [None, "1", "2", None]
    assert out["children_watch"] == [None, [], ["x"]]
    assert out["lease"] == [True, False, True, True, False]
    assert out["tree_cache"] == [["cached", "count", "cw", "lease", "lq", "multi", "party", "q", "shallow"],
                                 "v"]


def test_tree_cache_converges_across_a_leader_kill(target_kind: str, tmp_path: Path) -> None:
    with start_ensemble(target_kind, tmp_path, voters=3, extra_cfg=ENSEMBLE_CFG) as ensemble:
        pids = ",".join(f"{peer.port}={peer.pid}" for peer in ensemble)
        out = scenario("treecache-leader-kill", ensemble.hosts(), pids)
    assert out["tree"] == {"/tc": "", "/tc/a": "", "/tc/a/x": "changed", "/tc/c": "", "/tc/c/deep": "3",
                           "/tc/after": "4"}
    assert "CONNECTION_SUSPENDED" in out["kinds"] and "CONNECTION_RECONNECTED" in out["kinds"]  # type: ignore[operator]
