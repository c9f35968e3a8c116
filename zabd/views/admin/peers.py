# -*- test-case-name: tests.unit.test_status_page -*-
"""Which peers the status page asks, and at which client address (pure).

A member's client address is known when its ``server.N`` line has the
``;[host:]port`` part. Without it, the page guesses the member's quorum host
with this server's ``clientPort`` (the usual layout: one peer a host, every
peer on the same port). That guess is dropped when it would be this server's
own address, since two peers cannot share it: the member is then shown with
no address rather than with this server's figures under its name.
"""
from __future__ import annotations

from zabd.views.admin.status_figures import PeerTarget
from zabd.membership.members import QuorumServer
from zabd.config.zoocfg import ZabdConfig

_WILDCARDS = ("0.0.0.0", "0:0:0:0:0:0:0:0", "::")


def _client_host(member: QuorumServer) -> str:
    # A wildcard client host listens everywhere; the quorum host reaches it.
    assert member.client_addr is not None
    host = member.client_addr[0]
    return member.quorum_addr[0] if host in _WILDCARDS else host


def peer_targets(config: ZabdConfig) -> list[PeerTarget]:
    """
    Every member of the configured ensemble, in server id order, this server marked.

    A standalone server (no ensemble) is one target, itself.
    """
    ensemble = config.ensemble
    if ensemble is None:
        host = config.client_port_address or "0.0.0.0"
        return [PeerTarget(None, host, config.client_port, this_server=True)]
    me = ensemble.my_server
    own_host = (config.client_port_address
                if config.client_port_address not in (None, *_WILDCARDS) else me.quorum_addr[0])
    targets = []
    for sid, member in sorted(ensemble.verifier.all_members.items()):
        if sid == ensemble.myid:
            targets.append(PeerTarget(sid, own_host, config.client_port, this_server=True))
        elif member.client_addr is not None and not member.client_addr_from_static:
            targets.append(PeerTarget(sid, _client_host(member), member.client_addr[1]))
        elif member.quorum_addr[0] in (me.quorum_addr[0], own_host):
            targets.append(PeerTarget(
                sid, None, config.client_port,
                note=f"server.{sid} names no client address, and this server's clientPort "
                     "on its host is this server's own"))
        else:
            targets.append(PeerTarget(
                sid, member.quorum_addr[0], config.client_port,
                note=f"server.{sid} names no client address: assumed clientPort {config.client_port}"))
    return targets
