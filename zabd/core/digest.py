# -*- test-case-name: tests.unit.test_datatree -*-
"""ZooKeeper's incremental tree digest (version 2), kept in step with every change.

The digest is a wrapping 64-bit sum of one CRC32 per node; nodes below
``/zookeeper/`` are left out, and the root is hashed under the path "".
"""
from __future__ import annotations

import struct
import zlib
from collections import deque
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from zabd.core.nodes import DataNode

DIGEST_VERSION = 2
_STAT = struct.Struct(">qqqqqiiiq")
_MASK = (1 << 64) - 1
#: ZooKeeper keeps every 128th zxid's digest, up to 1024 of them, for `hash`.
HISTORY_INTERVAL = 128
HISTORY_LENGTH = 1024


def node_digest(path: str, node: DataNode) -> int:
    if path.startswith("/zookeeper/"):
        return 0
    # One CRC32 over path, data and stat fields, as ZooKeeper feeds them in turn.
    return zlib.crc32(b"".join((
        b"" if path == "/" else path.encode("utf-8", "surrogatepass"),
        node.data or b"",
        _STAT.pack(
            node.czxid, node.mzxid, node.pzxid, node.ctime, node.mtime,
            node.version, node.cversion, node.aversion, node.ephemeral_owner,
        ),
    )))


class TreeDigest:
    """The running sum, and the periodic (zxid, digest) history."""

    def __init__(self) -> None:
        self.value = 0
        self.history: deque[tuple[int, int]] = deque(maxlen=HISTORY_LENGTH)

    def add(self, path: str, digest: int) -> None:
        self.value = (self.value + digest) & _MASK

    def remove(self, path: str, digest: int) -> None:
        self.value = (self.value - digest) & _MASK

    def signed(self) -> int:
        """The digest as the signed long that jute writes."""
        return self.value - (1 << 64) if self.value >= 1 << 63 else self.value

    def record(self, zxid: int) -> None:
        if zxid % HISTORY_INTERVAL == 0:
            self.history.append((zxid, self.signed()))
