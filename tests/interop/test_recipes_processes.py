"""zabd.client's lock and election recipes on real 3-peer ensembles (zabd's and ZooKeeper 3.8.0's), leader killed mid-run.

The clients contend in a subprocess (tests/interop/scenario_locks.py); this
test judges its records. Overlap is judged conservatively: a holder's time
ends at its own end mark or at the first SUSPENDED its client saw after it
started, whichever is first.
"""
from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from tests.interop.scenarios import run_scenario
from zabd.harness.ensembleprocs import start_ensemble

ENSEMBLE_CFG = {"maxSessionTimeout": "20000"}
DEADLINE_S = 150


def scenario(*args: str) -> dict[str, Any]:
    return run_scenario("scenario_locks", *args, deadline_s=DEADLINE_S)


def held_intervals(out: dict[str, Any]) -> list[tuple[float, float, int]]:
    intervals = []
    for who, start, end in out["records"]:
        assert end is not None, f"client {who} never stopped holding"
        cut = [t for t in out["suspended"][str(who)] if t >= start]
        intervals.append((start, min([end, *cut]), who))
    return sorted(intervals)


def assert_never_two_holders(intervals: list[tuple[float, float, int]]) -> None:
    for (start, end, who), (next_start, _, next_who) in zip(intervals, intervals[1:]):
        assert next_start >= end, f"client {next_who} held from {next_start} while client {who} held until {end}"


@pytest.mark.parametrize("recipe", ["lock", "election"])
def test_leader_kill_mid_recipe_never_gives_two_holders(target_kind: str, recipe: str, tmp_path: Path) -> None:
    with start_ensemble(target_kind, tmp_path, voters=3, extra_cfg=ENSEMBLE_CFG) as ensemble:
        pids = ",".join(f"{peer.port}={peer.pid}" for peer in ensemble)
        out = scenario(recipe, ensemble.hosts(), pids)
    intervals = held_intervals(out)
    assert_never_two_holders(intervals)
    after_kill = [i for i in intervals if i[0] > out["killed_at"]]
    assert len(after_kill) >= 8 and len({who for _, _, who in intervals}) >= 3
    assert any(out["suspended"].values())  # the kill reached the clients
    if recipe == "lock":  # no update lost: every finished round counted, each at most once
        finished = len(intervals) - out["interrupted"]
        assert finished <= out["counter"] <= len(intervals)


def test_every_coordination_recipe_once(target_kind: str, tmp_path: Path) -> None:
    with start_ensemble(target_kind, tmp_path, voters=3, extra_cfg=ENSEMBLE_CFG) as ensemble:
        out = scenario("once-each", ensemble.hosts())
    assert out["rw"] == [True, True, True, True, ["wc"]]
    assert out["semaphore"] == [True, True, False, True, True, ["s1", "s2"]]
    assert out["barrier"] == [True, True, True]
    assert out["double_barrier"] == [True, True, True, False, False, False]
