"""
Where zabd's admin JSON deliberately differs from ZooKeeper 3.8.0's, in one place.

Key sets were captured from Debian's 3.8.0 (a standalone and a 3-peer
ensemble with an observer, ``admin.enableServer=true``).  The tests compare
zabd's answers with these and with a live ZooKeeper; every command not named
here answers exactly 3.8.0's keys (``command`` and ``error`` included).
"""
from __future__ import annotations

import re

#: command -> why its keys differ, and how the tests compare them instead.
KEY_DIFFERENCES: dict[str, str] = {
    "monitor": "zabd reports the mntr figures it keeps (monitor_pairs), a subset of 3.8's ~480 "
               "ServerMetrics names; zabd-only names are listed in MONITOR_ONLY_IN_ZABD.",
    "environment": "python.* entries where 3.8 has java.*, and no os.memory.* (no JVM heap); "
                   "the other keys are 3.8's.",
    "system_properties": "Java system properties have no Python meaning: zabd lists its runtime facts and "
                         "every zoo.cfg key as zookeeper.<key>; the tests only ask 3.8's zookeeper.* keys.",
}

#: monitor keys zabd has and 3.8.0 does not.
MONITOR_ONLY_IN_ZABD = frozenset({"pending_changes"})

#: Summaries named after a learner's server id (``avg_2_ack_latency``): which names
#: exist depends on who leads, so key sets are compared without them.
PER_PEER_MONITOR_KEY = re.compile(r"(avg|min|max|cnt|sum|p50|p95|p99|p999)_[0-9]+_")

#: environment keys only the JVM has.
JAVA_ONLY_ENVIRONMENT = frozenset({
    "java.version", "java.vendor", "java.home", "java.class.path", "java.library.path",
    "java.io.tmpdir", "java.compiler", "os.memory.free", "os.memory.max", "os.memory.total",
})

_BASE = frozenset({"command", "error"})

#: Top-level keys 3.8.0 answers on a standalone server, by primary name (commands compared exactly).
STANDALONE_KEYS: dict[str, frozenset[str]] = {name: _BASE | frozenset(keys) for name, keys in {
    "configuration": {"client_port", "client_port_listen_backlog", "data_dir", "data_log_dir",
                      "max_client_cnxns", "max_session_timeout", "min_session_timeout", "server_id",
                      "tick_time"},
    "connection_stat_reset": set(),
    "connections": {"connections", "secure_connections"},
    "dirs": {"datadir_size", "logdir_size"},
    "dump": {"expiry_time_to_session_ids", "session_id_to_ephemeral_paths"},
    "get_trace_mask": {"tracemask"},
    "hash": {"digests"},
    "initial_configuration": {"initial_configuration"},
    "is_read_only": {"read_only"},
    "last_snapshot": {"timestamp", "zxid"},
    "leader": set(),
    "observer_connection_stat_reset": set(),
    "observers": {"observers", "synced_observers"},
    "ruok": set(),
    "server_stats": {"client_response", "node_count", "read_only", "server_stats", "version"},
    "set_trace_mask": set(),
    "stat_reset": set(),
    "stats": {"client_response", "connections", "node_count", "read_only", "secure_connections",
              "server_stats", "version"},
    "voting_view": {"current_config"},
    "watch_summary": {"num_connections", "num_paths", "num_total_watches"},
    "watches": {"session_id_to_watched_paths"},
    "watches_by_path": {"path_to_session_ids"},
    "zabstate": {"voting", "zabstate"},
}.items()}

_ZABSTATE_PEER = {"myid", "is_leader", "quorum_address", "election_address", "client_address", "voting",
                  "last_zxid", "zab_epoch", "zab_counter", "zabstate"}

#: What an ensemble peer answers differently from a standalone server (others as STANDALONE_KEYS).
PEER_KEYS: dict[str, frozenset[str]] = {
    "leader": _BASE | {"is_leader", "leader_id", "leader_ip"},
    "zabstate": _BASE | _ZABSTATE_PEER,
}

#: The leader adds proposal_stats to server_stats and stats.
LEADER_EXTRA_KEYS: dict[str, frozenset[str]] = {
    "server_stats": frozenset({"proposal_stats"}),
    "stats": frozenset({"proposal_stats"}),
}

#: Keys of nested objects: (command, what) -> keys.
NESTED_KEYS: dict[str, frozenset[str]] = {
    "server_stats.server_stats": frozenset({
        "packets_sent", "packets_received", "fsync_threshold_exceed_count", "client_response_stats",
        "data_dir_size", "log_dir_size", "provider_null", "server_state", "last_processed_zxid",
        "outstanding_requests", "avg_latency", "max_latency", "min_latency", "num_alive_client_connections",
        "uptime", "auth_failed_count", "non_mtlsremote_conn_count", "non_mtlslocal_conn_count"}),
    "buffer_sizes": frozenset({"last_buffer_size", "min_buffer_size", "max_buffer_size"}),
    "connections.connection": frozenset({
        "remote_socket_address", "interest_ops", "outstanding_requests", "packets_received", "packets_sent",
        "session_id", "last_operation", "established", "session_timeout", "last_cxid", "last_zxid",
        "last_response_time", "last_latency", "min_latency", "avg_latency", "max_latency"}),
    "stats.connection": frozenset({
        "remote_socket_address", "interest_ops", "outstanding_requests", "packets_received", "packets_sent"}),
    "observers.observer": frozenset({
        "remote_socket_address", "sid", "established", "queued_packets", "queued_packets_size",
        "packets_received", "packets_sent", "requests", "last_zxid"}),
    "voting_view.member": frozenset({"server_addresses", "election_addresses", "client_address", "learner_type"}),
    "zabstate.address": frozenset({
        "empty", "all_addresses", "all_reachable_addresses", "one", "reachable_address", "wildcard_addresses",
        "all_ports", "all_host_strings", "all_reachable_addresses_or_all", "reachable_or_one"}),
}


def expected_keys(command: str, role: str) -> frozenset[str]:
    """3.8.0's top-level keys for ``command`` on a ``standalone``, ``leader``, ``follower`` or ``observer``."""
    keys = STANDALONE_KEYS[command] if role == "standalone" else PEER_KEYS.get(command, STANDALONE_KEYS[command])
    if role == "leader":
        keys = keys | LEADER_EXTRA_KEYS.get(command, frozenset())
    return keys
