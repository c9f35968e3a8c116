# -*- test-case-name: tests.unit.test_chaos -*-
"""messageLegal and ackConsistent: every quorum packet, checked as its sender writes it.

:class:`PacketChecks` is a SimNetwork stream tap (zabd.testing.chaos_invariants
installs it). It decodes each quorum connection's two directions and holds
each packet to what its sender's role may send in its phase, on that
connection, in order: a learner's info once, ACKEPOCH after LEADERINFO, ACKs
of proposals sent on the connection and rising; a leader's LEADERINFO, one
DIFF/TRUNC/SNAP after ACKEPOCH, rising PROPOSALs, each COMMIT after its
PROPOSAL, NEWLEADER, UPTODATE after the ACK of NEWLEADER. Durability, read
from the sender's MemoryDisk as a crash now would leave it:

- an ACK of a txn leaves once the txn is durable in the learner's log;
- the ACK of NEWLEADER once currentEpoch and every txn of the sync are
  (in the log, or in a snapshot after a TRUNC or SNAP);
- ACKEPOCH once acceptedEpoch is; LEADERINFO and the sync once the
  leader's acceptedEpoch and currentEpoch are.
"""
from __future__ import annotations

import posixpath
import struct
from collections.abc import Callable
from dataclasses import dataclass, field

from zabd.quorum.leader import Phase as LeaderPhase
from zabd.quorum.learner import Phase as LearnerPhase
from zabd.quorum.packets import PacketStreamDecoder, PacketType, QuorumPacket
from zabd.core.zxid import COUNTER_MASK, epoch_of, first_zxid_of
from zabd.quorum.snapstream import QuorumWireError, SnapshotStream
from zabd.storage.epochs import ACCEPTED_EPOCH, CURRENT_EPOCH
from zabd.storage.layout import LOG_PREFIX, SNAPSHOT_PREFIX, VERSION_DIR, snapshot_name, zxid_in_name
from zabd.storage.logformat import HEADER_SIZE, RECORD_PREFIX, TXN_ZXID_OFFSET
from zabd.testing.chaos_history import Histories, Report
from zabd.testing.ensemble import QUORUM_PORT, SimEnsemble
from zabd.testing.memdisk import MemoryDisk
from zabd.testing.simnet import StreamEnd

_PREFIX = struct.Struct(">qi")
_LONG = struct.Struct(">q")


class DurableLog:
    """Which zxids a disk's txn log holds durably, parsed incrementally as fsyncs extend the files."""

    def __init__(self, disk: MemoryDisk) -> None:
        self.disk = disk
        self._files: dict[str, tuple[bytes, int, set[int]]] = {}  # path -> (durable bytes, parsed to, zxids)

    def has(self, zxid: int) -> bool:
        disk = self.disk
        for name in disk.listdir(VERSION_DIR, durable=True):
            if zxid_in_name(name, LOG_PREFIX) is None:
                continue
            path = posixpath.join(VERSION_DIR, name)
            if zxid in self._parsed(path, disk.read(path, durable=True)):
                return True
        return False

    def _parsed(self, path: str, data: bytes) -> set[int]:
        cached = self._files.get(path)
        if cached is not None and cached[0] is data:
            return cached[2]
        if cached is not None and len(data) >= len(cached[0]) and data.startswith(cached[0]):
            pos, zxids = cached[1], cached[2]
        else:
            pos, zxids = HEADER_SIZE, set()
        while pos + RECORD_PREFIX <= len(data):
            length = _PREFIX.unpack_from(data, pos)[1]
            stop = pos + RECORD_PREFIX + length
            if length <= TXN_ZXID_OFFSET or stop >= len(data):
                break
            zxids.add(_LONG.unpack_from(data, pos + RECORD_PREFIX + TXN_ZXID_OFFSET)[0])
            pos = stop + 1
        self._files[path] = (data, pos, zxids)
        return zxids

    def newest_snapshot(self) -> int:
        """The zxid of the newest durable snapshot (-1 without one)."""
        zxids = [zxid_in_name(name, SNAPSHOT_PREFIX) for name in self.disk.listdir(VERSION_DIR, durable=True)]
        return max((zxid for zxid in zxids if zxid is not None), default=-1)

    def snapshot_at(self, zxid: int) -> bool:
        return snapshot_name(zxid) in self.disk.listdir(VERSION_DIR, durable=True)


def durable_epoch(disk: MemoryDisk, name: str) -> int | None:
    try:
        return int(disk.read(posixpath.join(VERSION_DIR, name), durable=True).decode("ascii"))
    except FileNotFoundError:
        return None


