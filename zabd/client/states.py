# -*- test-case-name: tests.unit.test_client_api -*-
"""What the client hands its callers: connection states, watch events, stats (kazoo's vocabulary)."""
from __future__ import annotations

from dataclasses import dataclass
from enum import Enum
from typing import NamedTuple

from zabd.jute.opcodes import EventType as WireEventType
from zabd.jute.records import Stat


class KazooState(str, Enum):
    """The session's state as listeners see it."""

    CONNECTED = "CONNECTED"
    SUSPENDED = "SUSPENDED"  # the connection dropped; the session may still be resumed
    LOST = "LOST"  # the session expired or was closed


class KeeperState(str, Enum):
    """The connection's finer state (``client.client_state``), as kazoo names it."""

    CONNECTING = "CONNECTING"
    CONNECTED = "CONNECTED"
    CONNECTED_RO = "CONNECTED_RO"
    EXPIRED_SESSION = "EXPIRED_SESSION"
    AUTH_FAILED = "AUTH_FAILED"
    CLOSED = "CLOSED"


class EventType(str, Enum):
    CREATED = "CREATED"
    DELETED = "DELETED"
    CHANGED = "CHANGED"
    CHILD = "CHILD"
    NONE = "NONE"
    DATA_WATCH_REMOVED = "DATA_WATCH_REMOVED"
    CHILD_WATCH_REMOVED = "CHILD_WATCH_REMOVED"
    PERSISTENT_WATCH_REMOVED = "PERSISTENT_WATCH_REMOVED"


EVENT_TYPES: dict[int, EventType] = {
    WireEventType.None_: EventType.NONE,
    WireEventType.NodeCreated: EventType.CREATED,
    WireEventType.NodeDeleted: EventType.DELETED,
    WireEventType.NodeDataChanged: EventType.CHANGED,
    WireEventType.NodeChildrenChanged: EventType.CHILD,
    WireEventType.DataWatchRemoved: EventType.DATA_WATCH_REMOVED,
    WireEventType.ChildWatchRemoved: EventType.CHILD_WATCH_REMOVED,
    WireEventType.PersistentWatchRemoved: EventType.PERSISTENT_WATCH_REMOVED,
}


@dataclass(frozen=True, slots=True)
class WatchedEvent:
    """What a watch callback receives: the event type, the connection state and the node (chroot removed)."""

    type: EventType
    state: KeeperState
    path: str


class ZnodeStat(NamedTuple):
    """A node's Stat with ZooKeeper's field names, plus kazoo's readable properties."""

    czxid: int
    mzxid: int
    ctime: int
    mtime: int
    version: int
    cversion: int
    aversion: int
    ephemeralOwner: int
    dataLength: int
    numChildren: int
    pzxid: int

    @classmethod
    def from_stat(cls, stat: Stat) -> ZnodeStat:
        return cls(stat.czxid, stat.mzxid, stat.ctime, stat.mtime, stat.version, stat.cversion,
                   stat.aversion, stat.ephemeralOwner, stat.dataLength, stat.numChildren, stat.pzxid)

    @property
    def acl_version(self) -> int:
        return self.aversion

    @property
    def children_version(self) -> int:
        return self.cversion

    @property
    def created(self) -> float:
        return self.ctime / 1000.0

    @property
    def last_modified(self) -> float:
        return self.mtime / 1000.0

    @property
    def owner_session_id(self) -> int | None:
        return self.ephemeralOwner or None

    @property
    def creation_transaction_id(self) -> int:
        return self.czxid

    @property
    def last_modified_transaction_id(self) -> int:
        return self.mzxid

    @property
    def data_length(self) -> int:
        return self.dataLength

    @property
    def children_count(self) -> int:
        return self.numChildren
