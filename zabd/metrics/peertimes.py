# -*- test-case-name: tests.unit.test_metrics_ensemble -*-
"""A peer's election, unavailability and sync times (3.8's start_fle/end_fle, unavailableStartTime,
and the learner sync event)."""
from __future__ import annotations

from twisted.logger import Logger

from zabd.logs import LEARNER_SYNC
from zabd.metrics.server import ServerMetrics

log = Logger(namespace="zabd.quorum")


class PeerTimes:
    """Records looking_count, election_time, unavailable_time and leader_unavailable_time."""

    def __init__(self, metrics: ServerMetrics, now_ms: int) -> None:
        self.metrics = metrics
        self._looking_since_ms = now_ms
        #: Since when the peer has not served clients; None while it serves.
        self._unavailable_since_ms: int | None = now_ms

    def looking(self, now_ms: int) -> None:
        """A new election round begins."""
        self._looking_since_ms = now_ms
        if self._unavailable_since_ms is None:
            self._unavailable_since_ms = now_ms
        self.metrics.looking_count.add()

    def decided(self, now_ms: int) -> int:
        """The round ended with a leader; returns (and records) how long it took, in ms."""
        took_ms = now_ms - self._looking_since_ms
        self.metrics.election_time.add(took_ms)
        return took_ms

    def serving(self, now_ms: int, *, leading: bool) -> None:
        """The peer serves again (3.8: ZabState BROADCAST)."""
        since = self._unavailable_since_ms
        if since is None:
            return
        self._unavailable_since_ms = None
        self.metrics.unavailable_time.add(now_ms - since)
        if leading:
            self.metrics.leader_unavailable_time.add(now_ms - since)


class SyncTimer:
    """One learner sync, timed on one side (leader or learner); ``done`` logs the learner_sync event."""

    __slots__ = ("side", "started_ms", "from_zxid", "sync_type", "to_zxid")

    def __init__(self, side: str, started_ms: int, from_zxid: int) -> None:
        self.side = side
        self.started_ms = started_ms
        self.from_zxid = from_zxid
        #: DIFF, TRUNC or SNAP, and the zxid it brings the learner to, once known.
        self.sync_type: str | None = None
        self.to_zxid = -1

    def chosen(self, sync_type: str, to_zxid: int) -> None:
        self.sync_type = sync_type
        self.to_zxid = to_zxid

    def done(self, now_ms: int, sid: int | None) -> int:
        """The sync is complete (NEWLEADER acknowledged / UPTODATE); returns its duration in ms."""
        took_ms = now_ms - self.started_ms
        log.info("Learner {sid} synced by {sync_type} from 0x{from_zxid:x} to 0x{to_zxid:x} in {duration_ms} ms "
                 "({side} side)", event=LEARNER_SYNC, side=self.side, sid=sid, sync_type=self.sync_type,
                 from_zxid=self.from_zxid, to_zxid=self.to_zxid, duration_ms=took_ms)
        return took_ms
