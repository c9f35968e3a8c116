# -*- test-case-name: tests.unit.test_diskreplica -*-
"""The part of a Replica (zabd.quorum.roles) that is the same on every kind of disk.

The tree and its sessions, the committed log, the epochs, and the txns
logged but not yet applied: how each commit reaches the tree (directly, or
through an attached server's final stage) and how a role that ends applies
what it logged (ZooKeeper's fastForwardDataBase). Subclasses say where the
log and the epoch files live.
"""
from __future__ import annotations

import struct
from collections.abc import Callable

from zabd.core.datatree import DataTree
from zabd.jute.opcodes import OpCode
from zabd.jute.txns import CreateSessionTxn, Txn
from zabd.quorum.committedlog import CommittedLog
from zabd.quorum.snapstream import SnapshotStream
from zabd.storage.epochs import ACCEPTED_EPOCH, CURRENT_EPOCH


class ReplicaState:
    """The disk-independent half of a Replica: tree, sessions, committed log, epochs, unapplied txns."""

    def __init__(self, commit_log_count: int) -> None:
        self.committed = CommittedLog(commit_log_count)
        self.tree = DataTree()
        self._sessions: dict[int, int] = {}
        #: Logged and not yet applied: what a role that ends leaves behind.
        self._unapplied: dict[int, bytes] = {}
        self._last_logged = 0
        self._accepted = self._current = 0
        self._updating_epoch = False
        #: The zxid of a SNAP's snapshot taken and not yet durable (-1: none).
        self._installed_zxid = -1
        #: Set while a server answers clients: committed txns go to it, and it
        #: applies them to ``tree``. None: this replica applies them.
        self.on_commit: Callable[[int, bytes], None] | None = None

    def _take_snapshot(self, snapshot: SnapshotStream, zxid: int) -> None:
        """The in-memory side of installing a SNAP's snapshot at ``zxid``: it replaces everything held."""
        self.tree, self._sessions = snapshot.tree, dict(snapshot.sessions)
        self.tree.last_processed_zxid = zxid
        self.committed.clear()
        self._unapplied.clear()
        self._last_logged = zxid
        self._installed_zxid = zxid

    # -- state -------------------------------------------------------------------

    @property
    def last_logged_zxid(self) -> int:
        return max(self._last_logged, self.tree.last_processed_zxid)

    @property
    def last_processed_zxid(self) -> int:
        return self.tree.last_processed_zxid

    @property
    def accepted_epoch(self) -> int:
        return self._accepted

    @property
    def current_epoch(self) -> int:
        return self._current

    def set_accepted_epoch(self, epoch: int) -> None:
        self._store_epoch(ACCEPTED_EPOCH, epoch)
        self._accepted = epoch

    def set_current_epoch(self, epoch: int) -> None:
        self._store_epoch(CURRENT_EPOCH, epoch)
        self._current = epoch
        if self._updating_epoch:
            self._store_updating_epoch(False)
            self._updating_epoch = False

    def mark_epoch_update(self) -> None:
        """A learner at NEWLEADER: until currentEpoch is written, a restart takes the last zxid's epoch."""
        self._store_updating_epoch(True)
        self._updating_epoch = True

    def _store_epoch(self, name: str, epoch: int) -> None:
        """Make an epoch durable before it is used (nothing to do in memory)."""

    def _store_updating_epoch(self, present: bool) -> None:
        """Create or remove the ``updatingEpoch`` marker durably (nothing to do in memory)."""

    def sessions(self) -> dict[int, int]:
        return dict(self._sessions)

    # -- logging and applying ------------------------------------------------------

    def _logged(self, zxid: int, txn: bytes) -> None:
        """Remember a txn just handed to the log, until it commits."""
        self._unapplied[zxid] = txn
        self._last_logged = max(self._last_logged, zxid)

    def apply(self, zxid: int, txn: bytes) -> None:
        self._unapplied.pop(zxid, None)
        self.committed.add(zxid, txn)
        on_commit = self.on_commit
        if on_commit is not None:
            # The server decodes it if it needs to (a leader already holds it).
            if _type_of(txn) in _SESSION_TXNS:
                self._track_sessions(Txn.from_bytes(txn))
            on_commit(zxid, txn)
        else:
            self._replay(txn)

    def catch_up(self) -> None:
        """Apply what was logged and never committed here (ZooKeeper's fastForwardDataBase)."""
        for zxid in sorted(self._unapplied):
            if zxid > self.tree.last_processed_zxid:
                self.apply(zxid, self._unapplied[zxid])
        self._unapplied.clear()

    def _replay(self, txn_bytes: bytes) -> None:
        """Apply a txn read back from the log while loading (no committed-log entry)."""
        txn = Txn.from_bytes(txn_bytes)
        self.tree.apply(txn)
        self._track_sessions(txn)

    def _track_sessions(self, txn: Txn) -> None:
        header = txn.header
        if header.type == OpCode.createSession and isinstance(txn.body, CreateSessionTxn):
            self._sessions[header.clientId] = txn.body.timeOut
        elif header.type == OpCode.closeSession:
            self._sessions.pop(header.clientId, None)


_TXN_TYPE = struct.Struct(">i")
_TXN_TYPE_OFFSET = 28  # TxnHeader: long clientId, int cxid, long zxid, long time, int type
_SESSION_TXNS = frozenset({OpCode.createSession, OpCode.closeSession})


def _type_of(txn: bytes) -> int:
    return _TXN_TYPE.unpack_from(txn, _TXN_TYPE_OFFSET)[0]
