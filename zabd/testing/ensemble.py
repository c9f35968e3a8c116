"""A whole ensemble in one process: real peers, fake network, one fake clock, memory disks.

``SimEnsemble(seed, voters=3)`` builds QuorumPeers (zabd.ensemble.peer) on a
SimNetwork, each with a SimReplica on its own MemoryDisk. Everything runs
from one Simulation, so a scenario replays exactly from its seed, and an
election or a sync takes milliseconds of real time.

Writes enter at the leader as txns (``write``): this exercises Zab itself,
without the client port or the request pipeline in front of it.
"""
from __future__ import annotations

from collections.abc import Callable

from zabd.core.datatree import OPEN_ACL
from zabd.election.messages import PeerState
from zabd.ensemble.members import LearnerType, QuorumServer
from zabd.ensemble.peer import Cancellable, QuorumPeer, Stream
from zabd.ensemble.verifier import QuorumMaj
from zabd.jute.opcodes import OpCode
from zabd.jute.txns import CreateTxn, SetDataTxn, Txn, TxnHeader
from zabd.quorum.roles import Timing
from zabd.testing.memdisk import MemoryDisk
from zabd.testing.simnet import SimNetwork
from zabd.testing.simreplica import SimReplica
from zabd.testing.simulation import Scope, Simulation

QUORUM_PORT = "quorum"
#: Short ticks keep scenarios quick in virtual time; the limits are ZooKeeper's defaults.
SIM_TIMING = Timing(tick_ms=200, init_limit=10, sync_limit=5)


class _ScopeScheduler:
    def __init__(self, scope: Scope) -> None:
        self.scope = scope

    def call_later(self, delay_ms: int, fn: Callable[[], object]) -> Cancellable:
        return self.scope.call_later(delay_ms, fn)


class _SimQuorumNetwork:
    def __init__(self, net: SimNetwork, scope: Scope, node: int) -> None:
        self.net = net
        self.scope = scope
        self.node = node

    def connect(self, sid: int, connected: Callable[[Stream], None], failed: Callable[[], None]) -> None:
        end = self.net.connect(self.node, sid, QUORUM_PORT)
        if end is None:
            self.scope.call_later(1, failed)
        else:
            end.on_open = lambda: connected(end)
            end.on_close = failed


