# -*- test-case-name: tests.unit.test_acl -*-
"""Java behaviour that ZooKeeper's ACL and auth code shows to clients, replayed in Python.

ZooKeeper 3.8 parses ACL ids with Java's ``String.split`` and
``Integer.parseInt``, decodes auth packets with Java's UTF-8 decoder, and lists
a connection's ids in ConcurrentHashMap order (which depends on Java's
``String.hashCode``). Those quirks decide which ACLs are accepted and in what
order whoAmI and the ``auth`` expansion see ids, so they live here, apart from
the ACL rules in :mod:`zabd.core.acl` that use them.
"""
from __future__ import annotations

import codecs
import re
from collections.abc import Iterable, Iterator, Sequence
from typing import TypeVar, overload

from zabd.java.limits import INT_MAX, INT_MIN
from zabd.jute.records import Id

T = TypeVar("T")

# Java's Integer.parseInt: optional sign, then decimal digits (any Unicode Nd).
_JAVA_INT = re.compile(r"[+-]?\d+")


def java_split(text: str, sep: str) -> list[str]:
    """Java's ``text.split(sep)`` for a one-character literal separator."""
    parts = text.split(sep)
    if len(parts) == 1:
        return parts
    while parts and not parts[-1]:
        parts.pop()
    return parts


def java_parse_int(text: str) -> int | None:
    """Java's ``Integer.parseInt(text)``, or None where Java would throw."""
    if _JAVA_INT.fullmatch(text) is None:
        return None
    try:
        value = int(text)
    except ValueError:  # too many digits for int(): far outside Java's int anyway
        return None
    return value if INT_MIN <= value <= INT_MAX else None


def ipv4_bytes(addr: str) -> bytes | None:
    """A dotted IPv4 address as IPAuthenticationProvider parses it (parts via parseInt)."""
    parts = addr.split(".")
    if len(parts) != 4:
        return None
    out = bytearray()
    for part in parts:
        value = java_parse_int(part)
        if value is None or not 0 <= value <= 255:
            return None
        out.append(value)
    return bytes(out)


def ipv4_acl(expr: str) -> tuple[int, int] | None:
    """An ip ACL expression ``a.b.c.d[/bits]`` as (network as int, bits)."""
    addr, slash, bits_text = expr.partition("/")
    raw = ipv4_bytes(addr)
    if raw is None:
        return None
    bits = 32
    if slash:
        parsed = java_parse_int(bits_text)
        if parsed is None or not 0 <= parsed <= 32:
            return None
        bits = parsed
    return int.from_bytes(raw, "big"), bits


def java_string_hash(text: str) -> int:
    """Java's String.hashCode (over UTF-16 code units), as an unsigned 32-bit int."""
    h = 0
    if text.isascii() or max(text) <= "\uffff":
        for ch in text:
            h = (31 * h + ord(ch)) & 0xFFFFFFFF
        return h
    raw = text.encode("utf-16-be", "surrogatepass")
    for i in range(0, len(raw), 2):
        h = (31 * h + ((raw[i] << 8) | raw[i + 1])) & 0xFFFFFFFF
    return h


def _java_id_spread(ident: Id) -> int:
    """ConcurrentHashMap.spread of the jute-generated Id.hashCode."""
    h = (37 * 17 + java_string_hash(ident.scheme)) & 0xFFFFFFFF
    h = (37 * h + java_string_hash(ident.id)) & 0xFFFFFFFF
    return (h ^ (h >> 16)) & 0x7FFFFFFF


