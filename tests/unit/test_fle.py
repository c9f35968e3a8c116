"""Tests for zabd.election.fle: elections in a tiny in-test network, and single-peer rules."""
from __future__ import annotations

import heapq
import random
from collections.abc import Iterable, Mapping, Sequence, Set

import pytest
from twisted.logger import capturedLogs

from zabd.election.fle import FastLeaderElection
from zabd.election.messages import Notification, PeerState
from zabd.election.votes import (
    LONG_MIN,
    ArmTimer,
    Decided,
    Effect,
    ReconnectAll,
    Send,
    Vote,
    config_version,
    same_vote,
)

LOOKING, FOLLOWING, LEADING, OBSERVING = PeerState.LOOKING, PeerState.FOLLOWING, PeerState.LEADING, PeerState.OBSERVING
Z = 0x100000000  # zxid of epoch 1, counter 0


class Majority:
    """A QuorumMaj-like VoterSet over the given participant sids."""

    def __init__(self, sids: Iterable[int], version: int = 0) -> None:
        self._members = frozenset(sids)
        self._version = version

    @property
    def voting_members(self) -> frozenset[int]:
        return self._members

    @property
    def version(self) -> int:
        return self._version

    def contains_quorum(self, sids: Set[int]) -> bool:
        return 2 * len(sids & self._members) > len(self._members)

    def weight(self, sid: int) -> int:
        return 1 if sid in self._members else 0

    def config_text(self) -> bytes:
        lines = [f"server.{s}=127.0.0.1:{2880 + s}:{3880 + s}:participant" for s in sorted(self._members)]
        return "\n".join([*lines, f"version={self._version:x}"]).encode()


class Network:
    """N peers joined by per-link FIFO links with seeded random latency; time jumps to the next event."""

    def __init__(
        self, voters: Sequence[int], *, seed: int = 0, observers: Sequence[int] = (),
        zxids: Mapping[int, int] | None = None, epochs: Mapping[int, int] | None = None,
        max_latency_ms: int = 150,
    ) -> None:
        self.rng = random.Random(seed)
        self.max_latency_ms = max_latency_ms
        self.verifier = Majority(voters)
        self.peers = {s: FastLeaderElection(s, self.verifier) for s in voters}
        self.peers.update({s: FastLeaderElection(s, self.verifier, observer=True) for s in observers})
        self.zxids = {s: (zxids or {}).get(s, Z) for s in self.peers}
        self.epochs = {s: (epochs or {}).get(s, 1) for s in self.peers}
        self.up: set[int] = set()
        self.now = 0
        self.messages: list[tuple[int, int, int, int, Notification]] = []  # (due, seq, src, dst, n)
        self.link_free: dict[tuple[int, int], int] = {}
        self.timers: dict[int, int] = {}
        self.decisions: dict[int, Decided] = {}
        self.armed: dict[int, list[int]] = {s: [] for s in self.peers}
        self.reconnects = 0
        self.seq = 0

    def start(self, *sids: int) -> None:
        self.up.update(sids)  # all at once: a peer's first notifications reach the others starting with it
        for sid in sids:
            self.apply(sid, self.peers[sid].look(self.now, self.zxids[sid], self.epochs[sid]))

    def look_again(self, sid: int) -> None:
        """What a peer does when its leader or its followers do not show up (Zab gives up)."""
        self.decisions.pop(sid, None)
        self.apply(sid, self.peers[sid].look(self.now, self.zxids[sid], self.epochs[sid]))

    def unable_to_sync(self, live: Sequence[int]) -> list[int]:
        """Followers of a peer that is not leading, and leaders without a quorum of followers."""
        state = {s: self.peers[s].state for s in live}
        leader_of = {s: v.leader for s in live if (v := self.peers[s].current_vote) is not None}
        stuck = [s for s in live if state[s] == FOLLOWING and state.get(leader_of[s]) != LEADING]
        for s in live:
            backers = {s, *(t for t in live if state[t] == FOLLOWING and leader_of[t] == s)}
            if state[s] == LEADING and not self.verifier.contains_quorum(backers):
                stuck.append(s)
        return stuck

    def crash(self, sid: int) -> None:
        self.up.discard(sid)
        self.timers.pop(sid, None)

    def apply(self, sid: int, effects: list[Effect]) -> None:
        for effect in effects:
            if isinstance(effect, Send):
                assert effect.sid != sid, "FLE must not send to itself"
                if effect.sid in self.up:
                    link = (sid, effect.sid)
                    due = max(self.now + self.rng.randint(0, self.max_latency_ms), self.link_free.get(link, 0))
                    self.link_free[link] = due
                    self.seq += 1
                    heapq.heappush(self.messages, (due, self.seq, sid, effect.sid, effect.notification))
            elif isinstance(effect, ArmTimer):
                self.timers[sid] = self.now + effect.delay_ms
                self.armed[sid].append(effect.delay_ms)
            elif isinstance(effect, Decided):
                self.decisions[sid] = effect
            elif isinstance(effect, ReconnectAll):
                self.reconnects += 1

    def step(self) -> bool:
        next_timer = min(self.timers.items(), key=lambda kv: (kv[1], kv[0]), default=None)
        if self.messages and (next_timer is None or self.messages[0][0] <= next_timer[1]):
            due, _, src, dst, n = heapq.heappop(self.messages)
            self.now = max(self.now, due)
            if dst in self.up and src in self.up:
                self.apply(dst, self.peers[dst].receive(self.now, src, n))
            return True
        if next_timer is None:
            return False
        sid, due = next_timer
        del self.timers[sid]
        self.now = due
        self.apply(sid, self.peers[sid].timer_fired(self.now, True))
        return True

    def run(self, until_ms: int = 120_000) -> None:
        while self.now <= until_ms and self.step():
            pass

    def leaders(self) -> set[int]:
        return {d.vote.leader for d in self.decisions.values()}


