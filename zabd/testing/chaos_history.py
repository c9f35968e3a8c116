# -*- test-case-name: tests.unit.test_chaos -*-
"""The histories behind every tree of a simulated ensemble, for the chaos invariants.

Each txn applied to a tree extends that tree's history by one node; nodes are
interned by (parent, zxid, txn checksum), so two trees built from the same
txns in the same order share one node, and comparing histories is comparing
ints. A :class:`TracedReplica` (a SimReplica) keeps its tree's node in
``head`` through every way a tree changes: apply (commits and catch-up), the
replay of the log at load, TRUNC (a reload) and SNAP (an install).

The committed chain is one history that only grows: the history of every
leader that serves (its whole history once it is established, then each of
its commits). Everything the invariants of zabd.testing.chaos_invariants say
about histories is said against it.
"""
from __future__ import annotations

import posixpath
import struct
import zlib
from collections.abc import Callable

from zabd.core.datatree import DataTree
from zabd.quorum.snapstream import SnapshotStream, snapshot_stream_chunks
from zabd.storage.layout import VERSION_DIR, snapshot_name
from zabd.storage.truncate import TruncateError
from zabd.testing.memdisk import MemoryDisk
from zabd.testing.memlog import SimDiskHistory, parse_log
from zabd.testing.simreplica import SimReplica
from zabd.testing.simulation import Scope

ROOT = 0
#: A history this module cannot place (a snapshot of a state no tree reached).
UNKNOWN_PARENT = -1

_HEADER = struct.Struct(">qiqqi")  # TxnHeader: clientId, cxid, zxid, time, type

Report = Callable[[str, str], None]


def txn_header(txn: bytes) -> tuple[int, int, int, int]:
    """(clientId, cxid, zxid, type) of a serialized txn."""
    client, cxid, zxid, _time, kind = _HEADER.unpack_from(txn, 0)
    return client, cxid, zxid, kind


