# -*- test-case-name: tests.unit.test_sessions -*-
"""Session ids, passwords and expiry tracking (protocol doc section 2.12).

Session ids are signed 64-bit ints, as on the wire. Time is always passed in
as ``now_ms`` (a monotonic millisecond clock chosen by the caller).
"""
from __future__ import annotations

import heapq
from collections.abc import Iterator

from zabd.java.limits import MASK64
from zabd.jute.errors import Code, KeeperError

__all__ = [
    "PASSWORD_LENGTH",
    "session_password",
    "initial_session_id",
    "to_signed64",
    "SessionTracker",
]

PASSWORD_LENGTH = 16

_MASK48 = (1 << 48) - 1
_SIGN64 = 1 << 63
_LCG_MULTIPLIER = 0x5DEECE66D  # java.util.Random
_PASSWORD_SECRET = 0xB3415C00  # ZooKeeperServer's superSecret
_CONTAINER_OWNER = -(1 << 63)  # EphemeralType.CONTAINER_EPHEMERAL_OWNER


def to_signed64(value: int) -> int:
    """Wrap an int to Java's signed 64-bit range."""
    value &= MASK64
    return value - (1 << 64) if value & _SIGN64 else value


def session_password(session_id: int) -> bytes:
    """The 16-byte password ZooKeeper derives from a session id.

    ``new java.util.Random(sessionId ^ 0xB3415C00).nextBytes(byte[16])``.
    """
    seed = ((session_id & MASK64) ^ _PASSWORD_SECRET ^ _LCG_MULTIPLIER) & _MASK48
    out = bytearray()
    while len(out) < PASSWORD_LENGTH:
        seed = (seed * _LCG_MULTIPLIER + 0xB) & _MASK48
        word = seed >> 16  # nextInt(): the top 32 of the 48 bits
        for _ in range(min(4, PASSWORD_LENGTH - len(out))):
            out.append(word & 0xFF)
            word >>= 8
    return bytes(out)


def initial_session_id(server_id: int, now_ms: int) -> int:
    """The first session id a server hands out (SessionTrackerImpl.initializeNextSessionId).

    40 bits of the clock above 16 zero bits, the server id in the top byte
    (Java's shift drops anything above 8 bits), never Long.MIN_VALUE.
    """
    seed = to_signed64(((now_ms & 0xFFFFFFFFFF) << 16) | ((server_id << 56) & MASK64))
    if seed == _CONTAINER_OWNER:
        seed += 1
    return seed


class _Session:
    __slots__ = ("session_id", "timeout_ms", "expiry_ms", "closing", "owner")

    def __init__(self, session_id: int, timeout_ms: int) -> None:
        self.session_id = session_id
        self.timeout_ms = timeout_ms
        self.expiry_ms: int | None = None  # the bucket it sits in, None if in none
        self.closing = False
        self.owner: object | None = None


