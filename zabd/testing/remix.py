# -*- test-case-name: tests.unit.test_remix_bugs -*-
"""Scripted scenarios for the Zab bugs Remix found (EuroSys 2025), on a simulated ensemble.

A :class:`RemixWorld` is a SimEnsemble of TracedReplicas watched by the
chaos invariants (zabd.testing.chaos_invariants, checked after every
simulation step), with what a scenario needs to steer into one precise
interleaving and then prove that it got there:

- :class:`PacketLog`: every quorum packet as its sender writes it
  (time, sender, receiver, connection, type, zxid), to assert on the order
  of NEWLEADER, ACKs, COMMITs and UPTODATE;
- :class:`RoleLog`: why each learner left its leader and each leader
  stepped down (from zabd's own log events);
- :class:`RemixReplica`: a TracedReplica whose next write of an epoch file
  can be made to fail with EIO (``fail_epoch_write``), on top of the
  MemoryDisk's faults; ``RemixWorld.slow_disk`` makes a peer's fsyncs slow;
- :func:`committed_log_gap`: the committedLog (the DIFF source) must be a
  contiguous suffix of the peer's own history (ZOOKEEPER-4925).
"""
from __future__ import annotations

import errno
from collections.abc import Callable
from dataclasses import dataclass

from twisted.logger import ILogObserver, LogEvent, globalLogPublisher
from zope.interface import implementer

from zabd.quorum.packets import PacketStreamDecoder, PacketType
from zabd.quorum.snapstream import QuorumWireError, SnapshotStream
from zabd.storage.epochs import CURRENT_EPOCH
from zabd.testing.chaos_checks import check_converged, converged
from zabd.testing.chaos_history import Histories, TracedReplica
from zabd.testing.chaos_invariants import Monitor
from zabd.testing.chaos_packets import DurableLog, durable_epoch
from zabd.testing.ensemble import QUORUM_PORT, SimEnsemble
from zabd.testing.memdisk import MemoryDisk
from zabd.testing.simnet import StreamEnd
from zabd.testing.simulation import Scope


@dataclass(frozen=True, slots=True)
class Sent:
    """One quorum packet, as its sender wrote it."""

    at_ms: int
    src: int
    dst: int
    serial: int
    kind: str
    zxid: int

    def __str__(self) -> str:
        return f"{self.at_ms}ms {self.src}->{self.dst} #{self.serial} {self.kind} 0x{self.zxid:x}"


class PacketLog:
    """A SimNetwork stream tap that decodes and keeps every quorum packet."""

    def __init__(self, ensemble: SimEnsemble) -> None:
        self.sim = ensemble.sim
        self.sent: list[Sent] = []
        self._decoders: dict[tuple[int, bool], PacketStreamDecoder] = {}
        ensemble.net.stream_taps.append(self._tap)

    def _tap(self, end: StreamEnd, data: bytes) -> None:
        if end.port_name != QUORUM_PORT:
            return
        decoder = self._decoders.setdefault((end.serial, end.dialer), PacketStreamDecoder())
        try:
            items = decoder.feed(data)
        except QuorumWireError:
            return  # messageLegal (the Monitor) reports it
        for item in items:
            if not isinstance(item, SnapshotStream):
                self.sent.append(Sent(self.sim.now_ms, end.node, end.remote, end.serial, _name(item.type), item.zxid))

    def between(self, src: int, dst: int, *kinds: str) -> list[Sent]:
        """What ``src`` sent ``dst`` (only ``kinds``, if given), oldest first."""
        return [s for s in self.sent if s.src == src and s.dst == dst and (not kinds or s.kind in kinds)]

    def first(self, src: int, dst: int, kind: str, zxid: int | None = None) -> Sent | None:
        return next((s for s in self.between(src, dst, kind) if zxid is None or s.zxid == zxid), None)

    def on(self, serial: int) -> list[Sent]:
        """Both directions of one connection, in the order they were written."""
        return [s for s in self.sent if s.serial == serial]


@dataclass(frozen=True, slots=True)
class RoleEnd:
    """A learner that left or a leader that stepped down, when and why (from the log)."""

    at_ms: int
    sid: int
    role: str  # "learner" or "leader"
    reason: str


@implementer(ILogObserver)
class RoleLog:
    """Why learners left and leaders stepped down, from zabd's log events (``close`` removes the observer)."""

    def __init__(self, clock: Callable[[], int]) -> None:
        self.clock = clock
        self.ends: list[RoleEnd] = []
        globalLogPublisher.addObserver(self)

    def __call__(self, event: LogEvent) -> None:
        text = event.get("log_format") or ""
        if text.startswith("Learner {myid} leaves the leader"):
            self.ends.append(RoleEnd(self.clock(), int(event["myid"]), "learner", str(event["reason"])))
        elif text.startswith("Leader {myid} steps down"):
            self.ends.append(RoleEnd(self.clock(), int(event["myid"]), "leader", str(event["reason"])))

    def of(self, sid: int, role: str | None = None) -> list[RoleEnd]:
        return [end for end in self.ends if end.sid == sid and (role is None or end.role == role)]

    def close(self) -> None:
        globalLogPublisher.removeObserver(self)