class Histories:
    """Interned history nodes, the committed chain, and where snapshots came from."""

    def __init__(self, report: Report) -> None:
        self.report = report
        self.zxid = [0]
        self.parent = [UNKNOWN_PARENT]
        self.depth = [0]
        #: (clientId, cxid, type) of each node's txn.
        self.origin: list[tuple[int, int, int]] = [(0, 0, 0)]
        self._intern: dict[tuple[int, int, int], int] = {}
        #: The tree digest of each node's state (as the first tree to reach it had it).
        self.digest = {ROOT: DataTree().digest.value}
        #: (zxid, digest) -> node: where an installed or loaded snapshot stands.
        self.by_state: dict[tuple[int, int], int] = {(0, self.digest[ROOT]): ROOT}
        #: zxid -> checksum of the one txn that may carry it.
        self.txn_sum: dict[int, int] = {}
        #: zxid -> the txn's bytes (the workload checks reads against them).
        self.txns: dict[int, bytes] = {}
        #: Snapshot files saved, by (sid, zxid), and SNAPs sent, by (learner sid, zxid).
        self.saved: dict[tuple[int, int], int] = {}
        self.sent: dict[tuple[int, int], int] = {}
        self.committed: set[int] = {ROOT}
        self.committed_head = ROOT
        self.committed_at: dict[int, int] = {}  # zxid -> committed node
        #: Told (sid, old head, new head, why) when a replica's history is rewritten.
        self.on_rewrite: Callable[[int, int, int, str], None] = lambda sid, old, new, why: None

    # -- nodes -----------------------------------------------------------------

    def extend(self, head: int, txn: bytes, tree: DataTree, sid: int) -> int:
        client, cxid, zxid, kind = txn_header(txn)
        checksum = zlib.crc32(txn)
        known = self.txn_sum.setdefault(zxid, checksum)
        if known != checksum:
            self.report("agreement", f"peer {sid} applied a txn 0x{zxid:x} unlike another txn with that zxid")
        else:
            self.txns.setdefault(zxid, txn)
        if zxid <= self.zxid[head] and head != ROOT:
            self.report("totalOrder", f"peer {sid} applied 0x{zxid:x} after 0x{self.zxid[head]:x}")
        if tree.last_processed_zxid != zxid:
            self.report("apply", f"peer {sid}: the tree is at 0x{tree.last_processed_zxid:x} after applying 0x{zxid:x}")
        key = (head, zxid, checksum)
        node = self._intern.get(key)
        if node is None:
            node = self._intern[key] = len(self.zxid)
            self.zxid.append(zxid)
            self.parent.append(head)
            self.depth.append(self.depth[head] + 1)
            self.origin.append((client, cxid, kind))
        self._state(node, zxid, tree.digest.value, sid)
        return node

    def _state(self, node: int, zxid: int, digest: int, sid: int) -> None:
        known = self.digest.setdefault(node, digest)
        if known != digest:
            self.report("determinism", f"peer {sid} reached history node {node} (0x{zxid:x}) with another tree")
        self.by_state.setdefault((zxid, digest), node)

    def place(self, zxid: int, digest: int, hint: int | None, sid: int, what: str) -> int:
        """The node of a tree that came whole (a snapshot): ``hint``, or the node of that state."""
        node = hint if hint is not None and self.digest.get(hint) == digest else self.by_state.get((zxid, digest))
        if node is None or self.zxid[node] != zxid:
            self.report("snapshot", f"peer {sid} {what} a tree at 0x{zxid:x} that no history reached")
            node = len(self.zxid)
            self.zxid.append(zxid)
            self.parent.append(UNKNOWN_PARENT)
            self.depth.append(0)
            self.origin.append((0, 0, 0))
            self.digest[node] = digest
        return node

    def ancestor(self, a: int, b: int) -> bool:
        """Whether history ``a`` is a prefix of history ``b`` (or equal)."""
        depth, parent = self.depth, self.parent
        if depth[a] > depth[b]:
            return False
        while depth[b] > depth[a]:
            b = parent[b]
        return a == b

    def fork(self, a: int, b: int) -> int:
        """The longest common prefix of two histories (UNKNOWN_PARENT if they share none)."""
        depth, parent = self.depth, self.parent
        while a != b and a >= 0 and b >= 0:
            if depth[a] >= depth[b]:
                a = parent[a]
            else:
                b = parent[b]
        return a if a == b else UNKNOWN_PARENT

    def suffix(self, head: int, stop: int) -> list[int]:
        """The nodes of ``head``'s history after ``stop``, newest first."""
        nodes = []
        while head != stop and head >= 0:
            nodes.append(head)
            head = self.parent[head]
        return nodes

    # -- the committed chain ---------------------------------------------------

    def commit(self, head: int) -> bool:
        """Everything in ``head``'s history is committed; False if it does not extend the committed chain."""
        if head in self.committed:
            return True
        if not self.ancestor(self.committed_head, head):
            return False
        for node in self.suffix(head, self.committed_head):
            self.committed.add(node)
            self.committed_at[self.zxid[node]] = node
        self.committed_head = head
        return True

    def chain(self, head: int) -> list[int]:
        """Every node of ``head``'s history, oldest first."""
        nodes = self.suffix(head, ROOT)
        nodes.reverse()
        return nodes


