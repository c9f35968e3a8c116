"""
What each zoo.cfg key means to zabd: its type, its range and where it goes.

``config.py`` holds the resulting :class:`~zabd.config.zoocfg.ZabdConfig`
and the checks that span several keys; this module is the per-key table
behind it (ZooKeeper's key -> ``ZabdConfig`` field and converter, the keys
zabd accepts but only keeps, and the prefixes it passes over silently), so
adding or retyping a key touches one line here and nothing else.
"""

from __future__ import annotations

import re
from typing import Callable

from zabd.config.ensemble import parse_server_id
from zabd.java.limits import INT_MAX, INT_MIN, LONG_MAX, LONG_MIN

#: The four-letter words 3.8 knows, in its order; ``4lw.commands.whitelist`` names some of them.
FOUR_LETTER_WORDS = (
    "ruok", "srvr", "stat", "mntr", "conf", "cons", "crst", "srst", "dump",
    "envi", "wchs", "wchc", "wchp", "dirs", "isro", "hash", "gtmk", "stmk",
)

#: Every command name, for whitelists (``*``).
COMMAND_NAMES: frozenset[str] = frozenset(FOUR_LETTER_WORDS)



class BadValue(Exception):
    """A value that does not convert; the caller adds key and line."""


Converter = Callable[[str], object]


def _integer(low: int, high: int, what: str | None = None) -> Converter:
    def convert(value: str) -> int:
        if re.fullmatch(r"[+-]?[0-9]+", value) and low <= int(value) <= high:
            return int(value)
        raise BadValue(f"expected {what or 'an integer'}, got {value!r}")
    return convert


_any_int = _integer(INT_MIN, INT_MAX)
_any_long = _integer(LONG_MIN, LONG_MAX)
_positive = _integer(1, INT_MAX, "a positive integer")
_non_negative = _integer(0, INT_MAX, "a non-negative integer")
_port = _integer(1, 65535, "a port number from 1 to 65535")
_port_or_zero = _integer(0, 65535, "a port number from 0 to 65535")
_timeout = _integer(-1, INT_MAX, "-1 or a non-negative integer")


def _boolean(value: str) -> bool:
    lowered = value.lower()
    if lowered in ("true", "yes"):
        return True
    if lowered in ("false", "no"):
        return False
    raise BadValue(f"expected true, false, yes or no, got {value!r}")


def _text(value: str) -> str:
    if not value:
        raise BadValue("expected a value, got nothing")
    return value


def _url_path(value: str) -> str:
    if not value.startswith("/"):
        raise BadValue(f"expected a path starting with '/', got {value!r}")
    return value


def _super_digest(value: str) -> str:
    if ":" not in value:
        raise BadValue(f"expected user:base64-sha1-digest, got {value!r}")
    return value


def _election_alg(value: str) -> int:
    if value != "3":
        raise BadValue(f"only 3 (fast leader election) is supported, got {value!r}")
    return 3


def _peer_type(value: str) -> str:
    if value.lower() not in ("participant", "observer"):
        raise BadValue(f"expected participant or observer, got {value!r}")
    return value.lower()


def _yes_no(value: str) -> bool:
    # 3.8 serves clients on the leader unless the value is exactly "no"; zabd
    # takes the obvious spellings at their word and refuses the rest.
    lowered = value.lower()
    if lowered in ("yes", "no", "true", "false"):
        return lowered in ("yes", "true")
    raise BadValue(f"expected yes or no, got {value!r}")


def _true_false(value: str) -> bool:
    # 3.8 reads these with Boolean.parseBoolean, where anything but "true" is
    # false: zabd refuses the rest rather than read "yes" as false.
    lowered = value.lower()
    if lowered in ("true", "false"):
        return lowered == "true"
    raise BadValue(f"expected true or false, got {value!r}")


def _real(value: str) -> float:
    if re.fullmatch(r"[+-]?([0-9]+\.?[0-9]*|\.[0-9]+)([eE][+-]?[0-9]+)?[dDfF]?", value):
        return float(value.rstrip("dDfF"))
    raise BadValue(f"expected a number, got {value!r}")


