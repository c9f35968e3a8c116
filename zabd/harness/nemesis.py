"""Faults for the black-box test (issue 15, section 4): crashes, pauses and link partitions of real peers.

Every peer-to-peer link goes through a TCP proxy this module runs on
127.0.0.1, so a test can cut the link between two chosen peers and nothing
else. Peer ``i``'s membership names its own real quorum and election ports
and, for every other peer ``j``, the ports of the proxy that forwards
``i -> j``. A cut link stalls, as a partition does: bytes already read wait
in the proxy, connections opened meanwhile are held unconnected, and
everything flows again on heal (unless a side gave up and closed).

The membership sits in a dynamic config file of the same nonzero version on
every peer: 3.8 ignores a leader's config while reconfigEnabled is false,
but zabd puts a newer one in force, and a static config (version 0) is
restamped by each new leader, so followers would take the leader's proxy
addresses. Equal versions keep each peer's own view.

Faults: ``kill`` (SIGKILL), ``pause``/``resume`` (SIGSTOP/SIGCONT),
``cut``/``isolate``/``heal``; ``restart`` starts a dead peer on its data.
"""

from __future__ import annotations

import os
import selectors
import signal
import socket
import struct
import threading
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path

from zabd.harness.commands import LOCALHOST, write_config, zabd_environment
from zabd.harness.ensembleprocs import ENSEMBLE_DEFAULTS, Ensemble, EnsemblePeer, quorum_peer_command
from zabd.harness.peercfg import distinct_free_ports
from zabd.harness.probes import free_port

#: The membership's version: the same on every peer, so that none takes another's.
CONFIG_VERSION = 0x100000000
CHUNK = 65536


class _Link:
    """One unordered pair of peers: up or cut, with the connections through it."""

    def __init__(self) -> None:
        self.up = threading.Event()
        self.up.set()
        self.sockets: set[socket.socket] = set()
        self.lock = threading.Lock()


@dataclass(eq=False)
class _Route:
    """One proxy: where it listens, where it forwards, and for an election link the address the dialer should
    announce (the proxy of the way back), as peers dial a lower sid back at the address it announced."""
    link: _Link
    port: int
    target_port: int
    announce: int | None = None


class ProxyNetwork:
    """TCP proxies between peers; ``cut(a, b)`` stalls every connection between a and b, both ways."""

    def __init__(self) -> None:
        self._selector = selectors.DefaultSelector()
        self._links: dict[frozenset[int], _Link] = {}
        self._closed = threading.Event()
        self._wakeup_r, self._wakeup_w = socket.socketpair()
        self._selector.register(self._wakeup_r, selectors.EVENT_READ, None)
        self._thread = threading.Thread(target=self._accept_loop, name="nemesis-proxy", daemon=True)
        self._thread.start()

    def add(self, source: int, target: int, target_port: int) -> _Route:
        """A proxy for connections ``source`` opens to ``target``'s ``target_port``."""
        link = self._links.setdefault(frozenset((source, target)), _Link())
        listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        while True:
            try:
                listener.bind((LOCALHOST, free_port()))
                break
            except OSError:
                continue
        listener.listen(16)
        listener.setblocking(False)
        route = _Route(link, int(listener.getsockname()[1]), target_port)
        self._selector.register(listener, selectors.EVENT_READ, route)
        self._wakeup_w.send(b"x")
        return route

    def cut(self, a: int, b: int) -> None:
        self._links[frozenset((a, b))].up.clear()

    def heal(self, a: int, b: int) -> None:
        self._links[frozenset((a, b))].up.set()

    def isolate(self, sid: int) -> None:
        for pair in self._links:
            if sid in pair:
                self._links[pair].up.clear()

    def heal_all(self) -> None:
        for link in self._links.values():
            link.up.set()

    def cut_links(self) -> list[tuple[int, int]]:
        return sorted(tuple(sorted(pair)) for pair, link in self._links.items() if not link.up.is_set())  # type: ignore[misc]

    def close(self) -> None:
        self._closed.set()
        self.heal_all()
        self._wakeup_w.send(b"x")
        self._thread.join(5)
        for key in list(self._selector.get_map().values()):
            key.fileobj.close()  # type: ignore[union-attr]
        self._selector.close()
        self._wakeup_w.close()
        for link in self._links.values():
            with link.lock:
                for sock in link.sockets:
                    _close(sock)

    def _accept_loop(self) -> None:
        while not self._closed.is_set():
            for key, _ in self._selector.select(0.5):
                if key.data is None:
                    self._wakeup_r.recv(CHUNK)
                    continue
                try:
                    accepted, _ = key.fileobj.accept()  # type: ignore[union-attr]
                except OSError:
                    continue
                threading.Thread(target=self._connect, args=(key.data, accepted), daemon=True,
                                 name=f"nemesis-conn-{key.data.port}").start()

    def _connect(self, route: _Route, accepted: socket.socket) -> None:
        link = route.link
        accepted.setblocking(True)
        with link.lock:
            link.sockets.add(accepted)
        while not link.up.wait(0.5):  # held, unconnected, while the link is cut
            if self._closed.is_set():
                return _close(accepted)
        try:
            upstream = socket.create_connection((LOCALHOST, route.target_port), timeout=5)
            if route.announce is not None:
                accepted.settimeout(10)
                upstream.sendall(_announcing(accepted, route.announce))
                accepted.settimeout(None)
        except OSError:
            with link.lock:
                link.sockets.discard(accepted)
            return _close(accepted)
        upstream.settimeout(None)
        for sock in (accepted, upstream):
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        with link.lock:
            link.sockets.add(upstream)
        halves = [2]
        threading.Thread(target=self._pump, args=(link, upstream, accepted, halves), daemon=True).start()
        self._pump(link, accepted, upstream, halves)

    def _pump(self, link: _Link, source: socket.socket, sink: socket.socket, halves: list[int]) -> None:
        """Copy ``source`` to ``sink``; hold what was read while the link is cut. The last half closes both."""
        try:
            while True:
                data = source.recv(CHUNK)
                while not link.up.wait(0.5):
                    if self._closed.is_set():
                        raise OSError("closed")
                if not data:
                    sink.shutdown(socket.SHUT_WR)
                    break
                sink.sendall(data)
        except OSError:
            halves[0] = 1  # the other half ends on the closed sockets
        with link.lock:
            halves[0] -= 1
            if halves[0] > 0:
                return
            link.sockets.difference_update((source, sink))
        _close(source)
        _close(sink)


