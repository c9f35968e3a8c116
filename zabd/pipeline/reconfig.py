# -*- test-case-name: tests.unit.test_reconfig_quorum -*-
"""Prepare a reconfig: 3.8's PrepRequestProcessor checks, in its order, then the txn.

The order decides which error a client sees: RECONFIGDISABLED, the session,
UNIMPLEMENTED off a leader, RECONFIGINPROGRESS, BADVERSION, the membership's
own BADARGUMENTS, NEWCONFIGNOQUORUM, and the ACL of /zookeeper/config last.
The txn is a SetDataTxn of the new config text on /zookeeper/config, version
-1; the leader reads the new config back out of it when it proposes.
"""
from __future__ import annotations

from typing import Protocol

from twisted.logger import Logger

from zabd.core.datatree import CONFIG_NODE
from zabd.jute.errors import Code, KeeperError
from zabd.jute.opcodes import OpCode, Perms
from zabd.jute.records import ACL, ReconfigRequest
from zabd.jute.txns import SetDataTxn
from zabd.membership.reconfig import next_verifier
from zabd.membership.verifier import version_hex
from zabd.pipeline.changes import PendingChanges
from zabd.pipeline.context import ServerContext

log = Logger()


class ReconfigBuilder(Protocol):
    """What a reconfig needs of the write being built (zabd.pipeline.writes.TxnBuilder)."""

    @property
    def ctx(self) -> ServerContext: ...

    @property
    def pending(self) -> PendingChanges: ...

    @property
    def zxid(self) -> int: ...

    def check_session(self) -> None: ...

    def check_acl(self, acl: list[ACL], perm: int, path: str) -> None: ...


def prepare_reconfig(builder: ReconfigBuilder, request: ReconfigRequest) -> tuple[int, SetDataTxn]:
    ctx = builder.ctx
    settings = ctx.settings
    if not settings.reconfig_enabled:
        raise KeeperError(Code.RECONFIGDISABLED)
    if settings.skip_acl:
        log.warn("skipACL is set: reconfig skips the ACL check of /zookeeper/config")
    builder.check_session()
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
    new = next_verifier(last_seen, request.joiningServers, request.leavingServers, request.newMembers,
                        builder.zxid, standalone_enabled=settings.standalone_enabled)
    if not membership.is_quorum_synced(new):
        log.warn("Reconfig refused: no connected and synced quorum in the new config")
        raise KeeperError(Code.NEWCONFIGNOQUORUM)
    node = builder.pending.require(CONFIG_NODE)
    builder.check_acl(node.acl, Perms.WRITE, CONFIG_NODE)
    builder.pending.with_version(node, builder.zxid, -1)
    return OpCode.reconfig, SetDataTxn(CONFIG_NODE, new.config_text(), -1)
