"""
The JSON shapes of ZooKeeper 3.8.0's admin commands, built from a server view.

Jackson serialises 3.8's objects with snake_case names; each function here
returns the dict one of those objects becomes, so that the command table in
``commands.py`` only says which shape a command answers.  Figures come from
the :class:`~zabd.views.fourletter_view.AdminView` alone (pure: no I/O).
"""
from __future__ import annotations

from typing import Any

from zabd.core.zxid import counter_of, epoch_of
from zabd.views.fourletter import monitor_pairs
from zabd.views.fourletter_view import AdminView, ConnectionInfo, MemberInfo, QuorumRole

#: A JSON-able object, as the commands answer it.
JsonObject = dict[str, Any]

#: What 3.8 reports for a buffer size it has not measured (zabd measures none).
UNMEASURED = -1

#: ``conf`` lines (see ``ZabdConfig.conf_lines``) -> the ``configuration`` command's keys.
_CONF_KEYS = {
    "clientPort": "client_port", "dataDir": "data_dir", "dataLogDir": "data_log_dir",
    "tickTime": "tick_time", "maxClientCnxns": "max_client_cnxns",
    "minSessionTimeout": "min_session_timeout", "maxSessionTimeout": "max_session_timeout",
    "serverId": "server_id", "clientPortListenBacklog": "client_port_listen_backlog",
}
_TEXT_CONF_KEYS = frozenset({"data_dir", "data_log_dir"})

#: The digest format version 3.8 writes (``DigestCalculator.DIGEST_VERSION``).
DIGEST_VERSION = 2


def _address(host: str, port: int) -> str:
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


def connection(c: ConnectionInfo, brief: bool) -> JsonObject:
    """One client connection (``ServerCnxn.getConnectionInfo``)."""
    info: JsonObject = {
        "remote_socket_address": _address(c.remote_host, c.remote_port),
        "interest_ops": c.interest_ops,
        "outstanding_requests": c.queued,
        "packets_received": c.packets_received,
        "packets_sent": c.packets_sent,
    }
    if not brief:
        info.update({
            "session_id": c.session_id,
            "last_operation": c.last_op,
            "established": c.established_ms,
            "session_timeout": c.session_timeout_ms,
            "last_cxid": c.last_cxid,
            "last_zxid": c.last_zxid,
            "last_response_time": c.last_response_ms,
            "last_latency": c.last_latency_ms,
            "min_latency": c.min_latency_ms,
            "avg_latency": c.avg_latency_ms,
            "max_latency": c.max_latency_ms,
        })
    return info


def connections(view: AdminView, brief: bool) -> JsonObject:
    """``connections``/``stats``: the client port's connections; zabd has no secure port."""
    return {"connections": [connection(c, brief) for c in view.connections()], "secure_connections": []}


def _buffer_sizes(sizes: tuple[int, int, int] | None = None) -> JsonObject:
    last, low, high = sizes if sizes is not None else (UNMEASURED,) * 3
    return {"last_buffer_size": last, "min_buffer_size": low, "max_buffer_size": high}


def server_stats(view: AdminView) -> JsonObject:
    """``server_stats`` (srvr): 3.8's ServerStats object and the figures around it."""
    figures = dict(monitor_pairs(view))
    metrics = getattr(view, "metrics", None)
    tls = metrics.tls if metrics is not None else None
    stats: JsonObject = {
        "packets_sent": view.packets_sent,
        "packets_received": view.packets_received,
        # The metrics helper may add it to mntr; 0 until then, as on a fast disk.
        "fsync_threshold_exceed_count": figures.get("fsync_threshold_exceed_count", 0),
        "client_response_stats": _buffer_sizes(),
        "data_dir_size": view.data_dir_size,
        "log_dir_size": view.log_dir_size,
        "provider_null": False,
        "server_state": view.mode,
        "last_processed_zxid": view.last_zxid,
        "outstanding_requests": view.outstanding_requests,
        "avg_latency": float(view.avg_latency_ms),
        "max_latency": view.max_latency_ms,
        "min_latency": view.min_latency_ms,
        "num_alive_client_connections": len(view.connections()),
        "uptime": view.uptime_ms,
        "auth_failed_count": view.auth_failed_count,
        # 3.8's server_stats spells these without the underscore after mtls.
        "non_mtlsremote_conn_count": tls.non_mtls_remote if tls else 0,
        "non_mtlslocal_conn_count": tls.non_mtls_local if tls else 0,
    }
    out: JsonObject = {
        "version": view.version,
        "read_only": view.read_only,
        "server_stats": stats,
        "client_response": _buffer_sizes(),
    }
    if view.mode == "leader" and view.proposal_sizes is not None:
        out["proposal_stats"] = _buffer_sizes(view.proposal_sizes)
    out["node_count"] = view.node_count
    return out


