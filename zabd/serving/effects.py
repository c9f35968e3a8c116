# -*- test-case-name: tests.unit.test_server_connection -*-
"""What a client connection asks of its transport: the effects a ServerConnection emits.

A ServerConnection (zabd.serving.connection) never touches a socket: it
emits these records, and whoever owns the socket carries them out
(zabd.server.client_port on a reactor; ``TransportEffects`` for the
in-memory fakes, which only write and close).
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, Protocol, Union

from zabd.jute.codec import DEFAULT_MAX_BUFFER


@dataclass(frozen=True, slots=True)
class Write:
    """Send these bytes, after everything written before."""

    data: bytes


@dataclass(frozen=True, slots=True)
class Close:
    """Close the connection once what was written has gone (loseConnection)."""


@dataclass(frozen=True, slots=True)
class PauseReading:
    """Stop reading: the server is at globalOutstandingLimit and a request waits unread."""


@dataclass(frozen=True, slots=True)
class ResumeReading:
    """Read again; with ``read_held``, hand the connection ``b""`` on the next turn so that the
    requests it still holds go on even if the client sends nothing more."""

    read_held: bool


Effect = Union[Write, Close, PauseReading, ResumeReading]

#: Where a connection's effects go.
Emit = Callable[[Effect], None]

#: Singletons: these carry no data.
CLOSE = Close()
PAUSE_READING = PauseReading()


@dataclass(frozen=True)
class ConnectionLimits:
    """The client port's limits a connection enforces on its own input."""

    #: jute.maxbuffer: a longer (or negative) frame length closes the connection.
    max_buffer: int = DEFAULT_MAX_BUFFER
    #: globalOutstandingLimit: at this many requests in flight (or queued), a whole
    #: request waits unread and the connection stops reading.
    outstanding_limit: int = 1000


class Transport(Protocol):
    """The two things an in-memory transport can do."""

    def write(self, data: bytes) -> None: ...

    def loseConnection(self) -> None: ...  # noqa: N802 (Twisted's name)


class TransportEffects:
    """Carries out a connection's effects on a transport that only writes and closes (the fakes').

    Pauses and resumes are left out: such a transport has no flow control.
    """

    def __init__(self, transport: Transport) -> None:
        self.transport = transport

    def __call__(self, effect: Effect) -> None:
        if isinstance(effect, Write):
            self.transport.write(effect.data)
        elif isinstance(effect, Close):
            self.transport.loseConnection()
