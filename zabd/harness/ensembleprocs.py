"""Start a real ensemble of zabd (twistd) or Apache ZooKeeper (QuorumPeerMain) peers on 127.0.0.1.

    with start_ensemble("zabd", workdir, voters=3) as ensemble:
        leader = ensemble.leader()
        ensemble.peers[leader].kill()
        ensemble.wait_for_leader(exclude={leader})

Each peer has its own directory ``workdir/peerN`` with ``zoo.cfg``,
``data/myid`` and ``server.log``, and three free loopback ports (client,
quorum, election). The peers are started together, since none serves until
a quorum is up, and the ensemble is ready when exactly one live peer says
``Mode: leader`` in ``srvr`` and every other live peer follower or observer.
Processes are :class:`zabd.harness.processes.ServerProcess` objects, so the
atexit handler of that module reaps whatever a test leaves running.
"""

from __future__ import annotations

import os
import shlex
import subprocess
from collections.abc import Collection, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from types import TracebackType

from zabd.harness.commands import (
    LOCALHOST,
    admin_settings,
    write_config,
    zabd_environment,
)
from zabd.harness.probes import four_letter, listens_on, wait_until
from zabd.harness.processes import (
    ADDRESS_IN_USE,
    LOG_NAME,
    PORT_ATTEMPTS,
    ServerProcess,
    ServerStartError,
    _die_with_parent,
)
from zabd.harness.peercfg import (
    ENSEMBLE_DEFAULTS, QUORUM_PEER_MAIN, SERVING_MODES, ZOOKEEPER_PEER_HEAP, distinct_free_ports, ensemble_settings,
    epoch_of, parse_mode, parse_zxid, quorum_peer_command,
)

__all__ = ["ENSEMBLE_DEFAULTS", "QUORUM_PEER_MAIN", "SERVING_MODES", "ZOOKEEPER_PEER_HEAP", "Ensemble", "EnsemblePeer",
           "ensemble_settings", "epoch_of", "parse_mode", "parse_zxid", "prepare_ensemble", "quorum_peer_command",
           "start_ensemble"]

