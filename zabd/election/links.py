# -*- test-case-name: tests.unit.test_election_port -*-
"""The rules of the election port's peer links (QuorumCnxManager), sans-IO.

One TCP connection per pair of peers carries FastLeaderElection payloads both
ways. Both peers may dial at once; the tie-break keeps only the connection the
larger sid opened. Outgoing traffic per peer is a slot of capacity one (the
newest payload wins, an older vote is worthless), and a link that comes up
with an empty slot re-sends the last payload, since the previous connection
may have died before the peer read it.

:class:`LinkTable` decides; it returns effects (:class:`Write`, :class:`Close`,
:class:`Dial`, :class:`Up`, :class:`Loopback`) for an adapter to carry out,
and never sees a socket. Connections are opaque hashable handles.
:class:`~zabd.election.frames.FrameReader` cuts one connection's byte
stream into the initial message and the ``int len`` frames.
"""
from __future__ import annotations

from collections.abc import Hashable
from dataclasses import dataclass, field
from typing import Callable, Generic, Protocol, TypeVar, Union

# The framing lives in election.frames; these names stay importable from here.
from zabd.java.limits import LONG_MAX
from zabd.election.frames import FrameReader, Received, check_frame_length, frame
from zabd.election.messages import InitialMessage

__all__ = [
    "DEFAULT_CONNECT_TIMEOUT_MS", "OBSERVER_ID", "Close", "Dial", "Effect", "ElectionNetwork", "FrameReader",
    "LinkTable", "Loopback", "MessageHandler", "Received", "Up", "Write", "check_frame_length", "frame",
]

OBSERVER_ID = LONG_MAX  # QuorumPeer.OBSERVER_ID: an observer without a sid of its own
DEFAULT_CONNECT_TIMEOUT_MS = 5000  # zookeeper.cnxTimeout

#: What the network hands up: (sender sid, payload).
MessageHandler = Callable[[int, bytes], None]


class ElectionNetwork(Protocol):
    """What FastLeaderElection needs from the peer links (QuorumCnxManager's toSend/haveDelivered/connectAll)."""

    def send(self, sid: int, payload: bytes) -> None:
        """Queue ``payload`` for ``sid`` (newest wins) and dial it if not connected; to myself, loop back."""

    def any_delivered(self) -> bool:
        """Some peer's send queue is empty: 3.8's haveDelivered (despite its comment), FLE's test to re-send.

        A queue holds a payload only while its peer has no link, and a send to
        that peer only replaces it and dials, as connect_all does; so re-sending
        when no queue is empty would gain nothing. Requiring every queue to be
        empty stalls a LOOKING peer for as long as any peer is down.
        """

    def connect_all(self) -> None:
        """Dial every known peer that has no link and no dial under way."""


# --------------------------------------------------------------------------- effects

C = TypeVar("C", bound=Hashable)


@dataclass(frozen=True, slots=True)
class Write(Generic[C]):
    """Send ``payload`` (unframed) on ``conn``."""

    conn: C
    payload: bytes


@dataclass(frozen=True, slots=True)
class Close(Generic[C]):
    """Close ``conn`` (to or from ``sid``), logging ``reason`` once."""

    conn: C
    sid: int
    reason: str


@dataclass(frozen=True, slots=True)
class Up(Generic[C]):
    """``conn`` is now the link to ``sid``: frames read from it come from that sid."""

    conn: C
    sid: int


@dataclass(frozen=True, slots=True)
class Dial:
    """Open a connection to ``sid``; ``address`` None means the configured one."""

    sid: int
    address: tuple[str, int] | None = None


@dataclass(frozen=True, slots=True)
class Loopback:
    """A payload to myself: hand it to my own receive side (on a later turn)."""

    payload: bytes


Effect = Union[Write[C], Close[C], Up[C], Dial, Loopback]


@dataclass(slots=True)
class _Peer(Generic[C]):
    queue: bool = False  # the send queue exists: since the first send or link (queueSendMap has the sid)
    slot: bytes | None = None  # its content, capacity one
    last_sent: bytes | None = None  # QuorumCnxManager.lastMessageSent
    link: C | None = None
    dialing: bool = False


# --------------------------------------------------------------------------- the table


