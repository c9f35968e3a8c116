# -*- test-case-name: tests.unit.test_chaos -*-
"""Faults drawn from a seed, applied to a simulated ensemble, and the healing after them.

:func:`plan` draws ``count`` faults over a span of virtual time; :class:`Chaos`
applies each one when its time comes (as a call on the simulation's queue)
and ends the windowed ones after their duration. Kinds:

- ``crash`` / ``crash-leader``: kill -9 of a peer (the leader), unsynced
  bytes lost, restarted later; ``torn`` keeps a random prefix of each file's
  unsynced tail instead (a torn last write);
- ``crash-in-sync``: kill -9 of the next learner to reach a sync phase (SYNC
  or NEWLEADER) or of the next leader to reach SYNC, within the window;
- ``partition`` (two random groups), ``isolate-leader``, ``one-way`` (some
  directions only: an asymmetric partition);
- ``drop`` and ``duplicate`` of election messages at a rate, ``delay`` (all
  latencies up), ``slow-link`` (one direction), ``reset`` (one quorum
  connection breaks, with what was in flight on it);
- ``disk``: EIO or ENOSPC on a later write or fsync of one peer's disk. A
  fault that escapes to the event loop stops the peer's process (as a failed
  txn log write or fsync halts zabd) and it is restarted later;
  ``slow-disk``: one peer's fsyncs take 30..300 ms for a while;
- ``client-pause``: a client goes silent, its connection dropped, sometimes
  past its session timeout.

A fault that finds nothing to act on (no leader to crash, no connection to
reset, no learner reaching the phase in time) crashes a random peer instead,
so every fault of the plan does something.
"""
from __future__ import annotations

import errno
import random
from collections.abc import Callable
from dataclasses import dataclass, field

from zabd.election.messages import PeerState
from zabd.quorum.leader import Phase as LeaderPhase
from zabd.quorum.learner import Phase as LearnerPhase
from zabd.testing.chaos_workload import Workload
from zabd.testing.ensemble import QUORUM_PORT, SimEnsemble

#: SimReplica's fsync times, which a slow-disk fault raises to 30..300 ms for a while.
USUAL_FSYNC_MS = (1, 10)
KINDS: dict[str, int] = {  # kind -> weight
    "crash": 10, "crash-leader": 8, "crash-in-sync": 6, "partition": 8, "isolate-leader": 6, "one-way": 6,
    "drop": 5, "duplicate": 4, "delay": 4, "slow-link": 4, "reset": 6, "disk": 10, "slow-disk": 4, "client-pause": 5,
}


@dataclass
class Fault:
    """One fault of a seed's plan: when, what kind, for how long, and what it did once applied."""

    at_ms: int
    kind: str
    duration_ms: int
    #: Drawn with the plan: which peer, rate, error, ... (each kind reads what it needs).
    pick: float = 0.0
    torn: bool = False
    args: dict[str, int | float] = field(default_factory=dict)
    applied: str = ""  # what it did, once applied

    def __str__(self) -> str:
        return f"{self.at_ms:>6}ms {self.kind:<14} {self.applied or '(not applied)'}"


def plan(seed: int, count: int, span_ms: int) -> list[Fault]:
    """``count`` faults at random times within ``span_ms`` (after the first election), oldest first."""
    rng = random.Random(seed * 7919 + 11)
    kinds, weights = list(KINDS), list(KINDS.values())
    faults = []
    for _ in range(count):
        kind = rng.choices(kinds, weights)[0]
        fault = Fault(rng.randint(600, span_ms), kind, rng.choice((150, 400, 900, 1800, 3500)), rng.random(),
                      rng.random() < 0.5)
        fault.args = {"rate": rng.choice((0.1, 0.3, 0.6)), "ms": rng.choice((20, 60, 150, 400)),
                      "after": rng.randint(0, 12), "fsync": rng.random() < 0.5,
                      "enospc": rng.random() < 0.5, "phase": rng.randint(0, 2), "n": rng.randint(1, 3)}
        faults.append(fault)
    faults.sort(key=lambda f: f.at_ms)
    return faults


