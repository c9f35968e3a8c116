"""Socket options every zabd port sets, as ZooKeeper sets them.

Nagle's algorithm holds a small packet back until the previous one is
acknowledged; the peer's delayed ACK can make that 40 ms. ZooKeeper turns it
off on client and quorum sockets, and so does zabd: a follower's COMMIT must
not wait for the TCP ACK of its PROPOSAL.
"""
from __future__ import annotations

from typing import Any


def set_no_delay(transport: Any, *, keep_alive: bool = False) -> None:
    """TCP_NODELAY (and SO_KEEPALIVE if asked) on a TCP transport; others are left as they are."""
    no_delay = getattr(transport, "setTcpNoDelay", None)
    if no_delay is None:
        return  # a loopback or in-memory transport in tests
    no_delay(True)
    if keep_alive:
        transport.setTcpKeepAlive(True)
