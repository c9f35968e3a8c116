"""The black-box fault test (issue 15, section 4): real peers, random faults, a checked client history.

    python -m zabd.harness.blackbox --target zabd --cycles 200 --seconds 3600

A 3-peer ensemble (zabd's twistd peers or ZooKeeper's QuorumPeerMain) runs
behind the proxies of :mod:`zabd.harness.nemesis` while the clients of
:mod:`zabd.harness.blackbox_workload` work. Each cycle injects one fault
(kill -9 of a peer, of the leader or of all peers, SIGSTOP of a peer or of
the leader, a peer or the leader cut off, one link cut, or ``sync-crash``:
kill -9 of the leader, then of the next one and of a follower as soon as it
is being synced, the old leader and that follower started first), holds it
until the workload has had some writes acknowledged under it or a few
seconds passed,
heals it (SIGCONT, links up, dead peers started on their data), and waits
until one leader leads every peer and a write goes through again. Kills come
right after an acknowledgement.

At the end every fault is healed, the workers stop, and a client on each
peer syncs and reads every register; the acknowledged sequential names must
all be there, and every ephemeral of an ended session gone. The history is
checked by :func:`zabd.harness.linearizability.check_history` (writes
linearizable per key; no lost, duplicated or phantom writes; per-session
order: ZooKeeper's sequential consistency for reads) and for ZooKeeper's
timeliness (all in :mod:`zabd.harness.blackbox_checks`).
"""

from __future__ import annotations

import argparse
import logging
import random
import re
import shutil
import sys
import tempfile
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from zabd.harness.blackbox_checks import STALE_BOUND_S, Report, check, final_checks, save_ops, sync_counts
from zabd.harness.blackbox_workload import Workload
from zabd.harness.ensembleprocs import Ensemble
from zabd.harness.history import Anomaly
from zabd.harness.nemesis import Nemesis, prepare_proxied_ensemble
from zabd.harness.processes import ADDRESS_IN_USE, PORT_ATTEMPTS, ServerStartError

FAULTS = ("kill", "kill-leader", "kill-all", "pause", "pause-leader", "isolate", "isolate-leader", "bridge",
          "sync-crash")
#: A learner being synced: 3.8's learner logs NEWLEADER, zabd's leader logs the learner it synchronizes.
SYNCING = re.compile(r"Learner received NEWLEADER message|Synchronizing learner (\d+) ")
#: Sessions outlive a short outage; 3.8 caps them at 20 ticks unless told otherwise.
SESSION_CFG = {"maxSessionTimeout": "30000"}
#: A SIGSTOP lasts at most this long, well inside STALE_BOUND_S.
PAUSE_MAX_S = 2.5


@dataclass
class Options:
    """How a black-box run goes: the server, how many fault cycles, which faults, and the timings."""

    target: str = "zabd"
    cycles: int = 6
    seconds: float = 120.0
    seed: int = 1
    faults: Sequence[str] = FAULTS
    schedule: Sequence[str] = ()  # faults to inject in this order, cycle after cycle (else drawn from faults)
    hold_s: float = 2.0  # longest hold of a fault ...
    hold_writes: int = 150  # ... which ends earlier once 1 to this many writes are acknowledged under it
    settle_s: float = 60.0
    cas_workers: int = 4
    session_timeout: float = 4.0
    stale_bound_s: float = STALE_BOUND_S
    env: Mapping[str, str] | None = None  # the peers' environment (a broken build's sitecustomize)
    require_settled: bool = True  # a deposed leader that never steps down keeps two peers leading
    writers_avoid_leader: bool = False  # writers (not the pinned readers) stay off the first leader
    warmup_writes: int = 1  # writes acknowledged before the first fault ...
    warmup_s: float = 10.0  # ... or this long
    quiesce: bool = False  # inject each fault with no op in flight
    ephemerals: bool = True  # the ephemeral sessions' worker (its kazoo calls are not ops: quiesce waits not)
    overlap: float = 0.0  # the odds that a cycle starts the next fault without waiting for the ensemble to settle


