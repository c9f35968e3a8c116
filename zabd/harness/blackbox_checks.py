"""What the black-box test checks (issue 15, section 4), and its report.

At the end of a run (:mod:`zabd.harness.blackbox`), with every fault healed:
a client on each peer syncs and reads every register (reads the history
records like any other); the acknowledged sequential names must all be in
the parent's children; and once every session has ended, every ephemeral
created in one must be gone. Then the history is checked:

* :func:`zabd.harness.linearizability.check_history`: per key, the writes
  and their failures linearizable; no acknowledged write lost or duplicated,
  no phantom read; every session's reads monotonic and seeing its own writes
  (ZooKeeper's sequential consistency, the default read mode);
* :func:`staleness_anomalies`: ZooKeeper's timeliness guarantee, which a
  deposed leader that keeps answering reads breaks.
"""

from __future__ import annotations

import json
import math
import re
import time
from collections import Counter
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from functools import partial
from pathlib import Path

from kazoo.client import KazooClient
from kazoo.exceptions import KazooException
from kazoo.handlers.threading import KazooTimeoutError
from kazoo.protocol.states import ZnodeStat

from zabd.harness.blackbox_workload import EPH_PARENT, INITIAL_VALUE, SEQ_PARENT, Unknown, Workload, label
from zabd.harness.ensembleprocs import Ensemble
from zabd.harness.history import Anomaly, Op, Outcome, Znode, by_key, has_deletes
from zabd.harness.linearizability import HistoryResult, check_history
from zabd.harness.probes import wait_until

#: ZooKeeper's timeliness guarantee, made a number: a read may return a version superseded at most this long
#: before it was sent. Real peers stop serving within syncLimit of losing their leader (1 s here), and a
#: paused one is paused for less (zabd.harness.blackbox.PAUSE_MAX_S).
STALE_BOUND_S = 5.0
#: A settled peer takes a new session at once; a deposed leader that never steps down never does.
FINAL_CONNECT_S = 5.0
#: ZooKeeper's learner logs its sync (3.8), zabd's leader logs each learner's.
SYNC_LINE = re.compile(r"Getting a (diff) from the leader|(Truncating) log to get in sync|Getting a (snapshot) from"
                       r"|Synchronizing learner \d+ \(at 0x[0-9a-f]+\) by (DIFF|TRUNC|SNAP)\b")
SYNC_NAMES = {"diff": "DIFF", "truncating": "TRUNC", "snapshot": "SNAP"}


@dataclass
class Report:
    """What a black-box run did and what the checks found."""

    target: str
    seed: int
    cycles: int = 0
    faults: Counter[str] = field(default_factory=Counter)
    seconds: float = 0.0
    check_seconds: float = 0.0
    ops: int = 0
    acked: dict[str, int] = field(default_factory=dict)
    unknown: int = 0
    failed: int = 0
    syncs: Counter[str] = field(default_factory=Counter)
    unsettled: int = 0
    overlapped: int = 0
    result: HistoryResult | None = None
    extra: list[Anomaly] = field(default_factory=list)
    wall_offset_ns: int = 0  # time.time_ns() - time.monotonic_ns() during the run: op times to log times
    history: tuple[Op, ...] = field(default=(), repr=False)
    first_leader: int | None = None
    final_peers: list[int] = field(default_factory=list)  # the peers every final read went through
    error: str | None = None  # the run stopped early: why (the peers' logs follow)

    @property
    def anomalies(self) -> list[Anomaly]:
        return [*(self.result.anomalies if self.result else ()), *self.extra]

    @property
    def ok(self) -> bool:
        return self.error is None and self.result is not None and self.result.ok and not self.extra

    @property
    def acked_writes(self) -> int:
        return sum(n for kind, n in self.acked.items() if kind != "read")

    def summary(self, examples: int = 5) -> str:
        kinds = Counter(a.kind for a in self.anomalies)
        verdict = self.result.verdict.value if self.result else "not checked"
        lines = [f"{self.target} seed {self.seed}: {self.cycles} fault cycles in {self.seconds:.0f} s "
                 f"({', '.join(f'{k} {n}' for k, n in sorted(self.faults.items()))})",
                 f"  ops {self.ops}: acknowledged {self.acked_writes} writes ({self.acked.get('cas', 0)} CAS, "
                 f"{self.acked.get('create_seq', 0)} sequential creates) and {self.acked.get('read', 0)} reads; "
                 f"{self.failed} failed, {self.unknown} unknown",
                 f"  syncs {dict(sorted(self.syncs.items()))}; {self.overlapped} faults overlapped a recovery; "
                 f"not settled {self.unsettled} times; final reads through peers {self.final_peers}",
                 f"  checked in {self.check_seconds:.1f} s: {verdict}, {len(self.anomalies)} anomalies "
                 f"{dict(sorted(kinds.items()))}"]
        if self.result is not None and not self.result.linearizable:
            lines += ["  " + k.explain().replace("\n", "\n  ") for k in self.result.keys if not k.linearizable][:2]
        lines += ["  " + str(a).replace("\n", "\n  ") for a in self.anomalies[:examples]]
        if self.error is not None:
            lines.insert(1, f"  STOPPED EARLY: {self.error[:20000]}")
        return "\n".join(lines)


