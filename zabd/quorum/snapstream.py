# -*- test-case-name: tests.unit.test_snapstream -*-
"""The snapshot a leader streams after a SNAP packet (protocol doc 4.6), sans-IO.

Layout, written straight onto the quorum stream with no framing::

    int sessionCount {long id; int timeout}*
    ACL map: int n {long id; vector<ACL>}*
    {ustring path; buffer data; long aclId; StatPersisted}*  ustring "/"
    ustring "BenWasHere"

That is a snapshot file's body (``zabd.storage.snapformat``) without the file
header, the checksums and the digest section, plus a signature. The encoder
reuses the file writer, so the ACL map, the node encoding and the fuzzy rules
are the same; the decoder parses incrementally, because the stream arrives in
TCP-sized pieces and may be hundreds of megabytes.

This module also holds what ``packets`` builds on (the error class and a
reader that waits for more bytes instead of failing), so that the two modules
do not import each other.
"""
from __future__ import annotations

import gc
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import TypeVar

from zabd.core.datatree import OPEN_ACL, DataTree
from zabd.core.treeload import MalformedTree, TreeLoader
from zabd.jute.codec import DEFAULT_MAX_BUFFER, JuteError, Reader, decode_lenient
from zabd.jute.records import ACL
from zabd.storage.snapformat import DEFAULT_NODES_PER_CHUNK, snapshot_chunks
from zabd.storage.snapload import HEADER, INT, LONG, SEAL_PATH, SESSION, ZXID_DIGEST
from zabd.storage.snapnode import NodeRecordError, Rule, read_nodes

T = TypeVar("T")

#: The ustring that ends the stream; a learner refuses the snapshot without it.
SIGNATURE = b"BenWasHere"
_SIGNATURE_USTRING = INT.pack(len(SIGNATURE)) + SIGNATURE
_END_OF_NODES = INT.pack(1) + b"/"
#: What a snapshot file has after its end-of-nodes marker: checksum and seal,
#: digest section, checksum and seal. None of it goes on the wire.
_FILE_TAIL = 2 * (LONG.size + len(SEAL_PATH)) + ZXID_DIGEST.size + LONG.size


class QuorumWireError(ValueError):
    """Bytes on the quorum port that a 3.8 peer would refuse: drop the connection."""


class IncompleteItem(Exception):
    """The item being read runs past the bytes received so far: wait for more."""


class StreamReader(Reader):
    """A jute Reader over a partly received stream: running out of bytes raises
    IncompleteItem (retry later from the item's start), and only insane
    lengths raise JuteError."""

    __slots__ = ()

    def _need(self, n: int) -> int:
        pos = self.pos
        if pos + n > self.end:
            raise IncompleteItem
        self.pos = pos + n
        return pos

    def read_vector(self, item: Callable[[Reader], T]) -> list[T] | None:
        # Reader refuses a count beyond the bytes present; here they may still come.
        at = self.pos
        n = self.read_int()
        if n == -1:
            return None
        if n < -1 or n > self.max_length:
            raise JuteError(f"invalid vector count {n} at offset {at}")
        return [item(self) for _ in range(n)]


@dataclass(frozen=True, slots=True)
class SnapshotStream:
    """A decoded SNAP stream. The tree's ``last_processed_zxid`` is left at 0:
    the learner sets it from the SNAP packet's zxid."""

    tree: DataTree
    sessions: dict[int, int]


# --------------------------------------------------------------------------- encoding


def snapshot_stream_chunks(
    tree: DataTree, sessions: dict[int, int], nodes_per_chunk: int = DEFAULT_NODES_PER_CHUNK
) -> Iterator[bytes]:
    """The SNAP stream, a chunk per ``next()`` (a chunk may be empty).

    Fuzzy exactly as ``snapshot_chunks``, which does the work: sessions, the
    start zxid and the ACL map are fixed at the first ``next()``, so the SNAP
    packet sent before the stream must carry ``tree.last_processed_zxid`` as
    it was then, and every txn after it must be forwarded to the learner.
    One chunk is held back so the file's tail can be replaced by the signature.
    """
    chunks = snapshot_chunks(tree, sessions, nodes_per_chunk)
    first = next(chunks)
    held = first[HEADER.size:]
    for chunk in chunks:
        yield held
        held = chunk
    body_end = len(held) - _FILE_TAIL
    if held[body_end - len(_END_OF_NODES):body_end] != _END_OF_NODES:
        raise RuntimeError("snapshot file layout changed: the end-of-nodes marker is not where expected")
    yield held[:body_end] + _SIGNATURE_USTRING


# --------------------------------------------------------------------------- decoding

_SESSION_COUNT, _SESSIONS, _ACL_COUNT, _ACLS, _NODES, _SIGNATURE = range(6)
# How a broken node record reads in a QuorumWireError (its path decoding never fails).
_FAULTS = {
    Rule.PATH_LENGTH: "bad node path length {} in the SNAP stream",
    Rule.DATA_LENGTH: "bad data length {} in the SNAP stream",
    Rule.UNKNOWN_ACL: "ACL id {} of a streamed node is not in the ACL map",
    Rule.PATH_ENCODING: "SNAP stream: node path {!r} is not UTF-8",
    Rule.TREE: "SNAP stream: {}",
}