@dataclass(eq=False)
class EnsemblePeer:
    """One peer's ports, directory and current process; start/stop/kill/restart keep the ports."""

    kind: str
    sid: int
    port: int  # the client port
    quorum_port: int
    election_port: int
    observer: bool
    workdir: Path
    command: list[str]
    env: dict[str, str]
    host: str = LOCALHOST
    server: ServerProcess | None = field(default=None, repr=False)
    #: The HTTP admin server's port, when the ensemble was started with ``admin=True``.
    admin_port: int | None = None

    @property
    def pid(self) -> int | None:
        return self.server.pid if self.server is not None else None

    @property
    def log_path(self) -> Path:
        return self.workdir / LOG_NAME

    def address(self) -> str:
        return f"{self.host}:{self.port}"

    def is_running(self) -> bool:
        return self.server is not None and self.server.is_running()

    def spawn(self) -> None:
        """Start the process without waiting: a peer serves only once a quorum is up."""
        if self.is_running():
            raise RuntimeError(f"peer {self.sid} is already running")
        log_file = open(self.log_path, "ab")  # noqa: SIM115 - owned by the ServerProcess
        log_file.write(f"$ {shlex.join(self.command)}\n".encode())
        log_file.flush()
        try:
            process = subprocess.Popen(
                _die_with_parent(self.command), cwd=self.workdir, env=self.env,
                stdin=subprocess.DEVNULL, stdout=log_file, stderr=subprocess.STDOUT,
            )
        except BaseException:
            log_file.close()
            raise
        self.server = ServerProcess(self.kind, self.host, self.port, self.workdir, process, self.log_path, log_file)

    def kill(self) -> None:
        """SIGKILL (a crash) and reap."""
        if self.server is not None:
            self.server.kill()

    def stop(self, timeout: float = 10.0) -> None:
        """SIGTERM, SIGKILL after ``timeout``; reaps."""
        if self.server is not None:
            self.server.stop(timeout)

    def restart(self, timeout: float = 60.0) -> None:
        """Stop if running, start again on the same ports and data, wait until it serves."""
        self.stop()
        self.spawn()
        wait_until(lambda: self._check_alive() and self.mode() in SERVING_MODES, timeout,
                   f"{self.kind} peer {self.sid} to serve again", self.describe)

    def four_letter(self, word: str, timeout: float = 5.0) -> str:
        return four_letter(self.host, self.port, word, timeout)

    def srvr(self) -> str:
        """``srvr``, or "" when the peer does not answer (not running, not listening yet)."""
        if not self.is_running():
            return ""
        try:
            return self.four_letter("srvr", timeout=2.0)
        except OSError:
            return ""

    def mode(self) -> str | None:
        """leader, follower or observer; None when not serving, not running or not answering."""
        return parse_mode(self.srvr())

    def zxid(self) -> int | None:
        """The last zxid the peer reports in srvr (3.8 shows epoch<<32 on a fresh leader; zabd 0)."""
        return parse_zxid(self.srvr())

    def log_text(self) -> str:
        if self.server is not None:
            return self.server.log_text()
        return self.log_path.read_text(encoding="utf-8", errors="replace") if self.log_path.exists() else ""

    def describe(self, tail_chars: int = 8000) -> str:
        state = "never started" if self.server is None else (
            "running" if self.is_running() else f"exited with {self.server.process.returncode}")
        text = self.log_text()[-tail_chars:]
        return f"--- {self.kind} peer {self.sid} at {self.address()} ({state}), log {self.log_path} ---\n{text}"

    def _check_alive(self) -> bool:
        """True while running and listening; raises when the process died or could not bind."""
        if self.server is None or not self.server.is_running() or ADDRESS_IN_USE in self.log_text():
            raise ServerStartError(f"{self.kind} peer {self.sid} exited or could not listen\n{self.describe()}",
                                   self.log_text())
        return listens_on(self.server.pid, self.port)


class Ensemble:
    """The peers of one ensemble, by server id; a with-block stops them all."""

    def __init__(self, kind: str, workdir: Path, peers: Mapping[int, EnsemblePeer]) -> None:
        self.kind = kind
        self.workdir = workdir
        self.peers: dict[int, EnsemblePeer] = dict(peers)

    def live(self) -> dict[int, EnsemblePeer]:
        return {sid: peer for sid, peer in self.peers.items() if peer.is_running()}

    def mode(self, sid: int) -> str | None:
        return self.peers[sid].mode()

    def modes(self) -> dict[int, str | None]:
        return {sid: peer.mode() for sid, peer in self.live().items()}

    def leader(self) -> int | None:
        leaders = [sid for sid, mode in self.modes().items() if mode == "leader"]
        return leaders[0] if len(leaders) == 1 else None

    def voters(self) -> list[int]:
        return [sid for sid, peer in self.peers.items() if not peer.observer]

    def hosts(self, sids: Collection[int] | None = None) -> str:
        """The kazoo host string for ``sids`` (every peer by default)."""
        chosen = self.peers if sids is None else sids
        return ",".join(self.peers[sid].address() for sid in sorted(chosen))

    def settled_leader(self, exclude: Collection[int] = ()) -> int | None:
        """The leader when exactly one live peer leads (not one of ``exclude``) and every other serves."""
        modes = self.modes()
        leaders = [sid for sid, mode in modes.items() if mode == "leader"]
        if len(leaders) != 1 or leaders[0] in exclude:
            return None
        if all(mode in SERVING_MODES for mode in modes.values()):
            return leaders[0]
        return None

    def wait_for_leader(self, exclude: Collection[int] = (), timeout: float = 60.0) -> int:
        """Wait until the ensemble has settled (see settled_leader); return the leader's sid."""
        return self._wait_settled(exclude, timeout, every_peer_alive=False)

    def _wait_settled(self, exclude: Collection[int], timeout: float, every_peer_alive: bool) -> int:
        found: list[int] = []

        def settled() -> bool:
            if every_peer_alive:  # while starting, a peer that exits fails the start at once
                for peer in self.peers.values():
                    peer._check_alive()
            sid = self.settled_leader(exclude)
            if sid is not None:
                found.append(sid)
            return sid is not None

        wait_until(settled, timeout, f"one {self.kind} leader (not {sorted(exclude)}) and all live peers serving",
                   self.describe)
        return found[-1]

    def describe(self) -> str:
        return "\n".join(peer.describe() for peer in self.peers.values())

    def stop_all(self) -> None:
        for peer in self.peers.values():
            peer.stop()

    def __iter__(self) -> Iterator[EnsemblePeer]:
        return iter(self.peers.values())

    def __enter__(self) -> Ensemble:
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.stop_all()


