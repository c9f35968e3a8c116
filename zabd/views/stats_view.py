# -*- test-case-name: tests.unit.test_admin_standalone,tests.unit.test_fourletter -*-
"""The ServerView of a running standalone server: what four-letter words report.

Every figure is read from the server's own counters (ServerStats, the tree,
the session tracker and the watch tables); nothing is counted twice.
"""
from __future__ import annotations

import os
import platform
from datetime import datetime, timezone
import resource
import socket
import sys
from typing import Mapping, Sequence

import zabd._version
from zabd import __version__
from zabd.jute.opcodes import OpCode
from zabd.config.zoocfg import ZabdConfig
from zabd.views.fourletter import (
    ConnectionInfo,
    MetricValue,
    WatchSummary,
    render,
    version_string,
)
from zabd.views.fourletter_view import LearnerInfo, QuorumRole
from zabd.serving.connection import ServerConnection
from zabd.serving.server import ClientServer
from zabd.storage.layout import DataDirs

#: The short operation names ZooKeeper's cons and stat print.
_OP_NAMES: dict[int, str] = {
    OpCode.create: "CREA", OpCode.create2: "CREA", OpCode.createContainer: "CREA",
    OpCode.createTTL: "CREA", OpCode.delete: "DELE", OpCode.exists: "EXIS",
    OpCode.getData: "GETD", OpCode.setData: "SETD", OpCode.getACL: "GETA",
    OpCode.setACL: "SETA", OpCode.getChildren: "GETC", OpCode.getChildren2: "GETC",
    OpCode.sync: "SYNC", OpCode.ping: "PING", OpCode.multi: "MULT", OpCode.multiRead: "MLTR",
    OpCode.closeSession: "CLOS", OpCode.setWatches: "SETW", OpCode.setWatches2: "SETW",
    OpCode.checkWatches: "CHKW", OpCode.removeWatches: "REMW", OpCode.addWatch: "ADDW",
    OpCode.getEphemerals: "GETE", OpCode.getAllChildrenNumber: "GETACN", OpCode.whoAmI: "HOMI",
    OpCode.check: "CHEC", OpCode.reconfig: "RECO",
}


def _built_on() -> str:
    """When this zabd was installed, in ZooKeeper's "built on" format."""
    when = datetime.fromtimestamp(os.path.getmtime(zabd._version.__file__), timezone.utc)
    return when.strftime("%Y-%m-%d %H:%M UTC")


def _dir_size(path: str) -> int:
    total = 0
    for root, _dirs, files in os.walk(path):
        for name in files:
            try:
                total += os.path.getsize(os.path.join(root, name))
            except OSError:
                pass
    return total


def _user_name() -> str:
    try:
        import pwd
        return pwd.getpwuid(os.getuid()).pw_name
    except (ImportError, KeyError):
        return str(os.getuid())


