"""Tests for zabd.jute.framing: the one length-prefix framer."""
from __future__ import annotations

import struct

import pytest
from hypothesis import given
from hypothesis import strategies as st

from zabd.jute.framing import FrameDecoder, FrameLengthError, StreamBuffer, cut_frames, frame


def test_frame_prefixes_the_length() -> None:
    assert frame(b"abc") == b"\x00\x00\x00\x03abc"
    assert frame(b"") == b"\x00\x00\x00\x00"


def test_cut_frames_returns_whole_frames_and_where_the_rest_starts() -> None:
    data = frame(b"one") + frame(b"") + frame(b"three")[:5]
    frames, pos, error = cut_frames(data)
    assert frames == [b"one", b""]
    assert pos == 11 and error is None


def test_cut_frames_starts_at_pos_and_copies_out_of_a_bytearray() -> None:
    buf = bytearray(b"xx" + frame(b"ab"))
    frames, pos, error = cut_frames(buf, 2)
    assert frames == [b"ab"] and type(frames[0]) is bytes
    assert (pos, error) == (8, None)


def test_a_length_out_of_range_stops_the_cut_after_the_good_frames() -> None:
    data = frame(b"ok") + struct.pack(">i", -1) + b"junk"
    frames, pos, error = cut_frames(data)
    assert frames == [b"ok"] and pos == 6
    assert isinstance(error, FrameLengthError)
    assert (error.length, error.offset, error.low) == (-1, 6, 0)
    assert str(error) == f"invalid frame length -1 (0..{(1 << 31) - 1})"


@pytest.mark.parametrize("length", [0, 11])
def test_limits_are_inclusive_bounds(length: int) -> None:
    _, _, error = cut_frames(struct.pack(">i", length), min_length=1, max_length=10)
    assert error is not None and str(error) == f"invalid frame length {length} (1..10)"
    frames, _, error = cut_frames(frame(b"x" * 10), min_length=1, max_length=10)
    assert frames == [b"x" * 10] and error is None


@given(st.lists(st.binary(max_size=40), max_size=8), st.integers(1, 7))
def test_the_decoder_yields_the_same_frames_however_the_bytes_are_split(payloads: list[bytes], step: int) -> None:
    stream = b"".join(frame(p) for p in payloads)
    decoder = FrameDecoder()
    got: list[bytes] = []
    for i in range(0, len(stream), step):
        got += decoder.feed(stream[i:i + step])
    assert got == payloads
    assert decoder.unframed == b"" and decoder.error is None


def test_the_decoder_keeps_a_partial_frame_and_is_spent_after_an_error() -> None:
    decoder = FrameDecoder(max_length=4)
    assert decoder.feed(frame(b"ab") + b"\x00\x00") == [b"ab"]
    assert decoder.unframed == b"\x00\x00"
    assert decoder.feed(b"\x00\x09more") == []
    assert decoder.error is not None and decoder.error.length == 9
    assert decoder.feed(frame(b"ok")) == []


def test_the_stream_buffer_compacts_only_a_large_read_part() -> None:
    stream = StreamBuffer()
    stream.append(b"a" * 70_000)
    stream.pos = 69_999
    stream.append(b"b")
    assert (stream.pos, stream.unread(), stream.pending()) == (0, b"ab", 2)
    stream.pos = 1
    stream.append(b"c")
    assert (stream.pos, stream.unread()) == (1, b"bc")


class _RecordingDriver:
    def __init__(self) -> None:
        self.frames: list[tuple[int, bytes]] = []

    def dial_succeeded(self, attempt: int, transport: object) -> None:
        pass

    def frame_received(self, attempt: int, frame: bytes) -> None:
        self.frames.append((attempt, frame))


def test_the_client_connection_frames_replies_and_drops_a_too_long_one() -> None:
    from twisted.internet.testing import StringTransport

    from zabd.client.protocol import MAX_FRAME, _SessionConnection

    driver = _RecordingDriver()
    conn = _SessionConnection(driver, 3, ("h", 1))  # type: ignore[arg-type]
    transport = StringTransport()
    conn.makeConnection(transport)
    conn.dataReceived(frame(b"reply")[:6])
    conn.dataReceived(frame(b"reply")[6:] + struct.pack(">i", MAX_FRAME + 1))
    assert driver.frames == [(3, b"reply")]
    assert transport.disconnecting