#: zoo.cfg key -> (ZabdConfig field, converter).
FIELDS: dict[str, tuple[str, Converter]] = {
    "tickTime": ("tick_time", _positive),
    "dataDir": ("data_dir", _text),
    "dataLogDir": ("data_log_dir", _text),
    "clientPort": ("client_port", _port),
    "clientPortAddress": ("client_port_address", _text),
    "maxClientCnxns": ("max_client_cnxns", _non_negative),
    "minSessionTimeout": ("min_session_timeout", _timeout),
    "maxSessionTimeout": ("max_session_timeout", _timeout),
    "jute.maxbuffer": ("jute_max_buffer", _positive),
    "extendedTypesEnabled": ("extended_types_enabled", _boolean),
    "DigestAuthenticationProvider.superDigest": ("super_digest", _super_digest),
    "DigestAuthenticationProvider.enabled": ("digest_auth_enabled", _boolean),
    "skipACL": ("skip_acl", _boolean),
    "serverId": ("server_id", _integer(1, 255, "an integer from 1 to 255")),
    "initLimit": ("init_limit", _positive),
    "syncLimit": ("sync_limit", _positive),
    "snapCount": ("snap_count", _integer(2, INT_MAX, "an integer of at least 2")),
    "preAllocSize": ("pre_alloc_size_kb", _positive),
    "forceSync": ("force_sync", _boolean),
    "autopurge.snapRetainCount": ("snap_retain_count", _any_int),
    "autopurge.purgeInterval": ("purge_interval_hours", _non_negative),
    "globalOutstandingLimit": ("global_outstanding_limit", _positive),
    "znode.container.checkIntervalMs": ("container_check_interval_ms", _positive),
    "znode.container.maxPerMinute": ("container_max_per_minute", _positive),
    "digest.enabled": ("digest_enabled", _boolean),
    "reconfigEnabled": ("reconfig_enabled", _boolean),
    "standaloneEnabled": ("standalone_enabled", _boolean),
    "admin.enableServer": ("admin_enable_server", _boolean),
    "admin.serverAddress": ("admin_server_address", _text),
    "admin.serverPort": ("admin_server_port", _port_or_zero),
    "admin.commandURL": ("admin_command_url", _url_path),
    "readonlymode.enabled": ("read_only_mode_enabled", _boolean),
    "localSessionsEnabled": ("local_sessions_enabled", _boolean),
    "localSessionsUpgradingEnabled": ("local_sessions_upgrading_enabled", _boolean),
    "enforceQuota": ("enforce_quota", _boolean),
    "clientPortListenBacklog": ("client_port_listen_backlog", _any_int),
    "maxCnxns": ("max_cnxns", _non_negative),
    "dynamicConfigFile": ("dynamic_config_file", _text),
    "metricsProvider.className": ("metrics_provider_class", _text),
    "metricsProvider.httpHost": ("metrics_http_host", _text),
    "metricsProvider.httpPort": ("metrics_http_port", _port_or_zero),
}

#: zoo.cfg key -> (QuorumOptions field, converter): a quorum peer's settings.
QUORUM_FIELDS: dict[str, tuple[str, Converter]] = {
    "electionAlg": ("election_alg", _election_alg),
    "syncEnabled": ("sync_enabled", _boolean),
    "quorumListenOnAllIPs": ("quorum_listen_on_all_ips", _boolean),
    "cnxTimeout": ("cnx_timeout_ms", _non_negative),
    "electionPortBindRetry": ("election_port_bind_retry", _any_int),
    "tcpKeepAlive": ("tcp_keep_alive", _boolean),
    "leaderServes": ("leader_serves", _yes_no),
    "commitLogCount": ("commit_log_count", _any_int),
    "snapshotSizeFactor": ("snapshot_size_factor", _real),
}

_READ = "read from raw where it is used"
_TUNING = "ignored: tunes a part of ZooKeeper's JVM server that zabd has no counterpart of"
_ABSENT = "ignored: a 3.8 feature zabd does not have, and nothing depends on it for safety"
_OVERLOAD = "read into ZabdConfig.overload (zabd.config.overload)"


def _guide_name(key: str) -> str:
    return f"ignored: the admin guide's name for zookeeper.{key}, which is the key 3.8 reads"