def inject(nemesis: Nemesis, fault: str, rng: random.Random) -> None:
    ensemble = nemesis.ensemble
    sids = sorted(ensemble.peers)
    leader = ensemble.leader() or rng.choice(sids)
    if fault.startswith("kill"):
        nemesis.kill(sids if fault == "kill-all" else [leader] if fault == "kill-leader" else [rng.choice(sids)])
    elif fault.startswith("pause"):
        nemesis.pause([leader] if fault == "pause-leader" else [rng.choice(sids)])
    elif fault.startswith("isolate"):
        nemesis.network.isolate(leader if fault == "isolate-leader" else rng.choice(sids))
    elif fault == "bridge":
        a, b = rng.sample(sids, 2)
        nemesis.network.cut(a, b)
    elif fault == "sync-crash":
        sync_crash(nemesis, leader)
    else:
        raise ValueError(f"unknown fault {fault!r}")


def sync_crash(nemesis: Nemesis, leader: int, timeout: float = 15.0) -> None:
    """Crashes around a sync, where 3.8's Remix bugs lose committed txns: kill -9 the leader; as soon as a
    follower is being synced by the next one, kill -9 that follower and the new leader; start the old leader and
    that follower again (the new leader comes back when the fault is healed)."""
    peers = nemesis.ensemble.peers
    offsets = {sid: peer.log_path.stat().st_size for sid, peer in peers.items()}
    tails = dict.fromkeys(peers, "")
    nemesis.kill([leader])
    deadline = time.monotonic() + timeout
    synced: int | None = None
    while synced is None and time.monotonic() < deadline:
        time.sleep(0.002)  # the poll interval of this wait: the kill must come within milliseconds
        for sid, peer in peers.items():
            with peer.log_path.open("rb") as log:
                log.seek(offsets[sid])
                chunk = log.read()
            offsets[sid] += len(chunk)
            tails[sid] = (tails[sid] + chunk.decode(errors="replace"))[-4096:]
            if match := SYNCING.search(tails[sid]):
                synced = int(match.group(1) or sid)
                break
    if synced is None or synced == leader:
        return
    nemesis.kill(sid for sid in peers if sid != leader)
    nemesis.restart([leader, synced])


def settle(ensemble: Ensemble, options: Options, report: Report) -> bool:
    """Wait for one leader of every live peer; a peer that died on its own (it was just started) is a finding."""
    try:
        ensemble.wait_for_leader(timeout=options.settle_s)
        settled = True
    except TimeoutError:
        if options.require_settled:
            raise
        settled = False
    for sid, peer in ensemble.peers.items():
        if not peer.is_running():
            errors = [line for line in peer.log_text()[-20000:].splitlines() if "Error" in line or "rror:" in line]
            found = f"peer {sid} exited by itself: {errors[-1] if errors else 'no error logged'}"
            if found not in {a.detail for a in report.extra}:
                report.extra.append(Anomaly("peer-exited", f"peer{sid}", (), found))
    return settled


def start(options: Options, workdir: Path) -> Nemesis:
    """Three peers serving behind their proxies; set up again on other ports if one could not bind."""
    for attempt in range(1, PORT_ATTEMPTS + 1):
        ensemble, network = prepare_proxied_ensemble(options.target, workdir / f"try{attempt}" if attempt > 1
                                                     else workdir, 3, SESSION_CFG, options.env)
        nemesis = Nemesis(ensemble, network)
        try:
            for peer in ensemble:
                peer.spawn()
            ensemble._wait_settled((), options.settle_s, every_peer_alive=True)
            return nemesis
        except ServerStartError as error:
            nemesis.close()
            if attempt == PORT_ATTEMPTS or ADDRESS_IN_USE not in error.log:
                raise
        except BaseException:
            nemesis.close()
            raise
    raise AssertionError("unreachable")


