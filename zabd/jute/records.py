# -*- test-case-name: tests.unit.test_jute -*-
"""The client-port records of zookeeper.jute, with ZooKeeper's field names."""
from __future__ import annotations

from zabd.jute.schema import Record, jute_record, vector


@jute_record("ustring", "ustring")
class Id(Record):
    scheme: str
    id: str


@jute_record("int", Id)
class ACL(Record):
    perms: int
    id: Id


@jute_record("long", "long", "long", "long", "int", "int", "int", "long", "int", "int", "long")
class Stat(Record):
    czxid: int
    mzxid: int
    ctime: int
    mtime: int
    version: int
    cversion: int
    aversion: int
    ephemeralOwner: int
    dataLength: int
    numChildren: int
    pzxid: int


@jute_record("long", "long", "long", "long", "int", "int", "int", "long", "long")
class StatPersisted(Record):
    czxid: int
    mzxid: int
    ctime: int
    mtime: int
    version: int
    cversion: int
    aversion: int
    ephemeralOwner: int
    pzxid: int


@jute_record("int", "int")
class RequestHeader(Record):
    xid: int
    type: int


@jute_record("int", "long", "int")
class ReplyHeader(Record):
    xid: int
    zxid: int
    err: int


@jute_record("int", "long", "int", "long", "buffer")
class ConnectRequest(Record):
    """The handshake request; the optional readOnly byte is read by hand."""

    protocolVersion: int
    lastZxidSeen: int
    timeOut: int
    sessionId: int
    passwd: bytes | None


@jute_record("int", "int", "long", "buffer")
class ConnectResponse(Record):
    protocolVersion: int
    timeOut: int
    sessionId: int
    passwd: bytes | None


@jute_record("int", "int", "ustring")
class WatcherEvent(Record):
    type: int
    state: int
    path: str | None


@jute_record("int", "bool", "int")
class MultiHeader(Record):
    type: int
    done: bool
    err: int


@jute_record("int", "ustring", "buffer")
class AuthPacket(Record):
    type: int
    scheme: str | None
    auth: bytes | None


@jute_record("ustring", "ustring")
class ClientInfo(Record):
    authScheme: str
    user: str


# Requests and responses, by opcode.


@jute_record("ustring", "buffer", vector(ACL), "int")
class CreateRequest(Record):
    path: str | None
    data: bytes | None
    acl: list[ACL] | None
    flags: int


@jute_record("ustring", "buffer", vector(ACL), "int", "long")
class CreateTTLRequest(Record):
    path: str | None
    data: bytes | None
    acl: list[ACL] | None
    flags: int
    ttl: int


@jute_record("ustring")
class CreateResponse(Record):
    path: str


@jute_record("ustring", Stat)
class Create2Response(Record):
    path: str
    stat: Stat


@jute_record("ustring", "int")
class DeleteRequest(Record):
    path: str | None
    version: int


@jute_record("ustring", "bool")
class PathWatchRequest(Record):
    """ExistsRequest, GetDataRequest, GetChildrenRequest and GetChildren2Request."""

    path: str | None
    watch: bool


@jute_record(Stat)
class StatResponse(Record):
    """ExistsResponse, SetDataResponse and SetACLResponse."""

    stat: Stat


@jute_record("buffer", Stat)
class GetDataResponse(Record):
    data: bytes | None
    stat: Stat


@jute_record("ustring", "buffer", "int")
class SetDataRequest(Record):
    path: str | None
    data: bytes | None
    version: int


@jute_record("ustring")
class PathRequest(Record):
    """GetACLRequest, SyncRequest, GetAllChildrenNumberRequest, GetEphemeralsRequest."""

    path: str | None


@jute_record("ustring")
class PathResponse(Record):
    """SyncResponse."""

    path: str | None


@jute_record(vector(ACL), Stat)
class GetACLResponse(Record):
    acl: list[ACL]
    stat: Stat


@jute_record("ustring", vector(ACL), "int")
class SetACLRequest(Record):
    path: str | None
    acl: list[ACL] | None
    version: int


@jute_record(vector("ustring"))
class GetChildrenResponse(Record):
    children: list[str]


@jute_record(vector("ustring"), Stat)
class GetChildren2Response(Record):
    children: list[str]
    stat: Stat


@jute_record("ustring", "int")
class CheckVersionRequest(Record):
    path: str | None
    version: int


@jute_record("ustring", "ustring", "ustring", "long")
class ReconfigRequest(Record):
    joiningServers: str | None
    leavingServers: str | None
    newMembers: str | None
    curConfigId: int


@jute_record("ustring", "int")
class WatchTypeRequest(Record):
    """CheckWatchesRequest, RemoveWatchesRequest and AddWatchRequest (type = mode)."""

    path: str | None
    type: int


@jute_record("long", vector("ustring"), vector("ustring"), vector("ustring"))
class SetWatches(Record):
    relativeZxid: int
    dataWatches: list[str] | None
    existWatches: list[str] | None
    childWatches: list[str] | None


@jute_record(
    "long", vector("ustring"), vector("ustring"), vector("ustring"), vector("ustring"), vector("ustring")
)
class SetWatches2(Record):
    relativeZxid: int
    dataWatches: list[str] | None
    existWatches: list[str] | None
    childWatches: list[str] | None
    persistentWatches: list[str] | None
    persistentRecursiveWatches: list[str] | None


@jute_record(vector("ustring"))
class GetEphemeralsResponse(Record):
    ephemerals: list[str]


@jute_record("int")
class IntResponse(Record):
    """GetAllChildrenNumberResponse (totalNumber) and ErrorResponse (err)."""

    value: int


@jute_record(vector(ClientInfo))
class WhoAmIResponse(Record):
    clientInfo: list[ClientInfo]


@jute_record("buffer")
class SASLRecord(Record):
    """GetSASLRequest and SetSASLResponse."""

    token: bytes | None