class SessionTracker:
    """Live sessions and their expiry buckets (SessionTrackerImpl + ExpiryQueue).

    Expiry times are rounded up to the next multiple of ``tick_ms``, so that
    sessions expire in batches, one bucket per tick. Touching a session moves
    it between buckets in O(1). Differences from ZooKeeper, deliberate:
    a session leaves its bucket as soon as it is closing (so it expires at
    most once), and :meth:`add` never puts a closing session back in one.
    """

    def __init__(self, tick_ms: int, server_id: int, now_ms: int) -> None:
        if tick_ms <= 0:
            raise ValueError(f"tick_ms must be positive, not {tick_ms}")
        self.tick_ms = tick_ms
        self.server_id = server_id
        self._next_id = initial_session_id(server_id, now_ms)
        self._sessions: dict[int, _Session] = {}
        # expiry time -> session ids (a dict as an insertion-ordered set)
        self._buckets: dict[int, dict[int, None]] = {}
        # bucket times, possibly stale or repeated; checked against _buckets
        self._heap: list[int] = []

    # -- ids ---------------------------------------------------------------

    @property
    def next_session_id(self) -> int:
        """The id :meth:`create` will hand out next."""
        return self._next_id

    def allocate_id(self) -> int:
        """Hand out the next session id without tracking it."""
        session_id = self._next_id
        self._next_id = to_signed64(session_id + 1)
        return session_id

    def create(self, timeout_ms: int, now_ms: int) -> int:
        """Allocate the next session id and track it."""
        session_id = self.allocate_id()
        self.add(session_id, timeout_ms, now_ms)
        return session_id

    # -- tracking ----------------------------------------------------------

    def add(self, session_id: int, timeout_ms: int, now_ms: int) -> None:
        """Track a session (a replayed createSession txn, a loaded snapshot, a resume).

        An already tracked session takes the new timeout and a fresh expiry,
        unless it is closing.
        """
        session = self._sessions.get(session_id)
        if session is None:
            session = self._sessions[session_id] = _Session(session_id, timeout_ms)
        else:
            session.timeout_ms = timeout_ms
        if not session.closing:
            self._schedule(session, now_ms)

    def touch(self, session_id: int, now_ms: int, timeout_ms: int | None = None) -> bool:
        """Push a session's expiry to ``now_ms + timeout``; False if unknown or closing.

        ``timeout_ms`` overrides the stored timeout for this one refresh, as the
        connection's negotiated timeout does in ZooKeeper's touchSession.
        """
        session = self._sessions.get(session_id)
        if session is None or session.closing:
            return False
        self._schedule(session, now_ms, timeout_ms)
        return True

    def set_closing(self, session_id: int) -> None:
        """Mark a session closing: it can no longer be touched or expire again."""
        session = self._sessions.get(session_id)
        if session is not None:
            session.closing = True
            self._unschedule(session)

    def remove(self, session_id: int) -> None:
        """Forget a session (its closeSession txn was applied)."""
        session = self._sessions.pop(session_id, None)
        if session is not None:
            self._unschedule(session)

    def clear(self) -> None:
        self._sessions.clear()
        self._buckets.clear()
        self._heap.clear()

    # -- ownership (SESSIONMOVED detection) --------------------------------

    def check_session(self, session_id: int, owner: object) -> None:
        """ZooKeeper's checkSession: the first caller becomes the owner.

        :raises KeeperError: UNKNOWNSESSION if untracked, SESSIONEXPIRED if
            closing, SESSIONMOVED if another owner holds it.
        """
        session = self._sessions.get(session_id)
        if session is None:
            raise KeeperError(Code.UNKNOWNSESSION)
        if session.closing:
            raise KeeperError(Code.SESSIONEXPIRED)
        if session.owner is None:
            session.owner = owner
        elif session.owner is not owner:
            raise KeeperError(Code.SESSIONMOVED)

    def set_owner(self, session_id: int, owner: object) -> None:
        """:raises KeeperError: SESSIONEXPIRED if unknown or closing."""
        session = self._sessions.get(session_id)
        if session is None or session.closing:
            raise KeeperError(Code.SESSIONEXPIRED)
        session.owner = owner

    # -- queries -----------------------------------------------------------

    def timeout_of(self, session_id: int) -> int | None:
        session = self._sessions.get(session_id)
        return None if session is None else session.timeout_ms

    def expiry_of(self, session_id: int) -> int | None:
        """The bucket time a session will expire at (None if untracked or closing)."""
        session = self._sessions.get(session_id)
        return None if session is None else session.expiry_ms

    def is_alive(self, session_id: int) -> bool:
        session = self._sessions.get(session_id)
        return session is not None and not session.closing

    def is_closing(self, session_id: int) -> bool:
        session = self._sessions.get(session_id)
        return session is not None and session.closing

    def __contains__(self, session_id: object) -> bool:
        return session_id in self._sessions

    def __len__(self) -> int:
        return len(self._sessions)

    def __iter__(self) -> Iterator[int]:
        return iter(list(self._sessions))

    def sessions(self) -> dict[int, int]:
        """Every tracked session (closing ones included) -> its timeout."""
        return {sid: s.timeout_ms for sid, s in self._sessions.items()}

    # -- expiry ------------------------------------------------------------

    def expire(self, now_ms: int) -> list[int]:
        """Sessions whose expiry time is at or before ``now_ms``, earliest first.

        They are marked closing; the caller submits their closeSession txns.
        """
        due: list[int] = []
        heap = self._heap
        while heap and heap[0] <= now_ms:
            bucket = self._buckets.pop(heapq.heappop(heap), None)
            if bucket is None:
                continue
            for session_id in bucket:
                session = self._sessions[session_id]
                session.closing = True
                session.expiry_ms = None
                due.append(session_id)
        return due

    def next_expiry_ms(self) -> int | None:
        """The earliest bucket time, for the one timer the adapter keeps."""
        heap = self._heap
        while heap and heap[0] not in self._buckets:
            heapq.heappop(heap)
        return heap[0] if heap else None

    def expiry_buckets(self) -> dict[int, list[int]]:
        """Bucket time -> session ids, by time (for the ``dump`` command)."""
        return {t: list(self._buckets[t]) for t in sorted(self._buckets)}

    def _schedule(self, session: _Session, now_ms: int, timeout_ms: int | None = None) -> None:
        timeout = session.timeout_ms if timeout_ms is None else timeout_ms
        tick = self.tick_ms
        expiry = ((now_ms + timeout) // tick + 1) * tick
        if expiry == session.expiry_ms:
            return
        self._unschedule(session)
        bucket = self._buckets.get(expiry)
        if bucket is None:
            bucket = self._buckets[expiry] = {}
            if len(self._heap) > 2 * len(self._buckets) + 64:
                # Emptied and re-created buckets leave stale entries; rebuild.
                self._heap = sorted(self._buckets)
            else:
                heapq.heappush(self._heap, expiry)
        bucket[session.session_id] = None
        session.expiry_ms = expiry

    def _unschedule(self, session: _Session) -> None:
        if session.expiry_ms is None:
            return
        bucket = self._buckets.get(session.expiry_ms)
        if bucket is not None:
            bucket.pop(session.session_id, None)
            if not bucket:
                del self._buckets[session.expiry_ms]
        session.expiry_ms = None
