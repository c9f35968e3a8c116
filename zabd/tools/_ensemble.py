# -*- test-case-name: tests.unit.test_bench -*-
"""Ensembles under the benchmark: each one as a Target, and the leader failover measurement.

Kept apart from :mod:`zabd.tools.bench`, which runs the workloads: here an
ensemble started by :mod:`zabd.harness.ensembleprocs` becomes a
:class:`~zabd.tools._report.Target` whose load is spread over every peer's
client port, and ``measure_failover`` kills the leader with SIGKILL and times
how long until a brand-new session gets a write acknowledged by any peer.
"""
from __future__ import annotations

import asyncio
import contextlib
import os
import statistics
import sys
import time
from collections.abc import Sequence

from zabd.harness.ensembleprocs import Ensemble
from zabd.harness.wiresession import close_session, open_session
from zabd.tools._report import FailoverOutcome, Target
from zabd.harness.wire import OP_CREATE, create_body

Address = tuple[str, int]
#: A failed round over every peer is retried after this pause, so that polling
#: does not take the CPU the election needs (the measurement's resolution).
RETRY_PAUSE_S = 0.01
ATTEMPT_TIMEOUT_S = 2.0
SESSION_TIMEOUT_MS = 10_000


def ensemble_target(name: str, ensemble: Ensemble) -> Target:
    """The Target for a settled ensemble: setup traffic goes to the leader, load to every peer."""
    leader = ensemble.peers[ensemble.wait_for_leader()]
    return Target(
        name, leader.host, leader.port, leader.pid,
        addresses=tuple((peer.host, peer.port) for peer in ensemble),
        peer_pids=tuple(peer.pid for peer in ensemble if peer is not leader and peer.pid is not None),
    )


async def write_from_new_session(address: Address, path: str, timeout_s: float = ATTEMPT_TIMEOUT_S) -> bool:
    """Open a session on ``address`` and create ``path``; True when the create is acknowledged."""
    try:
        session = await open_session(address[0], address[1], SESSION_TIMEOUT_MS, timeout_s)
    except (OSError, asyncio.TimeoutError):
        return False
    try:
        err, _ = await asyncio.wait_for(session.request(OP_CREATE, create_body(path, b"")), timeout_s)
        return err == 0
    except (OSError, asyncio.TimeoutError):
        return False
    finally:
        with contextlib.suppress(Exception):
            await asyncio.wait_for(close_session(session), timeout_s)
        if session.transport is not None:
            session.transport.close()


async def first_write(addresses: Sequence[Address], path_prefix: str, deadline_s: float) -> float:
    """Try each address in turn until a write from a new session succeeds; the monotonic time it did."""
    give_up = time.monotonic() + deadline_s
    attempt = 0
    while time.monotonic() < give_up:
        for address in addresses:
            attempt += 1
            if await write_from_new_session(address, f"{path_prefix}-{attempt}"):
                return time.monotonic()
        await asyncio.sleep(RETRY_PAUSE_S)
    raise TimeoutError(f"no write succeeded within {deadline_s}s after the leader was killed")


def time_one_failover(ensemble: Ensemble, path_prefix: str, deadline_s: float) -> float:
    """SIGKILL the leader of a settled ensemble; seconds until a new session's write succeeds.

    The peers after the leader are tried first (a client's host list would
    still hold the dead one; it refuses connections at once, so it is tried last).
    """
    leader = ensemble.wait_for_leader(timeout=deadline_s)
    sids = sorted(ensemble.peers)
    order = sids[sids.index(leader) + 1:] + sids[:sids.index(leader) + 1]
    addresses = [(ensemble.peers[sid].host, ensemble.peers[sid].port) for sid in order]
    killed_at = time.monotonic()
    ensemble.peers[leader].kill()
    written_at = asyncio.run(first_write(addresses, path_prefix, deadline_s))
    ensemble.peers[leader].restart(timeout=deadline_s)  # the next run starts from a whole ensemble
    return written_at - killed_at


def measure_failover(name: str, ensemble: Ensemble, runs: int, deadline_s: float = 120.0) -> FailoverOutcome:
    prefix = f"/bench-failover-{os.getpid()}-{name}"
    seconds: list[float] = []
    for run in range(runs):
        print(f"failover {run + 1}/{runs} of {name} ...", file=sys.stderr, flush=True)
        seconds.append(time_one_failover(ensemble, f"{prefix}-{run}", deadline_s))
    return failover_outcome(name, seconds)


def failover_outcome(name: str, seconds: Sequence[float]) -> FailoverOutcome:
    runs_ms = tuple(s * 1000.0 for s in seconds)
    return FailoverOutcome(name, runs_ms, statistics.median(runs_ms), max(runs_ms))
