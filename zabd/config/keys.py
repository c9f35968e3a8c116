"""
What each zoo.cfg key means to zabd: its type, its range and where it goes.

``config.py`` holds the resulting :class:`~zabd.config.zoocfg.ZabdConfig`
and the checks that span several keys; this module is the per-key table
behind it (ZooKeeper's key -> ``ZabdConfig`` field and converter, the keys
zabd accepts but only keeps, and the prefixes it passes over silently), so
adding or retyping a key touches one line here and nothing else.
"""

from __future__ import annotations

from zabd.config.converters import (
    BadValue,
    Converter,
    any_int,
    any_long,
    boolean,
    election_alg,
    integer,
    non_negative,
    only_true,
    peer_type,
    port,
    port_or_zero,
    positive,
    real,
    super_digest,
    text,
    timeout,
    true_false,
    unless_false,
    url_path,
    yes_no,
)
from zabd.config.ensemble import parse_server_id
from zabd.java.limits import INT_MAX

#: The four-letter words 3.8 knows, in its order; ``4lw.commands.whitelist`` names some of them.
FOUR_LETTER_WORDS = (
    "ruok", "srvr", "stat", "mntr", "conf", "cons", "crst", "srst", "dump",
    "envi", "wchs", "wchc", "wchp", "dirs", "isro", "hash", "gtmk", "stmk",
)

#: Every command name, for whitelists (``*``).
COMMAND_NAMES: frozenset[str] = frozenset(FOUR_LETTER_WORDS)


#: zoo.cfg key -> (ZabdConfig field, converter).
FIELDS: dict[str, tuple[str, Converter]] = {
    "tickTime": ("tick_time", positive),
    "dataDir": ("data_dir", text),
    "dataLogDir": ("data_log_dir", text),
    "clientPort": ("client_port", port),
    "clientPortAddress": ("client_port_address", text),
    "maxClientCnxns": ("max_client_cnxns", non_negative),
    "minSessionTimeout": ("min_session_timeout", timeout),
    "maxSessionTimeout": ("max_session_timeout", timeout),
    "jute.maxbuffer": ("jute_max_buffer", positive),
    "extendedTypesEnabled": ("extended_types_enabled", boolean),
    "DigestAuthenticationProvider.superDigest": ("super_digest", super_digest),
    "DigestAuthenticationProvider.enabled": ("digest_auth_enabled", boolean),
    "skipACL": ("skip_acl", boolean),
    "serverId": ("server_id", integer(1, 255, "an integer from 1 to 255")),
    "initLimit": ("init_limit", positive),
    "syncLimit": ("sync_limit", positive),
    "snapCount": ("snap_count", integer(2, INT_MAX, "an integer of at least 2")),
    "preAllocSize": ("pre_alloc_size_kb", positive),
    "forceSync": ("force_sync", boolean),
    "autopurge.snapRetainCount": ("snap_retain_count", any_int),
    "autopurge.purgeInterval": ("purge_interval_hours", non_negative),
    "globalOutstandingLimit": ("global_outstanding_limit", positive),
    "znode.container.checkIntervalMs": ("container_check_interval_ms", positive),
    "znode.container.maxPerMinute": ("container_max_per_minute", positive),
    "digest.enabled": ("digest_enabled", boolean),
    "reconfigEnabled": ("reconfig_enabled", boolean),
    "standaloneEnabled": ("standalone_enabled", boolean),
    "admin.enableServer": ("admin_enable_server", boolean),
    "admin.serverAddress": ("admin_server_address", text),
    "admin.serverPort": ("admin_server_port", port_or_zero),
    "admin.commandURL": ("admin_command_url", url_path),
    "readonlymode.enabled": ("read_only_mode_enabled", boolean),
    "localSessionsEnabled": ("local_sessions_enabled", boolean),
    "localSessionsUpgradingEnabled": ("local_sessions_upgrading_enabled", boolean),
    "enforceQuota": ("enforce_quota", boolean),
    "clientPortListenBacklog": ("client_port_listen_backlog", any_int),
    "maxCnxns": ("max_cnxns", non_negative),
    "dynamicConfigFile": ("dynamic_config_file", text),
    "metricsProvider.className": ("metrics_provider_class", text),
    "metricsProvider.httpHost": ("metrics_http_host", text),
    "metricsProvider.httpPort": ("metrics_http_port", port_or_zero),
    "db.autocreate": ("db_autocreate", unless_false),
    "snapshot.trust.empty": ("trust_empty_snapshot", only_true),
    "fsync.warningthresholdms": ("fsync_warning_threshold_ms", any_long),
}

