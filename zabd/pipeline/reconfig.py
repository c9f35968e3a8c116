# -*- test-case-name: tests.unit.test_reconfig_quorum -*-
"""Prepare a reconfig: 3.8's PrepRequestProcessor checks, in its order, then the txn.

The order decides which error a client sees: RECONFIGDISABLED, the session,
UNIMPLEMENTED off a leader, RECONFIGINPROGRESS, BADVERSION, the membership's
own BADARGUMENTS, NEWCONFIGNOQUORUM, and the ACL of /zookeeper/config last.
The txn is a SetDataTxn of the new config text on /zookeeper/config, version
-1; the leader reads the new config back out of it when it proposes.
"""
from __future__ import annotations

from typing import TYPE_CHECKING, Protocol

from twisted.logger import Logger

from zabd.core.datatree import CONFIG_NODE
from zabd.membership.verifier import QuorumVerifier, version_hex
from zabd.jute.errors import Code, KeeperError
from zabd.jute.opcodes import OpCode, Perms
from zabd.jute.records import ReconfigRequest
from zabd.jute.txns import SetDataTxn

if TYPE_CHECKING:
    from zabd.pipeline.writes import Prepared, TxnBuilder

log = Logger()


class Membership(Protocol):
    """What a reconfig needs from the leader: its two configs and who is synced."""

    @property
    def verifier(self) -> QuorumVerifier: ...

    @property
    def last_seen(self) -> QuorumVerifier: ...

    def is_quorum_synced(self, verifier: QuorumVerifier) -> bool: ...


def prepare_reconfig(builder: TxnBuilder, request: ReconfigRequest) -> Prepared:
    ctx = builder.ctx
    settings = ctx.settings
    if not settings.reconfig_enabled:
        raise KeeperError(Code.RECONFIGDISABLED)
    if settings.skip_acl:
        log.warn("skipACL is set: reconfig skips the ACL check of /zookeeper/config")
    builder._check_session()
    membership = ctx.membership
    if membership is None:  # a standalone server cannot change its membership
        raise KeeperError(Code.UNIMPLEMENTED)
    last_seen = membership.last_seen
    if last_seen.version != membership.verifier.version:
        raise KeeperError(Code.RECONFIGINPROGRESS)
    if request.curConfigId != -1 and request.curConfigId != last_seen.version:
        log.info("Reconfig from version {wanted} refused: the last version seen is {seen}",
                 wanted=version_hex(request.curConfigId), seen=version_hex(last_seen.version))
        raise KeeperError(Code.BADVERSION)
    from zabd.membership.reconfig import next_verifier  # (built beside this; imported late until it lands)
    new = next_verifier(last_seen, request.joiningServers, request.leavingServers, request.newMembers,
                        builder.zxid, standalone_enabled=settings.standalone_enabled)
    if not membership.is_quorum_synced(new):
        log.warn("Reconfig refused: no connected and synced quorum in the new config")
        raise KeeperError(Code.NEWCONFIGNOQUORUM)
    node = builder.pending.require(CONFIG_NODE)
    builder._check_acl(node.acl, Perms.WRITE, CONFIG_NODE)
    builder.pending.with_version(node, builder.zxid, -1)
    return OpCode.reconfig, SetDataTxn(CONFIG_NODE, new.config_text(), -1)