#: Keys ZooKeeper knows that map to no field: (check when typed, what zabd does with them).
KEPT: dict[str, tuple[Converter | None, str]] = {
    "4lw.commands.whitelist": (None, "read by parse_config"),
    "peerType": (_peer_type, "read with the membership"),
    "version": (None, "read with the membership"),
    "fsync.warningthresholdms": (_any_long, _READ),
    "datadir.autocreate": (_boolean, _READ), "db.autocreate": (_boolean, _READ),
    "observerMasterPort": (_port_or_zero, _ABSENT + " (observers sync from the leader); no port is opened"),
    "connectToLearnerMasterLimit": (_non_negative, _ABSENT + " (observer masters)"),
    "multiAddress.enabled": (_boolean, "several addresses per server are refused where they appear"),
    "multiAddress.reachabilityCheckEnabled": (_boolean, _ABSENT),
    "multiAddress.reachabilityCheckTimeoutMs": (_non_negative, _ABSENT),
    "quorum.cnxn.threads.size": (_positive, _TUNING),
    "snapSizeLimitInKb": (_any_long, _TUNING), "txnLogSizeLimitInKb": (_any_long, _TUNING),
    "audit.enable": (_boolean, _ABSENT + " (audit logs)"), "oraclePath": (None, _ABSENT),
    "serverCnxnFactory": (None, "ignored: zabd has one connection layer, which does TLS"),
    "flushDelay": (_any_long, _TUNING), "maxBatchSize": (_any_int, _TUNING),
    "maxWriteQueuePollTime": (_any_long, _TUNING), "maxTimeToWaitForEpoch": (_any_int, _TUNING),
    "closeSessionTxn.enabled": (_boolean, _ABSENT), "emulate353TTLNodes": (_boolean, _ABSENT),
    "watchManagerName": (None, _TUNING), "watcherCleanThreshold": (_any_int, _TUNING),
    "watcherCleanIntervalInSeconds": (_any_int, _TUNING), "watcherCleanThreadsNum": (_any_int, _TUNING),
    "maxResponseCacheSize": (_any_int, _TUNING), "maxGetChildrenResponseCacheSize": (_any_int, _TUNING),
    "largeRequestMaxBytes": (_any_int, _OVERLOAD), "largeRequestThreshold": (_any_int, _OVERLOAD),
    "clientTcpKeepAlive": (_boolean, _TUNING),
    "jute.maxbuffer.extrasize": (_any_int, _OVERLOAD),
    "digest.log.interval": (None, _TUNING), "digest.log.limit": (None, _TUNING),
    "maxInProcessingDeadWatchers": (None, _TUNING), "bitHashCacheSize": (None, _TUNING),
    "request_throttle_max_requests": (_any_int, _OVERLOAD), "request_throttle_stall_time": (_non_negative, _OVERLOAD),
    "request_throttle_drop_stale": (_true_false, _OVERLOAD), "throttled_op_wait_time": (_any_int, _OVERLOAD),
    "request_stale_connection_check": (_true_false, _OVERLOAD), "request_stale_latency_check": (_true_false, _OVERLOAD),
    "request_throttler.shutdownTimeout": (_any_int, "ignored: a stopping server drops its throttler's queue at once"),
    "requestThrottleLimit": (None, _guide_name("request_throttle_max_requests")),
    "requestThrottleStallTime": (None, _guide_name("request_throttle_stall_time")),
    "requestThrottleDropStale": (None, _guide_name("request_throttle_drop_stale")),
    "requestStaleLatencyCheck": (None, _guide_name("request_stale_latency_check")),
    "requestStaleConnectionCheck": (None, _guide_name("request_stale_connection_check")),
    "advancedFlowControlEnabled": (None, _TUNING), "enableEagerACLCheck": (None, _ABSENT),
    "maxConcurrentSnapSyncs": (None, _TUNING), "maxConcurrentDiffSyncs": (None, _TUNING),
    "outstandingHandshake.limit": (None, "ignored: 3.8 reads it as netty.server.outstandingHandshake.limit"),
    "throttledOpWaitTime": (None, _guide_name("throttled_op_wait_time")), "quorumCnxnTimeoutMs": (None, _TUNING),
    **{f"connection_throttle_{name}": (convert, _OVERLOAD) for name, convert in (
        ("tokens", _any_int), ("fill_time", _positive), ("fill_count", _any_int), ("freeze_time", _any_int),
        ("drop_increase", _real), ("drop_decrease", _real), ("decrease_ratio", _real),
        ("weight_enabled", _true_false), ("global_session_weight", _any_int),
        ("local_session_weight", _any_int), ("renew_session_weight", _any_int))},
    "connectionMaxTokens": (None, _guide_name("connection_throttle_tokens")),
    "connectionTokenFillTime": (None, _guide_name("connection_throttle_fill_time")),
    "connectionTokenFillCount": (None, _guide_name("connection_throttle_fill_count")),
    "connectionFreezeTime": (None, _guide_name("connection_throttle_freeze_time")),
    "connectionDropIncrease": (None, _guide_name("connection_throttle_drop_increase")),
    "connectionDropDecrease": (None, _guide_name("connection_throttle_drop_decrease")),
    "connectionDecreaseRatio": (None, _guide_name("connection_throttle_decrease_ratio")),
    "forward_learner_requests_to_commit_processor_disabled": (None, _TUNING),
    "snapshot.trust.empty": (_boolean, _READ),
    "snapshot.compression.method": (None, "ignored: zabd writes uncompressed snapshots, which 3.8 reads"),
    "znode.container.maxNeverUsedIntervalMs": (None, _ABSENT),
}

