# -*- test-case-name: tests.unit.test_election_port -*-
"""The election port's framing (QuorumCnxManager's RecvWorker), sans-IO.

A connection opens with the dialler's initial message (accepting side
only), then carries ``int len`` frames of 1..MAX_FRAME bytes; any other
length ends the connection. The frames are cut by :mod:`zabd.jute.framing`.
"""
from __future__ import annotations

from dataclasses import dataclass

from zabd.election.messages import MAX_FRAME, ElectionWireError, InitialMessage, initial_length, parse_initial
from zabd.jute.framing import FrameDecoder
from zabd.jute.framing import frame as length_prefixed


def check_frame_length(length: int) -> None:
    """RecvWorker's rule: a frame of 1..MAX_FRAME bytes, anything else ends the connection."""
    if not 0 < length <= MAX_FRAME:
        raise ElectionWireError(f"invalid frame length {length} (1..{MAX_FRAME})")


def frame(payload: bytes) -> bytes:
    """``int len`` + payload; refuses what the receiver would drop the connection for."""
    check_frame_length(len(payload))
    return length_prefixed(payload)


@dataclass(frozen=True, slots=True)
class Received:
    """What one chunk of input held, in stream order: initial message first, then frames, then an error."""

    initial: InitialMessage | None = None
    frames: tuple[bytes, ...] = ()
    error: ElectionWireError | None = None


class FrameReader:
    """Splits one connection's input; the accepting side expects the initial message first.

    After an error the reader is spent: the connection is to be dropped, and
    what follows is ignored rather than misread.
    """

    def __init__(self, expect_initial: bool) -> None:
        self._expect_initial = expect_initial
        self._buffer = b""  # an initial message still arriving
        self._frames = FrameDecoder(min_length=1, max_length=MAX_FRAME)
        self._failed = False

    def feed(self, data: bytes) -> Received:
        if self._failed:
            return Received()
        initial: InitialMessage | None = None
        if self._expect_initial:
            buffer = self._buffer + data if self._buffer else data
            try:
                size = initial_length(buffer)
                if size is None or len(buffer) < size:
                    self._buffer = buffer
                    return Received()
                initial = parse_initial(buffer[:size])
            except ElectionWireError as error:
                self._failed = True
                self._buffer = b""
                return Received(None, (), error)
            self._expect_initial = False
            self._buffer = b""
            data = buffer[size:]
        frames = tuple(self._frames.feed(data))
        if self._frames.error is not None:  # RecvWorker's rule, as check_frame_length words it
            self._failed = True
            return Received(initial, frames, ElectionWireError(str(self._frames.error)))
        return Received(initial, frames)