def expected_leader(net: Network, live: Iterable[int]) -> int:
    return max(live, key=lambda s: (net.epochs[s], net.zxids[s], s))


def assert_one_leader(net: Network, live: Sequence[int], leader: int, observers: Sequence[int] = ()) -> None:
    assert set(net.decisions) == {*live, *observers}
    assert net.leaders() == {leader}
    for sid in [*live, *observers]:
        expected = LEADING if sid == leader else OBSERVING if sid in observers else FOLLOWING
        assert net.decisions[sid].state == expected
        assert net.peers[sid].state == expected
        assert net.peers[sid].current_vote == net.decisions[sid].vote


def sends(effects: list[Effect]) -> list[Send]:
    return [e for e in effects if isinstance(e, Send)]


def looking(leader: int, zxid: int = Z, round_: int = 1, epoch: int = 1) -> Notification:
    return Notification(LOOKING, leader, zxid, round_, epoch, config=Majority(range(1, 4)).config_text())


def settled_note(state: PeerState, leader: int, round_: int = 1, epoch: int = 1, zxid: int = Z) -> Notification:
    return Notification(state, leader, zxid, round_, epoch)


# ------------------------------------------------------------------ whole elections


@pytest.mark.parametrize("size", [3, 5])
def test_equal_state_elects_highest_sid(size: int) -> None:
    net = Network(range(1, size + 1), seed=size)
    net.start(*range(1, size + 1))
    net.run()
    assert_one_leader(net, range(1, size + 1), size)
    assert {(d.vote.zxid, d.vote.election_epoch, d.vote.peer_epoch) for d in net.decisions.values()} == {(Z, 1, 1)}


