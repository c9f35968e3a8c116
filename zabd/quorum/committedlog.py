# -*- test-case-name: tests.unit.test_syncplan -*-
"""The leader's in-memory queue of recently committed proposals (protocol doc 4.5).

ZooKeeper keeps the last ``zookeeper.commitLogCount`` committed txns in
memory (``ZKDatabase.committedLog``) so that a learner that is only a little
behind gets a DIFF instead of a snapshot. Every server keeps one: the final
stage adds each txn it applies, and loading the database at startup refills
it from the txns replayed from the log. Entries are ``(zxid, txn_bytes)``,
where the bytes are the serialized txn entry of protocol doc 3.1
(``Txn.to_bytes()``), exactly the ``data`` of the PROPOSAL packet that
resends it.

3.8 checks the size before adding (``size() > commitLogCount``), so the
queue holds ``capacity + 1`` entries once full; zabd keeps that, so the
same learners get a DIFF from zabd as from ZooKeeper. 3.8 raises a
configured count below 500 to 500; that clamp is the config layer's job.
3.8 does not count the bytes held, so neither does this.
"""
from __future__ import annotations

import bisect
from collections import deque
from collections.abc import Iterable, Iterator
from itertools import islice

#: ZKDatabase.DEFAULT_COMMIT_LOG_COUNT, also the smallest count 3.8 accepts.
DEFAULT_COMMIT_LOG_COUNT = 500


class CommittedLog:
    """The last committed proposals, oldest first, with strictly increasing zxids."""

    def __init__(self, capacity: int = DEFAULT_COMMIT_LOG_COUNT) -> None:
        if capacity < 0:
            raise ValueError(f"capacity must not be negative, got {capacity}")
        self._capacity = capacity
        self._entries: deque[tuple[int, bytes]] = deque()

    @property
    def capacity(self) -> int:
        """``zookeeper.commitLogCount``; the queue keeps one entry more (see the module doc)."""
        return self._capacity

    def add(self, zxid: int, txn_bytes: bytes) -> None:
        """Remember a txn that has just been committed and applied.

        A zxid not above the newest one is a bug in the caller (3.8 would
        silently keep it and send it twice), so it is refused.
        """
        if self._entries and zxid <= self._entries[-1][0]:
            raise ValueError(f"zxid {zxid:#x} is not above the newest committed {self._entries[-1][0]:#x}")
        # Evict before appending, as addCommittedProposal does: capacity + 1 stay.
        if len(self._entries) > self._capacity:
            self._entries.popleft()
        self._entries.append((zxid, txn_bytes))

    def refill(self, records: Iterable[tuple[int, bytes]]) -> None:
        """Replace the contents with the txns replayed from the log at load time, oldest first."""
        self.clear()
        for zxid, txn_bytes in records:
            self.add(zxid, txn_bytes)

    def clear(self) -> None:
        """Forget everything (ZKDatabase.clear: before a snapshot load or a truncation)."""
        self._entries.clear()

    def min_zxid(self, last_processed_zxid: int) -> int:
        """``minCommittedLog`` as syncFollower sees it: the oldest zxid, or the tree's zxid when empty."""
        return self._entries[0][0] if self._entries else last_processed_zxid

    def max_zxid(self, last_processed_zxid: int) -> int:
        """``maxCommittedLog`` as syncFollower sees it: the newest zxid, or the tree's zxid when empty."""
        return self._entries[-1][0] if self._entries else last_processed_zxid

    def since(self, zxid: int) -> Iterator[tuple[int, bytes]]:
        """The entries above ``zxid``, oldest first: what a peer at ``zxid`` lacks."""
        start = bisect.bisect_right(self._entries, zxid, key=_zxid_of)
        return islice(self._entries, start, None)

    def __iter__(self) -> Iterator[tuple[int, bytes]]:
        return iter(self._entries)

    def __len__(self) -> int:
        return len(self._entries)

    def __bool__(self) -> bool:
        return bool(self._entries)


def _zxid_of(entry: tuple[int, bytes]) -> int:
    return entry[0]