class SnapshotStreamDecoder:
    """Parses a SNAP stream from a growing buffer, one whole item at a time.

    ``feed(buf, pos)`` reads every complete item from ``buf[pos:]`` and returns
    the position after the last one; the caller keeps the bytes from there and
    calls again with more. ``result`` is set once the signature has been read,
    and nothing after the signature is touched.
    """

    __slots__ = ("max_length", "result", "_stage", "_left", "_sessions", "_acls", "_loader", "_tree")

    def __init__(self, max_length: int = DEFAULT_MAX_BUFFER * 2) -> None:
        self.max_length = max_length
        self.result: SnapshotStream | None = None
        self._stage = _SESSION_COUNT
        self._left = 0  # sessions or ACL entries still to read
        self._sessions: dict[int, int] = {}
        self._acls: dict[int, list[ACL]] = {}
        self._loader = TreeLoader()
        self._tree: DataTree | None = None

    def feed(self, buf: bytes | bytearray, pos: int = 0) -> int:
        stages = (self._session_count, self._session_entries, self._acl_count,
                  self._acl_entries, self._nodes, self._signature)
        while self.result is None:
            stage = self._stage
            pos = stages[stage](buf, pos)
            if self._stage == stage:  # the stage needs more bytes
                break
        return pos

    def _count(self, buf: bytes | bytearray, pos: int, what: str) -> int:
        if pos + 4 > len(buf):
            return pos
        (count,) = INT.unpack_from(buf, pos)
        if count < 0:  # Java would read none; only a broken leader sends it
            raise QuorumWireError(f"impossible {what} count {count} in the SNAP stream")
        self._left = count
        self._stage += 1
        return pos + 4

    def _session_count(self, buf: bytes | bytearray, pos: int) -> int:
        return self._count(buf, pos, "session")

    def _session_entries(self, buf: bytes | bytearray, pos: int) -> int:
        take = min(self._left, (len(buf) - pos) // SESSION.size)
        sessions = self._sessions
        for at in range(pos, pos + take * SESSION.size, SESSION.size):
            session_id, timeout = SESSION.unpack_from(buf, at)
            sessions[session_id] = timeout  # a repeated id replaces, as Java's map put does
        self._left -= take
        if not self._left:
            self._stage += 1
        return pos + take * SESSION.size

    def _acl_count(self, buf: bytes | bytearray, pos: int) -> int:
        return self._count(buf, pos, "ACL map")

    def _acl_entries(self, buf: bytes | bytearray, pos: int) -> int:
        while self._left:
            reader = StreamReader(buf, pos, len(buf), self.max_length)  # type: ignore[arg-type]
            try:
                acl_id = reader.read_long()
                entry = reader.read_vector(ACL.read)
            except IncompleteItem:
                return pos
            except JuteError as e:
                raise QuorumWireError(f"bad ACL map entry in the SNAP stream: {e}") from None
            if entry is None or any(a.id.scheme is None or a.id.id is None for a in entry):
                raise QuorumWireError(f"ACL map entry {acl_id} holds a null")
            if acl_id in self._acls:
                raise QuorumWireError(f"ACL id {acl_id} appears twice in the SNAP stream")
            self._acls[acl_id] = entry
            self._left -= 1
            pos = reader.pos
        # -1 is OPEN_ACL_UNSAFE, whatever the map says (ReferenceCountedACLCache.convertLong).
        self._acls[-1] = OPEN_ACL
        self._stage += 1
        return pos

    def _nodes(self, buf: bytes | bytearray, pos: int) -> int:
        # Every node made here lives on and none is in a cycle (see snapload).
        collecting = gc.isenabled()
        gc.disable()
        try:
            return self._read_nodes(buf, pos)
        finally:
            if collecting:
                gc.enable()

    def _read_nodes(self, buf: bytes | bytearray, pos: int) -> int:
        try:
            walk = read_nodes(buf, pos, len(buf), self.max_length, self._acls, self._loader.add, _decode_path)
        except NodeRecordError as e:
            raise QuorumWireError(_FAULTS[e.rule].format(e.value)) from None
        if not walk.done:  # the rest of the record is still on its way
            return walk.pos
        try:
            self._tree = self._loader.finish()
        except MalformedTree as e:
            raise QuorumWireError(f"SNAP stream: {e}") from None
        self._stage += 1
        return walk.pos

    def _signature(self, buf: bytes | bytearray, pos: int) -> int:
        if pos + 4 > len(buf):
            return pos
        (n,) = INT.unpack_from(buf, pos)
        if n != len(SIGNATURE):  # cannot be the signature whatever follows
            raise QuorumWireError(f"missing SNAP stream signature: a string of length {n}")
        end = pos + 4 + n
        if end > len(buf):
            return pos
        if bytes(buf[pos + 4:end]) != SIGNATURE:
            raise QuorumWireError(f"missing SNAP stream signature: got {bytes(buf[pos + 4:end])!r}")
        assert self._tree is not None
        self.result = SnapshotStream(self._tree, self._sessions)
        self._stage += 1
        return end


def _decode_path(raw: bytes) -> str:
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError:
        return decode_lenient(raw)  # Java's CESU-8 for characters beyond the BMP