@dataclass(slots=True)
class LinkTable(Generic[C]):
    """Per-peer link state of one server; every method returns the effects to carry out."""

    my_sid: int
    known_sids: tuple[int, ...] = ()
    _peers: dict[int, _Peer[C]] = field(default_factory=dict)
    _next_observer_id: int = -1  # QuorumCnxManager.observerCounter
    _stopped: bool = False

    def __post_init__(self) -> None:
        self.known_sids = tuple(sid for sid in self.known_sids if sid != self.my_sid)
        for sid in self.known_sids:
            self._peer(sid)

    def _peer(self, sid: int) -> _Peer[C]:
        peer = self._peers.get(sid)
        if peer is None:
            peer = self._peers[sid] = _Peer()
        return peer

    def set_known(self, sids: tuple[int, ...]) -> None:
        """The members ``connect_all`` dials (after a reconfig); links to others stay until they drop."""
        self.known_sids = tuple(sid for sid in sids if sid != self.my_sid)
        for sid in self.known_sids:
            self._peer(sid)

    def link(self, sid: int) -> C | None:
        """The live connection to ``sid``, if any."""
        peer = self._peers.get(sid)
        return None if peer is None else peer.link

    def any_delivered(self) -> bool:
        return any(peer.queue and peer.slot is None for peer in self._peers.values())

    def send(self, sid: int, payload: bytes) -> list[Effect[C]]:
        if self._stopped:
            return []
        if sid == self.my_sid:
            return [Loopback(payload)]
        frame(payload)  # refuse here what the peer would drop the connection for
        peer = self._peer(sid)
        peer.queue = True
        if peer.link is not None:
            peer.last_sent = payload
            return [Write(peer.link, payload)]
        peer.slot = payload  # newest wins
        return self._dial(sid, peer)

    def connect_all(self) -> list[Effect[C]]:
        if self._stopped:
            return []
        return [effect for sid in self.known_sids for effect in self._dial(sid, self._peer(sid))]

    def _dial(self, sid: int, peer: _Peer[C], address: tuple[str, int] | None = None) -> list[Effect[C]]:
        if peer.link is not None or peer.dialing:
            return []
        peer.dialing = True
        return [Dial(sid, address)]

    def dial_failed(self, sid: int) -> None:
        """The connect attempt ended without a connection; the slot keeps its payload."""
        self._peer(sid).dialing = False

    def dialled(self, sid: int, conn: C) -> list[Effect[C]]:
        """My dial reached ``sid`` and the initial message is written: keep it only if my sid is larger."""
        peer = self._peer(sid)
        peer.dialing = False
        if self._stopped:
            return [Close(conn, sid, "stopped")]
        if sid > self.my_sid:
            return [Close(conn, sid, "peer has the larger sid and dials me")]
        return self._start(sid, peer, conn)

    def accepted(self, initial: InitialMessage, conn: C) -> list[Effect[C]]:
        """A peer dialled me and said who it is: keep it only if its sid is larger."""
        sid = initial.sid
        if sid == OBSERVER_ID:  # a connection needs some id: count observers down from -1
            sid = self._next_observer_id
            self._next_observer_id -= 1
        if self._stopped:
            return [Close(conn, sid, "stopped")]
        if sid == self.my_sid:
            return [Close(conn, sid, "peer claims my own sid")]
        peer = self._peer(sid)
        if sid > self.my_sid:
            return self._start(sid, peer, conn)
        # The lower sid believes it has no link to me, so mine is stale: drop both and dial back.
        effects: list[Effect[C]] = []
        if peer.link is not None:
            effects.append(Close(peer.link, sid, "the lower sid dialled again"))
            peer.link = None
        effects.append(Close(conn, sid, "lower sid dialled; dialling back"))
        endpoints = initial.endpoints()
        return effects + self._dial(sid, peer, endpoints[0] if endpoints else None)

    def _start(self, sid: int, peer: _Peer[C], conn: C) -> list[Effect[C]]:
        """SendWorker start: replace the old link, then the queued payload or else the last one again."""
        effects: list[Effect[C]] = []
        if peer.link is not None:
            effects.append(Close(peer.link, sid, "replaced by a newer connection"))
        peer.link = conn
        peer.queue = True
        effects.append(Up(conn, sid))
        if peer.slot is not None:
            peer.last_sent, peer.slot = peer.slot, None
        if peer.last_sent is not None:
            effects.append(Write(conn, peer.last_sent))
        return effects

    def lost(self, sid: int, conn: C) -> bool:
        """``conn`` closed; True if it was the live link to ``sid`` (a replaced one is not)."""
        peer = self._peers.get(sid)
        if peer is None or peer.link != conn:
            return False
        peer.link = None
        return True

    def stop(self) -> list[Effect[C]]:
        """Close every link; from now on nothing is sent or dialled."""
        self._stopped = True
        effects: list[Effect[C]] = []
        for sid, peer in self._peers.items():
            peer.dialing = False
            if peer.link is not None:
                effects.append(Close(peer.link, sid, "stopped"))
                peer.link = None
        return effects