class AuthIds(Sequence[Id]):
    """A connection's authenticated ids, in the order ZooKeeper 3.8 lists them.

    ZooKeeper keeps them in a ConcurrentHashMap-backed set, so whoAmI and the
    ``auth`` ACL expansion see them in hash-table order, not insertion order.
    This replays that table (16 bins, doubling at 3/4 load, with its bin
    splitting order); it is exact unless nine ids share one bin, where Java
    would start treeifying.
    """

    __slots__ = ("_bins", "_count", "_threshold", "_order")

    def __init__(self, ids: Iterable[Id] = ()) -> None:
        self._bins: list[list[tuple[int, Id]]] = [[] for _ in range(16)]
        self._count = 0
        self._threshold = 12
        self._order: list[Id] | None = []
        for ident in ids:
            self.add(ident)

    def add(self, ident: Id) -> bool:
        """Add an id; False if it was already present."""
        spread = _java_id_spread(ident)
        nodes = self._bins[spread & (len(self._bins) - 1)]
        for _, present in nodes:
            if present == ident:
                return False
        nodes.append((spread, ident))
        self._count += 1
        self._order = None
        if self._count >= self._threshold:
            self._resize()
        return True

    def add_all(self, ids: Iterable[Id]) -> None:
        for ident in ids:
            self.add(ident)

    def _resize(self) -> None:
        self._bins = java_table_grown(self._bins)
        size = len(self._bins)
        self._threshold = size - (size >> 2)  # Java's load factor 0.75

    def _ordered(self) -> list[Id]:
        if self._order is None:
            self._order = [ident for nodes in self._bins for _, ident in nodes]
        return self._order

    def has_scheme(self, scheme: str) -> bool:
        return any(ident.scheme == scheme for ident in self._ordered())

    def __len__(self) -> int:
        return self._count

    def __iter__(self) -> Iterator[Id]:
        return iter(self._ordered())

    def __contains__(self, ident: object) -> bool:
        return ident in self._ordered()

    @overload
    def __getitem__(self, index: int) -> Id: ...

    @overload
    def __getitem__(self, index: slice) -> list[Id]: ...

    def __getitem__(self, index: int | slice) -> Id | list[Id]:
        return self._ordered()[index]

    def __repr__(self) -> str:
        return f"AuthIds({self._ordered()!r})"


def _java_utf8_replace(err: UnicodeError) -> tuple[str, int]:
    """Replace malformed UTF-8 as Java's decoder does.

    Python and Java agree (one U+FFFD per maximal invalid subpart) except for
    an encoded surrogate (ED A0..BF [80..BF]), which Java replaces as a whole.
    """
    if not isinstance(err, UnicodeDecodeError):
        raise err
    raw, start = err.object, err.start
    if raw[start] == 0xED and start + 1 < len(raw) and 0xA0 <= raw[start + 1] <= 0xBF:
        end = start + 2
        if end < len(raw) and 0x80 <= raw[end] <= 0xBF:
            end += 1
        return "\ufffd", end
    return "\ufffd", err.end


codecs.register_error("zabd.java-replace", _java_utf8_replace)


def java_decode(raw: bytes) -> str:
    """Java's ``new String(bytes, UTF_8)``."""
    return raw.decode("utf-8", "zabd.java-replace")


def java_table_grown(bins: list[list[tuple[int, T]]]) -> list[list[tuple[int, T]]]:
    """A java.util.Hashtable's bins after it doubles, in the order Java leaves them.

    Each entry is (spread hash, item). Java keeps the longest tail of a bin
    whose entries all go the same way, and pushes the entries before it,
    one by one, onto the front of their new bin.
    """
    n = len(bins)
    grown: list[list[tuple[int, T]]] = [[] for _ in range(2 * n)]
    for index, nodes in enumerate(bins):
        if not nodes:
            continue
        run_bit = nodes[-1][0] & n
        start = len(nodes) - 1
        while start > 0 and nodes[start - 1][0] & n == run_bit:
            start -= 1
        low = list(nodes[start:]) if run_bit == 0 else []
        high = [] if run_bit == 0 else list(nodes[start:])
        for node in nodes[:start]:
            (high if node[0] & n else low).insert(0, node)
        grown[index], grown[index + n] = low, high
    return grown