class StandaloneView:
    """Reads a ClientServer for fourletter.render."""

    def __init__(self, server: ClientServer, config: ZabdConfig) -> None:
        self.server = server
        self.config = config
        self.ctx = server.ctx
        self._trace_mask = 306
        #: The process's metrics: one registry, shared by every server a peer runs.
        self.metrics = server.ctx.metrics

    version = version_string(__version__, _built_on())

    @property
    def read_only(self) -> bool:
        return False

    @property
    def local_sessions(self) -> int:
        return self.server.local_session_count()

    @property
    def mode(self) -> str:
        return "standalone"

    @property
    def serving(self) -> bool:
        return True

    @property
    def proposal_sizes(self) -> tuple[int, int, int] | None:
        return None

    @property
    def last_zxid(self) -> int:
        return self.ctx.tree.last_processed_zxid

    @property
    def node_count(self) -> int:
        return self.ctx.tree.node_count()

    # srvr's request latency is every request's: the read and update summaries together.

    @property
    def min_latency_ms(self) -> int:
        metrics = self.metrics
        return int(min(metrics.read_latency.low, metrics.update_latency.low)
                   if self._latency_count() else 0)

    @property
    def avg_latency_ms(self) -> float:
        metrics = self.metrics
        count = self._latency_count()
        return round((metrics.read_latency.total + metrics.update_latency.total) / count, 4) if count else 0.0

    @property
    def max_latency_ms(self) -> int:
        metrics = self.metrics
        return int(max(metrics.read_latency.high, metrics.update_latency.high) if self._latency_count() else 0)

    def _latency_count(self) -> int:
        return self.metrics.read_latency.count + self.metrics.update_latency.count

    @property
    def packets_received(self) -> int:
        return self.ctx.stats.packets_received

    @property
    def packets_sent(self) -> int:
        return self.ctx.stats.packets_sent

    @property
    def outstanding_requests(self) -> int:
        return self.ctx.stats.outstanding

    @property
    def uptime_ms(self) -> int:
        return int(self.ctx.now_ms() - self.server.started_ms)

    @property
    def watch_count(self) -> int:
        return self.ctx.watches.count()

    @property
    def ephemerals_count(self) -> int:
        return self.ctx.tree.ephemeral_count()

    @property
    def approximate_data_size(self) -> int:
        return self.ctx.tree.data_size

    @property
    def global_sessions(self) -> int:
        return len(self.ctx.sessions.sessions())

    @property
    def auth_failed_count(self) -> int:
        return self.ctx.stats.auth_failed

    @property
    def open_file_descriptor_count(self) -> int:
        try:
            return len(os.listdir("/proc/self/fd"))
        except OSError:
            return -1

    @property
    def max_file_descriptor_count(self) -> int:
        return resource.getrlimit(resource.RLIMIT_NOFILE)[0]

    @property
    def data_dir_size(self) -> int:
        return _dir_size(self.config.data_dir)

    @property
    def log_dir_size(self) -> int:
        return _dir_size(self.config.data_log_dir)

    @property
    def trace_mask(self) -> int:
        return self._trace_mask

    def set_trace_mask(self, mask: int) -> None:
        self._trace_mask = mask

    def connections(self) -> Sequence[ConnectionInfo]:
        return [self._info(conn) for conn in sorted(self.server.connections, key=lambda c: c.remote_port)]

    def _info(self, conn: ServerConnection) -> ConnectionInfo:
        stats = conn.stats
        return ConnectionInfo(
            remote_host=conn.remote_ip, remote_port=conn.remote_port, queued=0,
            packets_received=stats.received, packets_sent=stats.sent, session_id=conn.session_id,
            last_op=_OP_NAMES.get(stats.last_op, "NA"), established_ms=int(stats.established_ms),
            session_timeout_ms=conn.timeout, last_cxid=stats.last_cxid, last_zxid=stats.last_zxid,
            last_response_ms=int(stats.last_response_ms),
        )

    def watch_summary(self) -> WatchSummary:
        by_watcher = self.ctx.watches.data.by_watcher()
        return WatchSummary(len(by_watcher), self.ctx.watches.data.paths(), self.ctx.watches.data.count())

    def watches_by_session(self) -> Mapping[int, Sequence[str]]:
        return {getattr(w, "session_id", 0): sorted(paths)
                for w, paths in self.ctx.watches.data.by_watcher().items()}

    def watches_by_path(self) -> Mapping[str, Sequence[int]]:
        return {path: sorted(getattr(w, "session_id", 0) for w in watchers)
                for path, watchers in sorted(self.ctx.watches.data.by_path().items())}

    def session_expiry(self) -> Sequence[tuple[int, Sequence[int]]]:
        return sorted((at, sorted(ids)) for at, ids in self.ctx.sessions.expiry_buckets().items())

    def sessions_with_ephemerals(self) -> Mapping[int, Sequence[str]]:
        return {sid: sorted(paths) for sid, paths in sorted(self.ctx.tree.ephemerals.items())}

    def config_lines(self) -> Sequence[tuple[str, str]]:
        return self.config.conf_lines(self.data_dir_size, self.log_dir_size)

    def digest_history(self) -> Sequence[tuple[int, int]]:
        return list(self.ctx.tree.digest.history)

    def environment(self) -> Sequence[tuple[str, str]]:
        return [
            ("host.name", socket.gethostname()),
            ("python.version", platform.python_version()),
            ("python.implementation", platform.python_implementation()),
            ("python.executable", sys.executable),
            ("os.name", platform.system()),
            ("os.arch", platform.machine()),
            ("os.version", platform.release()),
            ("user.name", _user_name()),
            ("user.home", os.path.expanduser("~")),
            ("user.dir", os.getcwd()),
        ]

    def mntr_extra(self) -> Sequence[tuple[str, MetricValue]]:
        return [("pending_changes", len(self.ctx.pending)),
                ("connection_drop_probability", self.server.connection_throttle.drop_chance)]

    # -- what the HTTP admin commands add (AdminView) -------------------------

    def quorum_role(self) -> QuorumRole | None:
        return None

    def observers(self) -> Sequence[LearnerInfo]:
        return []

    def last_snapshot(self) -> tuple[int, int] | None:
        snapshots = DataDirs.of(self.config.data_dir, self.config.data_log_dir).snapshots()
        for zxid, path in snapshots:
            try:
                return zxid, int(os.path.getmtime(path))
            except OSError:
                continue  # purged meanwhile: the next newest
        return None

    def system_properties(self) -> Sequence[tuple[str, str]]:
        # Java's properties have no Python meaning; the runtime facts and the
        # config keys (as ZooKeeper mirrors zoo.cfg keys into zookeeper.*) do.
        entries = dict(self.environment())
        for key, value in self.config.raw:
            entries[key if key.startswith("zookeeper.") else f"zookeeper.{key}"] = value
        return sorted(entries.items())

    def initial_configuration(self) -> str:
        return "".join(f"{key}={value}\n" for key, value in self.config.raw)

    def reset_connection_stats(self) -> None:
        for conn in self.server.connections:
            conn.stats.reset()

    def reset_server_stats(self) -> None:
        # As 3.8's ServerStats.reset, which resets ServerMetrics too.
        self.ctx.stats.reset()
        self.metrics.registry.reset()


class FourLetterWords:
    """Answers a four-letter word read off the client port."""

    def __init__(self, server: ClientServer, config: ZabdConfig, view: StandaloneView | None = None) -> None:
        self.view = view or StandaloneView(server, config)
        self.whitelist = config.four_letter_words

    def answer(self, word: str, argument: bytes) -> str:
        mask = int.from_bytes(argument, "big", signed=True) if len(argument) == 8 else None
        return render(word, self.view, self.whitelist, argument=mask)
