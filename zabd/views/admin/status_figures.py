# -*- test-case-name: tests.unit.test_status_page -*-
"""One peer's row on the status page, read from the text of its four-letter words.

Pure: the status page asks every peer for ``mntr`` and ``srvr`` (this peer
renders its own answers from its view, the others answer over their client
port) and this module turns those answers into a :class:`PeerFigures`. The
same parser reads both, so the page shows exactly what the words print.
``mntr`` carries the sessions; ``srvr`` the zxid (3.8's mntr has none); the
other figures come from mntr when it answered, else from srvr, so a peer that
whitelists only ``srvr`` (ZooKeeper's default) still shows most of its row.
"""
from __future__ import annotations

import enum
from collections.abc import Mapping
from dataclasses import dataclass

from zabd.core.zxid import epoch_of

NOT_SERVING_TEXT = "This ZooKeeper instance is not currently serving requests"
_MNTR_PREFIX = "zk_"


class Reach(enum.Enum):
    """Whether a peer's figures could be read, and if not, why not."""

    SERVING = "serving"
    NOT_SERVING = "not serving"
    UNREACHABLE = "unreachable"
    NO_ADDRESS = "no client address"


@dataclass(frozen=True, slots=True)
class PeerTarget:
    """
    A member of the ensemble, and where its four-letter words are asked.

    :param sid: server id; None for a standalone server.
    :param host: client host to ask, None when it cannot be told (see ``note``).
    :param port: client port to ask.
    :param this_server: the peer that renders the page (asked through its view).
    :param note: why ``host`` is None, or how the address was guessed.
    """

    sid: int | None
    host: str | None
    port: int
    this_server: bool = False
    note: str = ""

    @property
    def address(self) -> str:
        """``host:port`` as an operator would type it, IPv6 hosts in brackets."""
        if self.host is None:
            return ""
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"{host}:{self.port}"


@dataclass(frozen=True, slots=True)
class PeerFigures:
    """Everything the page shows for one peer; None where the peer did not say."""

    target: PeerTarget
    reach: Reach
    problem: str = ""
    role: str = ""
    zxid: int | None = None
    znodes: int | None = None
    sessions: int | None = None
    connections: int | None = None
    outstanding: int | None = None
    latency_min_ms: int | None = None
    latency_avg_ms: float | None = None
    latency_max_ms: int | None = None
    version: str = ""

    @property
    def epoch(self) -> int | None:
        """The epoch of the peer's last zxid (its high 32 bits)."""
        return None if self.zxid is None else epoch_of(self.zxid)


def parse_mntr(text: str) -> dict[str, str]:
    """
    ``mntr`` answer -> {key without ``zk_``: value as printed}.

    Lines that are not ``zk_key<TAB>value`` (the not-serving and whitelist
    messages) are skipped, so those answers give an empty mapping.
    """
    pairs: dict[str, str] = {}
    for line in text.splitlines():
        key, tab, value = line.partition("\t")
        if tab and key.startswith(_MNTR_PREFIX):
            pairs[key[len(_MNTR_PREFIX):]] = value.strip()
    return pairs


def parse_srvr(text: str) -> dict[str, str]:
    """``srvr`` (or ``stat``) answer -> {``Mode``: ..., ``Zxid``: ..., ...}; other lines skipped."""
    fields: dict[str, str] = {}
    for line in text.splitlines():
        key, colon, value = line.partition(": ")
        if colon and not line.startswith(" "):
            fields.setdefault(key, value.strip())
    return fields


def _int(text: str | None, base: int = 10) -> int | None:
    if text is None:
        return None
    try:
        return int(text, base)
    except ValueError:
        return None


def _float(text: str | None) -> float | None:
    try:
        return None if text is None else float(text)
    except ValueError:
        return None


def _srvr_latency(fields: Mapping[str, str]) -> tuple[str | None, str | None, str | None]:
    parts = fields.get("Latency min/avg/max", "").split("/")
    if len(parts) != 3:
        return None, None, None
    return parts[0], parts[1], parts[2]


def _zxid(text: str | None) -> int | None:
    if text is None or not text.lower().startswith("0x"):
        return None
    return _int(text[2:], 16)


def figures_from_answers(target: PeerTarget, mntr: str, srvr: str) -> PeerFigures:
    """
    A peer's row from its ``mntr`` and ``srvr`` answers.

    :param target: the peer asked.
    :param mntr: the ``mntr`` answer ("" if that word failed).
    :param srvr: the ``srvr`` answer ("" if that word failed).
    """
    pairs, fields = parse_mntr(mntr), parse_srvr(srvr)
    if not pairs and not fields:
        if NOT_SERVING_TEXT in mntr or NOT_SERVING_TEXT in srvr:
            return PeerFigures(target, Reach.NOT_SERVING, "not serving requests (electing or syncing)")
        return PeerFigures(target, Reach.UNREACHABLE, "answered neither mntr nor srvr")
    low, avg, high = _srvr_latency(fields)
    return PeerFigures(
        target,
        Reach.SERVING,
        role=pairs.get("server_state") or fields.get("Mode", ""),
        zxid=_zxid(fields.get("Zxid")),
        znodes=_int(pairs.get("znode_count", fields.get("Node count"))),
        sessions=_int(pairs.get("global_sessions")),
        connections=_int(pairs.get("num_alive_connections", fields.get("Connections"))),
        outstanding=_int(pairs.get("outstanding_requests", fields.get("Outstanding"))),
        latency_min_ms=_int(pairs.get("min_latency", low)),
        latency_avg_ms=_float(pairs.get("avg_latency", avg)),
        latency_max_ms=_int(pairs.get("max_latency", high)),
        version=pairs.get("version") or fields.get("Zookeeper version", ""),
    )


def unreachable(target: PeerTarget, problem: str) -> PeerFigures:
    """The row of a peer that could not be asked (no address, refused, timed out)."""
    reach = Reach.NO_ADDRESS if target.host is None else Reach.UNREACHABLE
    return PeerFigures(target, reach, problem)


def leader_zxid(peers: list[PeerFigures] | tuple[PeerFigures, ...]) -> int | None:
    """The zxid of the one serving leader among ``peers``; None if there is none (or several)."""
    zxids = [p.zxid for p in peers if p.reach is Reach.SERVING and p.role == "leader"]
    return zxids[0] if len(zxids) == 1 else None


def lag_behind(leader: int | None, peer: PeerFigures) -> int | None:
    """
    How many zxids ``peer`` is behind the leader's last zxid.

    None when either zxid is unknown or the peer is still in an older epoch
    (counts of different epochs do not subtract). The peers answer one after
    another, so a follower read a moment after its leader can be ahead; that
    is shown as 0, not as a negative lag.
    """
    if leader is None or peer.zxid is None or epoch_of(peer.zxid) != epoch_of(leader):
        return None
    return max(0, leader - peer.zxid)