#: Key prefixes ZooKeeper knows that zabd passes over, with why.
KEPT_PREFIXES: dict[str, str] = {
    "server.": "read with the membership", "group.": "read with the membership",
    "weight.": "read with the membership",
    "metricsProvider.": "ignored: tunes the Prometheus provider's JVM threads",
    "admin.": "ignored: tunes the AdminServer's Jetty", "jvm.pause.": _TUNING,
    "nio.": _TUNING, "netty.": _TUNING, "audit.": _ABSENT + " (audit logs)", "request_": _ABSENT,
    "learner.": _TUNING,
    "leader.": _TUNING, "follower.": _TUNING, "observer.": _TUNING,
    "client.": "ignored: a client's setting, which a server does not read",
    "messageTracker.": _TUNING, "pathStats.": _TUNING, "commitProcessor.": _TUNING,
    "fastleader.": _TUNING,
}


def kept_reason(name: str) -> str | None:
    """What zabd does with a kept key or prefix (a canonical key), or None if it is not one."""
    if name in KEPT:
        return KEPT[name][1]
    for prefix, reason in KEPT_PREFIXES.items():
        if name.startswith(prefix):
            return reason
    return None


def canonical_key(key: str) -> str:
    """The key without ``zookeeper.``: zoo.cfg may use the system-property spelling."""
    return key[len("zookeeper."):] if key.startswith("zookeeper.") else key


def four_letter_whitelist(value: str, read_only: bool) -> frozenset[str]:
    """
    The enabled four-letter words for a ``4lw.commands.whitelist`` value.

    :param value: comma-separated names, or ``*`` for all; unknown names drop out.
    :param read_only: whether read-only mode is enabled (then isro is added).
    """
    names = {name.strip().lower() for name in value.split(",")}
    enabled = set(COMMAND_NAMES) if "*" in names else names & COMMAND_NAMES
    # As in ZooKeeper: zkServer.sh needs srvr; read-only clients probe with isro.
    enabled.add("srvr")
    if read_only:
        enabled.add("isro")
    return frozenset(enabled)


def server_entry(name: str, value: str) -> tuple[int, str]:
    """
    A ``server.N`` key's (server id, address spec).

    :param name: the canonical key, ``server.N``.
    :param value: its value, which must not be empty.
    :raises BadValue: if N is not a server id or the value is empty.
    """
    try:
        sid = parse_server_id(name)
    except ValueError as e:
        raise BadValue(str(e)) from None
    return sid, _text(value)


# Converters other config modules read keys with.
boolean, integer, port_or_zero, text = _boolean, _integer, _port_or_zero, _text
