"""One peer of a process ensemble (zabd.harness.ensembleprocs): its zoo.cfg lines, its command line, its ports,
and what its ``srvr`` answer says."""
from __future__ import annotations

import os
from collections.abc import Collection, Mapping
from pathlib import Path

from zabd.core.zxid import epoch_of
from zabd.harness.commands import LOCALHOST, ZOOKEEPER_MAIN, zabd_command, zookeeper_command
from zabd.harness.probes import free_port
from zabd.harness.processes import NOT_SERVING

QUORUM_PEER_MAIN = "org.apache.zookeeper.server.quorum.QuorumPeerMain"
SERVING_MODES = ("leader", "follower", "observer")
#: Short ticks so that elections and syncs take a second or two; the limits are 3.8's defaults.
ENSEMBLE_DEFAULTS: Mapping[str, str] = {"tickTime": "200", "initLimit": "10", "syncLimit": "5"}
#: Five JVMs on a small machine: the brief's heap, unless the benchmarks raise it.
ZOOKEEPER_PEER_HEAP = "256m"


def parse_mode(srvr: str) -> str | None:
    """The ``Mode:`` of a ``srvr`` answer, None while the peer is not serving."""
    if NOT_SERVING in srvr:
        return None
    for line in srvr.splitlines():
        if line.startswith("Mode:"):
            return line.split(":", 1)[1].strip()
    return None


def parse_zxid(srvr: str) -> int | None:
    for line in srvr.splitlines():
        if line.startswith("Zxid:"):
            return int(line.split(":", 1)[1].strip(), 16)
    return None


def ensemble_settings(
    sid: int, client_ports: Mapping[int, int], quorum_ports: Mapping[int, int],
    election_ports: Mapping[int, int], observers: Collection[int], extra_cfg: Mapping[str, str] | None,
) -> dict[str, str]:
    """The zoo.cfg lines (beyond write_config's) of peer ``sid``: server.N lines, limits, peerType."""
    settings = dict(ENSEMBLE_DEFAULTS)
    for member in sorted(client_ports):
        suffix = ":observer" if member in observers else ""
        settings[f"server.{member}"] = f"{LOCALHOST}:{quorum_ports[member]}:{election_ports[member]}{suffix}"
    if sid in observers:
        settings["peerType"] = "observer"
    settings.update(extra_cfg or {})
    return settings


def quorum_peer_command(kind: str, cfg: Path, workdir: Path, extra_cfg: Mapping[str, str] | None) -> list[str]:
    """commands.py's command line, with ZooKeeper's quorum main class and a smaller heap."""
    if kind == "zabd":
        return zabd_command(cfg)
    command = zookeeper_command(cfg, workdir, extra_cfg)
    command[command.index(ZOOKEEPER_MAIN)] = QUORUM_PEER_MAIN
    if "ZABD_ZOOKEEPER_HEAP" not in os.environ:
        command = [f"-Xmx{ZOOKEEPER_PEER_HEAP}" if arg.startswith("-Xmx") else arg for arg in command]
    return command


def distinct_free_ports(count: int) -> list[int]:
    """``count`` free loopback ports, no two alike."""
    ports: list[int] = []
    while len(ports) < count:
        port = free_port()
        if port not in ports:
            ports.append(port)
    return ports
