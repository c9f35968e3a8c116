"""Real QuorumPeers on real loopback TCP in one process: elect, replicate, fail over.

    python -m zabd.harness.loopback_ensemble --peers 3 --writes 200

Each peer has its own election port (ElectionPortFactory), quorum port
(QuorumPortFactory), dialler (ReactorQuorumNetwork) and scheduler on the one
reactor, and a MemoryReplica (zabd.harness.memreplica). The run waits for a serving leader
with every peer synced, proposes ``--writes`` creates at the leader, checks
that every peer holds the same (last zxid, tree digest), stops the leader,
waits for another leader to serve, writes and checks again, and prints one
JSON line. It exits non-zero on any failure. zabd.testing.ensemble runs the
same peers on a simulated network; this run proves the Twisted adapters.
"""
from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from twisted.internet.defer import Deferred, DeferredList, ensureDeferred, maybeDeferred
from twisted.internet.interfaces import IAddress, IListeningPort
from twisted.internet.protocol import Factory, Protocol
from twisted.internet.task import deferLater, react
from twisted.logger import globalLogBeginner, textFileLogObserver

from zabd.core.datatree import OPEN_ACL
from zabd.election.messages import PeerState
from zabd.membership.members import QuorumServer
from zabd.ensemble.peer import QuorumPeer
from zabd.membership.verifier import QuorumMaj
from zabd.jute.opcodes import OpCode
from zabd.jute.txns import CreateTxn, Txn, TxnHeader
from zabd.quorum.roles import Timing
from zabd.election.links import MessageHandler
from zabd.metrics.server import ServerMetrics
from zabd.peer.assembly import PeerParts, PeerSpec, Unowned, assemble_peer
from zabd.harness.memreplica import MemoryReplica
from zabd.server.election_port import ElectionPortFactory
from zabd.server.quorum_port import QuorumPortFactory, QuorumReactor, ReactorQuorumNetwork, ReactorScheduler

#: Short ticks so that a whole run takes seconds; the limits are ZooKeeper's defaults.
LOOPBACK_TIMING = Timing(tick_ms=200, init_limit=10, sync_limit=5)
HOST = "127.0.0.1"
POLL_S = 0.01
SESSION_ID = 0x5EED


class _LateFactory(Factory):
    """Listens before the real factory exists, so every port is bound (port 0) before any address is handed out."""

    noisy = False

    def __init__(self) -> None:
        self.build: Callable[[IAddress | None], Protocol | None] = lambda addr: None

    def buildProtocol(self, addr: IAddress | None) -> Protocol | None:
        return self.build(addr)


def _stop_listening(port: IListeningPort) -> Deferred[None]:
    stopped = maybeDeferred(port.stopListening)  # a Deferred or None, by reactor
    return stopped.addCallback(lambda _: None)


@dataclass(slots=True)
class LoopbackPeer:
    """One peer of a loopback ensemble, with the ports and dialler that stop with it."""

    peer: QuorumPeer
    replica: MemoryReplica
    election: ElectionPortFactory
    quorum_port: QuorumPortFactory
    network: ReactorQuorumNetwork
    listening: list[IListeningPort]

    def stop(self) -> Deferred[Any]:
        """Stop the peer and close its ports and connections, as a process exit would."""
        self.peer.stop()
        self.network.stop()
        stops = [self.election.stop(), self.quorum_port.stop()]
        stops += [_stop_listening(port) for port in self.listening]
        return DeferredList(stops)


