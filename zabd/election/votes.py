# -*- test-case-name: tests.unit.test_fle -*-
"""Votes, the voter set and the effects of Fast Leader Election (protocol doc section 5.4).

Pure values shared by :mod:`zabd.election.fle` and its Twisted adapter: what
a vote is, when two votes count as the same (ZooKeeper's ``Vote.equals``),
what the machine asks its caller to do, and the one fact FLE reads from a
notification's config text (its version).
"""
from __future__ import annotations

import re
from collections.abc import Mapping, Set
from dataclasses import dataclass
from typing import Protocol

from zabd.java.limits import LONG_MIN  # Long.MIN_VALUE: the id, zxid and epoch of an observer's vote
from zabd.election.messages import CURRENT_VERSION, Notification, PeerState

_JAVA_HEX = re.compile(rb"[+-]?[0-9a-fA-F]+")  # what Long.parseLong(text, 16) takes


class VoterSet(Protocol):
    """The quorum verifier FLE counts with (zabd/ensemble provides it)."""

    @property
    def voting_members(self) -> frozenset[int]:
        """Sids of the participants."""

    @property
    def version(self) -> int:
        """The config version (``version=`` in the dynamic config, hex there)."""

    def contains_quorum(self, sids: Set[int]) -> bool:
        """Do these voting sids make a quorum?"""

    def weight(self, sid: int) -> int:
        """A candidate of weight 0 never wins a comparison."""

    def config_text(self) -> bytes:
        """The QuorumVerifier text sent in every notification's config field."""


@dataclass(frozen=True, slots=True)
class Vote:
    """One peer's vote: whom it backs, that candidate's zxid and epoch, and in which round.

    ``version`` is the notification format the vote came in; it only matters to
    :func:`same_vote`, which ZooKeeper relaxes when exactly one side has version 0.
    """

    leader: int
    zxid: int
    election_epoch: int
    peer_epoch: int
    state: PeerState = PeerState.LOOKING
    version: int = CURRENT_VERSION


def same_vote(a: Vote, b: Vote) -> bool:
    """ZooKeeper's Vote.equals, the test used when votes are counted.

    A LOOKING vote on either side must match in all four numbers. Two settled
    votes match on leader and peerEpoch, or on leader alone when exactly one
    of them is a version-0 vote (FLE records settled votes of its own round
    as version 0, so those compare by leader only: ZOOKEEPER-1732).
    """
    if a.state == PeerState.LOOKING or b.state == PeerState.LOOKING:
        return (a.leader, a.zxid, a.election_epoch, a.peer_epoch) == (
            b.leader, b.zxid, b.election_epoch, b.peer_epoch
        )
    if (a.version > 0) != (b.version > 0):
        return a.leader == b.leader
    return a.leader == b.leader and a.peer_epoch == b.peer_epoch


def supporters(votes: Mapping[int, Vote], target: Vote, voters: VoterSet) -> frozenset[int]:
    """The voting sids whose recorded vote counts as ``target`` (SyncedLearnerTracker.addAck)."""
    members = voters.voting_members
    return frozenset(sid for sid, vote in votes.items() if sid in members and same_vote(target, vote))


def vote_of(n: Notification) -> Vote:
    """The vote a notification carries."""
    return Vote(n.leader, n.zxid, n.election_epoch, n.peer_epoch, n.state, n.version)


def leader_confirmed(votes: Mapping[int, Vote], vote: Vote, voters: VoterSet, myid: int, round_: int) -> bool:
    """A quorum backs ``vote``, and 3.8's checkLeader passes: the leader itself says it leads,
    or, when I am the leader, the vote is of my round."""
    if not voters.contains_quorum(supporters(votes, vote, voters)):
        return False
    if vote.leader != myid:
        # the leader itself must say it leads, or peers would follow a crashed one forever
        theirs = votes.get(vote.leader)
        return theirs is not None and theirs.state == PeerState.LEADING
    return round_ == vote.election_epoch


def beats(candidate: Vote, current: Vote, voters: VoterSet) -> bool:
    """FastLeaderElection.totalOrderPredicate with its weight check.

    Higher peerEpoch, then higher zxid, then higher sid wins; a candidate of
    weight 0 never does. Election epochs and states play no part.
    """
    if voters.weight(candidate.leader) == 0:
        return False
    return (candidate.peer_epoch, candidate.zxid, candidate.leader) > (
        current.peer_epoch, current.zxid, current.leader
    )


def config_version(config: bytes) -> int | None:
    """The ``version=<hex>`` of a notification's config text, or None if there is none.

    3.8 parses the whole config and only logs when that fails; FLE needs
    nothing but the version, so nothing else is read here.
    """
    for line in reversed(config.split(b"\n")):
        key, sep, value = line.strip().partition(b"=")
        if sep and key.strip() == b"version":
            digits = value.strip()
            return int(digits, 16) if _JAVA_HEX.fullmatch(digits) else None
    return None


# --------------------------------------------------------------------------- effects


@dataclass(frozen=True, slots=True)
class Send:
    """Send this notification to peer ``sid`` on the election port (never to myself)."""

    sid: int
    notification: Notification


@dataclass(frozen=True, slots=True)
class ArmTimer:
    """(Re)arm the one election timer: call ``timer_fired`` in ``delay_ms``, replacing any pending call."""

    delay_ms: int


@dataclass(frozen=True, slots=True)
class Decided:
    """The election is over for this peer: it now is ``state`` behind ``vote.leader``."""

    state: PeerState
    vote: Vote


@dataclass(frozen=True, slots=True)
class ReconnectAll:
    """An empty poll found a payload waiting in every send queue: dial every peer (QuorumCnxManager.connectAll)."""


@dataclass(frozen=True, slots=True)
class NewerConfig:
    """A peer sent a newer config while this one is LOOKING: take it and start again (3.8's processReconfig)."""

    sid: int
    config: bytes


Effect = Send | ArmTimer | Decided | ReconnectAll | NewerConfig