class RemixReplica(TracedReplica):
    """A TracedReplica whose next write of a chosen epoch file fails with EIO (see ``fail_epoch_write``)."""

    def __init__(self, sid: int, scope: Scope, disk: MemoryDisk, commit_log_count: int,
                 histories: Histories) -> None:
        self.epoch_faults: set[str] = set()
        #: (virtual ms, epoch file, value) of every epoch write that failed.
        self.failed_epoch_writes: list[tuple[int, str, int]] = []
        super().__init__(sid, scope, disk, commit_log_count, histories)

    def fail_epoch_write(self, name: str = CURRENT_EPOCH) -> None:
        """The next write of ``name`` (acceptedEpoch or currentEpoch) fails: EIO on its temp file."""
        self.epoch_faults.add(name)

    def _store_epoch(self, name: str, epoch: int) -> None:
        if name in self.epoch_faults:
            self.epoch_faults.discard(name)
            self.failed_epoch_writes.append((self.txn_log.scheduler.now_ms, name, epoch))
            self.disk.inject("write", errno.EIO)  # the very next write: the epoch's temp file
        super()._store_epoch(name, epoch)


class RemixWorld:
    """A SimEnsemble of RemixReplicas with the chaos invariants checked after every step."""

    def __init__(self, seed: int, voters: int = 3, *, commit_log_count: int = 500) -> None:
        self.violations: list[str] = []
        self.histories = histories = Histories(self.violation)

        def replica(sid: int, scope: Scope, disk: MemoryDisk, count: int) -> RemixReplica:
            return RemixReplica(sid, scope, disk, count, histories)

        self.ensemble = SimEnsemble(seed, voters, replica_factory=replica, commit_log_count=commit_log_count)
        self.sim = self.ensemble.sim
        self.monitor = Monitor(self.ensemble, histories, self.violation)
        self.packets = PacketLog(self.ensemble)
        self.roles = RoleLog(lambda: self.sim.now_ms)
        self._fsync_ms: dict[int, tuple[int, int]] = {}

    def violation(self, kind: str, message: str) -> None:
        self.violations.append(f"{self.sim.now_ms}ms {kind}: {message}")

    def close(self) -> None:
        self.roles.close()

    # -- running -------------------------------------------------------------------

    def run_until(self, predicate: Callable[[], bool], within_ms: int = 10_000) -> bool:
        """Step until ``predicate()`` holds (checked after every step, as the invariants are)."""
        deadline = self.sim.now_ms + within_ms
        while not predicate():
            due = self.sim.next_time_ms()
            if due is None or due > deadline:
                return predicate()
            self.sim.step()
            self.monitor.check()
        return True

    def run_for(self, ms: int) -> None:
        """Step through the next ``ms`` of virtual time, checking the invariants."""
        self.run_until(lambda: False, ms)

    def settle(self, sids: list[int] | None = None, within_ms: int = 30_000) -> int:
        ensemble = self.ensemble
        if not self.run_until(lambda: ensemble.leader() is not None and ensemble.all_serving(sids), within_ms):
            raise AssertionError("the ensemble did not settle:\n" + self.sim.format_trace(last=40))
        leader = ensemble.leader()
        assert leader is not None
        return leader

    def write_and_commit(self, count: int, sids: list[int] | None = None) -> list[int]:
        zxids = self.ensemble.write(count)
        assert self.run_until(lambda: self.ensemble.committed_everywhere(zxids[-1], sids)), \
            self.sim.format_trace(last=30)
        return zxids

    def converge(self, within_ms: int = 60_000) -> None:
        """Every live peer serves one history; then the end-of-run checks of a chaos run."""
        if not self.run_until(lambda: converged(self.ensemble), within_ms):
            self.violation("liveness", f"the peers did not converge within {within_ms} ms")
        check_converged(self.ensemble, self.histories, self.violation)

    # -- faults and observations -----------------------------------------------------

    def replica(self, sid: int) -> RemixReplica:
        replica = self.ensemble.peers[sid].replica
        assert isinstance(replica, RemixReplica)
        return replica

    def slow_disk(self, sid: int, ms: int | None) -> None:
        """Every fsync of ``sid``'s txn log takes ``ms`` (None: back to normal); it lasts across restarts."""
        if ms is None:
            self._fsync_ms.pop(sid, None)
        else:
            self._fsync_ms[sid] = (ms, ms)
        if sid not in self.ensemble.down:
            self.replica(sid).txn_log.fsync_ms = self._fsync_ms.get(sid, (1, 10))

    def restart(self, sid: int) -> None:
        self.ensemble.restart(sid)
        if sid in self._fsync_ms:
            self.replica(sid).txn_log.fsync_ms = self._fsync_ms[sid]

    def durable(self, sid: int, zxid: int) -> bool:
        """Whether txn ``zxid`` is in ``sid``'s log as a crash now would leave it."""
        return DurableLog(self.ensemble.disks[sid]).has(zxid)

    def durable_epoch(self, sid: int, name: str = CURRENT_EPOCH) -> int | None:
        return durable_epoch(self.ensemble.disks[sid], name)

    def history(self, sid: int) -> list[int]:
        """The zxids of ``sid``'s tree's history, oldest first."""
        histories = self.histories
        return [histories.zxid[node] for node in histories.chain(self.replica(sid).head)]

    def committed_zxids(self) -> list[int]:
        histories = self.histories
        return [histories.zxid[node] for node in histories.chain(histories.committed_head)]


def committed_log_gap(world: RemixWorld, sid: int) -> str | None:
    """What is wrong with ``sid``'s committedLog, if it is not a contiguous tail of its history."""
    entries = [zxid for zxid, _txn in world.replica(sid).committed]
    history = world.history(sid)
    if not entries or history[-len(entries):] == entries:
        return None
    held = set(entries)
    missing = [zxid for zxid in history if entries[0] <= zxid <= entries[-1] and zxid not in held]
    return (f"peer {sid}'s committedLog 0x{entries[0]:x}..0x{entries[-1]:x} ({len(entries)} txns) is not its "
            f"history's tail" + (f": it lacks 0x{missing[0]:x} and {len(missing) - 1} more" if missing else ""))


def _name(kind: int) -> str:
    try:
        return PacketType(kind).name
    except ValueError:
        return str(kind)
