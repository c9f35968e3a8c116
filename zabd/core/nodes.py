# -*- test-case-name: tests.unit.test_datatree -*-
"""One znode's stored state, and the ephemeralOwner encodings of special nodes."""
from __future__ import annotations

import struct

from zabd.jute.codec import Reader
from zabd.jute.records import ACL, Stat

_STAT = struct.Struct(">qqqqiiiqiiq")

#: ephemeralOwner of a container node (Long.MIN_VALUE).
CONTAINER_OWNER = -0x8000000000000000
#: Extended ephemeralOwner: top byte 0xFF, 2 bytes of feature (0 = TTL), 40 bits of value.
_EXTENDED_MASK = -0x0100000000000000  # 0xFF00000000000000 as a signed long
MAX_TTL = 0xFFFFFFFFFF


def ttl_owner(ttl: int) -> int:
    return _EXTENDED_MASK | ttl


def is_ttl_owner(owner: int) -> bool:
    return owner < 0 and owner != CONTAINER_OWNER and (owner & _EXTENDED_MASK) == _EXTENDED_MASK


def ttl_of(owner: int) -> int:
    return owner & MAX_TTL


def is_container_owner(owner: int) -> bool:
    return owner == CONTAINER_OWNER


def is_normal_ephemeral(owner: int) -> bool:
    return owner != 0 and owner != CONTAINER_OWNER and not is_ttl_owner(owner)


class DataNode:
    """Data, ACL and StatPersisted fields of a znode, plus its child names.

    ``cversion`` is the stored count of child creations; clients see
    ``2 * cversion - numChildren`` (see ``stat``).
    """

    __slots__ = (
        "data", "acl", "children", "czxid", "mzxid", "ctime", "mtime",
        "version", "cversion", "aversion", "ephemeral_owner", "pzxid", "digest",
    )

    def __init__(self, data: bytes | None, acl: list[ACL]) -> None:
        # None (a client's null) stays distinct from b"": getData returns it as null.
        self.data = data
        self.acl = acl
        # A dict keeps child order deterministic (insertion order).
        self.children: dict[str, None] = {}
        self.czxid = self.mzxid = self.pzxid = 0
        self.ctime = self.mtime = 0
        self.version = self.cversion = self.aversion = 0
        self.ephemeral_owner = 0
        self.digest = 0

    def stat(self) -> Stat:
        """The client-visible Stat as a record (see ``stat_bytes``)."""
        return Stat.read(Reader(self.stat_bytes()))

    def stat_bytes(self) -> bytes:
        """The client-visible Stat, encoded: the hot paths reply with this."""
        owner = self.ephemeral_owner
        n = len(self.children)
        return _STAT.pack(
            self.czxid, self.mzxid, self.ctime, self.mtime, self.version,
            2 * self.cversion - n, self.aversion,
            owner if owner and is_normal_ephemeral(owner) else 0,
            len(self.data) if self.data is not None else 0, n, self.pzxid,
        )