@pytest.mark.parametrize(
    ("zxids", "epochs", "leader"),
    [
        ({1: Z + 9, 2: Z + 3, 3: Z + 2}, {}, 1),  # higher zxid beats higher sid
        ({1: Z + 5, 2: Z + 3, 3: Z + 5}, {}, 3),  # equal zxid: higher sid
        ({1: Z + 1, 2: 2 * Z + 9, 3: Z}, {1: 3, 2: 2, 3: 1}, 1),  # peerEpoch before zxid
        ({1: Z, 2: Z + 7, 3: Z + 7, 4: Z + 6, 5: Z}, {}, 3),
        ({1: Z, 2: Z, 3: Z, 4: Z, 5: Z}, {1: 1, 2: 2, 3: 1, 4: 1, 5: 1}, 2),
    ],
)
def test_highest_epoch_zxid_sid_wins(zxids: dict[int, int], epochs: dict[int, int], leader: int) -> None:
    net = Network(sorted(zxids), seed=7, zxids=zxids, epochs=epochs)
    net.start(*zxids)
    net.run()
    assert_one_leader(net, sorted(zxids), leader)
    assert net.decisions[leader].vote.zxid == zxids[leader]


@pytest.mark.parametrize(("size", "down"), [(3, [3]), (5, [5]), (5, [4, 5])])
def test_majority_elects_with_peers_down(size: int, down: list[int]) -> None:
    live = [s for s in range(1, size + 1) if s not in down]
    net = Network(range(1, size + 1), seed=3)
    net.start(*live)
    net.run()
    assert_one_leader(net, live, max(live))


def test_minority_never_decides_and_backs_off_to_the_cap() -> None:
    net = Network(range(1, 6), seed=4)
    net.start(1, 2)
    net.run(until_ms=20 * 60_000)
    assert net.decisions == {}
    assert net.peers[1].state == LOOKING
    # the poll timeout is re-armed after every notification, so each value shows up several times
    delays = list(dict.fromkeys(net.armed[1]))
    assert delays == [200, 400, 800, 1600, 3200, 6400, 12800, 25600, 51200, 60000]
    assert net.armed[1][-1] == 60_000


def test_late_joiner_follows_the_settled_leader() -> None:
    net = Network(range(1, 4), seed=5, zxids={1: Z, 2: Z, 3: Z + 50})
    net.start(1, 2)
    net.run()
    assert_one_leader(net, [1, 2], 2)
    for sid in (1, 2):  # after sync every peer's vote carries the new epoch (updateElectionVote)
        d = net.decisions[sid]
        net.peers[sid].settled(d.state, Vote(d.vote.leader, d.vote.zxid, d.vote.election_epoch, 2, d.state))
    net.start(3)  # the best zxid, but the ensemble already runs
    net.run()
    assert net.decisions[3].state == FOLLOWING
    assert net.decisions[3].vote.leader == 2 and net.decisions[3].vote.peer_epoch == 2


def test_late_joiner_needs_the_leaders_own_leading_vote() -> None:
    net = Network(range(1, 6), seed=6)
    net.start(1, 2, 3, 4)
    net.run()
    assert_one_leader(net, [1, 2, 3, 4], 4)
    net.crash(4)  # its followers have not noticed yet: they still answer FOLLOWING 4
    net.start(5)
    net.run(until_ms=net.now + 10 * 60_000)
    assert 5 not in net.decisions  # a quorum of followers is not enough (checkLeader)
    assert net.peers[5].state == LOOKING


def test_observer_learns_the_leader_and_never_counts() -> None:
    net = Network(range(1, 4), seed=8, observers=[9])
    net.start(1, 2, 3, 9)
    net.run()
    assert_one_leader(net, [1, 2, 3], 3, observers=[9])

    lonely = Network(range(1, 4), seed=8, observers=[9])
    lonely.start(1, 9)
    lonely.run(until_ms=10 * 60_000)
    assert lonely.decisions == {}


def test_observer_votes_min_long_and_voters_answer_without_counting() -> None:
    verifier = Majority(range(1, 4))
    obs = FastLeaderElection(9, verifier, observer=True)
    out = sends(obs.look(0, Z + 3, 4))
    assert sorted(s.sid for s in out) == [1, 2, 3]
    assert {(s.notification.leader, s.notification.zxid, s.notification.peer_epoch) for s in out} == {
        (LONG_MIN, LONG_MIN, LONG_MIN)
    }
    voter = FastLeaderElection(1, verifier)
    voter.look(0, Z, 1)
    before = voter.proposal
    effects = voter.receive(10, 9, out[0].notification)
    assert effects == [Send(9, Notification(LOOKING, 1, Z, 1, 1, config=verifier.config_text()))]
    assert voter.proposal == before