def configuration(view: AdminView) -> JsonObject:
    """``configuration``: the first lines of ``conf``, typed as 3.8's ZooKeeperServerConf."""
    out: JsonObject = {}
    for key, value in view.config_lines():
        name = _CONF_KEYS.get(key)
        if name is not None:
            out[name] = value if name in _TEXT_CONF_KEYS else int(value)
    return out


def dump(view: AdminView) -> JsonObject:
    return {
        "expiry_time_to_session_ids": {str(at): list(ids) for at, ids in view.session_expiry()},
        "session_id_to_ephemeral_paths": {str(sid): list(paths)
                                          for sid, paths in view.sessions_with_ephemerals().items()},
    }


def environment(view: AdminView) -> JsonObject:
    out: JsonObject = {"zookeeper.version": view.version}
    out.update((k, v) for k, v in view.environment() if k != "zookeeper.version")
    return out


def digests(view: AdminView) -> JsonObject:
    return {"digests": [{"zxid": zxid, "digest_version": DIGEST_VERSION, "digest": digest}
                        for zxid, digest in view.digest_history()]}


def last_snapshot(view: AdminView) -> JsonObject:
    found = view.last_snapshot()
    zxid, seconds = found if found is not None else (-1, -1)
    # Java's Long.toHexString: unsigned, no prefix.
    return {"zxid": format(zxid & 0xFFFFFFFFFFFFFFFF, "x"), "timestamp": seconds}


def leader(view: AdminView) -> JsonObject:
    role = view.quorum_role()
    if role is None:
        return {"error": "server is not initialized"}
    return {"is_leader": role.is_leader, "leader_id": role.leader_id, "leader_ip": role.leader_host}


def observers(view: AdminView) -> JsonObject:
    found = view.observers()
    return {
        "synced_observers": len(found),
        "observers": [{
            "remote_socket_address": f"/{o.remote_address}" if o.remote_address else "",
            "sid": o.sid,
            "established": o.established_ms,
            "queued_packets": 0,
            "queued_packets_size": 0,
            "packets_received": 0,
            "packets_sent": 0,
            "requests": 0,
            "last_zxid": o.last_zxid,
        } for o in found],
    }


def voting_view(view: AdminView) -> JsonObject:
    role = view.quorum_role()
    voters = role.voters if role is not None else ()
    return {"current_config": {str(m.sid): {
        "server_addresses": [m.quorum_address],
        "election_addresses": [m.election_address],
        "client_address": m.client_address,
        "learner_type": "participant" if m.participant else "observer",
    } for m in voters}}


def watch_summary(view: AdminView) -> JsonObject:
    s = view.watch_summary()
    return {"num_connections": s.connections, "num_paths": s.paths, "num_total_watches": s.total}


def watches(view: AdminView) -> JsonObject:
    return {"session_id_to_watched_paths": {str(sid): list(paths)
                                            for sid, paths in view.watches_by_session().items()}}


def watches_by_path(view: AdminView) -> JsonObject:
    return {"path_to_session_ids": {path: list(sids) for path, sids in view.watches_by_path().items()}}


def _multiple_addresses(address: str) -> JsonObject:
    """3.8 serialises its MultipleAddresses bean whole; one address here."""
    host, _, port = address.rpartition(":")
    return {
        "empty": not address,
        "all_addresses": [address],
        "all_reachable_addresses": [address],
        "one": address,
        "reachable_address": address,
        "wildcard_addresses": [f"0.0.0.0:{port}"],
        "all_ports": [int(port)] if port.isdigit() else [],
        "all_host_strings": [host.strip("[]")],
        "all_reachable_addresses_or_all": [address],
        "reachable_or_one": address,
    }


def zabstate(view: AdminView) -> JsonObject:
    role: QuorumRole | None = view.quorum_role()
    if role is None:
        return {"voting": False, "zabstate": ""}
    me: MemberInfo = role.me
    zxid = view.last_zxid
    return {
        "myid": role.myid,
        "is_leader": role.is_leader,
        "quorum_address": _multiple_addresses(me.quorum_address),
        "election_address": _multiple_addresses(me.election_address),
        "client_address": me.client_address,
        "voting": role.voting,
        "last_zxid": f"0x{zxid:x}",
        "zab_epoch": epoch_of(zxid),
        "zab_counter": counter_of(zxid),
        "zabstate": role.zab_phase,
    }
