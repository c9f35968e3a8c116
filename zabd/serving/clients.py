# -*- test-case-name: tests.unit.test_standalone -*-
"""A server's client connections: who is connected, which connection has which session,
which wait at globalOutstandingLimit, and replies released together."""
from __future__ import annotations

from typing import Callable

from zabd.core.watches import Watches
from zabd.pipeline.stats import ServerStats
from zabd.serving.connection import ServerConnection


class ClientTable:
    """The connections of one server, and the bookkeeping every role shares about them.

    :param stats: the server's counters (``on_drained`` wakes held connections).
    :param watches: the server's watches (a connection that goes leaves none behind).
    """

    def __init__(self, stats: ServerStats, watches: Watches) -> None:
        self._stats = stats
        self._watches = watches
        self.connections: set[ServerConnection] = set()
        self.by_session: dict[int, ServerConnection] = {}
        #: Connections holding replies until the current release ends.
        self.collecting: list[ServerConnection] | None = None
        #: Connections not read while the server is at globalOutstandingLimit.
        self.held: set[ServerConnection] = set()

    def connection_made(self, conn: ServerConnection) -> None:
        self.connections.add(conn)

    def disconnected(self, conn: ServerConnection) -> None:
        self.connections.discard(conn)
        self.held.discard(conn)
        self._watches.remove_watcher(conn)
        if self.by_session.get(conn.session_id) is conn:
            del self.by_session[conn.session_id]

    def session_closed(self, session_id: int) -> None:
        """A session ended: its connection goes.

        A client that asked to close gets its reply first; the final stage
        closes that connection itself.
        """
        conn = self.by_session.pop(session_id, None)
        if conn is not None and not conn.closing:
            conn.close()

    def replace(self, session_id: int, conn: ServerConnection) -> None:
        """``conn`` resumes ``session_id``: a connection that had it is closed (even if the password is wrong)."""
        previous = self.by_session.pop(session_id, None)
        if previous is not None and previous is not conn:
            previous.close()

    def close_all(self) -> None:
        for conn in list(self.connections):
            conn.close()

    # -- replies released together ------------------------------------------------------

    def release_batch(self, work: Callable[[], None]) -> None:
        """Run ``work``; the replies it releases leave each connection in one write."""
        if self.collecting is not None:
            work()
            return
        collecting = self.collecting = []
        try:
            work()
        finally:
            self.collecting = None
            for conn in collecting:
                conn.end_batch()

    def collect(self, conn: ServerConnection) -> bool:
        """If a release is under way, ``conn`` holds its replies until it ends."""
        collecting = self.collecting
        if collecting is None:
            return False
        collecting.append(conn)
        return True

    # -- globalOutstandingLimit ------------------------------------------------------

    def hold(self, conn: ServerConnection, limit: int) -> None:
        """``conn`` stopped reading at ``limit``: resume it once the server is below that."""
        self.held.add(conn)
        stats = self._stats
        stats.throttle_at = limit
        stats.on_drained = self._drained

    def _drained(self) -> None:
        held, self.held = self.held, set()
        for conn in held:
            conn.resume()
