# -*- test-case-name: tests.unit.test_zab_learnerhandler -*-
"""What the leader's machines ask of the world: a packet out, bytes out, a connection closed.

The leader and its learner handlers never touch a connection. They emit
these records, addressed to the learner's ``PacketLink`` (an address to
them, never called), into an ``EffectSink``. In a peer the sink is
:func:`perform`, which carries each effect out on the spot, so packets
leave in exactly the order the machines decide them; tests pass a sink
that records.
"""
from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from zabd.quorum.packets import QuorumPacket
from zabd.quorum.roles import PacketLink


@dataclass(frozen=True, slots=True)
class Send:
    """One packet to one learner."""

    to: PacketLink
    packet: QuorumPacket


@dataclass(frozen=True, slots=True)
class SendBytes:
    """Bytes written as they are: a packet encoded once for many learners, or a SNAP stream chunk."""

    to: PacketLink
    data: bytes


@dataclass(frozen=True, slots=True)
class Close:
    """Drop the learner's connection."""

    to: PacketLink


LinkEffect = Send | SendBytes | Close


#: Takes the leader's effects, in the order they are decided.
EffectSink = Callable[[LinkEffect], None]


def perform(effect: LinkEffect) -> None:
    """The driver in a peer: carry one effect out on its connection."""
    if isinstance(effect, Send):
        effect.to.send(effect.packet)
    elif isinstance(effect, SendBytes):
        effect.to.send_raw(effect.data)
    else:
        effect.to.close()
