# -*- test-case-name: tests.unit.test_zab_leader,tests.unit.test_zab_follower -*-
"""What the Zab roles (leader, learner handler, learner) need from around them.

The roles are sans-IO: a ``PacketLink`` is one quorum-port connection as a
role sees it (packets out, raw SNAP bytes out, close), and a ``Replica`` is
the local database as Zab sees it (log, apply, truncate, install a snapshot,
the epochs). The Twisted adapter and the in-process simulation each supply
both; neither the roles nor their tests touch a socket, a thread or a disk.
"""
from __future__ import annotations

import struct
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Protocol

from zabd.core.datatree import DataTree
from zabd.quorum.committedlog import CommittedLog
from zabd.quorum.packets import QuorumPacket
from zabd.quorum.snapstream import SnapshotStream
from zabd.quorum.syncplan import OnDiskHistory

__all__ = ["PacketLink", "Replica", "Timing"]


_TXN_TIME = struct.Struct(">q")
#: Where a serialized txn's header keeps its time (after clientId, cxid and zxid).
_TXN_TIME_OFFSET = 20


def txn_time_ms(txn: bytes) -> int:
    """The wall-clock ms the leader stamped on a serialized txn (the latency metrics' origin)."""
    time_ms: int = _TXN_TIME.unpack_from(txn, _TXN_TIME_OFFSET)[0]
    return time_ms


class PacketLink(Protocol):
    """One quorum-port connection, from the side of the role that owns it."""

    def send(self, packet: QuorumPacket) -> None: ...

    def send_raw(self, data: bytes) -> None:
        """Bytes written straight onto the stream (the SNAP stream after a SNAP packet)."""

    def close(self) -> None: ...


class Replica(Protocol):
    """The local database, as the Zab roles drive it.

    ``log`` is asynchronous: the replica reports each durable zxid, in order,
    to whatever its owner wired to ``set_durable_callback``.
    """

    committed: CommittedLog
    #: The tree as it is now (a new object after truncate or install).
    tree: DataTree
    #: Set while a server answers clients: committed txns go to its final
    #: stage, which applies them to ``tree`` itself. None: apply them here.
    on_commit: Callable[[int, bytes], None] | None

    @property
    def last_logged_zxid(self) -> int: ...

    @property
    def last_processed_zxid(self) -> int: ...

    @property
    def accepted_epoch(self) -> int: ...

    @property
    def current_epoch(self) -> int: ...

    def set_accepted_epoch(self, epoch: int) -> None:
        """Persist acceptedEpoch (durable when this returns)."""

    def set_current_epoch(self, epoch: int) -> None:
        """Persist currentEpoch (durable when this returns)."""

    def mark_epoch_update(self) -> None:
        """Persist the ``updatingEpoch`` marker; ``set_current_epoch`` removes it."""

    @property
    def appends_in_flight(self) -> bool:
        """True while logged txns are not yet all reported durable."""

    def set_durable_callback(self, durable: Callable[[int], None]) -> None: ...

    def log(self, zxid: int, txn: bytes) -> None:
        """Append one txn entry to the txn log; it is reported once durable."""

    def apply(self, zxid: int, txn: bytes) -> None:
        """Add one committed txn entry to ``committed`` and the sessions, and apply it
        to the tree (through ``on_commit`` when a server is attached)."""

    def catch_up(self) -> None:
        """Apply what was logged but never committed here (ZooKeeper's fastForwardDataBase
        when a role ends): the next election and leadership start from the whole log."""

    def truncate(self, zxid: int) -> None:
        """Drop every logged txn after ``zxid`` and rebuild the tree (TRUNC)."""

    def install(self, snapshot: SnapshotStream, zxid: int) -> None:
        """Replace the tree and sessions with a SNAP stream's, as of ``zxid``."""

    def save_snapshot(self) -> None:
        """Write a durable snapshot of the tree as it is now (after SNAP or TRUNC).

        After a SNAP, the log files below the installed zxid then go: they
        hold this server's old history, not necessarily the leader's."""

    def reload(self) -> None:
        """Load the tree and sessions from the files again: a sync changed them in
        memory (SNAP, TRUNC and its txns) and ended before its snapshot was durable."""

    def snapshot_stream(self) -> tuple[int, Iterator[bytes]]:
        """The zxid the tree is at and its SNAP stream chunks (fuzzy: apply may run between chunks)."""

    def sessions(self) -> dict[int, int]:
        """Global sessions: id -> timeout in ms."""

    def on_disk_history(self) -> OnDiskHistory | None:
        """The txn log as a DIFF source for learners behind the committed log (None: SNAP them)."""


@dataclass(frozen=True, slots=True)
class Timing:
    """ZooKeeper's tick-based limits, in ms (initLimit and syncLimit count ticks)."""

    tick_ms: int = 2000
    init_limit: int = 10
    sync_limit: int = 5

    @property
    def init_ms(self) -> int:
        return self.tick_ms * self.init_limit

    @property
    def sync_ms(self) -> int:
        return self.tick_ms * self.sync_limit