class TracedReplica(SimReplica):
    """A SimReplica that knows its tree's history node (``head``).

    Where SimReplica's files differ from zabd's DiskReplica in ways a fault
    can show, this follows DiskReplica: the committed log is refilled with
    the txns replayed after the snapshot only (not with older records of
    another history), a SNAP drops what the log holds past its zxid, a
    snapshot is written to a temp file and renamed into place, and a reload
    (TRUNC) reads the files as written, not only their durable part. With
    ``disk_history`` a leader may also sync a learner from its log files
    (3.8's txnlog sync), which SimReplica never offers.
    """

    def __init__(self, sid: int, scope: Scope, disk: MemoryDisk, commit_log_count: int,
                 histories: Histories, *, disk_history: bool = False) -> None:
        self.sid = sid
        self.disk_history = disk_history
        self.histories = histories
        self.head = ROOT
        self._loading = False
        self._base_pending = False
        self._replayed: list[tuple[int, bytes]] = []
        super().__init__(scope, disk, commit_log_count=commit_log_count)
        # A running process reads its files through the page cache: what it wrote, durable or not.
        # (SimReplica reloads from the durable bytes: the same, but after a failed fsync.)
        setattr(self.txn_log, "records", self._written_records)

    def _written_records(self) -> list[tuple[int, bytes]]:
        found: list[tuple[int, bytes]] = []
        for path in self.txn_log.log_files():
            records, _end = parse_log(self.disk.read(path), path)
            found.extend((record.zxid, record.txn) for record in records)
        return found

    def _load(self) -> None:
        self._loading = self._base_pending = True
        self._replayed = []
        try:
            super()._load()
        finally:
            self._loading = False
        if self._base_pending:
            self._set_base()
        self.committed.refill(self._replayed[-(self.committed.capacity + 1):])
        self._replayed = []

    def _set_base(self) -> None:
        """The tree as loaded from the newest snapshot (or empty), before the log's replay."""
        self._base_pending = False
        tree = self.tree
        zxid = tree.last_processed_zxid
        self.head = self.histories.place(zxid, tree.digest.value, self.histories.saved.get((self.sid, zxid)),
                                         self.sid, "loaded")

    def _replay(self, txn_bytes: bytes) -> None:
        if self._loading and self._base_pending:
            self._set_base()
        super()._replay(txn_bytes)
        if self._loading:
            self._replayed.append((self.tree.last_processed_zxid, txn_bytes))
            self.head = self.histories.extend(self.head, txn_bytes, self.tree, self.sid)

    def apply(self, zxid: int, txn: bytes) -> None:
        super().apply(zxid, txn)
        self.head = self.histories.extend(self.head, txn, self.tree, self.sid)

    def truncate(self, zxid: int) -> None:
        old = self.head
        try:
            super().truncate(zxid)
        except TruncateError:
            # Below a SNAP's snapshot: the files reload what they hold, and the sync ends.
            self.histories.on_rewrite(self.sid, old, self.head,
                                      f"TRUNC to 0x{zxid:x} (unreachable: reloaded 0x{self.tree.last_processed_zxid:x})")
            raise
        self.histories.on_rewrite(self.sid, old, self.head, f"TRUNC to 0x{zxid:x}")

    def install(self, snapshot: SnapshotStream, zxid: int) -> None:
        old = self.head
        self.txn_log.truncate_after(zxid)  # DiskReplica's drop_after: the log restarts at zxid + 1
        super().install(snapshot, zxid)
        histories = self.histories
        self.head = histories.place(zxid, self.tree.digest.value, histories.sent.get((self.sid, zxid)),
                                    self.sid, "installed")
        histories.on_rewrite(self.sid, old, self.head, f"SNAP at 0x{zxid:x}")

    def on_disk_history(self) -> SimDiskHistory | None:  # type: ignore[override]
        """With ``disk_history``, learners behind the committed log may get a DIFF read from the log files."""
        return SimDiskHistory(self.disk) if self.disk_history else None

    def save_snapshot(self) -> None:
        """As zabd.storage.snapfile writes one: a hidden temp file, fsynced, renamed, the directory fsynced."""
        zxid = self.tree.last_processed_zxid
        name = snapshot_name(zxid)
        temp = posixpath.join(VERSION_DIR, f".{name}.tmp")
        disk = self.disk
        disk.write(temp, b"".join(snapshot_stream_chunks(self.tree, self._sessions)))
        disk.fsync(temp)
        disk.rename(temp, posixpath.join(VERSION_DIR, name))
        disk.fsync_dir(VERSION_DIR)
        self.histories.saved[(self.sid, zxid)] = self.head
        self._snapshot_saved()