# ------------------------------------------------------------------ rounds


def test_stale_round_is_answered_and_not_counted() -> None:
    fle = FastLeaderElection(1, Majority(range(1, 4)))
    fle.look(0, Z, 1)
    fle.look(0, Z, 1)  # round 2
    effects = fle.receive(10, 2, looking(3, round_=1))
    assert sends(effects) == [Send(2, Notification(LOOKING, 1, Z, 2, 1, config=Majority(range(1, 4)).config_text()))]
    assert fle.proposal == Vote(1, Z, 2, 1)  # the better but stale vote was dropped
    fle.receive(20, 2, looking(1, round_=1))  # a stale vote for me does not make a quorum
    after = fle.timer_fired(220, True)
    assert not any(isinstance(e, Decided) for e in after)
    assert sorted(s.sid for s in sends(after)) == [2, 3]  # an empty poll: notifications again


def test_higher_round_restarts_from_my_initial_vote() -> None:
    fle = FastLeaderElection(1, Majority(range(1, 6)))
    fle.look(0, Z, 1)
    fle.receive(10, 2, looking(5))
    assert fle.proposal.leader == 5
    effects = fle.receive(20, 3, looking(3, round_=3))
    assert fle.logical_clock == 3
    assert fle.proposal == Vote(3, Z, 3, 1)  # max(my initial vote, the new one), not the old 5
    assert {(s.notification.leader, s.notification.election_epoch) for s in sends(effects)} == {(3, 3)}


@pytest.mark.parametrize("newer_round_in_between", [False, True])
def test_higher_round_forgets_settled_votes(newer_round_in_between: bool) -> None:
    fle = FastLeaderElection(1, Majority(range(1, 6)))
    fle.look(0, Z, 1)
    fle.receive(10, 2, settled_note(FOLLOWING, 5, epoch=1))
    fle.receive(20, 3, settled_note(FOLLOWING, 5, epoch=1))
    round_ = 1
    if newer_round_in_between:
        round_ = 2
        fle.receive(30, 4, looking(4, round_=2))
    # the leader's vote already carries its new epoch, so only this round's records match it
    effects = fle.receive(40, 5, settled_note(LEADING, 5, round_=round_, epoch=2))
    decided = [e for e in effects if isinstance(e, Decided)]
    if newer_round_in_between:
        assert decided == [] and fle.state == LOOKING
    else:
        assert decided == [Decided(FOLLOWING, Vote(5, Z, 1, 2, FOLLOWING))]


def test_settled_peer_answers_looking_with_its_current_vote() -> None:
    verifier = Majority(range(1, 4))
    fle = FastLeaderElection(2, verifier)
    fle.look(0, Z, 1)
    fle.receive(0, 3, looking(3))
    decided = fle.timer_fired(200, True)
    assert decided == [Decided(FOLLOWING, Vote(3, Z, 1, 1, FOLLOWING))]
    fle.settled(FOLLOWING, Vote(3, Z, 1, 2, FOLLOWING))
    assert fle.receive(500, 1, looking(1, round_=7)) == [
        Send(1, Notification(FOLLOWING, 3, Z, 1, 2, config=verifier.config_text()))
    ]
    assert fle.receive(510, 1, settled_note(FOLLOWING, 3)) == []
    assert fle.timer_fired(600, True) == []  # a timer left over from the election
    with pytest.raises(ValueError):
        fle.settled(LOOKING, Vote(3, Z, 1, 2))


# ------------------------------------------------------------------ timers


