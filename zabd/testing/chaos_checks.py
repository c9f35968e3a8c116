# -*- test-case-name: tests.unit.test_chaos -*-
"""What a chaos run checks once every fault has healed (zabd.testing.chaos).

- every peer holds the committed chain and the same tree (equal digests);
- every write a client saw acknowledged is on the committed chain, as the
  txn of that session and xid at the zxid the reply carried;
- each session's writes are on the chain in the order it sent them (its
  refused requests, error txns, aside);
- ephemerals belong only to live sessions, and none is left once every
  session has expired.
"""
from __future__ import annotations

from zabd.jute.opcodes import OpCode
from zabd.testing.chaos_history import Histories, Report, TracedReplica
from zabd.testing.chaos_workload import Workload
from zabd.testing.ensemble import SimEnsemble

WRITES = frozenset({"create", "set", "cas", "delete", "close"})


def heads(ensemble: SimEnsemble) -> dict[int, int]:
    found = {}
    for sid in ensemble.live_peers():
        replica = ensemble.peers[sid].replica
        assert isinstance(replica, TracedReplica)
        found[sid] = replica.head
    return found


def converged(ensemble: SimEnsemble) -> bool:
    """Every live peer serves the same history (and the leader has nothing outstanding)."""
    leader = ensemble.leader()
    if leader is None or not ensemble.all_serving():
        return False
    if ensemble.peers[leader].leader is None or ensemble.peers[leader].leader.outstanding:  # type: ignore[union-attr]
        return False
    return len(set(heads(ensemble).values())) == 1


def check_converged(ensemble: SimEnsemble, histories: Histories, report: Report) -> None:
    found = heads(ensemble)
    if set(found.values()) != {histories.committed_head}:
        zxids = {sid: f"0x{histories.zxid[head]:x}" for sid, head in found.items()}
        report("convergence", f"the peers' histories differ after healing: {zxids}, committed "
               f"0x{histories.zxid[histories.committed_head]:x}")
    digests = ensemble.digests()
    if len(set(digests.values())) != 1:
        report("digest", f"digests differ after healing: {digests}")


def check_writes(workload: Workload, histories: Histories, report: Report) -> None:
    lost = 0
    for op in workload.ops:
        if op.err != 0 or op.kind not in WRITES:
            continue
        node = histories.committed_at.get(op.zxid)
        if node is None or histories.origin[node][:2] != (op.session, op.xid):
            lost += 1
            if lost <= 3:
                report("lostWrite", f"the acknowledged {op.kind} {op.path!r} of session 0x{op.session:x} "
                       f"(xid {op.xid}, zxid 0x{op.zxid:x}, through peer {op.sid}) is not committed")
    last: dict[int, int] = {}
    for node in histories.chain(histories.committed_head):
        session, cxid, kind = histories.origin[node]
        if cxid <= 0 or session == 0 or kind == OpCode.error:
            # (An error txn changes nothing: a request a peer forwarded late, after the client moved
            # on or closed its session, is refused with SESSIONMOVED or SESSIONEXPIRED, in its turn.)
            continue
        if cxid <= last.get(session, 0):
            report("sessionOrder", f"session 0x{session:x}'s xid {cxid} is committed after its xid "
                   f"{last[session]} (at 0x{histories.zxid[node]:x})")
        last[session] = max(cxid, last.get(session, 0))


def check_ephemerals(ensemble: SimEnsemble, report: Report, *, all_expired: bool) -> None:
    leader = ensemble.leader()
    server = ensemble.server(leader) if leader is not None else None
    alive = set(server.ctx.sessions.sessions()) if server is not None else set()
    if all_expired and alive:
        report("expiry", f"{len(alive)} sessions still alive after every client left")
    for sid in sorted(ensemble.live_peers()):
        tree = ensemble.replica(sid).tree
        for owner, paths in sorted(tree.ephemerals.items()):
            if paths and (all_expired or owner not in alive):
                report("ephemeral", f"peer {sid} keeps {sorted(paths)[:3]} of the ended session 0x{owner:x}")
