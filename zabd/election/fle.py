# -*- test-case-name: tests.unit.test_fle -*-
"""Fast Leader Election as a sans-IO state machine (protocol doc sections 5.3 and 5.4).

One object lives as long as its peer and plays both of ZooKeeper 3.8's FLE
threads: the WorkerReceiver, which answers notifications in every state, and
the ``lookForLeader`` loop, which runs while the peer is LOOKING. Calls go in
(:meth:`look`, :meth:`receive`, :meth:`timer_fired`, :meth:`settled`) and a
list of effects comes out (:mod:`zabd.election.votes`): notifications to
send, the one election timer to arm, the decision, a reconnect request.

Java's blocking polls become that timer. ``recvqueue.poll(notTimeout)`` is
the poll timer, re-armed after each notification the loop takes; it starts
at 200 ms and doubles on every empty poll up to the cap. The finalizeWait
step ("a quorum agrees, wait 200 ms for anything better") is the same timer
armed for 200 ms: a better notification ends the wait and is taken as usual,
anything else is consumed and forgotten (as 3.8 does) and the wait starts
over, and the timer firing decides. A notification to myself, which 3.8
puts on its own receive queue, is taken right after the current one.
"""
from __future__ import annotations

from collections import deque
from collections.abc import Mapping

from twisted.logger import Logger

from zabd.election.messages import CURRENT_VERSION, Notification, PeerState
from zabd.election.votes import ArmTimer, Decided, Effect, NewerConfig, ReconnectAll, Send, Vote, VoterSet
from zabd.java.limits import LONG_MIN
from zabd.election.votes import beats, config_version, leader_confirmed, supporters, vote_of

log = Logger()

FINALIZE_WAIT_MS = 200  # FastLeaderElection.finalizeWait, also the default first poll timeout
MAX_NOTIFICATION_INTERVAL_MS = 60_000  # zookeeper.fastleader.maxNotificationInterval default


