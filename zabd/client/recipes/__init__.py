"""Recipes on zabd.client, each with the semantics of kazoo's namesake; every call returns a Deferred.

Each recipe module says what it does when the connection is SUSPENDED or the session LOST.
"""
from zabd.client.recipes.barrier import Barrier, DoubleBarrier
from zabd.client.recipes.election import Election, LeaderLatch
from zabd.client.recipes.lock import Lock
from zabd.client.recipes.rwlock import ReadLock, WriteLock
from zabd.client.recipes.semaphore import Semaphore
from zabd.client.recipes.support import CancelledError, LockTimeout, SessionInterrupted, while_connected

__all__ = [
    "Barrier",
    "DoubleBarrier",
    "Election",
    "LeaderLatch",
    "Lock",
    "ReadLock",
    "WriteLock",
    "Semaphore",
    "CancelledError",
    "LockTimeout",
    "SessionInterrupted",
    "while_connected",
]

# Data recipes: queues, counter, party, watches, tree cache, leases.
from zabd.client.recipes.counter import Counter  # noqa: E402
from zabd.client.recipes.lease import MultiNonBlockingLease, NonBlockingLease  # noqa: E402
from zabd.client.recipes.party import Party, ShallowParty  # noqa: E402
from zabd.client.recipes.queue import LockingQueue, Queue  # noqa: E402
from zabd.client.recipes.treecache import NodeData, TreeCache, TreeCacheEvent, TreeEvent  # noqa: E402
from zabd.client.recipes.watchers import ChildrenWatch, DataWatch  # noqa: E402

__all__ += [
    "Counter", "NonBlockingLease", "MultiNonBlockingLease", "Party", "ShallowParty", "Queue", "LockingQueue",
    "TreeCache", "TreeEvent", "TreeCacheEvent", "NodeData", "DataWatch", "ChildrenWatch",
]
