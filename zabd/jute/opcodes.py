"""ZooDefs.OpCode, event types, keeper states, create modes and permissions.

OpCode and EventType are plain int constants rather than IntEnums: they are
compared on every request, and an enum member lookup costs ten times an int
attribute.  ``names_of`` gives their names back for logs.
"""
from __future__ import annotations

from enum import IntEnum


def names_of(constants: type) -> dict[int, str]:
    """Value -> name for a class of int constants (the last name wins)."""
    return {value: name for name, value in vars(constants).items()
            if isinstance(value, int) and not name.startswith("_")}


class OpCode:
    notification = 0
    create = 1
    delete = 2
    exists = 3
    getData = 4
    setData = 5
    getACL = 6
    setACL = 7
    getChildren = 8
    sync = 9
    ping = 11
    getChildren2 = 12
    check = 13
    multi = 14
    create2 = 15
    reconfig = 16
    checkWatches = 17
    removeWatches = 18
    createContainer = 19
    deleteContainer = 20
    createTTL = 21
    multiRead = 22
    auth = 100
    setWatches = 101
    sasl = 102
    getEphemerals = 103
    getAllChildrenNumber = 104
    setWatches2 = 105
    addWatch = 106
    whoAmI = 107
    createSession = -10
    closeSession = -11
    error = -1


OP_NAMES = names_of(OpCode)


class EventType:
    None_ = -1
    NodeCreated = 1
    NodeDeleted = 2
    NodeDataChanged = 3
    NodeChildrenChanged = 4
    DataWatchRemoved = 5
    ChildWatchRemoved = 6
    PersistentWatchRemoved = 7


EVENT_NAMES = names_of(EventType)


class KeeperState(IntEnum):
    Unknown = -1
    Disconnected = 0
    NoSyncConnected = 1
    SyncConnected = 3
    AuthFailed = 4
    ConnectedReadOnly = 5
    SaslAuthenticated = 6
    Closed = 7
    Expired = -112


class CreateMode(IntEnum):
    """ZooKeeper's CreateMode: the flags of a create (ephemeral, sequential, container, TTL)."""

    PERSISTENT = 0
    EPHEMERAL = 1
    PERSISTENT_SEQUENTIAL = 2
    EPHEMERAL_SEQUENTIAL = 3
    CONTAINER = 4
    PERSISTENT_WITH_TTL = 5
    PERSISTENT_SEQUENTIAL_WITH_TTL = 6

    # Sets of plain ints: these run on every create.
    @property
    def is_ephemeral(self) -> bool:
        return self._value_ in _EPHEMERAL_MODES

    @property
    def is_sequential(self) -> bool:
        return self._value_ in _SEQUENTIAL_MODES

    @property
    def is_ttl(self) -> bool:
        return self._value_ in _TTL_MODES


_EPHEMERAL_MODES = frozenset({1, 3})
_SEQUENTIAL_MODES = frozenset({2, 3, 6})
_TTL_MODES = frozenset({5, 6})


class WatcherType(IntEnum):
    Children = 1
    Data = 2
    Any = 3


class AddWatchMode(IntEnum):
    PERSISTENT = 0
    PERSISTENT_RECURSIVE = 1


class Perms:
    READ = 1
    WRITE = 2
    CREATE = 4
    DELETE = 8
    ADMIN = 16
    ALL = 31


# Special xids on the client port.
NOTIFICATION_XID = -1
PING_XID = -2
AUTH_XID = -4
SET_WATCHES_XID = -8
