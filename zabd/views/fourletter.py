"""
Four-letter words: ZooKeeper 3.8's plain-text admin commands, rendered purely.

A client that has not sent a ConnectRequest may send four ASCII bytes instead
of a frame length; if those bytes (read as a big-endian int) name a command,
the server writes text and closes.  This module only recognises the word and
renders the text from a read-only :class:`ServerView`; sockets live in
``client_port.py``, the view's types in ``fourletter_view.py`` and Java's
number and date formats in ``javaformat.py``.  Formats were checked against a
real 3.8.0 standalone.
"""

from __future__ import annotations

from zabd.views.fourletter_view import (
    ConnectionInfo,
    MetricValue,
    ServerView,
    WatchSummary,
)
from zabd.config.keys import COMMAND_NAMES, FOUR_LETTER_WORDS
from zabd.java.formats import java_date, java_double, java_hex

__all__ = [
    "COMMANDS", "COMMAND_NAMES", "COMPATIBLE_ZOOKEEPER_VERSION", "NOT_SERVING",
    "ConnectionInfo", "MetricValue", "ServerView", "WatchSummary",
    "command_for_length", "java_date", "monitor_pairs", "java_double", "render", "version_string",
]

#: The ZooKeeper release whose behaviour zabd reproduces.
COMPATIBLE_ZOOKEEPER_VERSION = "3.8.0"


#: Big-endian int of each 4-byte word -> the word.
COMMANDS: dict[int, str] = {int.from_bytes(w.encode("ascii"), "big"): w for w in FOUR_LETTER_WORDS}


#: What ZooKeeper prints when the server is not up (yet).
NOT_SERVING = "This ZooKeeper instance is not currently serving requests"


def command_for_length(first4: int) -> str | None:
    """
    The command named by the first four bytes of a new connection.

    :param first4: those bytes as a big-endian (signed or unsigned) int.
    :return: the word, or ``None`` if they are an ordinary frame length.
    """
    return COMMANDS.get(first4 & 0xFFFFFFFF)


def version_string(zabd_version: str, built_on: str) -> str:
    """
    The full version zabd reports; kazoo's ``server_version()`` reads (3, 8, 0).

    :param zabd_version: zabd's own version, e.g. ``"0.1.0"``.
    :param built_on: build date text, e.g. ``"2025-01-01 00:00 UTC"``.
    """
    return f"{COMPATIBLE_ZOOKEEPER_VERSION}-zabd-{zabd_version}, built on {built_on}"


def _address(c: ConnectionInfo) -> str:
    host = f"[{c.remote_host}]" if ":" in c.remote_host else c.remote_host
    return f"/{host}:{c.remote_port}"


def _connection_line(c: ConnectionInfo, brief: bool) -> str:
    ops = "0" if c.interest_ops == 0 else format(c.interest_ops, "x")
    text = (f" {_address(c)}[{ops}](queued={c.queued},"
            f"recved={c.packets_received},sent={c.packets_sent}")
    if not brief and c.session_id != 0:
        text += (f",sid=0x{java_hex(c.session_id)},lop={c.last_op},"
                 f"est={c.established_ms},to={c.session_timeout_ms}")
        if c.last_cxid >= 0:
            text += f",lcxid=0x{java_hex(c.last_cxid)}"
        text += (f",lzxid=0x{java_hex(c.last_zxid)},lresp={c.last_response_ms},"
                 f"llat={c.last_latency_ms},minlat={c.min_latency_ms},"
                 f"avglat={c.avg_latency_ms},maxlat={c.max_latency_ms}")
    return text + ")"


def _metric(value: MetricValue) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        return java_double(value)
    return value


def _stat(view: ServerView, with_clients: bool) -> str:
    lines = [f"Zookeeper version: {view.version}"]
    if view.read_only:
        lines.append("READ-ONLY mode; serving only read-only clients")
    connections = view.connections()
    if with_clients:
        lines.append("Clients:")
        lines.extend(_connection_line(c, brief=True) for c in connections)
        lines.append("")
    lines += [
        f"Latency min/avg/max: {view.min_latency_ms}/"
        f"{java_double(view.avg_latency_ms)}/{view.max_latency_ms}",
        f"Received: {view.packets_received}",
        f"Sent: {view.packets_sent}",
        f"Connections: {len(connections)}",
        f"Outstanding: {view.outstanding_requests}",
        f"Zxid: 0x{java_hex(view.last_zxid)}",
        f"Mode: {view.mode}",
        f"Node count: {view.node_count}",
    ]
    sizes = view.proposal_sizes
    if view.mode == "leader" and sizes is not None:
        lines.append("Proposal sizes last/min/max: %d/%d/%d" % sizes)
    return "\n".join(lines) + "\n"


