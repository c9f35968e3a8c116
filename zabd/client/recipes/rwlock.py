# -*- test-case-name: tests.unit.test_recipes_locks -*-
"""The shared (read-write) lock: kazoo's ReadLock and WriteLock, a :class:`~zabd.client.recipes.lock.Lock` each.

Readers and writers contend under one path; only the names they exclude differ.
"""
from __future__ import annotations

from zabd.client.recipes.lock import Lock


class WriteLock(Lock):
    """The writer's side of a shared lock: excluded by any earlier reader or writer."""

    NODE_NAME = "__lock__"
    EXCLUDE_NAMES = ("__lock__", "__rlock__")


class ReadLock(Lock):
    """The reader's side of a shared lock: excluded only by earlier writers, so readers share it."""

    NODE_NAME = "__rlock__"
    EXCLUDE_NAMES = ("__lock__",)