#: zoo.cfg key -> (QuorumOptions field, converter): a quorum peer's settings.
QUORUM_FIELDS: dict[str, tuple[str, Converter]] = {
    "electionAlg": ("election_alg", election_alg),
    "syncEnabled": ("sync_enabled", boolean),
    "quorumListenOnAllIPs": ("quorum_listen_on_all_ips", boolean),
    "cnxTimeout": ("cnx_timeout_ms", non_negative),
    "electionPortBindRetry": ("election_port_bind_retry", any_int),
    "tcpKeepAlive": ("tcp_keep_alive", boolean),
    "leaderServes": ("leader_serves", yes_no),
    "commitLogCount": ("commit_log_count", any_int),
    "snapshotSizeFactor": ("snapshot_size_factor", real),
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
    "peerType": (peer_type, "read with the membership"),
    "version": (None, "read with the membership"),
    "datadir.autocreate": (boolean, _READ),
    "observerMasterPort": (port_or_zero, _ABSENT + " (observers sync from the leader); no port is opened"),
    "connectToLearnerMasterLimit": (non_negative, _ABSENT + " (observer masters)"),
    "multiAddress.enabled": (boolean, "several addresses per server are refused where they appear"),
    "multiAddress.reachabilityCheckEnabled": (boolean, _ABSENT),
    "multiAddress.reachabilityCheckTimeoutMs": (non_negative, _ABSENT),
    "quorum.cnxn.threads.size": (positive, _TUNING),
    "snapSizeLimitInKb": (any_long, _TUNING), "txnLogSizeLimitInKb": (any_long, _TUNING),
    "audit.enable": (boolean, _ABSENT + " (audit logs)"), "oraclePath": (None, _ABSENT),
    "serverCnxnFactory": (None, "ignored: zabd has one connection layer, which does TLS"),
    "flushDelay": (any_long, _TUNING), "maxBatchSize": (any_int, _TUNING),
    "maxWriteQueuePollTime": (any_long, _TUNING), "maxTimeToWaitForEpoch": (any_int, _TUNING),
    "closeSessionTxn.enabled": (boolean, _ABSENT), "emulate353TTLNodes": (boolean, _ABSENT),
    "watchManagerName": (None, _TUNING), "watcherCleanThreshold": (any_int, _TUNING),
    "watcherCleanIntervalInSeconds": (any_int, _TUNING), "watcherCleanThreadsNum": (any_int, _TUNING),
    "maxResponseCacheSize": (any_int, _TUNING), "maxGetChildrenResponseCacheSize": (any_int, _TUNING),
    "largeRequestMaxBytes": (any_int, _OVERLOAD), "largeRequestThreshold": (any_int, _OVERLOAD),
    "clientTcpKeepAlive": (boolean, _TUNING),
    "jute.maxbuffer.extrasize": (any_int, _OVERLOAD),
    "digest.log.interval": (None, _TUNING), "digest.log.limit": (None, _TUNING),
    "maxInProcessingDeadWatchers": (None, _TUNING), "bitHashCacheSize": (None, _TUNING),
    "request_throttle_max_requests": (any_int, _OVERLOAD), "request_throttle_stall_time": (non_negative, _OVERLOAD),
    "request_throttle_drop_stale": (true_false, _OVERLOAD), "throttled_op_wait_time": (any_int, _OVERLOAD),
    "request_stale_connection_check": (true_false, _OVERLOAD), "request_stale_latency_check": (true_false, _OVERLOAD),
    "request_throttler.shutdownTimeout": (any_int, "ignored: a stopping server drops its throttler's queue at once"),
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
        ("tokens", any_int), ("fill_time", positive), ("fill_count", any_int), ("freeze_time", any_int),
        ("drop_increase", real), ("drop_decrease", real), ("decrease_ratio", real),
        ("weight_enabled", true_false), ("global_session_weight", any_int),
        ("local_session_weight", any_int), ("renew_session_weight", any_int))},
    "connectionMaxTokens": (None, _guide_name("connection_throttle_tokens")),
    "connectionTokenFillTime": (None, _guide_name("connection_throttle_fill_time")),
    "connectionTokenFillCount": (None, _guide_name("connection_throttle_fill_count")),
    "connectionFreezeTime": (None, _guide_name("connection_throttle_freeze_time")),
    "connectionDropIncrease": (None, _guide_name("connection_throttle_drop_increase")),
    "connectionDropDecrease": (None, _guide_name("connection_throttle_drop_decrease")),
    "connectionDecreaseRatio": (None, _guide_name("connection_throttle_decrease_ratio")),
    "forward_learner_requests_to_commit_processor_disabled": (None, _TUNING),
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
    return sid, text(value)


