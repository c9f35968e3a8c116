# -*- test-case-name: tests.unit.test_snapformat -*-
"""ZooKeeper 3.8 snapshot files (protocol doc 6.2, 6.3): writing, fuzzy and chunked.

``snapshot_chunks`` is driven one ``next()`` at a time by the thread that
applies txns, with txns applied between calls (a ZooKeeper "fuzzy"
snapshot): the file is named after ``tree.last_processed_zxid`` as it was
at the first ``next()``, and replaying the log from that zxid + 1 over the
loaded file gives the live tree. Verifying and decoding is in ``snapload``.

Layout::

    FileHeader(ZKSN, 2, -1)  int count {long session; int timeout}*
    ACL map: int n {long id; vector<ACL>}*
    {ustring path; buffer data; long aclId; StatPersisted}*  ustring "/"
    long adler32  ustring "/"
    long zxid; int 2; long digest  long adler32  ustring "/"
"""
from __future__ import annotations

import gzip
import mmap
import os
import zlib
from collections.abc import Iterator

from zabd.core.datatree import OPEN_ACL, DataTree
from zabd.core.nodes import DataNode
from zabd.jute.codec import DEFAULT_MAX_BUFFER, Writer
from zabd.jute.records import ACL, Id
from zabd.storage.layout import SNAPSHOT_PREFIX, zxid_in_name
from zabd.storage.snapload import (
    DIGEST_VERSION,
    HEADER,
    INT,
    LONG,
    NODE_TAIL,
    SEAL_PATH,
    SESSION,
    SNAP_DBID,
    SNAP_MAGIC,
    SNAP_VERSION,
    ZXID_DIGEST,
    CorruptSnapshotError,
    LoadedSnapshot,
    Progress,
    parse_snapshot,
)

__all__ = [
    "SNAP_MAGIC", "CorruptSnapshotError", "LoadedSnapshot", "load_snapshot", "looks_like_snapshot",
    "snapshot_chunks", "snapshot_zxid",
]

_GZIP_MAGIC = b"\x1f\x8b"
_SNAPPY_MAGIC = b"\x82SNAPPY\x00"
#: Nodes written per ``next()``: a few ms of work (about 3 us a node).
DEFAULT_NODES_PER_CHUNK = 1000
#: A chunk also ends once it holds this many bytes (large values).
CHUNK_BYTES = 1 << 20
#: The ACL pass (see _AclMap) looks at this many nodes per ``next()`` for each
#: node the walk writes: it reads one attribute per node.
ACL_PASS_FACTOR = 8
#: No one may do anything with it (perms 0): the ACL of a node whose own ACL
#: is missing from the map, until replay sets the real one (see _AclMap).
NO_ACCESS = [ACL(0, Id("world", "anyone"))]
_NULL = INT.pack(-1)
_ACL_ID_OPEN = -1
_SKIP = 0  # not an id in any map: leave the node and its subtree out

AclKey = tuple[object, ...]


def snapshot_zxid(name: str) -> int | None:
    """The zxid in ``snapshot.<hex>[.suffix]`` (Util.getZxidFromName), else None."""
    return zxid_in_name(name, SNAPSHOT_PREFIX)


def _stream_mode(name: str) -> str:
    parts = name.split(".")
    return parts[-1] if len(parts) > 1 and parts[-1] in ("gz", "snappy") else ""


def looks_like_snapshot(path: str) -> bool:
    """ZooKeeper's SnapStream.isValidSnapshot: a cheap test before a full load."""
    name = os.path.basename(path)
    if snapshot_zxid(name) is None:
        return False
    mode = _stream_mode(name)
    try:
        with open(path, "rb") as f:
            if mode == "gz":
                return f.read(2) == _GZIP_MAGIC
            if mode == "snappy":
                return f.read(len(_SNAPPY_MAGIC)) == _SNAPPY_MAGIC
            size = os.fstat(f.fileno()).st_size
            if size < 10:
                return False
            f.seek(size - 5)
            return f.read(5) == SEAL_PATH
    except OSError:
        return False


