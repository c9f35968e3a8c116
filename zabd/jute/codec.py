# -*- test-case-name: tests.unit.test_jute -*-
"""Jute's binary primitives: a bounds-checked reader and an appending writer.

Every integer is big-endian two's complement.  Strings and buffers carry an
int length, with -1 meaning null; vectors carry an int count, -1 meaning null.
"""
from __future__ import annotations

import struct
from typing import Callable, Iterable, TypeVar

T = TypeVar("T")

INT = struct.Struct(">i")
_LONG = struct.Struct(">q")
_BYTE = struct.Struct(">b")

#: ZooKeeper's jute.maxbuffer default: the largest frame and field it accepts.
DEFAULT_MAX_BUFFER = 0xFFFFF


class JuteError(ValueError):
    """The bytes do not decode as the expected record (truncated or insane)."""


class Reader:
    """Reads jute primitives from a byte string, raising JuteError on bad input."""

    __slots__ = ("buf", "pos", "end", "max_length")

    def __init__(
        self,
        buf: bytes,
        pos: int = 0,
        end: int | None = None,
        max_length: int = DEFAULT_MAX_BUFFER * 2,
    ) -> None:
        self.buf = buf
        self.pos = pos
        self.end = len(buf) if end is None else end
        # ZooKeeper accepts field lengths up to maxbuffer + extrasize.
        self.max_length = max_length

    def remaining(self) -> int:
        return self.end - self.pos

    def at_end(self) -> bool:
        return self.pos >= self.end

    def _need(self, n: int) -> int:
        pos = self.pos
        if pos + n > self.end:
            raise JuteError(f"truncated: need {n} bytes at offset {pos}, have {self.end - pos}")
        self.pos = pos + n
        return pos

    # The readers below are flat on purpose: they run for every field of
    # every request, and each extra call is a measurable share of a request.

    def read_int(self) -> int:
        pos = self.pos
        if pos + 4 > self.end:
            self._need(4)
        self.pos = pos + 4
        value: int = INT.unpack_from(self.buf, pos)[0]
        return value

    def read_long(self) -> int:
        pos = self.pos
        if pos + 8 > self.end:
            self._need(8)
        self.pos = pos + 8
        value: int = _LONG.unpack_from(self.buf, pos)[0]
        return value

    def read_byte(self) -> int:
        value: int = _BYTE.unpack_from(self.buf, self._need(1))[0]
        return value

    def read_bool(self) -> bool:
        # Java's reader takes any non-zero byte as true.
        return self.buf[self._need(1)] != 0

    def read_buffer(self) -> bytes | None:
        pos = self.pos
        end = pos + 4
        if end > self.end:
            self._need(4)
        n: int = INT.unpack_from(self.buf, pos)[0]
        if n == -1:
            self.pos = end
            return None
        if n < -1 or n > self.max_length:
            raise JuteError(f"invalid length {n} at offset {pos}")
        if end + n > self.end:
            self.pos = end
            self._need(n)
        self.pos = end + n
        return bytes(self.buf[end : end + n])

    def read_ustring(self) -> str | None:
        raw = self.read_buffer()
        if raw is None:
            return None
        try:
            return raw.decode("utf-8")
        except UnicodeDecodeError:
            return decode_lenient(raw)

    def read_vector(self, item: Callable[[Reader], T]) -> list[T] | None:
        n = self.read_int()
        if n == -1:
            return None
        if n < -1 or n > self.remaining():
            # Every element takes at least one byte, so a count beyond the
            # remaining bytes is garbage; refuse before allocating.
            raise JuteError(f"invalid vector count {n} at offset {self.pos - 4}")
        return [item(self) for _ in range(n)]


def decode_lenient(raw: bytes) -> str:
    """Decode Java's CESU-8 (surrogate pairs as two 3-byte sequences), else replace."""
    try:
        halves = raw.decode("utf-8", "surrogatepass")
        return halves.encode("utf-16-be", "surrogatepass").decode("utf-16-be")
    except UnicodeError:
        return raw.decode("utf-8", "replace")


class Writer:
    """Appends jute primitives to a bytearray."""

    __slots__ = ("buf",)

    def __init__(self) -> None:
        self.buf = bytearray()

    def getvalue(self) -> bytes:
        return bytes(self.buf)

    def write_int(self, value: int) -> None:
        self.buf += INT.pack(value)

    def write_long(self, value: int) -> None:
        self.buf += _LONG.pack(value)

    def write_byte(self, value: int) -> None:
        self.buf += _BYTE.pack(value)

    def write_bool(self, value: bool) -> None:
        self.buf.append(1 if value else 0)

    def write_buffer(self, value: bytes | None) -> None:
        if value is None:
            self.buf += b"\xff\xff\xff\xff"
        else:
            self.buf += INT.pack(len(value))
            self.buf += value

    def write_ustring(self, value: str | None) -> None:
        self.write_buffer(None if value is None else value.encode("utf-8", "surrogatepass"))

    def write_vector(self, items: Iterable[T] | None, item: Callable[[Writer, T], None]) -> None:
        if items is None:
            self.buf += b"\xff\xff\xff\xff"
            return
        seq = list(items)
        self.buf += INT.pack(len(seq))
        for value in seq:
            item(self, value)
