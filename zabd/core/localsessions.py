# -*- test-case-name: tests.unit.test_local_sessions -*-
"""Session tables of an ensemble peer with local sessions (3.8's UpgradeableSessionTracker).

A *global* session is created by a quorum txn and known to every peer; a
*local* one (localSessionsEnabled) is known only to the peer its client
connected to, costs no txn, and expires there. Both kinds draw their ids
from the same counter, so an id carries the creating peer's myid in its top
byte either way.

The base ``SessionTracker`` state holds the global sessions, so everything
that reads it as before (snapshots, ``sessions()``, ``in``, mntr's global
count) sees only those; the local ones sit in a second tracker beside it.
Without local sessions the second tracker does not exist and the class
behaves as a plain ``SessionTracker``.
"""
from __future__ import annotations

from zabd.core.sessions import SessionTracker

__all__ = ["UpgradeableSessions", "LeaderSessions", "server_id_of"]


def server_id_of(session_id: int) -> int:
    """The myid a session id was made by (3.8's arithmetic ``sessionId >> 56``)."""
    return session_id >> 56


class UpgradeableSessions(SessionTracker):
    """Global sessions plus, with local sessions on, this peer's local ones."""

    def __init__(self, tick_ms: int, server_id: int, now_ms: int, *, local_enabled: bool) -> None:
        super().__init__(tick_ms, server_id, now_ms)
        self.local: SessionTracker | None = SessionTracker(tick_ms, server_id, now_ms) if local_enabled else None
        #: Upgraded sessions whose createSession txn has not committed here yet: id -> timeout.
        self.upgrading: dict[int, int] = {}

    # -- kinds ---------------------------------------------------------------

    @property
    def local_enabled(self) -> bool:
        return self.local is not None

    def is_local(self, session_id: int) -> bool:
        """Tracked here as a local session (closing ones included, as 3.8's isLocalSession)."""
        return self.local is not None and session_id in self.local

    def is_global(self, session_id: int) -> bool:
        return SessionTracker.__contains__(self, session_id)

    def local_count(self) -> int:
        """mntr's zk_local_sessions."""
        return 0 if self.local is None else len(self.local)

    def create(self, timeout_ms: int, now_ms: int) -> int:
        """A new client's session: local when local sessions are on (3.8: all new sessions are)."""
        if self.local is None:
            return super().create(timeout_ms, now_ms)
        session_id = self.allocate_id()
        self.local.add(session_id, timeout_ms, now_ms)
        return session_id

    def upgrade(self, session_id: int, now_ms: int) -> int | None:
        """Take a session out of the local table (3.8's upgradeSession); its timeout, None if not local.

        The caller sends the createSession that makes it global.
        """
        local = self.local
        timeout = None if local is None else local.timeout_of(session_id)
        if local is None or timeout is None:
            return None
        local.remove(session_id)
        self._upgraded(session_id, timeout, now_ms)
        return timeout

    def _upgraded(self, session_id: int, timeout_ms: int, now_ms: int) -> None:
        # A learner only waits for the createSession's commit.
        self.upgrading[session_id] = timeout_ms

    # -- SessionTracker, over both tables --------------------------------------

    def add(self, session_id: int, timeout_ms: int, now_ms: int) -> None:
        """Track a global session (3.8's commitSession): a committed createSession ends any local life."""
        if self.local is not None:
            self.local.remove(session_id)
            self.upgrading.pop(session_id, None)
        super().add(session_id, timeout_ms, now_ms)

    def touch(self, session_id: int, now_ms: int, timeout_ms: int | None = None) -> bool:
        local = self.local
        if local is not None and local.touch(session_id, now_ms, timeout_ms):
            return True
        return self._touch_global(session_id, now_ms, timeout_ms)

    def _touch_global(self, session_id: int, now_ms: int, timeout_ms: int | None) -> bool:
        return super().touch(session_id, now_ms, timeout_ms)

    def set_closing(self, session_id: int) -> None:
        if self.local is not None:
            self.local.set_closing(session_id)
        super().set_closing(session_id)

    def remove(self, session_id: int) -> None:
        if self.local is not None:
            self.local.remove(session_id)
            self.upgrading.pop(session_id, None)
        super().remove(session_id)

    def clear(self) -> None:
        if self.local is not None:
            self.local.clear()
        self.upgrading.clear()
        super().clear()

    def timeout_of(self, session_id: int) -> int | None:
        if self.local is not None and session_id in self.local:
            return self.local.timeout_of(session_id)
        upgrading = self.upgrading.get(session_id)
        return upgrading if upgrading is not None else super().timeout_of(session_id)

    def expiry_of(self, session_id: int) -> int | None:
        if self.local is not None and session_id in self.local:
            return self.local.expiry_of(session_id)
        return super().expiry_of(session_id)

    def is_alive(self, session_id: int) -> bool:
        local = self.local
        if local is not None and session_id in local:
            return local.is_alive(session_id)
        return super().is_alive(session_id) or session_id in self.upgrading

    def is_closing(self, session_id: int) -> bool:
        if self.local is not None and session_id in self.local:
            return self.local.is_closing(session_id)
        return super().is_closing(session_id)

    def expire(self, now_ms: int) -> list[int]:
        """Due global sessions, then due local ones."""
        return super().expire(now_ms) + self.expire_local(now_ms)

    def expire_local(self, now_ms: int) -> list[int]:
        """Due local sessions, marked closing (a learner expires only these)."""
        return [] if self.local is None else self.local.expire(now_ms)

    def next_expiry_ms(self) -> int | None:
        times = [super().next_expiry_ms(), None if self.local is None else self.local.next_expiry_ms()]
        due = [t for t in times if t is not None]
        return min(due) if due else None

    def expiry_buckets(self) -> dict[int, list[int]]:
        merged = super().expiry_buckets()
        if self.local is not None:
            for at, ids in self.local.expiry_buckets().items():
                merged.setdefault(at, []).extend(ids)
        return {at: merged[at] for at in sorted(merged)}


class LeaderSessions(UpgradeableSessions):
    """The leader's table (3.8's LeaderSessionTracker): it owns the global sessions and expires them."""

    def _upgraded(self, session_id: int, timeout_ms: int, now_ms: int) -> None:
        # Global at once, so the writes queued behind the createSession pass
        # prep's session check before it commits (3.8's trackSession).
        super().add(session_id, timeout_ms, now_ms)

    def is_alive(self, session_id: int) -> bool:
        """As 3.8's checkSession: a session the leader does not know may be another peer's local one.

        With local sessions on, writes a learner forwards for its local
        sessions are let through; an unknown id this leader made itself is
        gone (expired). An ephemeral create needs a global session
        (``is_global``), which the leader server checks before prep.
        """
        if super().is_alive(session_id):
            return True
        return (self.local is not None and session_id not in self.local and not self.is_global(session_id)
                and server_id_of(session_id) != self.server_id)