def final_checks(workload: Workload, ensemble: Ensemble, report: Report) -> None:
    """Synced reads of every register on every peer, the sequential names, then the ephemerals."""
    recorder, acked = workload.recorder, [op for op in workload.recorder.history.ops() if op.kind == "create_seq"]
    for sid, peer in ensemble.peers.items():
        client = workload.clients.start(peer.address(), FINAL_CONNECT_S)
        if client is None:
            continue
        session = label(f"final{sid}", client)
        try:
            for key in workload.key_names:
                recorder.attempt(session, key, "read", partial(synced_get, client, key),
                                 lambda got: {"value": got[0].decode(), "version": got[1].version})
            client.sync(SEQ_PARENT)
            names = {f"{SEQ_PARENT}/{name}" for name in client.get_children(SEQ_PARENT)}
            report.final_peers.append(sid)
        except (Unknown, KazooException, KazooTimeoutError):
            continue
        finally:
            workload.clients.retire(client)
        if lost := [op for op in acked if op.acked and op.name not in names]:
            report.extra.append(Anomaly("lost-create", SEQ_PARENT, tuple(lost[:10]),
                                        f"{len(lost)} acknowledged sequential creates are missing on peer {sid}"))
    workload.clients.close()  # every session ends: their ephemerals must go
    client = KazooClient(hosts=workload.writer_hosts or ensemble.hosts(), timeout=workload.session_timeout)
    client.start(timeout=30)
    left: set[str] = set()

    def ephemerals_gone() -> bool:
        client.sync(EPH_PARENT)
        left.clear()
        left.update(set(workload.ephemerals) & {f"{EPH_PARENT}/{n}" for n in client.get_children(EPH_PARENT)})
        return not left

    try:
        wait_until(ephemerals_gone, 3 * workload.session_timeout + 30, "the ephemerals of ended sessions to go")
    except TimeoutError:
        report.extra.append(Anomaly("ephemeral-survived", EPH_PARENT, (), f"{len(left)} of "
                                    f"{len(workload.ephemerals)} ended sessions' ephemerals remain: {sorted(left)[:5]}"))
    finally:
        client.stop()
        client.close()


def synced_get(client: KazooClient, key: str) -> tuple[bytes, ZnodeStat]:
    client.sync(key)
    data, stat = client.get(key)
    return data, stat


def check(workload: Workload | None, report: Report, stale_bound_s: float = STALE_BOUND_S) -> None:
    if workload is None:
        return
    ops = report.history = workload.recorder.history.ops()
    report.ops = len(ops)
    report.acked = dict(workload.recorder.acked)
    report.unknown = sum(op.outcome is Outcome.UNKNOWN for op in ops)
    report.failed = sum(op.outcome is Outcome.FAILED for op in ops)
    began = time.monotonic()
    report.result = check_history(ops, initial={key: Znode(INITIAL_VALUE, 0) for key in workload.key_names})
    report.extra += workload.extra + staleness_anomalies(ops, stale_bound_s)
    report.check_seconds = time.monotonic() - began


def sync_counts(ensemble: Ensemble) -> Counter[str]:
    counts: Counter[str] = Counter()
    for peer in ensemble:
        for match in SYNC_LINE.finditer(peer.log_text()):
            word = next(g for g in match.groups() if g)
            counts[SYNC_NAMES.get(word.lower(), word)] += 1
    return counts


def save_ops(ops: Sequence[Op], path: Path) -> None:
    with path.open("w") as out:
        for op in ops:
            record = {k: (v.value if isinstance(v, Outcome) else None if v == float("inf") else v)
                      for k, v in asdict(op).items()}
            out.write(json.dumps(record, default=str) + "\n")


def staleness_anomalies(ops: Sequence[Op], bound_s: float = STALE_BOUND_S) -> list[Anomaly]:
    """Reads of a version superseded more than ``bound_s`` before the read was sent (ZooKeeper's timeliness).

    A version is superseded once any later version was seen: acknowledged to a write or returned by a read.
    """
    found: list[Anomaly] = []
    bound = bound_s * 1e9
    for key, key_ops in by_key(ops).items():
        if has_deletes(key_ops) or any(op.kind == "create_seq" for op in key_ops):
            continue
        evidence: dict[int, tuple[float, Op]] = {}
        for op in key_ops:
            version = op.version if op.kind == "read" and op.acked else op.new_version()
            if version is not None and op.complete < evidence.get(version, (math.inf, op))[0]:
                evidence[version] = (op.complete, op)
        later: dict[int, tuple[float, Op]] = {}
        best: tuple[float, Op] | None = None
        for version in sorted(evidence, reverse=True):
            later[version] = best if best is not None else (math.inf, evidence[version][1])
            best = evidence[version] if best is None or evidence[version][0] < best[0] else best
        for op in key_ops:
            if op.kind == "read" and op.acked and op.version is not None and op.version in later:
                when, newer = later[op.version]
                if op.invoke - when > bound:
                    found.append(Anomaly("stale-read", key, (newer, op), f"read version {op.version} "
                                         f"{(op.invoke - when) / 1e9:.1f} s after {newer.describe()} superseded it"))
    return found