def test_better_vote_inside_finalize_wait_changes_the_outcome() -> None:
    def peer_after_quorum_for_2() -> FastLeaderElection:
        fle = FastLeaderElection(1, Majority(range(1, 4)))
        fle.look(0, Z, 1)
        assert fle.receive(0, 2, looking(2))[-1] == ArmTimer(200)  # {1, 2} agree: finalizeWait
        return fle

    quiet = peer_after_quorum_for_2()
    assert quiet.timer_fired(200, True) == [Decided(FOLLOWING, Vote(2, Z, 1, 1, FOLLOWING))]

    interrupted = peer_after_quorum_for_2()
    effects = interrupted.receive(150, 3, looking(3))
    assert {s.notification.leader for s in sends(effects)} == {3} and effects[-1] == ArmTimer(200)
    assert interrupted.timer_fired(350, True) == [Decided(FOLLOWING, Vote(3, Z, 1, 1, FOLLOWING))]


def test_worse_vote_inside_finalize_wait_is_consumed_and_restarts_it() -> None:
    fle = FastLeaderElection(1, Majority(range(1, 4)))
    fle.look(0, Z, 1)
    fle.receive(0, 3, looking(3))
    assert fle.receive(150, 2, looking(2)) == [ArmTimer(200)]  # not better: nothing sent
    assert fle.timer_fired(200, True) == [ArmTimer(150)]  # the old deadline: wait the rest
    assert fle.timer_fired(350, True) == [Decided(FOLLOWING, Vote(3, Z, 1, 1, FOLLOWING))]


def test_notification_timeout_doubles_to_the_cap_and_reconnects() -> None:
    fle = FastLeaderElection(1, Majority(range(1, 4)), max_notification_interval_ms=5000)
    now, delays = 0, []
    effects = fle.look(now, Z, 1)
    for _ in range(8):
        timer = effects[-1]
        assert isinstance(timer, ArmTimer)
        now += timer.delay_ms
        delays.append(timer.delay_ms)
        effects = fle.timer_fired(now, True)
        assert sorted(s.sid for s in sends(effects)) == [2, 3]
    assert delays == [200, 400, 800, 1600, 3200, 5000, 5000, 5000]
    assert fle.timer_fired(now + 5000, False) == [ReconnectAll(), ArmTimer(5000)]


@pytest.mark.parametrize("any_delivered", [True, False])
def test_empty_poll_resends_while_some_queue_is_empty_so_settled_peers_answer(any_delivered: bool) -> None:
    """Issue 15: my votes were lost, 1, 3 and 4 have settled on 4, and 5 is dead (its queue never empties)."""
    fle = FastLeaderElection(2, Majority(range(1, 6)))
    fle.look(0, Z, 1)
    effects = fle.timer_fired(200, any_delivered)
    if not any_delivered:  # no peer took anything: 3.8 only dials, and nothing can answer
        assert effects == [ReconnectAll(), ArmTimer(400)]
        return
    assert effects == [*(Send(sid, Notification(LOOKING, 2, Z, 1, 1, config=Majority(range(1, 6)).config_text()))
                         for sid in (1, 3, 4, 5)), ArmTimer(400)]
    assert fle.receive(210, 1, settled_note(FOLLOWING, 4, epoch=2)) == [ArmTimer(400)]
    assert fle.receive(220, 3, settled_note(FOLLOWING, 4, epoch=2)) == [ArmTimer(400)]
    assert fle.receive(230, 4, settled_note(LEADING, 4, epoch=2)) == [Decided(FOLLOWING, Vote(4, Z, 1, 2, FOLLOWING))]


def test_untrusted_empty_database() -> None:
    fle = FastLeaderElection(1, Majority(range(1, 4)))
    fle.look(0, Z, 1)
    fle.receive(10, 3, looking(3, zxid=-1))
    assert fle.proposal.leader == 1  # a zxid -1 vote is ignored
    empty = FastLeaderElection(2, Majority(range(1, 4)))
    empty.look(0, -1, 0)
    empty.receive(10, 3, looking(3))
    assert empty.proposal == Vote(2, -1, 1, 0)  # with my own zxid -1, I ignore every LOOKING vote

    net = Network(range(1, 4), seed=9, zxids={1: -1})
    net.start(1, 2, 3)
    net.run()
    assert_one_leader(net, [1, 2, 3], 3)  # 1 learns the leader from settled replies only
    two_empty = Network(range(1, 4), seed=9, zxids={1: -1, 2: -1})
    two_empty.start(1, 2, 3)
    two_empty.run(until_ms=10 * 60_000)
    assert two_empty.decisions == {}


