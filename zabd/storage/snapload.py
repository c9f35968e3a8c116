# -*- test-case-name: tests.unit.test_snapformat -*-
"""Reading ZooKeeper 3.8 snapshot files (protocol doc 6.2, 6.3), verified.

Every structural rule and both Adler32 seals are checked; any failure is a
``CorruptSnapshotError`` naming the file and the byte offset. Nodes are
read by :mod:`zabd.storage.snapnode`, as SNAP streams' are; when the
bytes are a mapped file, the pages already checksummed are dropped from the
mapping as the load moves on, so resident memory is the tree, not the file.
The file-level entry points (names, compression) are in ``snapformat``.
"""
from __future__ import annotations

import gc
import mmap
import struct
import zlib
from dataclasses import dataclass
from typing import Callable, Union

from zabd.core.datatree import OPEN_ACL, DataTree
from zabd.core.treeload import MalformedTree, TreeLoader
from zabd.jute.codec import JuteError, Reader
from zabd.jute.records import ACL
from zabd.storage.snapnode import NODE_TAIL, NodeRecordError, Rule, read_nodes

__all__ = [
    "DIGEST_VERSION", "HEADER", "INT", "LONG", "NODE_TAIL", "PROGRESS_EVERY", "SEAL_PATH", "SESSION", "SNAP_DBID",
    "SNAP_MAGIC", "SNAP_VERSION", "ZXID_DIGEST", "Buffer", "CorruptSnapshotError", "LoadedSnapshot", "Progress",
    "parse_snapshot",
]

SNAP_MAGIC = 0x5A4B534E  # "ZKSN"
SNAP_VERSION = 2
SNAP_DBID = -1
DIGEST_VERSION = 2
#: A seal's trailing ustring "/": the last 5 bytes of every complete snapshot.
SEAL_PATH = b"\x00\x00\x00\x01/"
#: How often (in nodes) ``load_snapshot`` reports progress.
PROGRESS_EVERY = 100_000

HEADER = struct.Struct(">iiq")  # magic, version, dbid
INT = struct.Struct(">i")
LONG = struct.Struct(">q")
SESSION = struct.Struct(">qi")  # id, timeout
ZXID_DIGEST = struct.Struct(">qi")  # zxid, digestVersion (then the digest)

Buffer = Union[bytes, mmap.mmap]
Progress = Callable[[int, int, int], None]

# How a broken node record reads in a CorruptSnapshotError, by rule, then by where the file ran out.
_FAULTS = {
    Rule.PATH_LENGTH: "bad path length {}", Rule.DATA_LENGTH: "bad data length {}",
    Rule.UNKNOWN_ACL: "ACL id {} is not in the ACL map", Rule.PATH_ENCODING: "node path is not UTF-8",
    Rule.TREE: "{}",
}
_SHORTFALLS = {
    "path length": "truncated node path", "path": "bad path length {}", "data length": "truncated node data",
    "data": "bad data length {}", "stat": "truncated node stat",
}


class CorruptSnapshotError(Exception):
    """A snapshot file that does not verify; nothing from it may be served."""

    def __init__(self, path: str, offset: int, reason: str) -> None:
        super().__init__(f"corrupt snapshot {path} at offset {offset}: {reason}")
        self.path = path
        self.offset = offset
        self.reason = reason


@dataclass
class LoadedSnapshot:
    tree: DataTree
    sessions: dict[int, int]
    #: (zxid, signed digest) from the digest section, None when the section
    #: is absent or (as ZooKeeper's deserializeZxidDigest decides) unusable:
    #: zxid 0, another digest version, or a zxid below the file name's.
    digest: tuple[int, int] | None


def parse_snapshot(path: str, buf: Buffer, size: int, max_length: int, progress: Progress | None) -> LoadedSnapshot:
    """Verify and decode the ``size`` bytes of ``buf`` (``path`` names them in errors)."""
    return _Parser(path, buf, size, max_length, progress).parse()