def load_snapshot(
    path: str, progress: Progress | None = None, *, max_length: int = DEFAULT_MAX_BUFFER * 2
) -> LoadedSnapshot:
    """Load and verify one snapshot; ``max_length`` bounds any path or data
    length (ZooKeeper: jute.maxbuffer + extrasize). The tree's
    last_processed_zxid is the file name's zxid when the name parses."""
    name = os.path.basename(path)
    mode = _stream_mode(name)
    if mode == "snappy":
        raise CorruptSnapshotError(path, 0, "snappy-compressed snapshots are not supported")
    if mode == "gz":
        with open(path, "rb") as f:
            compressed = f.read()
        try:
            raw = gzip.decompress(compressed)
        except (OSError, EOFError, zlib.error) as e:
            raise CorruptSnapshotError(path, 0, f"bad gzip stream: {e}") from None
        loaded = parse_snapshot(path, raw, len(raw), max_length, progress)
    else:
        with open(path, "rb") as f:
            size = os.fstat(f.fileno()).st_size
            if size == 0:
                raise CorruptSnapshotError(path, 0, "empty file")
            # Mapped, not read: the parser drops the pages it has checked.
            # (A disk read error then kills the process with SIGBUS.)
            with mmap.mmap(f.fileno(), 0, access=mmap.ACCESS_READ) as mapped:
                loaded = parse_snapshot(path, mapped, size, max_length, progress)
    zxid = snapshot_zxid(name)
    if zxid is not None:
        loaded.tree.last_processed_zxid = zxid
        if loaded.digest is not None and loaded.digest[0] < zxid:
            loaded.digest = None
    return loaded


def _acl_key(acl: list[ACL]) -> AclKey:
    """A hashable value of an ACL list (hashing the records themselves is slow)."""
    if len(acl) == 1:
        entry = acl[0]
        return (entry.perms, entry.id.scheme, entry.id.id)
    return tuple((entry.perms, entry.id.scheme, entry.id.id) for entry in acl)


_OPEN_KEY = _acl_key(OPEN_ACL)


class _AclMap:
    """The snapshot's ACL map, fixed before the first node is written.

    The map precedes the nodes, which are written across many ``next()``
    calls. So it holds every ACL list found in one pass over the nodes
    present at the first call (the pass itself spread over several calls;
    lists of nodes deleted meanwhile are unused entries, which readers
    ignore). A node whose list is missing got it from a txn after the
    snapshot's start zxid, which replay applies again:

    - created after it: its create is replayed, so it and its subtree (all
      created later still) are left out of the file;
    - older, with a setACL after it: it is written with the NO_ACCESS entry,
      the map's last, and the replayed setACL restores its ACL and aversion
      (fail closed, were the log ever lost).

    Only a snapshot spread over several calls needs that entry: within one
    call nothing changes.
    """

    def __init__(self, start_zxid: int) -> None:
        self.start_zxid = start_zxid
        self.ids: dict[AclKey, int] = {_OPEN_KEY: _ACL_ID_OPEN}
        self.entries: list[tuple[int, list[ACL]]] = []
        self.no_access_id = _SKIP
        self._last: tuple[list[ACL] | None, int] = (None, _SKIP)

    def collect(self, batch: list[DataNode]) -> None:
        ids, last = self.ids, None
        for node in batch:
            acl = node.acl
            if acl is last:  # nodes loaded from a snapshot share their list
                continue
            last = acl
            key = _acl_key(acl)
            if key not in ids:
                ids[key] = len(self.entries) + 1
                self.entries.append((ids[key], acl))

    def add_no_access(self) -> None:
        self.no_access_id = len(self.entries) + 1
        self.entries.append((self.no_access_id, NO_ACCESS))

    def encode(self) -> bytes:
        w = Writer()
        w.write_int(len(self.entries))
        for acl_id, acl in self.entries:
            w.write_long(acl_id)
            w.write_int(len(acl))
            for entry in acl:
                entry.write(w)
        return bytes(w.buf)

    def id_of(self, node: DataNode) -> int:
        """The node's ACL id, or _SKIP."""
        acl = node.acl
        last, last_id = self._last
        if acl is last:
            return last_id
        found = self.ids.get(_acl_key(acl))
        if found is None:
            return self.no_access_id if node.czxid <= self.start_zxid else _SKIP
        self._last = (acl, found)
        return found


