# -*- test-case-name: tests.unit.test_large_requests -*-
"""The largest txn prep may hand on: what every peer can read back (ZOOKEEPER-3496).

A request frame is at most jute.maxbuffer, but the txn built from it can be
larger: a create's "auth" ACL becomes every id of the connection, and a
closeSession or reconfig txn carries state the request never held. A 3.8
peer reads a txn's bytes as one jute buffer, which it accepts up to
jute.maxbuffer + jute.maxbuffer.extrasize (both 1 MiB by default), and the
same limit applies when the txn log is read back. A longer txn, once
proposed, is one no follower can take, and the ensemble stalls; 3.8 has no
check before it proposes. zabd's prep checks, and refuses such a write as
an error txn.

Measuring costs a serialization, so it is skipped when a cheap bound shows
the txn is small: every request record is at most twice as long as its txn
counterpart plus a constant, except where an ACL entry of scheme "auth"
expands into the connection's ids (bounded separately), and except
closeSession and reconfig, which are always measured.
"""
from __future__ import annotations

from zabd.jute.opcodes import OpCode
from zabd.jute.records import Id
from zabd.jute.txns import Txn

#: Header bytes and per-request slack the bound allows for beyond twice the payload.
_SLACK = 1024
#: The least bytes one ACL entry takes in a request (perms, then two empty strings).
_MIN_ACL_ENTRY = 12
#: Txns whose size does not follow from their request's.
_ALWAYS_MEASURED = frozenset({OpCode.closeSession, OpCode.reconfig})


def may_exceed(kind: int, payload_size: int, auth_ids: tuple[Id, ...], limit: int) -> bool:
    """Whether a txn made from this request might be longer than ``limit`` bytes."""
    if kind in _ALWAYS_MEASURED:
        return True
    bound = 2 * payload_size + _SLACK
    # Each ACL entry in the payload may become one entry per id of the connection:
    # 12 bytes of perms and lengths each, and at most 4 bytes of UTF-8 per character.
    entries = payload_size // _MIN_ACL_ENTRY + 1
    for ident in auth_ids:
        bound += entries * (12 + 4 * (len(ident.scheme or "") + len(ident.id or "")))
    return bound > limit


def txn_size(txn: Txn) -> int:
    """The serialized size of ``txn``: what a peer reads as one buffer."""
    return len(txn.to_bytes())
