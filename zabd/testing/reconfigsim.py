"""Reconfig scenarios on a SimEnsemble: new peers that join, and reconfig requests at the leader.

A joining peer starts as 3.8's manual tells operators to start one: its
config lists the current members and itself. It takes the ensemble's newer
config from the first election notification it hears, follows as a
non-voting member, and votes once a reconfig adds it.
"""
from __future__ import annotations

from zabd.core.acl import SUPER
from zabd.membership.verifier import QuorumMaj
from zabd.jute.opcodes import OpCode
from zabd.jute.records import ReconfigRequest
from zabd.jute.schema import encode
from zabd.jute.txns import ErrorTxn
from zabd.pipeline.request import Request
from zabd.testing.ensemble import SimEnsemble, sim_member
from zabd.testing.memdisk import MemoryDisk


def server_line(sid: int, *, observer: bool = False) -> str:
    """``server.N=...`` as a reconfig's joining list names it."""
    return f"server.{sid}={sim_member(sid, observer=observer).spec()}"


def join(ensemble: SimEnsemble, sid: int, *, observer: bool = False) -> None:
    """Start peer ``sid`` with the leader's members plus itself in its config (version 0)."""
    leader = ensemble.leader()
    assert leader is not None, "a peer joins a serving ensemble"
    current = ensemble.peers[leader].verifier.all_members.values()
    ensemble.configs[sid] = QuorumMaj([*current, sim_member(sid, observer=observer)])
    ensemble.disks[sid] = MemoryDisk(ensemble.sim.rng)
    ensemble.sids.append(sid)
    ensemble.start(sid)


def reconfig(ensemble: SimEnsemble, *, joining: str | None = None, leaving: str | None = None,
             members: str | None = None, from_config: int = -1, as_super: bool = True) -> int:
    """
    Submit a reconfig at the leader, as the super user by default.

    :returns: its zxid once prepared, or the error code (negative) prep answered.
    """
    leader = ensemble.leader()
    assert leader is not None, "no serving leader"
    server = ensemble.server(leader)
    assert server is not None
    session = ensemble._writer_session(server)
    ensemble._cxid += 1
    payload = encode(ReconfigRequest(joining, leaving, members, from_config))
    request = Request(session, ensemble._cxid, OpCode.reconfig, payload, None,
                      (SUPER,) if as_super else (), received_ms=server.ctx.now_ms())
    server.submit(request)
    assert request.txn is not None
    body = request.txn.body
    if isinstance(body, ErrorTxn):
        return body.err
    return request.txn.header.zxid