class Chaos:
    """Applies a seed's planned faults to the ensemble (network, disks, crashes) and undoes them in time."""

    def __init__(self, ensemble: SimEnsemble, workload: Workload, faults: list[Fault]) -> None:
        self.ensemble = ensemble
        self.net = ensemble.net
        self.sim = ensemble.sim
        self.workload = workload
        self.faults = faults
        self.applied = 0
        self.halts: list[str] = []
        self._windows: dict[str, int] = {}  # resource -> generation of the fault that holds it
        self._trigger: tuple[int, Fault] | None = None  # (until ms, crash-in-sync fault)
        self._slow_logs: list[object] = []  # txn logs made slow
        self.healed = False

    def start(self) -> None:
        for fault in self.faults:
            self.sim.call_at(fault.at_ms, self._apply, fault)

    def _pick(self, fault: Fault, choices: list[int]) -> int:
        return choices[int(fault.pick * len(choices)) % len(choices)]

    def _live(self) -> list[int]:
        return [sid for sid in self.ensemble.sids if sid not in self.ensemble.down]

    def _leader(self) -> int | None:
        leading = [sid for sid, peer in self.ensemble.live_peers().items() if peer.state is PeerState.LEADING]
        return leading[-1] if leading else None

    def _window(self, resource: str, fault: Fault, end: Callable[[], None]) -> None:
        """Hold ``resource`` for the fault's duration; a later fault on it takes it over."""
        generation = self._windows[resource] = self._windows.get(resource, 0) + 1

        def ended() -> None:
            if self._windows.get(resource) == generation and not self.healed:
                end()

        self.sim.call_later(fault.duration_ms, ended)

    def _apply(self, fault: Fault) -> None:
        if self.healed:
            return
        self.applied += 1
        fault.applied = getattr(self, "_" + fault.kind.replace("-", "_"))(fault) or self._fallback(fault)
        self.sim.note(f"chaos: {fault.kind}: {fault.applied}")

    def _fallback(self, fault: Fault) -> str:
        return "nothing to act on: " + (self._crash(fault) or "every peer is down")

    # -- peers ---------------------------------------------------------------------

    def crash(self, sid: int, torn: bool, restart_ms: int, why: str) -> str:
        self.workload.peer_crashed(sid)
        self.ensemble.disks[sid].torn_writes = torn
        self.ensemble.crash(sid)
        self.ensemble.disks[sid].torn_writes = False
        self.sim.call_later(restart_ms, self._restart, sid)
        return f"{why} {sid}{' (torn writes)' if torn else ''}, restart in {restart_ms} ms"

    def _restart(self, sid: int) -> None:
        if sid in self.ensemble.down and not self.healed:
            self.ensemble.restart(sid)

    def halt(self, sid: int, error: OSError) -> None:
        """A disk error reached the event loop: the peer's process stops, and is started again later."""
        self.halts.append(f"{self.sim.now_ms}ms peer {sid}: {error}")
        if sid not in self.ensemble.down:
            self.crash(sid, False, 300, "halted")

    def _crash(self, fault: Fault) -> str:
        live = self._live()
        return self.crash(self._pick(fault, live), fault.torn, fault.duration_ms, "crashed") if live else ""

    def _crash_leader(self, fault: Fault) -> str:
        leader = self._leader()
        return self.crash(leader, fault.torn, fault.duration_ms, "crashed leader") if leader else ""

    def _crash_in_sync(self, fault: Fault) -> str:
        self._trigger = (self.sim.now_ms + fault.duration_ms + 2000, fault)
        return f"armed for phase {int(fault.args['phase'])}"

    def after_step(self) -> None:
        """Fire an armed crash-in-sync once some peer reaches its phase."""
        if self._trigger is None:
            return
        until, fault = self._trigger
        if self.sim.now_ms > until:
            self._trigger = None
            fault.applied += "; " + self._fallback(fault)
            return
        phase = int(fault.args["phase"])
        for sid in self._live():
            peer = self.ensemble.peers[sid]
            learner, leader = peer.learner, peer.leader
            hit = (phase == 0 and learner is not None and learner.phase is LearnerPhase.SYNC
                   and learner.sync_mode is not None
                   or phase == 1 and learner is not None and learner.phase is LearnerPhase.NEWLEADER
                   or phase == 2 and leader is not None and leader.phase is LeaderPhase.SYNC)
            if hit:
                self._trigger = None
                fault.applied += "; " + self.crash(sid, fault.torn, fault.duration_ms, "crashed in sync")
                return

    # -- the network ---------------------------------------------------------------

    def _partition(self, fault: Fault) -> str:
        sids = list(self.ensemble.sids)
        random.Random(int(fault.pick * 2**32)).shuffle(sids)
        cut = 1 + int(fault.args["n"]) % (len(sids) - 1)
        groups = [set(sids[:cut]), set(sids[cut:])]
        self.net.partition(groups)
        self._window("partition", fault, self.net.heal)
        return f"{sorted(groups[0])} | {sorted(groups[1])} for {fault.duration_ms} ms"

    def _isolate_leader(self, fault: Fault) -> str:
        leader = self._leader()
        if leader is None:
            return ""
        self.net.partition([{leader}, set(self.ensemble.sids) - {leader}])
        self._window("partition", fault, self.net.heal)
        return f"leader {leader} alone for {fault.duration_ms} ms"

    def _one_way(self, fault: Fault) -> str:
        sids = self.ensemble.sids
        rng = random.Random(int(fault.pick * 2**32))
        leader = self._leader()
        src = leader if leader is not None and rng.random() < 0.5 else rng.choice(sids)
        dsts = rng.sample([sid for sid in sids if sid != src], min(int(fault.args["n"]), len(sids) - 1))
        pairs = [(src, dst) if rng.random() < 0.5 else (dst, src) for dst in dsts]
        self.net.block(pairs)
        self._window("block", fault, lambda: self.net.block(()))
        return f"cut {sorted(pairs)} for {fault.duration_ms} ms"

    def _drop(self, fault: Fault) -> str:
        self.net.drop_rate(float(fault.args["rate"]))
        self._window("drop", fault, lambda: self.net.drop_rate(0.0))
        return f"election messages lost at {fault.args['rate']} for {fault.duration_ms} ms"

    def _duplicate(self, fault: Fault) -> str:
        self.net.duplicate_rate(float(fault.args["rate"]))
        self._window("duplicate", fault, lambda: self.net.duplicate_rate(0.0))
        return f"election messages doubled at {fault.args['rate']} for {fault.duration_ms} ms"

    def _delay(self, fault: Fault) -> str:
        ms = int(fault.args["ms"])
        self.net.set_delay(1, ms)
        self._window("delay", fault, lambda: self.net.set_delay(1, 5))
        return f"latency 1..{ms} ms for {fault.duration_ms} ms"

    def _slow_link(self, fault: Fault) -> str:
        sids = self.ensemble.sids
        rng = random.Random(int(fault.pick * 2**32))
        src, dst = rng.sample(sids, 2)
        self.net.slow({(src, dst): int(fault.args["ms"]) * 3})
        self._window("slow", fault, lambda: self.net.slow({}))
        return f"{src}->{dst} slower by {int(fault.args['ms']) * 3} ms for {fault.duration_ms} ms"

    def _reset(self, fault: Fault) -> str:
        streams = self.net.streams(QUORUM_PORT)
        if not streams:
            return ""
        serial, src, dst = streams[int(fault.pick * len(streams))]
        self.net.reset_stream(serial)
        return f"quorum connection {src}->{dst} reset"

    # -- disks and clients ---------------------------------------------------------

    def _disk(self, fault: Fault) -> str:
        live = self._live()
        if not live:
            return ""
        sid = self._pick(fault, live)
        op = "fsync" if fault.args["fsync"] else "write"
        error = errno.ENOSPC if fault.args["enospc"] else errno.EIO
        self.ensemble.disks[sid].inject(op, error, after=int(fault.args["after"]))
        return f"peer {sid}: {errno.errorcode[error]} on the {int(fault.args['after']) + 1}th next {op}"

    def _slow_disk(self, fault: Fault) -> str:
        live = self._live()
        if not live:
            return ""
        sid = self._pick(fault, live)
        txn_log = getattr(self.ensemble.peers[sid].replica, "txn_log")
        self._slow_logs.append(txn_log)
        txn_log.fsync_ms = (30, 300)
        self._window(f"slow-disk {sid}", fault, lambda: setattr(txn_log, "fsync_ms", USUAL_FSYNC_MS))
        return f"peer {sid}: fsyncs take 30..300 ms for {fault.duration_ms} ms"

    def _client_pause(self, fault: Fault) -> str:
        ms = fault.duration_ms * 2
        index = 1 + int(fault.pick * len(self.workload.clients))
        self.workload.pause(index, ms)
        return f"client {index} silent for {ms} ms"

    # -- the end -------------------------------------------------------------------

    def heal(self) -> None:
        """Every fault ends: the network is whole, disks behave, every peer runs."""
        self.healed = True
        self._trigger = None
        net = self.net
        net.heal()
        net.drop_rate(0.0)
        net.duplicate_rate(0.0)
        net.set_delay(1, 5)
        net.slow({})
        net.lose_election(())
        for disk in self.ensemble.disks.values():
            disk.disarm()
        for txn_log in self._slow_logs:
            setattr(txn_log, "fsync_ms", USUAL_FSYNC_MS)
        for sid in sorted(self.ensemble.down):
            self.ensemble.restart(sid)