def prepare_ensemble(
    kind: str, workdir: Path, voters: int = 3, observers: int = 0, extra_cfg: Mapping[str, str] | None = None,
    admin: bool = False, peer_cfg: Mapping[int, Mapping[str, str]] | None = None,
) -> Ensemble:
    """Write every peer's zoo.cfg and myid on fresh free ports; start nothing.

    ``admin=True`` gives each peer an HTTP admin server on a free port of its own.
    ``peer_cfg`` adds lines to one peer's zoo.cfg only (by sid, after
    ``extra_cfg``), e.g. each peer's own TLS key store.
    """
    if kind not in ("zabd", "zookeeper"):
        raise ValueError(f"unknown server kind {kind!r}")
    sids = list(range(1, voters + observers + 1))
    observer_sids = set(sids[voters:])
    per_peer = 4 if admin else 3
    ports = distinct_free_ports(per_peer * len(sids))

    def nth(k: int) -> dict[int, int]:
        return {sid: ports[per_peer * i + k] for i, sid in enumerate(sids)}

    client, quorum, election = nth(0), nth(1), nth(2)
    admin_ports = nth(3) if admin else {}
    env = zabd_environment() if kind == "zabd" else dict(os.environ)
    peers = {}
    for sid in sids:
        peer_dir = workdir / f"peer{sid}"
        settings = ensemble_settings(sid, client, quorum, election, observer_sids, extra_cfg)
        settings.update((peer_cfg or {}).get(sid, {}))
        if sid in admin_ports:
            settings.update(admin_settings(admin_ports[sid]))
        cfg = write_config(peer_dir, client[sid], settings)
        (peer_dir / "data" / "myid").write_text(f"{sid}\n")
        command = quorum_peer_command(kind, cfg, peer_dir, settings)  # settings holds extra_cfg and peer_cfg
        peers[sid] = EnsemblePeer(kind, sid, client[sid], quorum[sid], election[sid], sid in observer_sids,
                                  peer_dir, command, env, admin_port=admin_ports.get(sid))
    return Ensemble(kind, workdir, peers)


def start_ensemble(
    kind: str, workdir: Path, voters: int = 3, observers: int = 0,
    extra_cfg: Mapping[str, str] | None = None, timeout: float = 60.0, admin: bool = False,
    peer_cfg: Mapping[int, Mapping[str, str]] | None = None,
) -> Ensemble:
    """Start ``voters`` participants and ``observers`` observers; return once a leader leads them all.

    A port taken by someone else between free_port() and the bind makes a
    peer fail; then the whole ensemble is set up again on other ports.
    """
    workdir = Path(workdir)
    for attempt in range(1, PORT_ATTEMPTS + 1):
        where = workdir if attempt == 1 else workdir / f"retry{attempt}"
        ensemble = prepare_ensemble(kind, where, voters, observers, extra_cfg, admin, peer_cfg)
        try:
            for peer in ensemble:
                peer.spawn()
            ensemble._wait_settled((), timeout, every_peer_alive=True)
            return ensemble
        except ServerStartError as error:
            ensemble.stop_all()
            if attempt == PORT_ATTEMPTS or ADDRESS_IN_USE not in error.log:
                raise
        except BaseException:
            ensemble.stop_all()
            raise
    raise AssertionError("unreachable")