class SimEnsemble:
    def __init__(self, seed: int, voters: int = 3, observers: int = 0, *, timing: Timing = SIM_TIMING,
                 commit_log_count: int = 500) -> None:
        self.sim = Simulation(seed)
        self.net = SimNetwork(self.sim)
        self.timing = timing
        self.commit_log_count = commit_log_count
        members = [
            QuorumServer(sid, ("127.0.0.1", 2887 + sid), ("127.0.0.1", 3887 + sid),
                         LearnerType.OBSERVER if sid > voters else LearnerType.PARTICIPANT)
            for sid in range(1, voters + observers + 1)
        ]
        self.verifier = QuorumMaj(members)
        self.sids = [member.sid for member in members]
        self.disks = {sid: MemoryDisk(self.sim.rng) for sid in self.sids}
        self.peers: dict[int, QuorumPeer] = {}
        self.scopes: dict[int, Scope] = {}
        self.down: set[int] = set()
        self._cxid = 0

    # -- life of peers -------------------------------------------------------

    def start(self, *sids: int) -> None:
        for sid in sids or self.sids:
            self._boot(sid)

    def _boot(self, sid: int) -> None:
        scope = self.sim.scope(f"peer{sid}")
        self.scopes[sid] = scope
        replica = SimReplica(scope, self.disks[sid], commit_log_count=self.commit_log_count)
        box: list[QuorumPeer] = []
        election = self.net.election(sid, lambda src, payload: box[0].election_message(src, payload), self.sids)
        peer = QuorumPeer(
            sid, self.verifier, replica, _ScopeScheduler(scope), lambda: self.sim.now_ms, self.timing,
            election, _SimQuorumNetwork(self.net, scope, sid),
            observer=sid in self.verifier.observing_members,
        )
        box.append(peer)
        self.peers[sid] = peer
        self.net.listen(sid, QUORUM_PORT, peer.quorum_connection)
        self.down.discard(sid)
        peer.start()

    def crash(self, sid: int) -> None:
        """kill -9: the process's calls stop, its connections break, unsynced bytes are lost."""
        self.scopes[sid].kill()
        self.peers[sid].stopped = True
        self.net.crash(sid)
        self.disks[sid].crash()
        self.down.add(sid)

    def restart(self, sid: int) -> None:
        self.net.restart(sid)
        self._boot(sid)

    # -- observation ---------------------------------------------------------

    def leader(self) -> int | None:
        """The serving leader, if exactly one peer leads and serves."""
        leading = [sid for sid, peer in self.live_peers().items()
                   if peer.state is PeerState.LEADING and peer.serving]
        return leading[0] if len(leading) == 1 else None

    def live_peers(self) -> dict[int, QuorumPeer]:
        return {sid: peer for sid, peer in self.peers.items() if sid not in self.down}

    def all_serving(self, sids: list[int] | None = None) -> bool:
        peers = self.live_peers()
        chosen = sids if sids is not None else list(peers)
        return all(sid in peers and peers[sid].serving for sid in chosen)

    def run_until(self, predicate: Callable[[], bool], within_ms: int = 60_000) -> bool:
        return self.sim.run_until(predicate, self.sim.now_ms + within_ms)

    def settle(self, sids: list[int] | None = None, within_ms: int = 60_000) -> int:
        """Run until one leader serves and so do ``sids`` (default: every live peer)."""
        if not self.run_until(lambda: self.leader() is not None and self.all_serving(sids), within_ms):
            raise AssertionError("the ensemble did not settle:\n" + self.sim.format_trace(last=40))
        leader = self.leader()
        assert leader is not None
        return leader

    def replica(self, sid: int) -> SimReplica:
        replica = self.peers[sid].replica
        assert isinstance(replica, SimReplica)
        return replica

    def digests(self, sids: list[int] | None = None) -> dict[int, tuple[int, int]]:
        """(last processed zxid, tree digest) of each live peer."""
        chosen = sids if sids is not None else list(self.live_peers())
        return {sid: (self.replica(sid).last_processed_zxid, self.replica(sid).tree.digest.value) for sid in chosen}

    # -- writes ----------------------------------------------------------------

    def write(self, count: int = 1, *, prefix: str = "/n") -> list[int]:
        """Propose ``count`` creates (then setData on repeats) at the leader; returns their zxids."""
        leader_sid = self.leader()
        assert leader_sid is not None, "no serving leader to write to"
        leader = self.peers[leader_sid].leader
        assert leader is not None
        zxids = []
        for _ in range(count):
            self._cxid += 1
            zxid = leader.last_proposed + 1
            path = f"{prefix}{self._cxid % 50}"
            header = TxnHeader(0x1234, self._cxid, zxid, self.sim.now_ms, OpCode.create)
            txn: Txn
            if self._cxid <= 50:
                txn = Txn(header, CreateTxn(path, b"v%d" % self._cxid, OPEN_ACL, False, -1))
            else:
                version = (self._cxid - 1) // 50
                txn = Txn(TxnHeader(0x1234, self._cxid, zxid, self.sim.now_ms, OpCode.setData),
                          SetDataTxn(path, b"v%d" % self._cxid, version))
            leader.propose(zxid, txn.to_bytes())
            zxids.append(zxid)
        return zxids

    def committed_everywhere(self, zxid: int, sids: list[int] | None = None) -> bool:
        chosen = sids if sids is not None else list(self.live_peers())
        return all(self.replica(sid).last_processed_zxid >= zxid for sid in chosen)
