# -*- test-case-name: tests.unit.test_framing -*-
"""Length-prefixed framing (``int len`` + that many bytes), sans-IO.

The client, the election port and the test clients cut a byte stream into
frames the same way: a 4-byte big-endian signed length, then the frame (the
client port walks them one at a time instead, since each may be held or
refused: zabd.serving.framing).
:func:`cut_frames` is that loop, once; :class:`FrameDecoder` keeps one
connection's unread bytes between calls; :class:`StreamBuffer` is the
growing buffer under both (and under the quorum port's packet decoder, whose
records carry no length prefix). None of them touches a socket.
"""
from __future__ import annotations

import struct
from typing import Union

#: The length prefix: a Java ``int``.
LENGTH = struct.Struct(">i")
#: The largest length a prefix can hold.
MAX_LENGTH = (1 << 31) - 1

#: What frames are cut from: bytes, or a buffer that is still growing.
Buffer = Union[bytes, bytearray]

# Consumed bytes worth dropping from a StreamBuffer: below this, moving the
# rest down costs more than keeping the dead prefix.
_COMPACT_AT = 1 << 16


class FrameLengthError(ValueError):
    """A length prefix outside what the reader accepts: the stream cannot be trusted after it.

    :param length: the length read.
    :param offset: where its prefix starts.
    :param low: the shortest frame accepted.
    :param high: the longest frame accepted.
    """

    def __init__(self, length: int, offset: int, low: int, high: int) -> None:
        super().__init__(f"invalid frame length {length} ({low}..{high})")
        self.length = length
        self.offset = offset
        self.low = low
        self.high = high


def frame(payload: bytes) -> bytes:
    """``payload`` with its length prefix."""
    return LENGTH.pack(len(payload)) + payload


def cut_frames(buf: Buffer, pos: int = 0, *, min_length: int = 0,
               max_length: int = MAX_LENGTH) -> tuple[list[bytes], int, FrameLengthError | None]:
    """Every whole frame in ``buf[pos:]``.

    :returns: the frames (as bytes), the position after the last one, and
        the error that stopped the cut if a length was out of range (the
        position then points at that length's prefix; the frames before it
        are still returned, since they arrived intact).
    """
    frames: list[bytes] = []
    end = len(buf)
    unpack = LENGTH.unpack_from
    while end - pos >= 4:
        (length,) = unpack(buf, pos)
        if not min_length <= length <= max_length:
            return frames, pos, FrameLengthError(length, pos, min_length, max_length)
        start = pos + 4
        stop = start + length
        if stop > end:
            break
        frames.append(bytes(buf[start:stop]))  # no copy of a bytes slice; a bytearray's becomes bytes
        pos = stop
    return frames, pos, None


class StreamBuffer:
    """One connection's received bytes and how far they have been read.

    ``buf[pos:]`` is unread. Appending compacts the buffer once the read
    part is large and at least half of it, so reading a stream in small
    pieces stays linear rather than copying the rest each time.
    """

    __slots__ = ("buf", "pos")

    def __init__(self) -> None:
        self.buf = bytearray()
        self.pos = 0

    def append(self, data: bytes) -> None:
        if self.pos >= _COMPACT_AT and self.pos * 2 >= len(self.buf):
            del self.buf[:self.pos]
            self.pos = 0
        self.buf += data

    def unread(self) -> bytes:
        return bytes(self.buf[self.pos:])

    def pending(self) -> int:
        """How many bytes have arrived but not been read."""
        return len(self.buf) - self.pos


class FrameDecoder:
    """Cuts one connection's byte stream into frames as the bytes arrive.

    After a bad length the decoder is spent (``error`` says why): the
    connection is to be dropped, and what follows is ignored rather than
    misread.
    """

    __slots__ = ("min_length", "max_length", "error", "_in")

    def __init__(self, *, min_length: int = 0, max_length: int = MAX_LENGTH) -> None:
        self.min_length = min_length
        self.max_length = max_length
        self.error: FrameLengthError | None = None
        self._in = StreamBuffer()

    def feed(self, data: bytes) -> list[bytes]:
        """The frames ``data`` completes, in order (those before a bad length included)."""
        if self.error is not None:
            return []
        stream = self._in
        stream.append(data)
        frames, stream.pos, self.error = cut_frames(
            stream.buf, stream.pos, min_length=self.min_length, max_length=self.max_length)
        return frames

    @property
    def unframed(self) -> bytes:
        """Bytes received that make no whole frame yet."""
        return self._in.unread()