class _Parser:
    """One pass over the bytes; ``pos`` is the next byte to read."""

    def __init__(self, path: str, buf: Buffer, size: int, max_length: int, progress: Progress | None) -> None:
        self.path = path
        self.buf = buf
        self.size = size
        self.max_length = max_length
        self.progress = progress
        self.pos = 0
        self.adler = zlib.adler32(b"")
        self.summed = 0  # bytes [0, summed) are in self.adler
        self.dropped = 0  # mapped pages below this offset have been released

    def corrupt(self, offset: int, reason: str) -> CorruptSnapshotError:
        return CorruptSnapshotError(self.path, offset, reason)

    def need(self, n: int, what: str) -> int:
        pos = self.pos
        if pos + n > self.size:
            raise self.corrupt(pos, f"truncated {what}: need {n} bytes, {self.size - pos} left")
        self.pos = pos + n
        return pos

    def parse(self) -> LoadedSnapshot:
        magic, version, _dbid = HEADER.unpack_from(self.buf, self.need(HEADER.size, "file header"))
        if magic != SNAP_MAGIC:
            raise self.corrupt(0, f"bad magic {magic:#010x}, expected {SNAP_MAGIC:#010x} (ZKSN)")
        if version != SNAP_VERSION:
            raise self.corrupt(4, f"unsupported snapshot version {version}")
        sessions = self.read_sessions()
        acls = self.read_acl_map()
        tree = self.read_nodes(acls)
        self.check_seal("checksum1")
        digest = None
        if self.pos < self.size:  # older snapshots end at the first seal
            digest = self.read_digest()
            self.check_seal("checksum2")
            if self.pos != self.size:
                raise self.corrupt(self.pos, f"{self.size - self.pos} bytes after the final seal")
        return LoadedSnapshot(tree, sessions, digest)

    def read_count(self, what: str, item_size: int) -> int:
        at = self.pos
        (count,) = INT.unpack_from(self.buf, self.need(4, f"{what} count"))
        if count < 0 or count * item_size > self.size - self.pos:
            raise self.corrupt(at, f"impossible {what} count {count}")
        return count

    def read_sessions(self) -> dict[int, int]:
        count = self.read_count("session", SESSION.size)
        start = self.need(count * SESSION.size, "sessions")
        sessions: dict[int, int] = {}
        for at in range(start, start + count * SESSION.size, SESSION.size):
            session_id, timeout = SESSION.unpack_from(self.buf, at)
            if session_id in sessions:
                raise self.corrupt(at, f"session {session_id:#x} appears twice")
            sessions[session_id] = timeout
        return sessions

    def read_acl_map(self) -> dict[int, list[ACL]]:
        count = self.read_count("ACL map", 12)
        reader = Reader(self.buf, self.pos, self.size, self.max_length)  # type: ignore[arg-type]
        acls: dict[int, list[ACL]] = {}
        for _ in range(count):
            at = reader.pos
            try:
                acl_id = reader.read_long()
                entry = reader.read_vector(ACL.read)
            except JuteError as e:
                raise self.corrupt(at, f"bad ACL map entry: {e}") from None
            if entry is None or any(a.id.scheme is None or a.id.id is None for a in entry):
                raise self.corrupt(at, f"ACL map entry {acl_id} holds a null")
            if acl_id in acls:
                raise self.corrupt(at, f"ACL id {acl_id} appears twice")
            acls[acl_id] = entry
        self.pos = reader.pos
        # -1 is OPEN_ACL_UNSAFE, whatever the map says (ReferenceCountedACLCache.convertLong).
        acls[-1] = OPEN_ACL
        return acls

    def read_nodes(self, acls: dict[int, list[ACL]]) -> DataTree:
        # Every object made here lives on and none is in a cycle, so the
        # cyclic collector would only rescan the growing tree (~20% of the time).
        collecting = gc.isenabled()
        gc.disable()
        try:
            return self._read_nodes(acls)
        finally:
            if collecting:
                gc.enable()

    def _read_nodes(self, acls: dict[int, list[ACL]]) -> DataTree:
        loader = TreeLoader()
        count = 0
        while True:
            try:
                walk = read_nodes(self.buf, self.pos, self.size, self.max_length, acls, loader.add, _decode_path,
                                  PROGRESS_EVERY)
            except NodeRecordError as e:
                raise self.corrupt(e.offset, _FAULTS[e.rule].format(e.value)) from None
            if walk.short is not None:
                short = walk.short
                raise self.corrupt(short.offset, _SHORTFALLS[short.field].format(short.length))
            count += walk.count
            self.pos = walk.pos
            if walk.done:
                break
            self.release_checked()
            if self.progress is not None:
                self.progress(count, self.pos, self.size)
        try:
            tree = loader.finish()
        except MalformedTree as e:
            raise self.corrupt(walk.start, str(e)) from None
        if self.progress is not None:
            self.progress(count, self.pos, self.size)
        return tree

    def release_checked(self) -> None:
        """Fold [summed, pos) into the checksum and let the kernel drop those pages."""
        with memoryview(self.buf) as view:
            self.adler = zlib.adler32(view[self.summed : self.pos], self.adler)
        self.summed = self.pos
        if isinstance(self.buf, mmap.mmap):
            end = self.pos - self.pos % mmap.PAGESIZE
            if end > self.dropped:
                self.buf.madvise(mmap.MADV_DONTNEED, self.dropped, end - self.dropped)
                self.dropped = end

    def check_seal(self, what: str) -> None:
        self.release_checked()
        at = self.pos
        (stored,) = LONG.unpack_from(self.buf, self.need(8, what))
        if stored != self.adler:
            raise self.corrupt(at, f"{what} mismatch: file has {stored:#x}, content sums to {self.adler:#x}")
        seal_at = self.need(len(SEAL_PATH), f"seal after {what}")
        if self.buf[seal_at : seal_at + len(SEAL_PATH)] != SEAL_PATH:
            raise self.corrupt(seal_at, f"bad seal after {what}")

    def read_digest(self) -> tuple[int, int] | None:
        at = self.pos
        zxid, version = ZXID_DIGEST.unpack_from(self.buf, self.need(ZXID_DIGEST.size, "digest section"))
        digest = 0
        if version >= 2:
            (digest,) = LONG.unpack_from(self.buf, self.need(8, "digest"))
        else:  # digest versions before 2 stored a hex string
            reader = Reader(self.buf, self.pos, self.size, self.max_length)  # type: ignore[arg-type]
            try:
                reader.read_ustring()
            except JuteError as e:
                raise self.corrupt(self.pos, f"bad digest string: {e}") from None
            self.pos = reader.pos
        if zxid < 0:
            raise self.corrupt(at, f"negative digest zxid {zxid}")
        return (zxid, digest) if zxid > 0 and version == DIGEST_VERSION else None


def _decode_path(raw: bytes) -> str:
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError:
        pass
    # Java writes characters beyond the BMP as CESU-8 (two 3-byte surrogates):
    # pair them up as zabd's jute reader does; an unpaired one is kept as is
    # (the writer passes it back), but bytes that are not UTF-8 at all are corrupt.
    halves = raw.decode("utf-8", "surrogatepass")
    try:
        return halves.encode("utf-16-be", "surrogatepass").decode("utf-16-be")
    except UnicodeDecodeError:
        return halves
