# -*- test-case-name: tests.unit.test_reconfig_quorum -*-
"""What a reconfig means to Zab: which configs a proposal needs, and who leads after it.

ZooKeeper 3.8 keeps two configs per peer: the one in force and the last one
seen (proposed, maybe not committed). While they differ, every proposal
needs a quorum of acks in both. A committed reconfig names the leader of the
new config: the current one if it is a voter there, else a voter of the new
config that acked the reconfig and, of those, one that acked the most of what
followed (Leader.getDesignatedLeader).
"""
from __future__ import annotations

import struct
from collections.abc import Iterable, Set

from zabd.core.datatree import CONFIG_NODE, DataTree
from zabd.membership.verifier import QuorumVerifier, verifier_from_text, version_hex
from zabd.jute.opcodes import OpCode
from zabd.jute.txns import SetDataTxn, Txn

_TXN_TYPE = struct.Struct(">i")
_TXN_TYPE_OFFSET = 8 + 4 + 8 + 8  # clientId, cxid, zxid, time


def txn_config(txn: bytes) -> QuorumVerifier | None:
    """The config a reconfig txn proposes (its SetDataTxn's data), or None for any other txn."""
    if len(txn) < _TXN_TYPE_OFFSET + 4 or _TXN_TYPE.unpack_from(txn, _TXN_TYPE_OFFSET)[0] != OpCode.reconfig:
        return None
    body = Txn.from_bytes(txn).body
    if not isinstance(body, SetDataTxn) or body.data is None:
        raise ValueError("a reconfig txn without a config")
    return verifier_from_text(body.data)


def restamped(verifier: QuorumVerifier, version: int) -> QuorumVerifier:
    """The same members under another version (3.8 re-parses the config text too)."""
    text = verifier.config_text().decode("utf-8")
    head = text[:text.rindex("version=")]
    return verifier_from_text(f"{head}version={version_hex(version)}")


def verifiers_in_force(current: QuorumVerifier, last_seen: QuorumVerifier) -> tuple[QuorumVerifier, ...]:
    """The configs whose quorums a proposal (or NEWLEADER) needs now."""
    return (current, last_seen) if last_seen.version > current.version else (current,)


def has_quorums(verifiers: Iterable[QuorumVerifier], sids: Set[int]) -> bool:
    return all(verifier.contains_quorum(sids) for verifier in verifiers)


def designated_leader(myid: int, new: QuorumVerifier, acked: Set[int], later_acks: Iterable[Set[int]]) -> int:
    """
    Who leads once ``new`` is in force.

    :param acked: who acked the reconfig (a quorum of ``new`` among them).
    :param later_acks: the ack sets of the proposals after it, in zxid order.
    """
    if myid in new.voting_members:
        return myid
    candidates = sorted((acked & new.voting_members) - {myid})
    if not candidates:
        raise ValueError("a committed reconfig without an ack from its own voters")
    best = candidates[0]
    for acks in later_acks:
        remaining = [sid for sid in candidates if sid in acks]
        if not remaining:
            break
        candidates, best = remaining, remaining[0]
        if len(candidates) == 1:
            break
    return best


def learner_kind(myid: int, verifier: QuorumVerifier) -> str:
    """What a peer is in ``verifier``: "participant", "observer" or "absent" (a non-voting follower)."""
    if myid in verifier.voting_members:
        return "participant"
    if myid in verifier.observing_members:
        return "observer"
    return "absent"


def install_config_node(tree: DataTree, verifier: QuorumVerifier, now_ms: int) -> None:
    """/zookeeper/config as 3.8's initConfigInZKDatabase leaves it: the config text, version -1.

    The /zookeeper subtree is outside the tree digest, so this local change
    (not a txn) keeps digests equal across peers.
    """
    node = tree.get(CONFIG_NODE)
    data = verifier.config_text()
    if node is None or node.data == data:
        return  # (a committed reconfig txn has set it already)
    tree.data_size += len(data) - len(node.data or b"")
    node.data = data
    node.version = -1
    node.mzxid = verifier.version
    node.mtime = now_ms
