"""A whole ensemble in one process: real peers, fake network, one fake clock, memory disks.

``SimEnsemble(seed, voters=3)`` builds QuorumPeers (zabd.ensemble.peer) on a
SimNetwork, each with a SimReplica on its own MemoryDisk. Everything runs
from one Simulation, so a scenario replays exactly from its seed, and an
election or a sync takes milliseconds of real time.

Each peer's ServingSwitch puts the right server (leader or follower) in
front of it once it serves; ``write`` submits requests to the leader's, and
tests can connect clients to any peer's server.
"""
from __future__ import annotations

import struct
from collections.abc import Callable

from zabd.core.datatree import OPEN_ACL
from zabd.election.messages import PeerState
from zabd.membership.members import LearnerType, QuorumServer
from zabd.ensemble.peer import QuorumPeer
from zabd.ensemble.transport import Cancellable, Stream
from zabd.membership.verifier import QuorumMaj, QuorumVerifier
from zabd.jute.opcodes import OpCode
from zabd.jute.records import CreateRequest, SetDataRequest
from zabd.jute.schema import encode
from zabd.pipeline.request import Request
from zabd.quorum.roles import Timing
from zabd.testing.memdisk import MemoryDisk
from zabd.testing.simelection import SimElectionNetwork
from zabd.testing.simnet import SimNetwork
from zabd.testing.simreplica import SimReplica
from zabd.pipeline.context import Settings
from zabd.serving.server import ClientServer, ServerOptions
from zabd.election.links import MessageHandler
from zabd.peer.assembly import PeerParts, PeerSpec, assemble_peer
from zabd.peer.switch import ServingSwitch
from zabd.testing.simulation import Scope, Simulation

QUORUM_PORT = "quorum"
#: Short ticks keep scenarios quick in virtual time; the limits are ZooKeeper's defaults.
SIM_TIMING = Timing(tick_ms=200, init_limit=10, sync_limit=5)


def sim_member(sid: int, *, observer: bool = False) -> QuorumServer:
    """Member ``sid`` of a simulated ensemble (the addresses only name it: the network routes by sid)."""
    kind = LearnerType.OBSERVER if observer else LearnerType.PARTICIPANT
    return QuorumServer(sid, ("127.0.0.1", 2887 + sid), ("127.0.0.1", 3887 + sid), kind,
                        ("127.0.0.1", 1880 + sid))


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


class _SimPeerOwner:
    """Keeps what one run of a simulated peer learns of configs, as its zoo.cfg.dynamic files would."""

    def __init__(self, ensemble: SimEnsemble, sid: int, verifier: QuorumVerifier) -> None:
        self.ensemble = ensemble
        self.sid = sid
        self.verifier = verifier
        self.election: SimElectionNetwork | None = None

    def election_links(self, deliver: MessageHandler) -> SimElectionNetwork:
        self.election = self.ensemble.net.election(self.sid, deliver, list(self.verifier.all_members))
        return self.election

    def serving_changed(self, peer: QuorumPeer) -> None:
        pass  # the switch follows the peer; nobody else here needs to

    def config_changed(self, new: QuorumVerifier, in_force: bool) -> None:
        ensemble, sid = self.ensemble, self.sid
        (ensemble.configs if in_force else ensemble.seen)[sid] = new
        if in_force and self.election is not None:
            self.election.peers = tuple(member for member in new.all_members if member != sid)


#: Makes each run's replica: (sid, the run's scope, its disk, commitLogCount) -> replica.
ReplicaFactory = Callable[[int, Scope, MemoryDisk, int], SimReplica]


def sim_replica(sid: int, scope: Scope, disk: MemoryDisk, commit_log_count: int) -> SimReplica:
    return SimReplica(scope, disk, commit_log_count=commit_log_count)