class LoopbackEnsemble:
    """Real QuorumPeers on loopback TCP in this process, with memory replicas, to elect, write and fail over."""

    def __init__(self, reactor: QuorumReactor, count: int, timing: Timing = LOOPBACK_TIMING) -> None:
        self.reactor = reactor
        self.timing = timing
        bound = {sid: (_LateFactory(), _LateFactory()) for sid in range(1, count + 1)}
        ports = {sid: (reactor.listenTCP(0, q, interface=HOST), reactor.listenTCP(0, e, interface=HOST))
                 for sid, (q, e) in bound.items()}
        quorum_addrs = {sid: (HOST, q.getHost().port) for sid, (q, _) in ports.items()}  # type: ignore[attr-defined]
        election_addrs = {sid: (HOST, e.getHost().port) for sid, (_, e) in ports.items()}  # type: ignore[attr-defined]
        self.verifier = QuorumMaj(QuorumServer(sid, quorum_addrs[sid], election_addrs[sid]) for sid in bound)
        self.peers = {sid: self._build_peer(sid, quorum_addrs, election_addrs, ports[sid], bound[sid])
                      for sid in bound}
        self.down: set[int] = set()
        self._cxid = 0

    def _build_peer(self, sid: int, quorum_addrs: dict[int, tuple[str, int]],
                    election_addrs: dict[int, tuple[str, int]], listening: tuple[IListeningPort, IListeningPort],
                    late: tuple[_LateFactory, _LateFactory]) -> LoopbackPeer:
        scheduler = ReactorScheduler(self.reactor)
        replica = MemoryReplica(scheduler)

        def election_links(deliver: MessageHandler) -> ElectionPortFactory:
            return ElectionPortFactory(sid, f"{HOST}:{election_addrs[sid][1]}", election_addrs, deliver, self.reactor)

        network = ReactorQuorumNetwork(self.reactor, quorum_addrs, self.timing.init_ms)
        parts = PeerParts(replica, scheduler, scheduler.now_ms, election_links, network,
                          lambda accept: QuorumPortFactory(accept, self.reactor), ServerMetrics())
        assembled = assemble_peer(PeerSpec(sid, self.verifier, self.timing), parts, Unowned())
        election, quorum_port = assembled.election, assembled.quorum_listener
        late[0].build, late[1].build = quorum_port.buildProtocol, election.buildProtocol
        return LoopbackPeer(assembled.peer, replica, election, quorum_port, network, list(listening))

    def live(self) -> dict[int, LoopbackPeer]:
        return {sid: p for sid, p in self.peers.items() if sid not in self.down}

    def leader(self) -> int | None:
        """The serving leader, when exactly one live peer leads and every live peer serves."""
        live = self.live()
        leading = [sid for sid, p in live.items() if p.peer.state is PeerState.LEADING and p.peer.serving]
        if len(leading) == 1 and all(p.peer.serving for p in live.values()):
            return leading[0]
        return None

    def write(self, count: int, prefix: str) -> int:
        """Propose ``count`` creates at the serving leader; returns the last zxid."""
        sid = self.leader()
        leader = self.peers[sid].peer.leader if sid is not None else None
        if leader is None:
            raise RuntimeError("no serving leader to write to")
        now_ms = int(self.reactor.seconds() * 1000)
        for index in range(count):
            self._cxid += 1
            zxid = leader.last_proposed + 1
            header = TxnHeader(SESSION_ID, self._cxid, zxid, now_ms, OpCode.create)
            create = CreateTxn(f"{prefix}{index}", b"%d" % index, OPEN_ACL, False, -1)
            leader.propose(zxid, Txn(header, create).to_bytes())
        return leader.last_proposed

    def digests(self) -> dict[int, tuple[int, int]]:
        return {sid: (p.replica.last_processed_zxid, p.replica.tree.digest.value) for sid, p in self.live().items()}

    def states(self) -> dict[int, str]:
        return {sid: f"{p.peer.state.name}{'' if p.peer.serving else ' (not serving)'}"
                for sid, p in self.live().items()}

    def stop(self, sid: int) -> Deferred[Any]:
        self.down.add(sid)
        return self.peers[sid].stop()

    def stop_all(self) -> Deferred[Any]:
        return DeferredList([self.stop(sid) for sid in list(self.live())])

    async def wait_for(self, predicate: Callable[[], bool], within_s: float, what: str) -> float:
        """Poll ``predicate`` until it holds; returns the ms it took, raises after ``within_s``."""
        start = self.reactor.seconds()
        while not predicate():
            if self.reactor.seconds() - start > within_s:
                raise RuntimeError(f"{what}: not within {within_s} s; states {self.states()}, "
                                   f"(zxid, digest) {self.digests()}")
            await deferLater(self.reactor, POLL_S, lambda: None)  # type: ignore[arg-type]
        return round((self.reactor.seconds() - start) * 1000, 1)

    async def write_and_check(self, count: int, prefix: str, within_s: float) -> dict[int, tuple[int, int]]:
        """Write at the leader, wait until every live peer applied it all; their (zxid, digest) must agree."""
        last = self.write(count, prefix)
        await self.wait_for(lambda: all(z >= last for z, _ in self.digests().values()), within_s,
                            f"{count} writes applied everywhere")
        digests = self.digests()
        if len(set(digests.values())) != 1:
            raise RuntimeError(f"peers differ after {count} writes: {digests}")
        return digests


async def scenario(reactor: QuorumReactor, count: int, writes: int, within_s: float) -> dict[str, Any]:
    ensemble = LoopbackEnsemble(reactor, count)
    try:
        for lp in ensemble.peers.values():
            lp.peer.start()
        election_ms = await ensemble.wait_for(lambda: ensemble.leader() is not None, within_s, "first election")
        first = ensemble.leader()
        assert first is not None
        first_epoch = ensemble.peers[first].peer.epochs_served[-1]
        before = await ensemble.write_and_check(writes, "/a", within_s)
        await ensemble.stop(first)
        failover_ms = await ensemble.wait_for(lambda: ensemble.leader() is not None, within_s, "failover")
        second = ensemble.leader()
        assert second is not None
        second_epoch = ensemble.peers[second].peer.epochs_served[-1]
        if second == first or second_epoch <= first_epoch:
            raise RuntimeError(f"failover from {first} (epoch {first_epoch}) to {second} (epoch {second_epoch})")
        after = await ensemble.write_and_check(writes, "/b", within_s)
        return {
            "peers": count, "writes": writes, "leader": first, "epoch": first_epoch, "election_ms": election_ms,
            "new_leader": second, "new_epoch": second_epoch, "failover_ms": failover_ms,
            "digests_before": before, "digests_after": after,
            "sync_modes": {sid: lp.peer.sync_modes for sid, lp in ensemble.peers.items()},
        }
    finally:
        await ensemble.stop_all()


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--peers", type=int, default=3)
    parser.add_argument("--writes", type=int, default=200)
    parser.add_argument("--within", type=float, default=20.0, help="seconds allowed for each step")
    parser.add_argument("--verbose", action="store_true", help="log to stderr")
    args = parser.parse_args(argv)
    if args.verbose:
        globalLogBeginner.beginLoggingTo([textFileLogObserver(sys.stderr)], redirectStandardIO=False)

    async def run(reactor: QuorumReactor) -> None:
        try:
            result = await scenario(reactor, args.peers, args.writes, args.within)
        except Exception as e:
            print(json.dumps({"error": f"{type(e).__name__}: {e}"}), file=sys.stderr, flush=True)
            raise  # react exits 1
        print(json.dumps(result), flush=True)

    react(lambda reactor: ensureDeferred(run(reactor)))


if __name__ == "__main__":
    main()
