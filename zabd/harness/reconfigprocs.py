"""A real ensemble that grows: peers 1..N start, later peers join with 3.8's joiner config.

``prepare_growing_ensemble`` writes every peer's zoo.cfg as ZooKeeper's
reconfig manual asks: the first ``voters`` peers list one another, and each
joiner lists them plus itself. Server lines carry client addresses
(``;127.0.0.1:port``), which a reconfig's joining list needs. Nothing starts.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

from zabd.harness.commands import LOCALHOST, write_config
from zabd.harness.ensembleprocs import ENSEMBLE_DEFAULTS, Ensemble, EnsemblePeer, prepare_ensemble

#: kazoo's harness logs in as super:test; this is that password's digest.
SUPER_DIGEST = "super:D/InIHSb7yEEbrWz8b9l71RjZJU="
RECONFIG_CFG = {"reconfigEnabled": "true", "DigestAuthenticationProvider.superDigest": SUPER_DIGEST}


def server_spec(peer: EnsemblePeer, *, observer: bool = False) -> str:
    """The ``server.N`` value of ``peer``, with its client address."""
    role = "observer" if observer else "participant"
    return f"{LOCALHOST}:{peer.quorum_port}:{peer.election_port}:{role};{LOCALHOST}:{peer.port}"


def joining_list(ensemble: Ensemble, sids: list[int]) -> str:
    """A reconfig's ``joining`` argument for ``sids``, as participants."""
    return ",".join(f"server.{sid}={server_spec(ensemble.peers[sid])}" for sid in sids)


def prepare_growing_ensemble(kind: str, workdir: Path, voters: int = 3, joiners: int = 2,
                             extra_cfg: Mapping[str, str] | None = None) -> Ensemble:
    """Peers 1..voters form the ensemble; voters+1.. are joiners (started later by the test)."""
    settings = {**RECONFIG_CFG, **(extra_cfg or {})}
    ensemble = prepare_ensemble(kind, workdir, voters + joiners, 0, settings)
    first = list(range(1, voters + 1))
    for sid, peer in ensemble.peers.items():
        members = first if sid <= voters else [*first, sid]
        lines = {f"server.{member}": server_spec(ensemble.peers[member]) for member in members}
        write_config(peer.workdir, peer.port, {**ENSEMBLE_DEFAULTS, **lines, **settings})
    return ensemble