def run(options: Options, workdir: Path) -> Report:
    rng = random.Random(options.seed)
    report = Report(options.target, options.seed, wall_offset_ns=time.time_ns() - time.monotonic_ns())
    nemesis = start(options, workdir)
    ensemble = nemesis.ensemble
    workload: Workload | None = None
    started = time.monotonic()
    try:
        leader = report.first_leader = ensemble.wait_for_leader(timeout=options.settle_s)
        writers = [sid for sid in ensemble.peers if not (options.writers_avoid_leader and sid == leader)]
        workload = Workload(ensemble.hosts(), {sid: p.address() for sid, p in ensemble.peers.items()}, options.seed,
                            cas_workers=options.cas_workers, session_timeout=options.session_timeout,
                            writer_hosts=ensemble.hosts(writers), ephemeral_sessions=options.ephemerals)
        workload.setup()
        workload.start()
        recorder = workload.recorder
        wait_for_progress(workload, ensemble, options.settle_s)
        recorder.wait_writes(options.warmup_writes - 1, options.warmup_s)
        for cycle in range(options.cycles):
            if time.monotonic() - started > options.seconds:
                break
            schedule = options.schedule
            fault = schedule[cycle % len(schedule)] if schedule else rng.choice(list(options.faults))
            if fault.startswith("kill"):
                recorder.wait_writes(1, 1.0)  # right after an acknowledgement
            if options.quiesce:
                workload.quiesce(options.settle_s)
            inject(nemesis, fault, rng)
            workload.resume()
            report.faults[fault] += 1
            hold = min(options.hold_s, PAUSE_MAX_S) if fault.startswith("pause") else options.hold_s
            recorder.wait_writes(rng.randint(1, options.hold_writes), rng.uniform(hold / 4, hold))
            nemesis.heal_everything()
            report.cycles = cycle + 1
            if rng.random() < options.overlap:
                report.overlapped += 1
                continue
            report.unsettled += not settle(ensemble, options, report)
            wait_for_progress(workload, ensemble, options.settle_s)
        workload.finish()
        nemesis.heal_everything()
        report.unsettled += not settle(ensemble, options, report)
        final_checks(workload, ensemble, report)
    except Exception as error:  # noqa: BLE001 - reported with the history so far (e.g. peers that never settle)
        report.error = f"{type(error).__name__}: {error}"
    finally:
        if workload is not None:
            workload.stop.set()
            workload.clients.close()
        nemesis.close()
        report.seconds = time.monotonic() - started
    report.syncs = sync_counts(ensemble)
    check(workload, report, options.stale_bound_s)
    return report


def wait_for_progress(workload: Workload, ensemble: Ensemble, timeout: float) -> None:
    if not workload.recorder.wait_writes(1, timeout):
        raise TimeoutError(f"no write acknowledged in {timeout} s with every fault healed; client errors "
                           f"{dict(workload.errors)}\n{ensemble.describe()}")


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m zabd.harness.blackbox", description=__doc__.split("\n")[0])
    parser.add_argument("--target", choices=("zabd", "zookeeper"), default="zabd")
    parser.add_argument("--cycles", type=int, default=200)
    parser.add_argument("--seconds", type=float, default=3600.0, help="start no cycle after this long")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--faults", default=",".join(FAULTS))
    parser.add_argument("--cas-workers", type=int, default=4)
    parser.add_argument("--overlap", type=float, default=0.25,
                        help="odds that a fault starts before the ensemble recovered from the last")
    parser.add_argument("--workdir", type=Path, help="kept afterwards (default: a temporary one, removed if ok)")
    parser.add_argument("--save", type=Path, help="write the history here, one JSON op a line")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.ERROR)  # kazoo warns of every dropped connection
    options = Options(args.target, args.cycles, args.seconds, args.seed, args.faults.split(","),
                      cas_workers=args.cas_workers, overlap=args.overlap)
    workdir = args.workdir or Path(tempfile.mkdtemp(prefix=f"blackbox-{args.target}-"))
    report = run(options, workdir)
    print(report.summary(examples=10))
    if args.save:
        save_ops(report.history, args.save)
        print(f"history in {args.save}: op times are time.monotonic_ns(); in the peers' logs' clock, "
              f"time.time_ns() = op time + {report.wall_offset_ns}")
    print(f"peers' logs: {workdir}" if args.workdir or not report.ok else "")
    if args.workdir is None and report.ok:
        shutil.rmtree(workdir, ignore_errors=True)
    return 0 if report.ok else 1


if __name__ == "__main__":
    sys.exit(main())
