# -*- test-case-name: tests.unit.test_zab_follower -*-
"""A learner's phases and the effects its machine asks its driver to carry out.

The machine (:mod:`zabd.quorum.learner_machine`) never touches the
connection or the peer: each input returns a list of these effects, which
the driver (:class:`zabd.quorum.learner.Learner`) carries out in order.
"""
from __future__ import annotations

import enum
from collections.abc import Callable
from dataclasses import dataclass

from zabd.quorum.packets import PacketType, QuorumPacket


class Phase(enum.Enum):
    """Where a learner is in Zab (its ``value`` is what the admin views show)."""

    DISCOVERY = "discovery"  # info sent, waiting for LEADERINFO
    SYNC = "sync"  # ACKEPOCH sent, waiting for DIFF/TRUNC/SNAP then history
    NEWLEADER = "newleader"  # NEWLEADER seen, waiting for UPTODATE
    BROADCAST = "broadcast"  # serving
    DONE = "done"


#: The phases that follow discovery, while the connection lasts.
SYNCED_OR_SYNCING = (Phase.SYNC, Phase.NEWLEADER, Phase.BROADCAST)


@dataclass(frozen=True, slots=True)
class Send:
    """Write this packet to the leader."""

    packet: QuorumPacket


@dataclass(frozen=True, slots=True)
class Close:
    """Close the connection to the leader."""


@dataclass(frozen=True, slots=True)
class Exit:
    """The role is over: the peer goes back to LOOKING."""

    reason: str


@dataclass(frozen=True, slots=True)
class Serving:
    """UPTODATE is acknowledged: the peer may serve clients."""


@dataclass(frozen=True, slots=True)
class Synced:
    """A SYNC packet: the oldest sync this peer forwarded is complete."""


@dataclass(frozen=True, slots=True)
class Revalidated:
    """The leader's answer about a session this peer asked after."""

    answer: Callable[[bool], None]
    valid: bool


Effect = Send | Close | Exit | Serving | Synced | Revalidated


def packet_name(kind: int) -> str:
    """A packet type's name for messages (its number when it has none)."""
    try:
        return PacketType(kind).name
    except ValueError:
        return str(kind)