def _read(sock: socket.socket, size: int) -> bytes:
    data = b""
    while len(data) < size:
        chunk = sock.recv(size - len(data))
        if not chunk:
            raise OSError("closed in the election handshake")
        data += chunk
    return data


def _announcing(sock: socket.socket, port: int) -> bytes:
    """Read an election connection's first message (3.8's: protocol version, sid, then the dialer's own
    election address) and return it naming ``port`` on loopback instead; older versions send only the sid."""
    first = _read(sock, 8)
    if struct.unpack(">q", first)[0] >= 0:
        return first
    sid = _read(sock, 8)
    (length,) = struct.unpack(">i", _read(sock, 4))
    _read(sock, length)
    address = f"{LOCALHOST}:{port}".encode()
    return first + sid + struct.pack(">i", len(address)) + address


def _close(sock: socket.socket) -> None:
    try:
        sock.close()
    except OSError:
        pass


def prepare_proxied_ensemble(kind: str, workdir: Path, voters: int = 3, extra_cfg: Mapping[str, str] | None = None,
                             env: Mapping[str, str] | None = None) -> tuple[Ensemble, ProxyNetwork]:
    """Write every peer's zoo.cfg and membership (proxied as the module doc says); start nothing."""
    sids = list(range(1, voters + 1))
    ports = distinct_free_ports(3 * voters)
    client = {sid: ports[3 * n] for n, sid in enumerate(sids)}
    quorum = {sid: ports[3 * n + 1] for n, sid in enumerate(sids)}
    election = {sid: ports[3 * n + 2] for n, sid in enumerate(sids)}
    network = ProxyNetwork()
    routes = {(a, b, kind_): network.add(a, b, (quorum if kind_ == "q" else election)[b])
              for a in sids for b in sids if a != b for kind_ in "qe"}
    for (a, b, kind_), route in routes.items():
        if kind_ == "e":
            route.announce = routes[(b, a, "e")].port
    base_env = dict(env) if env is not None else zabd_environment() if kind == "zabd" else dict(os.environ)
    peers: dict[int, EnsemblePeer] = {}
    for sid in sids:
        peer_dir = Path(workdir) / f"peer{sid}"
        peer_dir.mkdir(parents=True, exist_ok=True)
        lines = []
        for other in sids:
            q, e = (quorum[other], election[other]) if other == sid else (
                routes[(sid, other, "q")].port, routes[(sid, other, "e")].port)
            lines.append(f"server.{other}={LOCALHOST}:{q}:{e}:participant")
        dynamic = peer_dir / f"zoo.cfg.dynamic.{CONFIG_VERSION:x}"
        dynamic.write_text("\n".join(lines) + "\n")
        settings = {**ENSEMBLE_DEFAULTS, "dynamicConfigFile": str(dynamic), **(extra_cfg or {})}
        cfg = write_config(peer_dir, client[sid], settings)
        (peer_dir / "data" / "myid").write_text(f"{sid}\n")
        command = quorum_peer_command(kind, cfg, peer_dir, settings)
        peers[sid] = EnsemblePeer(kind, sid, client[sid], quorum[sid], election[sid], False, peer_dir, command,
                                  base_env)
    return Ensemble(kind, Path(workdir), peers), network


class Nemesis:
    """The faults, on one ensemble and its proxies; remembers what it broke so ``heal_everything`` can undo it."""

    def __init__(self, ensemble: Ensemble, network: ProxyNetwork) -> None:
        self.ensemble = ensemble
        self.network = network
        self.paused: set[int] = set()

    def kill(self, sids: Iterable[int]) -> None:
        for sid in sids:
            self.paused.discard(sid)
            self.ensemble.peers[sid].kill()

    def restart(self, sids: Iterable[int]) -> None:
        """Start dead peers again on their data (not waiting: a peer serves only with a quorum)."""
        for sid in sids:
            peer = self.ensemble.peers[sid]
            if not peer.is_running():
                peer.spawn()

    def pause(self, sids: Iterable[int]) -> None:
        for sid in sids:
            peer = self.ensemble.peers[sid]
            if peer.pid is not None and peer.is_running():
                os.kill(peer.pid, signal.SIGSTOP)
                self.paused.add(sid)

    def resume(self, sids: Iterable[int] | None = None) -> None:
        for sid in list(self.paused if sids is None else sids):
            peer = self.ensemble.peers[sid]
            if peer.pid is not None and peer.is_running():
                os.kill(peer.pid, signal.SIGCONT)
            self.paused.discard(sid)

    def heal_everything(self) -> None:
        """Resume paused peers, heal every link, start every dead peer."""
        self.resume()
        self.network.heal_all()
        self.restart(self.ensemble.peers)

    def close(self) -> None:
        self.resume()
        self.ensemble.stop_all()
        self.network.close()
