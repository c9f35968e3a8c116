"""zabd.client: a native Twisted client for ZooKeeper 3.x ensembles (zabd's or Apache's).

    from zabd.client import ZooKeeperClient

    async def main(reactor):
        client = ZooKeeperClient("127.0.0.1:2181,127.0.0.1:2182/app", timeout=10.0, reactor=reactor)
        await client.start()
        await client.create("/workers/w-", b"", ephemeral=True, sequence=True, makepath=True)
        await client.stop()

Every call returns a Deferred (await it inside ``Deferred.fromCoroutine``).
Layers: :mod:`~zabd.client.session` is the sans-IO connection and session
machine, :mod:`~zabd.client.protocol` runs it on a reactor, and
:mod:`~zabd.client.client` is the API.
"""
from zabd.client.acl import (
    CREATOR_ALL_ACL, OPEN_ACL_UNSAFE, READ_ACL_UNSAFE, Permissions, make_acl, make_digest_acl,
    make_digest_acl_credential,
)
from zabd.client.base import DeferredWatch
from zabd.client.client import ZooKeeperClient
from zabd.client.errors import (
    ZookeeperError, error_for, RolledBackError, ConnectionClosedError, SystemZookeeperError,
    RuntimeInconsistency, DataInconsistency, ConnectionLoss, MarshallingError, UnimplementedError,
    OperationTimeoutError, BadArgumentsError, UnknownSessionError, NewConfigNoQuorumError,
    ReconfigInProcessError, APIError, NoNodeError, NoAuthError, BadVersionError, NoChildrenForEphemeralsError,
    NodeExistsError, NotEmptyError, SessionExpiredError, InvalidCallbackError, InvalidACLError,
    AuthFailedError, SessionMovedError, NotReadOnlyCallError, EphemeralOnLocalSessionError, NoWatcherError,
    RequestTimeoutError, ReconfigDisabledError, SessionClosedRequireSaslAuthError, QuotaExceededError,
    ThrottledOpError, TlsConfigError, TlsError,
)
from zabd.client.states import EventType, KazooState, KeeperState, WatchedEvent, ZnodeStat
from zabd.client.transaction import GetChildren, GetData, Transaction
from zabd.jute.opcodes import WatcherType
from zabd.jute.records import ACL, Id

__all__ = [
    "ZooKeeperClient", "DeferredWatch", "KazooState", "KeeperState", "EventType", "WatchedEvent", "ZnodeStat",
    "Transaction", "GetData", "GetChildren", "WatcherType", "ACL", "Id", "Permissions", "OPEN_ACL_UNSAFE",
    "CREATOR_ALL_ACL", "READ_ACL_UNSAFE", "make_acl", "make_digest_acl", "make_digest_acl_credential",
    "ZookeeperError",
    "error_for",
    "RolledBackError",
    "ConnectionClosedError",
    "SystemZookeeperError",
    "RuntimeInconsistency",
    "DataInconsistency",
    "ConnectionLoss",
    "MarshallingError",
    "UnimplementedError",
    "OperationTimeoutError",
    "BadArgumentsError",
    "UnknownSessionError",
    "NewConfigNoQuorumError",
    "ReconfigInProcessError",
    "APIError",
    "NoNodeError",
    "NoAuthError",
    "BadVersionError",
    "NoChildrenForEphemeralsError",
    "NodeExistsError",
    "NotEmptyError",
    "SessionExpiredError",
    "InvalidCallbackError",
    "InvalidACLError",
    "AuthFailedError",
    "SessionMovedError",
    "NotReadOnlyCallError",
    "EphemeralOnLocalSessionError",
    "NoWatcherError",
    "RequestTimeoutError",
    "ReconfigDisabledError",
    "SessionClosedRequireSaslAuthError",
    "QuotaExceededError",
    "ThrottledOpError",
    "TlsError",
    "TlsConfigError",
]