def snapshot_chunks(
    tree: DataTree, sessions: dict[int, int], nodes_per_chunk: int = DEFAULT_NODES_PER_CHUNK
) -> Iterator[bytes]:
    """The snapshot file, a chunk per ``next()`` (a chunk may be empty).

    The session table, the start zxid and the list of nodes for the ACL map
    are taken at the first ``next()``; the digest section is read when the
    walk ends. A tree of at most ``nodes_per_chunk`` nodes and CHUNK_BYTES
    of data comes out whole from the first ``next()``.
    """
    if nodes_per_chunk < 1:
        raise ValueError("nodes_per_chunk must be positive")
    nodes = tree.nodes
    fuzzy = len(nodes) > nodes_per_chunk or tree.data_size > CHUNK_BYTES
    out = bytearray(HEADER.pack(SNAP_MAGIC, SNAP_VERSION, SNAP_DBID))
    session_items = list(sessions.items())
    out += INT.pack(len(session_items))
    for session_id, timeout in session_items:
        out += SESSION.pack(session_id, timeout)
    adler = zlib.adler32(b"")

    acls = _AclMap(tree.last_processed_zxid)
    present = list(nodes.values())
    step = nodes_per_chunk * ACL_PASS_FACTOR
    for begin in range(0, len(present), step):
        if fuzzy:  # the copy above was this call's work
            adler = zlib.adler32(out, adler)
            yield bytes(out)
            out = bytearray()
        acls.collect(present[begin : begin + step])
    del present
    if fuzzy:
        acls.add_no_access()
    out += acls.encode()

    # Pre-order walk: each node as it is when visited, its child names
    # copied then; a child deleted before its turn is simply not there.
    pending: list[tuple[str, Iterator[str]]] = [("", iter(("",)))]
    id_of = acls.id_of
    work = 0
    while pending:
        prefix, names = pending[-1]
        name = next(names, None)
        if name is None:
            pending.pop()
            continue
        work += 1
        path = f"{prefix}/{name}" if name else ""
        node = nodes.get(path or "/")
        if node is None:
            continue
        acl_id = id_of(node)
        if acl_id == _SKIP:
            continue
        raw = path.encode("utf-8", "surrogatepass")
        data = node.data
        out += b"".join((
            INT.pack(len(raw)), raw,
            _NULL if data is None else INT.pack(len(data)), data or b"",
            NODE_TAIL.pack(
                acl_id, node.czxid, node.mzxid, node.ctime, node.mtime,
                node.version, node.cversion, node.aversion, node.ephemeral_owner, node.pzxid,
            ),
        ))
        if node.children:
            pending.append((path, iter(list(node.children))))
        if fuzzy and (work >= nodes_per_chunk or len(out) >= CHUNK_BYTES):
            adler = zlib.adler32(out, adler)
            yield bytes(out)
            out = bytearray()
            work = 0

    out += INT.pack(1) + b"/"
    adler = zlib.adler32(out, adler)
    sealed = LONG.pack(adler) + SEAL_PATH
    # The digest as of the walk's end; ZooKeeper writes 0/2/0 before any txn.
    zxid = tree.last_processed_zxid
    digest = ZXID_DIGEST.pack(zxid, DIGEST_VERSION) + LONG.pack(tree.digest.signed() if zxid else 0)
    adler = zlib.adler32(sealed + digest, adler)
    out += sealed + digest + LONG.pack(adler) + SEAL_PATH
    yield bytes(out)