@dataclass(eq=False)
class _Conn:
    """One quorum connection as the packets on it show it."""

    learner: int
    leader: int
    to_leader: PacketStreamDecoder = field(default_factory=PacketStreamDecoder)
    to_learner: PacketStreamDecoder = field(default_factory=PacketStreamDecoder)
    sent: set[str] = field(default_factory=set)  # one-off packets already sent ("info", "NEWLEADER", ...)
    epoch: int = -1
    mode: str | None = None
    snap_zxid: int = -1
    proposed: set[int] = field(default_factory=set)
    synced: list[int] = field(default_factory=list)  # PROPOSALs before NEWLEADER
    last_proposal: int = -1
    last_commit: int = -1
    last_ack: int = -1
    committed_zxid: int = -1  # the committed chain's end when the leader chose DIFF/TRUNC/SNAP
    pings: int = 0  # sent by the leader and not yet answered
    revalidates: int = 0  # asked by the learner and not yet answered


class PacketChecks:
    """Reads every quorum packet on the simulated wire and checks it against the histories and the disks."""

    def __init__(self, ensemble: SimEnsemble, histories: Histories, report: Report,
                 head: Callable[[int], int]) -> None:
        self.ensemble = ensemble
        self.histories = histories
        self.report = report
        self.head = head
        self.durable = {sid: DurableLog(disk) for sid, disk in ensemble.disks.items()}
        self.packets = 0
        self._conns: dict[int, _Conn] = {}
        ensemble.net.stream_taps.append(self._tap)

    def _tap(self, end: StreamEnd, data: bytes) -> None:
        if end.port_name != QUORUM_PORT:
            return
        conn = self._conns.get(end.serial)
        if conn is None:
            learner, leader = (end.node, end.remote) if end.dialer else (end.remote, end.node)
            conn = self._conns[end.serial] = _Conn(learner, leader)
        try:
            items = (conn.to_leader if end.dialer else conn.to_learner).feed(data)
        except QuorumWireError as e:
            self.report("messageLegal", f"peer {end.node} wrote bytes that are no quorum packet: {e}")
            return
        for item in items:
            if isinstance(item, SnapshotStream):
                continue
            self.packets += 1
            problem = self._from_learner(conn, end, item) if end.dialer else self._from_leader(conn, end, item)
            if problem:
                self.report("messageLegal" if not problem.startswith("durable:") else "ackConsistent",
                            f"peer {end.node} -> {end.remote}: {_name(item.type)} 0x{item.zxid:x}: "
                            f"{problem.removeprefix('durable:')}")

    def planned_with(self, sid: int) -> int | None:
        """The committed chain's end when the leader planned the sync learner ``sid`` is in (None: unknown)."""
        learner = self.ensemble.peers[sid].learner
        end = getattr(learner.link, "stream", None) if learner is not None else None
        conn = self._conns.get(end.serial) if isinstance(end, StreamEnd) else None
        return conn.committed_zxid if conn is not None and conn.mode is not None else None

    def durable_on(self, zxid: int) -> list[int]:
        """The peers whose disks hold txn ``zxid`` durably (in the log, or under a snapshot)."""
        return [sid for sid, log in sorted(self.durable.items()) if log.has(zxid) or log.newest_snapshot() >= zxid]

    def _once(self, conn: _Conn, what: str) -> bool:
        if what in conn.sent:
            return False
        conn.sent.add(what)
        return True

    def _from_learner(self, conn: _Conn, end: StreamEnd, p: QuorumPacket) -> str | None:
        peer = self.ensemble.peers[end.node]
        learner = peer.learner
        if learner is None or getattr(learner.link, "stream", None) is not end:
            return f"sent by no current learner (peer is {peer.state.name})"
        phase, kind, disk = learner.phase, p.type, self.ensemble.disks[end.node]
        if kind in (PacketType.FOLLOWERINFO, PacketType.OBSERVERINFO):
            return None if self._once(conn, "info") else "a second learner info"
        if kind == PacketType.ACKEPOCH:
            if phase is not LearnerPhase.SYNC or "LEADERINFO" not in conn.sent or not self._once(conn, "ACKEPOCH"):
                return f"in phase {phase.value}"
            accepted = durable_epoch(disk, ACCEPTED_EPOCH)
            return None if accepted is not None and accepted >= conn.epoch else \
                f"durable:acceptedEpoch {accepted} is not durably {conn.epoch}"
        if kind == PacketType.ACK and p.zxid & COUNTER_MASK == 0:
            if "NEWLEADER" in conn.sent and self._once(conn, "ACK NEWLEADER"):
                if phase is not LearnerPhase.NEWLEADER or epoch_of(p.zxid) != conn.epoch:
                    return f"ACK of NEWLEADER in phase {phase.value}"
                return self._newleader_durable(conn, end.node)
            if "UPTODATE" in conn.sent and phase is LearnerPhase.BROADCAST and self._once(conn, "ACK UPTODATE"):
                return None
            return f"an ACK of a zero counter in phase {phase.value}"
        if kind == PacketType.ACK:
            if phase not in (LearnerPhase.NEWLEADER, LearnerPhase.BROADCAST) or learner.observer:
                return f"in phase {phase.value}"
            if p.zxid not in conn.proposed or p.zxid <= conn.last_ack:
                return f"not a proposal on this connection, or not after the last ACK 0x{conn.last_ack:x}"
            conn.last_ack = p.zxid
            return None if self.durable[end.node].has(p.zxid) else "durable:the txn is not durable in the log"
        if kind == PacketType.PING:
            if conn.pings <= 0:
                return "a PING the leader did not send"
            conn.pings -= 1
            return None
        if kind in (PacketType.REQUEST, PacketType.REVALIDATE):
            conn.revalidates += kind == PacketType.REVALIDATE
            return None if phase is LearnerPhase.BROADCAST else f"in phase {phase.value}"
        return "never sent by a learner"

    def _newleader_durable(self, conn: _Conn, sid: int) -> str | None:
        disk, log = self.ensemble.disks[sid], self.durable[sid]
        current = durable_epoch(disk, CURRENT_EPOCH)
        if current != conn.epoch:
            return f"durable:currentEpoch is durably {current}, not {conn.epoch}"
        if conn.mode == "SNAP" and not log.snapshot_at(conn.snap_zxid):
            return f"durable:the snapshot at 0x{conn.snap_zxid:x} is not durable"
        # A TRUNC or SNAP sync applies the txns it carries and saves a snapshot; a DIFF logs them.
        covered = log.newest_snapshot()
        missing = [zxid for zxid in conn.synced if zxid > covered and not log.has(zxid)]
        return f"durable:{len(missing)} txns of the sync are not durable, the first 0x{missing[0]:x}" \
            if missing else None

    def _from_leader(self, conn: _Conn, end: StreamEnd, p: QuorumPacket) -> str | None:
        peer = self.ensemble.peers[end.node]
        leader = peer.leader
        if leader is None or not any(getattr(h.link, "stream", None) is end for h in leader.handlers):
            return f"sent by no current leader (peer is {peer.state.name})"
        kind, phase, disk = p.type, leader.phase, self.ensemble.disks[end.node]
        serving = phase is LeaderPhase.BROADCAST
        if kind == PacketType.LEADERINFO:
            if "info" not in conn.sent or leader.epoch < 0 or p.zxid != first_zxid_of(leader.epoch) \
                    or not self._once(conn, "LEADERINFO"):
                return "out of turn"
            conn.epoch = leader.epoch
            accepted = durable_epoch(disk, ACCEPTED_EPOCH)
            return None if accepted == leader.epoch else f"durable:the leader's acceptedEpoch is durably {accepted}"
        if kind in (PacketType.DIFF, PacketType.TRUNC, PacketType.SNAP):
            if "ACKEPOCH" not in conn.sent or conn.mode is not None:
                return "out of turn"
            if not (serving or leader.discovery.epoch_acks_done):
                return "before a quorum acknowledged the epoch"
            conn.mode, conn.snap_zxid = _name(kind), p.zxid
            conn.committed_zxid = self.histories.zxid[self.histories.committed_head]
            if kind == PacketType.SNAP:
                self.histories.sent[(conn.learner, p.zxid)] = self.head(end.node)
            current = durable_epoch(disk, CURRENT_EPOCH)
            return None if current == leader.epoch else f"durable:the leader's currentEpoch is durably {current}"
        if kind == PacketType.PROPOSAL:
            if conn.mode is None or p.zxid <= conn.last_proposal:
                return f"out of turn (mode {conn.mode}, last proposal 0x{conn.last_proposal:x})"
            if epoch_of(p.zxid) >= leader.epoch and not serving:
                return "a proposal of the new epoch before the leader serves"
            conn.last_proposal = p.zxid
            conn.proposed.add(p.zxid)
            if "NEWLEADER" not in conn.sent:
                conn.synced.append(p.zxid)
            return None
        if kind == PacketType.COMMIT:
            if p.zxid not in conn.proposed or p.zxid <= conn.last_commit:
                return f"no PROPOSAL before it, or not after the last COMMIT 0x{conn.last_commit:x}"
            conn.last_commit = p.zxid
            if epoch_of(p.zxid) == leader.epoch and leader.last_committed < p.zxid:
                return "a COMMIT of a txn the leader has not committed"
            return None
        if kind == PacketType.NEWLEADER:
            ok = conn.mode is not None and p.zxid == first_zxid_of(leader.epoch) and self._once(conn, "NEWLEADER")
            return None if ok else "out of turn"
        if kind == PacketType.UPTODATE:
            ok = serving and "ACK NEWLEADER" in conn.sent and self._once(conn, "UPTODATE")
            return None if ok else f"out of turn (leader {phase.value})"
        if kind == PacketType.PING:
            conn.pings += 1
            return None if serving and "UPTODATE" in conn.sent else "before the learner is up to date"
        if kind == PacketType.SYNC:
            return None if serving and "UPTODATE" in conn.sent else "before the learner is up to date"
        if kind == PacketType.REVALIDATE:
            if conn.revalidates <= 0:
                return "an answer nobody asked for"
            conn.revalidates -= 1
            return None
        return "never sent by a leader to a follower"



def _name(kind: int) -> str:
    try:
        return PacketType(kind).name
    except ValueError:
        return str(kind)