class SimEnsemble:
    """A whole ensemble in one process on the simulated network, clock and disk, replayable from its seed."""

    def __init__(self, seed: int, voters: int = 3, observers: int = 0, *, timing: Timing = SIM_TIMING,
                 commit_log_count: int = 500, observers_log: bool = True, reconfig_enabled: bool = False,
                 replica_factory: ReplicaFactory = sim_replica) -> None:
        self.sim = Simulation(seed)
        self.replica_factory = replica_factory
        self.net = SimNetwork(self.sim)
        self.timing = timing
        self.commit_log_count = commit_log_count
        self.observers_log = observers_log
        self.reconfig_enabled = reconfig_enabled
        members = [sim_member(sid, observer=sid > voters) for sid in range(1, voters + observers + 1)]
        self.verifier = QuorumMaj(members)
        self.sids = [member.sid for member in members]
        self.disks = {sid: MemoryDisk(self.sim.rng) for sid in self.sids}
        #: Each peer's config in force and last seen, as its zoo.cfg.dynamic files would keep them.
        self.configs: dict[int, QuorumVerifier] = {}
        self.seen: dict[int, QuorumVerifier] = {}
        self.peers: dict[int, QuorumPeer] = {}
        self.switches: dict[int, ServingSwitch] = {}
        self.scopes: dict[int, Scope] = {}
        self.down: set[int] = set()
        self._cxid = 0
        self._session: int | None = None

    # -- life of peers -------------------------------------------------------

    def start(self, *sids: int) -> None:
        for sid in sids or self.sids:
            self._boot(sid)

    def _boot(self, sid: int) -> None:
        scope = self.sim.scope(f"peer{sid}")
        self.scopes[sid] = scope
        replica = self.replica_factory(sid, scope, self.disks[sid], self.commit_log_count)
        verifier = self.configs.setdefault(sid, self.verifier)
        owner = _SimPeerOwner(self, sid, verifier)
        # One registry per process, as a twistd peer has: the peer and every server it runs.
        options = self.server_options(sid)
        switch = ServingSwitch(options, lambda: self.sim.now_ms / 1000.0)
        spec = PeerSpec(sid, verifier, self.timing, observer=sid in verifier.observing_members,
                        observer_logs=self.observers_log, last_seen=self.seen.get(sid))
        parts = PeerParts(replica, _ScopeScheduler(scope), lambda: self.sim.now_ms, owner.election_links,
                          _SimQuorumNetwork(self.net, scope, sid),
                          lambda accept: self.net.listen(sid, QUORUM_PORT, accept), options.metrics, switch)
        peer = assemble_peer(spec, parts, owner).peer
        self.peers[sid] = peer
        self.switches[sid] = switch
        self._expire_sessions_every_tick(scope, switch)
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

    def server_options(self, sid: int) -> ServerOptions:
        tick = self.timing.tick_ms
        return ServerOptions(tick_ms=tick, min_session_timeout_ms=2 * tick, max_session_timeout_ms=20 * tick,
                             server_id=sid, settings=Settings(reconfig_enabled=self.reconfig_enabled))

    def _expire_sessions_every_tick(self, scope: Scope, switch: ServingSwitch) -> None:
        def tick() -> None:
            if switch.server is not None:
                switch.server.expire_sessions()
            scope.call_later(self.timing.tick_ms, tick)

        scope.call_later(self.timing.tick_ms, tick)

    def server(self, sid: int) -> ClientServer | None:
        """The server answering clients on ``sid`` (None while it does not serve)."""
        return self.switches[sid].server if sid not in self.down else None

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
        """Submit ``count`` writes at the leader, through its request pipeline; returns their zxids.

        The first 50 create ``prefix0`` .. ``prefix49``; later ones set their data.
        """
        leader_sid = self.leader()
        assert leader_sid is not None, "no serving leader to write to"
        server = self.server(leader_sid)
        assert server is not None
        session = self._writer_session(server)
        zxids = []
        for _ in range(count):
            self._cxid += 1
            path = f"{prefix}{self._cxid % 50}"
            data = b"v%d" % self._cxid
            if self._cxid <= 50:
                kind, payload = OpCode.create, encode(CreateRequest(path, data, OPEN_ACL, 0))
            else:
                kind, payload = OpCode.setData, encode(SetDataRequest(path, data, -1))
            request = Request(session, self._cxid, kind, payload, None, received_ms=server.ctx.now_ms())
            server.submit(request)
            assert request.txn is not None
            zxids.append(request.txn.header.zxid)
        return zxids

    def _writer_session(self, server: ClientServer) -> int:
        """A session for ``write`` (created again if it expired while nobody wrote)."""
        now = int(server.ctx.now_ms())
        if self._session is not None and server.ctx.sessions.touch(self._session, now):
            return self._session
        timeout = 20 * self.timing.tick_ms
        session = server.ctx.sessions.create(timeout, now)
        server.submit(Request(session, 0, OpCode.createSession, struct.pack(">i", timeout), None,
                              received_ms=server.ctx.now_ms()))
        self._session = session
        return session

    def committed_everywhere(self, zxid: int, sids: list[int] | None = None) -> bool:
        chosen = sids if sids is not None else list(self.live_peers())
        return all(self.replica(sid).last_processed_zxid >= zxid for sid in chosen)
