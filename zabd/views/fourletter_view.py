"""
The read-only picture of a server that the four-letter words print.

:class:`ServerView` is the contract between the renderer in ``fourletter.py``
and the live server (``stats_view.py`` implements it), with the small value
types it hands over.  It is a module of its own so that ``fourletter.py``
holds only the commands and the text they print; those names are still
importable from ``zabd.views.fourletter``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Mapping, Protocol, Sequence, Union

from zabd.metrics.server import ServerMetrics

#: A value in ``mntr``; ints print as ints, floats as Java doubles.
MetricValue = Union[int, float, str, bool, None]


@dataclass(frozen=True, slots=True)
class ConnectionInfo:
    """
    One client connection as ``stat``/``cons`` print it.

    :param remote_host: peer IP address.
    :param remote_port: peer port.
    :param interest_ops: selector interest, printed in hex (1 = reading,
        0 for the connection that is asking).
    :param queued: requests outstanding on this connection.
    :param packets_received: packets read.
    :param packets_sent: packets written.
    :param session_id: 0 until a session is established; then ``cons``
        prints the fields below.
    :param last_op: short name of the last operation (``GETD``, ``PING``...).
    :param established_ms: wall-clock epoch ms the connection was set up.
    :param session_timeout_ms: negotiated session timeout.
    :param last_cxid: last client xid seen, -1 for none (then omitted).
    :param last_zxid: last zxid replied with, -1 for none.
    :param last_response_ms: time of the last response, in ms.
    :param last_latency_ms: latency of the last request.
    :param min_latency_ms: smallest request latency.
    :param avg_latency_ms: mean request latency (an integer, as in ZooKeeper).
    :param max_latency_ms: largest request latency.
    """

    remote_host: str
    remote_port: int
    interest_ops: int = 1
    queued: int = 0
    packets_received: int = 0
    packets_sent: int = 0
    session_id: int = 0
    last_op: str = "NA"
    established_ms: int = 0
    session_timeout_ms: int = 0
    last_cxid: int = -1
    last_zxid: int = -1
    last_response_ms: int = 0
    last_latency_ms: int = 0
    min_latency_ms: int = 0
    avg_latency_ms: int = 0
    max_latency_ms: int = 0


@dataclass(frozen=True, slots=True)
class WatchSummary:
    """
    ``wchs`` counts, over data watches (as ZooKeeper counts them).

    :param connections: connections holding at least one watch.
    :param paths: distinct watched paths.
    :param total: total (connection, path) watches.
    """

    connections: int
    paths: int
    total: int


@dataclass(frozen=True, slots=True)
class MemberInfo:
    """
    One voting member as the admin ``voting_view`` command lists it.

    :param sid: its server id.
    :param quorum_address: ``host:port`` of its quorum port.
    :param election_address: ``host:port`` of its election port.
    :param client_address: ``host:port`` of its client port, "" when unknown.
    :param participant: False for an observer.
    """

    sid: int
    quorum_address: str
    election_address: str
    client_address: str
    participant: bool = True


@dataclass(frozen=True, slots=True)
class QuorumRole:
    """
    An ensemble peer's place in it, for the admin ``leader``, ``zabstate`` and ``voting_view``.

    :param myid: this peer's id.
    :param leader_id: the elected leader, -1 while looking.
    :param leader_host: host of the leader's quorum address, "" when unknown.
    :param is_leader: True while this peer leads.
    :param voting: True if this peer is a voting member of the config in force.
    :param zab_phase: election, discovery, synchronization or broadcast.
    :param me: this peer's own member entry.
    :param voters: the voting members of the config in force, by sid.
    """

    myid: int
    leader_id: int
    leader_host: str
    is_leader: bool
    voting: bool
    zab_phase: str
    me: MemberInfo
    voters: tuple[MemberInfo, ...]


@dataclass(frozen=True, slots=True)
class LearnerInfo:
    """
    One learner connected to the leader (the admin ``observers`` command).

    :param remote_address: the learner's end of the quorum connection.
    :param sid: its server id.
    :param established_ms: when its connection came up (wall-clock epoch ms).
    :param last_zxid: the last zxid it acknowledged, -1 for none.
    """

    remote_address: str
    sid: int
    established_ms: int
    last_zxid: int


class ServerView(Protocol):
    """What rendering needs from the server; read-only apart from the resets."""

    @property
    def version(self) -> str:
        """Full version, see :func:`zabd.views.fourletter.version_string`."""
    @property
    def mode(self) -> str:
        """standalone, leader, follower, observer or read-only."""
    @property
    def serving(self) -> bool:
        """True once the server answers client requests."""
    @property
    def read_only(self) -> bool:
        """True when running as a read-only server."""
    @property
    def last_zxid(self) -> int: ...
    @property
    def node_count(self) -> int: ...
    @property
    def min_latency_ms(self) -> int: ...
    @property
    def avg_latency_ms(self) -> float:
        """Mean latency, rounded half-up to 4 decimals as ZooKeeper does."""
    @property
    def max_latency_ms(self) -> int: ...
    @property
    def packets_received(self) -> int: ...
    @property
    def packets_sent(self) -> int: ...
    @property
    def outstanding_requests(self) -> int: ...
    @property
    def proposal_sizes(self) -> tuple[int, int, int] | None:
        """Leader only: last/min/max proposal size (-1 before any)."""
    @property
    def uptime_ms(self) -> int: ...
    @property
    def watch_count(self) -> int:
        """Data plus child watches (mntr's zk_watch_count)."""
    @property
    def ephemerals_count(self) -> int: ...
    @property
    def approximate_data_size(self) -> int: ...
    @property
    def global_sessions(self) -> int: ...
    @property
    def local_sessions(self) -> int: ...
    @property
    def auth_failed_count(self) -> int: ...
    @property
    def open_file_descriptor_count(self) -> int: ...
    @property
    def max_file_descriptor_count(self) -> int: ...
    @property
    def data_dir_size(self) -> int: ...
    @property
    def log_dir_size(self) -> int: ...
    @property
    def trace_mask(self) -> int: ...
    @property
    def metrics(self) -> ServerMetrics:
        """The process's metrics registry (mntr's summaries and counters, /metrics)."""

    def connections(self) -> Sequence[ConnectionInfo]:
        """Every client connection, including the one asking (ZooKeeper does)."""
    def watch_summary(self) -> WatchSummary: ...
    def watches_by_session(self) -> Mapping[int, Sequence[str]]:
        """Session id -> watched paths (data watches)."""
    def watches_by_path(self) -> Mapping[str, Sequence[int]]:
        """Watched path -> session ids (data watches)."""
    def session_expiry(self) -> Sequence[tuple[int, Sequence[int]]]:
        """(wall-clock expiry epoch ms, session ids) buckets, earliest first."""
    def sessions_with_ephemerals(self) -> Mapping[int, Sequence[str]]:
        """Session id -> its ephemeral paths."""
    def config_lines(self) -> Sequence[tuple[str, str]]:
        """``conf`` output; see ``ZabdConfig.conf_lines``."""
    def digest_history(self) -> Sequence[tuple[int, int]]:
        """(zxid, tree digest) pairs, oldest first."""
    def environment(self) -> Sequence[tuple[str, str]]:
        """``envi`` entries after zookeeper.version (host.name, python.version...)."""
    def mntr_extra(self) -> Sequence[tuple[str, MetricValue]]:
        """Further mntr pairs, keys without the ``zk_`` prefix."""
    def reset_connection_stats(self) -> None: ...
    def reset_server_stats(self) -> None: ...
    def set_trace_mask(self, mask: int) -> None: ...


class AdminView(ServerView, Protocol):
    """What the HTTP admin commands read beyond the four-letter words."""

    def quorum_role(self) -> QuorumRole | None:
        """None for a standalone server."""
    def observers(self) -> Sequence[LearnerInfo]:
        """The observers synced with this peer while it leads; empty otherwise."""
    def last_snapshot(self) -> tuple[int, int] | None:
        """(zxid, modification time in epoch seconds) of the newest snapshot file, if any."""
    def system_properties(self) -> Sequence[tuple[str, str]]:
        """zabd's counterpart of Java system properties: runtime facts and the zoo.cfg keys."""
    def initial_configuration(self) -> str:
        """The zoo.cfg as read at startup, one ``key=value`` line each."""