def monitor_pairs(view: ServerView) -> list[tuple[str, MetricValue]]:
    """Every ``mntr`` figure, unprefixed: the one list mntr, the admin ``monitor`` command and /metrics read."""
    pairs: list[tuple[str, MetricValue]] = [
        ("version", view.version),
        ("server_state", view.mode),
        ("avg_latency", float(view.avg_latency_ms)),
        ("max_latency", view.max_latency_ms),
        ("min_latency", view.min_latency_ms),
        ("packets_received", view.packets_received),
        ("packets_sent", view.packets_sent),
        ("num_alive_connections", len(view.connections())),
        ("outstanding_requests", view.outstanding_requests),
        ("uptime", view.uptime_ms),
        ("znode_count", view.node_count),
        ("watch_count", view.watch_count),
        ("ephemerals_count", view.ephemerals_count),
        ("approximate_data_size", view.approximate_data_size),
        ("global_sessions", view.global_sessions),
        ("local_sessions", view.local_sessions),
        ("open_file_descriptor_count", view.open_file_descriptor_count),
        ("max_file_descriptor_count", view.max_file_descriptor_count),
        ("auth_failed_count", view.auth_failed_count),
    ]
    pairs += view.mntr_extra()
    # The registry's counters and summaries (ZooKeeper's ServerMetrics). A view
    # without one (a test's) prints only the figures above.
    metrics = getattr(view, "metrics", None)
    if metrics is not None:
        pairs += metrics.registry.mntr_pairs()
    seen: set[str] = set()
    unique: list[tuple[str, MetricValue]] = []
    for key, value in pairs:
        if key not in seen:
            seen.add(key)
            unique.append((key, value))
    return unique


def _mntr(view: ServerView) -> str:
    return "".join(f"zk_{key}\t{_metric(value)}\n" for key, value in monitor_pairs(view))


def _dump(view: ServerView) -> str:
    buckets = view.session_expiry()
    total = sum(len(ids) for _, ids in buckets)
    out = ["SessionTracker dump:", f"Session Sets ({len(buckets)})/({total}):"]
    for expiry_ms, ids in buckets:
        out.append(f"{len(ids)} expire at {java_date(expiry_ms)}:")
        out.extend(f"\t0x{java_hex(sid)}" for sid in ids)
    owners = view.sessions_with_ephemerals()
    out += ["ephemeral nodes dump:", f"Sessions with Ephemerals ({len(owners)}):"]
    for sid, paths in owners.items():
        out.append(f"0x{java_hex(sid)}:")
        out.extend(f"\t{path}" for path in paths)
    # zabd has no NIO connection-expiry queue; this is what 3.8 prints with
    # NettyServerCnxnFactory (the factory kazoo's test harness configures).
    out.append("Connections dump:")
    return "\n".join(out) + "\n"


def _watches(command: str, view: ServerView) -> str:
    if command == "wchs":
        s = view.watch_summary()
        return (f"{s.connections} connections watching {s.paths} paths\n"
                f"Total watches:{s.total}\n")
    out: list[str] = []
    if command == "wchc":
        for sid, paths in view.watches_by_session().items():
            out.append(f"0x{java_hex(sid)}\n")
            out.extend(f"\t{path}\n" for path in paths)
    else:
        for path, sids in view.watches_by_path().items():
            out.append(f"{path}\n")
            out.extend(f"\t0x{java_hex(sid)}\n" for sid in sids)
    return "".join(out) + "\n"


def _environment(view: ServerView) -> str:
    lines = ["Environment:", f"zookeeper.version={view.version}"]
    lines += [f"{k}={v}" for k, v in view.environment() if k != "zookeeper.version"]
    return "\n".join(lines) + "\n"


def _serving_only(command: str, view: ServerView) -> str:
    if command in ("srvr", "stat"):
        return _stat(view, with_clients=command == "stat")
    if command == "mntr":
        return _mntr(view)
    if command == "conf":
        return "".join(f"{k}={v}\n" for k, v in view.config_lines())
    if command == "cons":
        lines = [_connection_line(c, brief=False) + "\n" for c in view.connections()]
        return "".join(lines) + "\n"
    if command == "crst":
        view.reset_connection_stats()
        return "Connection stats reset.\n"
    if command == "srst":
        view.reset_server_stats()
        return "Server stats reset.\n"
    if command == "dump":
        return _dump(view)
    if command == "dirs":
        return f"datadir_size: {view.data_dir_size}\nlogdir_size: {view.log_dir_size}\n"
    if command == "hash":
        return "".join(f"{java_hex(z)}: {d}\n" for z, d in view.digest_history())
    return _watches(command, view)


def render(
    command: str,
    view: ServerView,
    whitelist: frozenset[str],
    *,
    argument: int | None = None,
) -> str:
    """
    The exact text ZooKeeper 3.8 writes for a four-letter word.

    ``crst``, ``srst`` and ``stmk`` act on the view before answering.

    :param command: a name from :data:`COMMANDS`.
    :param view: the server, read through :class:`ServerView`.
    :param whitelist: the enabled commands (``ZabdConfig.four_letter_words``).
    :param argument: for ``stmk``, the signed 8-byte mask that follows the word.
    :raises ValueError: for an unknown command, or ``stmk`` without ``argument``.
    """
    if command not in COMMAND_NAMES:
        raise ValueError(f"unknown four-letter word {command!r}")
    if command not in whitelist:
        return f"{command} is not executed because it is not in the whitelist.\n"
    # These four answer whether or not the server is up, as in 3.8.
    if command == "ruok":
        return "imok"
    if command == "envi":
        return _environment(view)
    if command == "gtmk":
        return str(view.trace_mask)
    if command == "stmk":
        if argument is None:
            raise ValueError("stmk needs the 8-byte trace mask argument")
        view.set_trace_mask(argument)
        return str(argument)
    if command == "isro":
        if not view.serving:
            return "null"
        return "ro" if view.read_only else "rw"
    if not view.serving:
        # hash is the one command that omits the newline.
        return NOT_SERVING if command == "hash" else NOT_SERVING + "\n"
    return _serving_only(command, view)
