"""
3.8's TLS figures: handshakes under way, failed and refused, and the
connections that came without TLS (its ``non_mtls`` gauges).

The TLS layer (``zabd.server.tls_ports``) counts into one :class:`TlsCounters`
per process; :func:`register_tls` shows them in mntr and /metrics under
ZooKeeper's names, which 3.8 prints whether or not TLS is on.
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass

from zabd.metrics.registry import MetricsRegistry


@dataclass(slots=True)
class TlsCounters:
    """One listener group's TLS handshake figures (client ports, or the admin port), under 3.8's names."""

    outstanding: int = 0
    unsuccessful: int = 0
    exceeded: int = 0
    non_mtls_local: int = 0
    non_mtls_remote: int = 0

    def plaintext(self, host: str) -> None:
        """Count a client connection that speaks no TLS, loopback apart, as 3.8 does."""
        try:
            local = ipaddress.ip_address(host).is_loopback
        except ValueError:
            local = True  # a UNIX or in-memory address in tests
        if local:
            self.non_mtls_local += 1
        else:
            self.non_mtls_remote += 1


def register_tls(registry: MetricsRegistry, counters: TlsCounters, admin: TlsCounters) -> None:
    """
    Show the client ports' ``counters`` in the registry under 3.8's names, and
    as ``insecure_admin_count`` the plain HTTP connections that ``admin``
    counts on an ``admin.portUnification`` port (3.8 counts requests).
    """
    registry.gauge("outstanding_tls_handshake", lambda: counters.outstanding)
    registry.gauge("unsuccessful_handshake", lambda: counters.unsuccessful)
    registry.gauge("tls_handshake_exceeded", lambda: counters.exceeded)
    registry.gauge("non_mtls_remote_conn_count", lambda: counters.non_mtls_remote)
    registry.gauge("non_mtls_local_conn_count", lambda: counters.non_mtls_local)
    registry.gauge("insecure_admin_count", lambda: admin.non_mtls_local + admin.non_mtls_remote)