class FastLeaderElection:
    """The election state of one peer; see the module docstring for the mapping to 3.8."""

    def __init__(self, myid: int, voters: VoterSet, *, observer: bool = False,
                 finalize_wait_ms: int = FINALIZE_WAIT_MS,
                 max_notification_interval_ms: int = MAX_NOTIFICATION_INTERVAL_MS,
                 min_notification_interval_ms: int | None = None) -> None:
        self._myid = myid
        self._voters = voters
        self._observer = observer
        self._finalize_wait_ms = finalize_wait_ms
        # zookeeper.fastleader.minNotificationInterval defaults to finalizeWait
        self._min_interval_ms = min_notification_interval_ms or finalize_wait_ms
        self._max_interval_ms = max_notification_interval_ms
        self._state = PeerState.LOOKING
        self._current_vote: Vote | None = None  # QuorumPeer.currentVote: what settled peers answer with
        self._logical_clock = 0
        self._started = False
        self._initial = Vote(myid, -1, -1, -1)
        self._proposed = self._initial  # election_epoch unused: the round is the logical clock
        self._received: dict[int, Vote] = {}  # recvset: votes of this round
        self._out_of_election: dict[int, Vote] = {}  # settled votes of any round
        self._poll_timeout_ms = self._min_interval_ms
        self._finalizing = False
        self._timer_due_ms: int | None = None
        self._to_myself: deque[Notification] = deque()
        self._newest_config_seen = voters.version
        # per call: time of the call, effects so far, the timer to arm when it returns
        self._now_ms = 0
        self._effects: list[Effect] = []
        self._arm_ms: int | None = None

    # ------------------------------------------------------------------ read-only view

    def set_voters(self, voters: VoterSet, *, observer: bool) -> None:
        """A new config is in force: its voters count from the next notification on."""
        self._voters = voters
        self._observer = observer
        self._newest_config_seen = max(self._newest_config_seen, voters.version)

    @property
    def state(self) -> PeerState:
        return self._state

    @property
    def current_vote(self) -> Vote | None:
        """The vote answered to LOOKING peers once settled; None before the first :meth:`look`."""
        return self._current_vote

    @property
    def logical_clock(self) -> int:
        """The election round (logicalclock)."""
        return self._logical_clock

    @property
    def proposal(self) -> Vote:
        """The vote this peer currently sends while LOOKING."""
        p = self._proposed
        return Vote(p.leader, p.zxid, self._logical_clock, p.peer_epoch)

    # ------------------------------------------------------------------ inputs

    def look(self, now_ms: int, last_logged_zxid: int, current_epoch: int) -> list[Effect]:
        """Start a round: logicalclock + 1, vote for myself, tell every voter."""
        self._begin(now_ms)
        if self._current_vote is None:  # QuorumPeer.startLeaderElection's first vote
            self._current_vote = Vote(self._myid, last_logged_zxid, -1, current_epoch, version=0)
        self._state = PeerState.LOOKING
        self._started = True
        # AtomicLong.incrementAndGet: a peer may have sent Long.MAX_VALUE as its round, and 3.8 wraps.
        self._logical_clock = (self._logical_clock + 1 - LONG_MIN) % (1 << 64) + LONG_MIN
        member = self._myid in self._voters.voting_members
        self._initial = Vote(
            self._myid if member else LONG_MIN,
            LONG_MIN if self._observer else last_logged_zxid,
            -1,
            LONG_MIN if self._observer else current_epoch,
        )
        self._proposed = self._initial
        self._received = {}
        self._out_of_election = {}
        self._poll_timeout_ms = self._min_interval_ms
        self._finalizing = False
        self._to_myself.clear()
        log.info("New election: my id {myid}, zxid 0x{zxid:x}, round 0x{round:x}",
                 myid=self._myid, zxid=self._initial.zxid, round=self._logical_clock)
        self._send_notifications()
        self._arm(self._poll_timeout_ms)
        self._deliver_to_myself()
        return self._finish()

    def receive(self, now_ms: int, sid: int, notification: Notification) -> list[Effect]:
        """A notification from peer ``sid``: WorkerReceiver first, then the election loop if LOOKING."""
        self._begin(now_ms)
        if self._newer_config(sid, notification):
            return self._finish()
        if sid not in self._voters.voting_members:
            # not a voter (an observer): it gets my current vote and nothing else happens
            if self._current_vote is not None:
                self._reply(sid, self._current_vote, self._logical_clock)
        elif self._state != PeerState.LOOKING:
            if notification.state == PeerState.LOOKING and self._current_vote is not None:
                self._reply(sid, self._current_vote, self._current_vote.election_epoch)
        elif not self._started:
            log.debug("Dropping a notification from {sid}: no election started yet", sid=sid)
        else:
            if notification.state == PeerState.LOOKING and notification.election_epoch < self._logical_clock:
                self._reply(sid, self._proposed, self._logical_clock)  # help a peer that is behind
            self._poll(sid, notification)
            self._deliver_to_myself()
        return self._finish()

    def timer_fired(self, now_ms: int, any_delivered: bool) -> list[Effect]:
        """The armed timer expired: decide after finalizeWait, or handle an empty poll.

        ``any_delivered`` is QuorumCnxManager.haveDelivered() (see
        ElectionNetwork.any_delivered): some peer's queue is empty, so my vote
        goes out again and peers that have decided answer with theirs; if
        every queue still holds a payload, no peer is linked: 3.8 reconnects.
        """
        self._begin(now_ms)
        if self._state != PeerState.LOOKING or not self._started:
            return self._finish()  # a timer left over from before the decision
        if self._timer_due_ms is not None and now_ms < self._timer_due_ms:
            self._arm(self._timer_due_ms - now_ms)  # fired early (clock rounding): wait the rest
            return self._finish()
        if self._finalizing:
            p = self._proposed
            self._decide(Vote(p.leader, p.zxid, self._logical_clock, p.peer_epoch))
            return self._finish()
        if any_delivered:
            self._send_notifications()
        else:
            self._effects.append(ReconnectAll())
        self._poll_timeout_ms = min(self._poll_timeout_ms * 2, self._max_interval_ms)
        log.info("Notification time out: {timeout_ms} ms", timeout_ms=self._poll_timeout_ms)
        self._arm(self._poll_timeout_ms)
        self._deliver_to_myself()
        return self._finish()

    def settled(self, state: PeerState, vote: Vote) -> None:
        """The peer's current role and vote, e.g. after sync with peer_epoch = the new epoch."""
        if state == PeerState.LOOKING:
            raise ValueError("a peer goes back to LOOKING by calling look()")
        self._state = state
        self._current_vote = vote
        self._finalizing = False
        self._to_myself.clear()

    # ------------------------------------------------------------------ the election loop

    def _poll(self, sid: int, n: Notification) -> None:
        """The loop takes one notification off its queue."""
        if self._finalizing:
            if not beats(vote_of(n), self._proposed, self._voters):
                self._arm(self._finalize_wait_ms)  # consumed and forgotten; the wait starts over
                return
            self._finalizing = False  # something better: back to the main loop with it
        self._arm(self._poll_timeout_ms)
        members = self._voters.voting_members
        if sid not in members or n.leader not in members:
            log.warn("Ignoring notification for sid {leader} from sid {sid}: not a voter", leader=n.leader, sid=sid)
        elif n.state == PeerState.LOOKING:
            self._take_looking(sid, n)
        elif n.state in (PeerState.FOLLOWING, PeerState.LEADING):
            self._take_settled(sid, n)
        # OBSERVING: an observer's vote never counts

    def _take_looking(self, sid: int, n: Notification) -> None:
        if self._initial.zxid == -1 or n.zxid == -1:
            log.debug("Ignoring notification from {sid}: zxid -1 (untrusted empty database)", sid=sid)
            return
        vote = Vote(n.leader, n.zxid, n.election_epoch, n.peer_epoch, version=0)
        if n.election_epoch > self._logical_clock:  # a newer round: join it, forget this one
            self._logical_clock = n.election_epoch
            self._received.clear()
            self._proposed = vote if beats(vote, self._initial, self._voters) else self._initial
            self._send_notifications()
        elif n.election_epoch < self._logical_clock:
            return  # an older round
        elif beats(vote, self._proposed, self._voters):
            self._proposed = vote
            self._send_notifications()
        self._received[sid] = vote
        if self._voters.contains_quorum(supporters(self._received, self.proposal, self._voters)):
            self._finalizing = True
            self._arm(self._finalize_wait_ms)

    def _take_settled(self, sid: int, n: Notification) -> None:
        """receivedFollowingNotification; LEADING is the same (no oracle in zabd)."""
        vote = Vote(n.leader, n.zxid, n.election_epoch, n.peer_epoch, n.state, n.version)
        if n.election_epoch == self._logical_clock:
            # 3.8 records it as a version-0 vote, so it later matches on the leader alone
            self._received[sid] = Vote(n.leader, n.zxid, n.election_epoch, n.peer_epoch, n.state, 0)
            if self._leader_confirmed(self._received, vote):
                self._decide(vote)
                return
        # joining an established ensemble: a quorum must already follow this leader
        self._out_of_election[sid] = vote
        if self._leader_confirmed(self._out_of_election, vote):
            self._logical_clock = n.election_epoch
            self._decide(vote)

    def _leader_confirmed(self, votes: Mapping[int, Vote], vote: Vote) -> bool:
        return leader_confirmed(votes, vote, self._voters, self._myid, self._logical_clock)

    def _decide(self, vote: Vote) -> None:
        if vote.leader == self._myid:
            state = PeerState.LEADING
        else:
            state = PeerState.OBSERVING if self._observer else PeerState.FOLLOWING
        final = Vote(vote.leader, vote.zxid, vote.election_epoch, vote.peer_epoch, state)
        self._state = state
        self._current_vote = final
        self._finalizing = False
        self._to_myself.clear()  # leaveInstance
        self._arm_ms = None
        self._timer_due_ms = None
        self._effects.append(Decided(state, final))
        log.info(
            "Election decided: {state} leader {leader}, zxid 0x{zxid:x}, round 0x{round:x}, peer epoch 0x{epoch:x}",
            state=state.name, leader=final.leader, zxid=final.zxid, round=final.election_epoch, epoch=final.peer_epoch,
        )

    # ------------------------------------------------------------------ plumbing

    def _send_notifications(self) -> None:
        """My proposal to every voter; the copy for myself goes on my own queue."""
        p = self._proposed
        config = self._voters.config_text()
        for sid in sorted(self._voters.voting_members):
            n = Notification(PeerState.LOOKING, p.leader, p.zxid, self._logical_clock, p.peer_epoch,
                             CURRENT_VERSION, config)
            if sid == self._myid:
                self._to_myself.append(n)
            else:
                self._effects.append(Send(sid, n))

    def _deliver_to_myself(self) -> None:
        while self._to_myself and self._state == PeerState.LOOKING:
            self._poll(self._myid, self._to_myself.popleft())

    def _reply(self, sid: int, vote: Vote, election_epoch: int) -> None:
        n = Notification(
            self._state, vote.leader, vote.zxid, election_epoch, vote.peer_epoch,
            CURRENT_VERSION, self._voters.config_text(),
        )
        self._effects.append(Send(sid, n))

    def _newer_config(self, sid: int, n: Notification) -> bool:
        """3.8 takes a newer config from any notification while LOOKING, and starts the election again."""
        version = config_version(n.config) if n.config else None
        if version is None or version <= self._newest_config_seen or self._state != PeerState.LOOKING:
            return False
        self._newest_config_seen = version
        log.info("Peer {sid} has config version 0x{theirs:x}, mine is 0x{mine:x}: taking it",
                 sid=sid, theirs=version, mine=self._voters.version)
        self._effects.append(NewerConfig(sid, n.config))
        return True

    def _begin(self, now_ms: int) -> None:
        self._now_ms = now_ms
        self._effects = []
        self._arm_ms = None

    def _arm(self, delay_ms: int) -> None:
        self._arm_ms = delay_ms
        self._timer_due_ms = self._now_ms + delay_ms

    def _finish(self) -> list[Effect]:
        effects = self._effects
        if self._arm_ms is not None:
            effects.append(ArmTimer(self._arm_ms))
        self._effects = []
        self._arm_ms = None
        return effects