def test_newer_config_version_is_logged_once_and_the_vote_still_counts() -> None:
    fle = FastLeaderElection(1, Majority(range(1, 4)))
    fle.look(0, Z, 1)
    newer = Notification(LOOKING, 3, Z, 1, 1, config=Majority(range(1, 4), version=0x10).config_text())
    with capturedLogs() as events:
        fle.receive(10, 3, newer)
        fle.receive(20, 3, newer)
    assert [e.get("theirs") for e in events if "theirs" in e] == [0x10]
    assert fle.proposal.leader == 3


# ------------------------------------------------------------------ properties


@pytest.mark.parametrize("size", [3, 5])
def test_random_delivery_orders_agree_on_one_leader(size: int) -> None:
    for seed in range(200):
        rng = random.Random(seed * 31 + size)
        down = set(rng.sample(range(1, size + 1), rng.randint(0, (size - 1) // 2)))
        live = [s for s in range(1, size + 1) if s not in down]
        zxids = {s: Z * rng.randint(1, 2) + rng.randint(0, 3) for s in range(1, size + 1)}
        observers = [size + 1] if seed % 2 else []
        net = Network(range(1, size + 1), seed=seed, zxids=zxids, observers=observers)
        net.start(*live, *observers)
        net.run()
        assert_one_leader(net, live, expected_leader(net, live), observers)


def test_slow_links_split_votes_that_heal_when_stuck_peers_look_again() -> None:
    """Links slower than finalizeWait can split a round (as in 3.8); Zab's timeouts send the losers back."""
    splits = 0
    for size, seed in [(size, seed) for size in (3, 5) for seed in range(80)]:
        rng = random.Random(seed * 17 + size)
        live = sorted(rng.sample(range(1, size + 1), size - rng.randint(0, (size - 1) // 2)))
        zxids = {s: Z * rng.randint(1, 2) + rng.randint(0, 3) for s in range(1, size + 1)}
        net = Network(range(1, size + 1), seed=seed, zxids=zxids, max_latency_ms=3000)
        net.start(*live)
        net.run()
        splits += bool(net.unable_to_sync(live))
        for _ in range(20):
            stuck = net.unable_to_sync(live)
            if not stuck and all(net.peers[s].state != LOOKING for s in live):
                break
            for sid in stuck:
                net.look_again(sid)
            net.run(until_ms=net.now + 60_000)
        votes = [net.peers[s].current_vote for s in live]
        assert len({v.leader for v in votes if v is not None}) == 1 and net.unable_to_sync(live) == [], seed
        assert all(net.peers[s].state != LOOKING for s in live), seed
    assert splits > 0  # the slow links did split some first rounds


# ------------------------------------------------------------------ vote helpers


def test_same_vote_follows_zookeeper_vote_equals() -> None:
    base = Vote(3, Z, 1, 1, FOLLOWING)
    assert same_vote(base, Vote(3, Z + 9, 7, 1, LEADING))  # settled: leader and peer epoch
    assert not same_vote(base, Vote(3, Z, 1, 2, LEADING))
    assert same_vote(base, Vote(3, Z, 1, 2, LEADING, version=0))  # one version-0 side: leader only
    assert not same_vote(base, Vote(3, Z, 2, 1))  # a LOOKING side: all four numbers
    assert same_vote(Vote(3, Z, 1, 1), Vote(3, Z, 1, 1, FOLLOWING, version=0))


def test_config_version_reads_the_hex_version_line() -> None:
    assert config_version(b"server.1=h:1:2:participant\nversion=1a") == 0x1A
    assert config_version(b"server.1=h:1:2:participant") is None
    assert config_version(b"version=zz") is None
