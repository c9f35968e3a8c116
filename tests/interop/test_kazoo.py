"""kazoo (the Python client) against real servers: data ops, watches, ACLs, multi,
containers/TTL and the requests kazoo 2.11 lacks, then sessions.

The session tests at the end use a hand-written raw connection (RawSession)
where kazoo would keep the session alive with pings.
"""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Mapping

import pytest
from kazoo.client import KazooClient
from kazoo.exceptions import (
    AuthFailedError,
    BadArgumentsError,
    BadVersionError,
    InvalidACLError,
    NoAuthError,
    NoChildrenForEphemeralsError,
    NodeExistsError,
    NoNodeError,
    NotEmptyError,
    RolledBackError,
    RuntimeInconsistency,
)
from kazoo.protocol.states import EventType, KazooState, WatchedEvent, ZnodeStat
from kazoo.security import (
    CREATOR_ALL_ACL,
    make_acl,
    make_digest_acl,
    make_digest_acl_credential,
)

from tests.interop.conftest import (
    AddWatch,
    CreateContainer,
    CreateTTL,
    GetAllChildrenNumber,
    GetEphemerals,
    RawEvent,
    RawReply,
    RawSession,
    WhoAmI,
    kazoo_call,
    kazoo_client,
    record_events,
)
from zabd.harness.processes import ServerProcess

CREATED, DELETED, CHANGED, CHILD = 1, 2, 3, 4
EVENT_DEADLINE = 15.0
SUPER_PASSWORD = "super:s3cret"


@pytest.fixture(scope="module")
def server_extra_cfg() -> Mapping[str, str]:
    superuser, password = SUPER_PASSWORD.split(":")
    digest = make_digest_acl_credential(superuser, password)
    return {
        "extendedTypesEnabled": "true",
        "znode.container.checkIntervalMs": "500",
        "DigestAuthenticationProvider.superDigest": digest,
    }


class Callbacks:
    """Collects kazoo watch callbacks (delivered on kazoo's callback thread)."""

    def __init__(self) -> None:
        self.events: list[WatchedEvent] = []
        self._changed = threading.Condition()

    def __call__(self, event: WatchedEvent) -> None:
        with self._changed:
            self.events.append(event)
            self._changed.notify_all()

    def wait_count(self, count: int, timeout: float = EVENT_DEADLINE) -> list[WatchedEvent]:
        with self._changed:
            ok = self._changed.wait_for(lambda: len(self.events) >= count, timeout)
            assert ok, f"expected {count} watch callbacks within {timeout}s, got {self.events}"
            return list(self.events)


# ---- data operations and stat ----------------------------------------------


def test_create_get_set_delete(zk: KazooClient, node_path: str) -> None:
    assert zk.create(node_path, b"hello") == node_path
    data, stat = zk.get(node_path)
    assert data == b"hello"
    assert (stat.version, stat.cversion, stat.aversion) == (0, 0, 0)
    assert stat.czxid == stat.mzxid == stat.pzxid > 0
    assert stat.ctime == stat.mtime > 0
    assert (stat.ephemeralOwner, stat.dataLength, stat.numChildren) == (0, 5, 0)

    new_stat = zk.set(node_path, b"world!")
    assert new_stat.version == 1 and new_stat.dataLength == 6
    assert new_stat.czxid == stat.czxid and new_stat.mzxid > stat.mzxid
    assert new_stat.mtime >= stat.mtime and new_stat.ctime == stat.ctime
    assert zk.get(node_path)[0] == b"world!"
    assert zk.exists(node_path) == new_stat

    with pytest.raises(BadVersionError):
        zk.set(node_path, b"x", version=0)
    with pytest.raises(BadVersionError):
        zk.delete(node_path, version=7)
    zk.delete(node_path, version=1)
    assert zk.exists(node_path) is None
    with pytest.raises(NoNodeError):
        zk.get(node_path)
    with pytest.raises(NoNodeError):
        zk.delete(node_path)


def test_empty_and_binary_data(zk: KazooClient, node_path: str) -> None:
    zk.create(node_path)
    assert zk.get(node_path)[0] == b""
    payload = bytes(range(256)) * 40
    zk.set(node_path, payload)
    data, stat = zk.get(node_path)
    assert data == payload and stat.dataLength == len(payload)


def test_create_errors(zk: KazooClient, node_path: str) -> None:
    zk.create(node_path)
    with pytest.raises(NodeExistsError):
        zk.create(node_path)
    with pytest.raises(NoNodeError):
        zk.create(f"{node_path}/missing/child")
    zk.create(f"{node_path}/child")
    with pytest.raises(NotEmptyError):
        zk.delete(node_path)
    zk.delete(node_path, recursive=True)
    assert zk.exists(node_path) is None


def test_parent_stat_tracks_children(zk: KazooClient, node_path: str) -> None:
    zk.create(node_path)
    for name in ("a", "b", "c"):
        zk.create(f"{node_path}/{name}")
    zk.delete(f"{node_path}/b")
    delete_zxid = zk.last_zxid
    stat = zk.exists(node_path)
    assert stat is not None
    assert stat.numChildren == 2
    assert stat.cversion == 4  # three creates plus one delete
    assert stat.pzxid == delete_zxid
    assert stat.version == 0  # data untouched


def test_ephemeral_nodes(server: ServerProcess, node_path: str) -> None:
    with kazoo_client(server) as observer:
        with kazoo_client(server) as owner:
            owner.create(node_path, b"e", ephemeral=True)
            stat = observer.exists(node_path)
            assert stat is not None and stat.ephemeralOwner == owner.client_id[0]
            with pytest.raises(NoChildrenForEphemeralsError):
                owner.create(f"{node_path}/child")
        # owner.stop() closed the session; its ephemerals went with the close.
        assert observer.exists(node_path) is None


def test_sequential_nodes(zk: KazooClient, node_path: str) -> None:
    zk.create(node_path)
    first = zk.create(f"{node_path}/s-", sequence=True)
    second = zk.create(f"{node_path}/s-", sequence=True)
    assert (first, second) == (f"{node_path}/s-0000000000", f"{node_path}/s-0000000001")
    zk.create(f"{node_path}/plain")
    zk.delete(second)
    # the counter is the parent's creation count; deletes do not rewind it
    third = zk.create(f"{node_path}/e-", ephemeral=True, sequence=True)
    assert third == f"{node_path}/e-0000000003"
    stat = zk.exists(third)
    assert stat is not None and stat.ephemeralOwner == zk.client_id[0]
    assert sorted(zk.get_children(node_path)) == ["e-0000000003", "plain", "s-0000000000"]


def test_ensure_path(zk: KazooClient, node_path: str) -> None:
    deep = f"{node_path}/a/b/c"
    zk.ensure_path(deep)
    zk.ensure_path(deep)  # idempotent
    assert zk.get_children(f"{node_path}/a/b") == ["c"]
    assert zk.get(deep)[0] == b""


def test_get_children_with_stat(zk: KazooClient, node_path: str) -> None:
    zk.create(node_path, b"p")
    for name in ("x", "y", "z"):
        zk.create(f"{node_path}/{name}")
    children, stat = zk.get_children(node_path, include_data=True)
    assert sorted(children) == ["x", "y", "z"]
    assert isinstance(stat, ZnodeStat)
    assert stat.numChildren == 3 and stat.dataLength == 1 and stat.cversion == 3


def test_server_version_and_four_letter_command(zk: KazooClient) -> None:
    assert zk.server_version()[:2] == (3, 8)
    assert zk.command(b"ruok") == "imok"


# ---- multi -------------------------------------------------------------------


def test_transaction_success(zk: KazooClient, node_path: str) -> None:
    zk.create(node_path, b"v0")
    txn = zk.transaction()
    txn.create(f"{node_path}/a", b"1")
    txn.set_data(node_path, b"v1")
    txn.check(node_path, 1)
    txn.delete(f"{node_path}/a")
    txn.create(f"{node_path}/s-", sequence=True)
    results = txn.commit()
    assert results[0] == f"{node_path}/a"
    assert isinstance(results[1], ZnodeStat) and results[1].version == 1
    assert results[2:4] == [True, True]
    assert results[4] == f"{node_path}/s-0000000001"
    data, stat = zk.get(node_path)
    assert data == b"v1" and stat.numChildren == 1
    assert stat.mzxid == results[1].mzxid  # one zxid for the whole multi


def test_transaction_failure_is_atomic(zk: KazooClient, node_path: str) -> None:
    zk.create(node_path, b"v0")
    before = zk.get(node_path)
    txn = zk.transaction()
    txn.create(f"{node_path}/a", b"1")
    txn.set_data(node_path, b"v1", version=5)
    txn.delete(f"{node_path}/missing")
    txn.check(node_path, 0)
    results = txn.commit()
    assert [type(result) for result in results] == [
        RolledBackError,
        BadVersionError,
        RuntimeInconsistency,
        RuntimeInconsistency,
    ]
    assert zk.get(node_path) == before
    assert zk.exists(f"{node_path}/a") is None


# ---- watches -----------------------------------------------------------------


def test_data_watch_is_one_shot_and_precedes_reply(zk: KazooClient, node_path: str) -> None:
    log = record_events(zk)
    callbacks = Callbacks()
    zk.create(node_path, b"0")
    zk.get(node_path, watch=callbacks)
    zk.set(node_path, b"1")
    # the notification for our own write arrives before that write's reply
    assert log.for_path(node_path) == [RawEvent(CHANGED, node_path)]
    event, reply = log.frames[-2:]
    assert event == RawEvent(CHANGED, node_path) and isinstance(reply, RawReply), log.frames
    zk.set(node_path, b"2")
    assert log.for_path(node_path) == [RawEvent(CHANGED, node_path)], "a standard watch fires once"
    (event,) = callbacks.wait_count(1)
    assert (event.type, event.path) == (EventType.CHANGED, node_path)


def test_watches_fire_for_other_clients_writes(server: ServerProcess, zk: KazooClient, node_path: str) -> None:
    log = record_events(zk)
    zk.create(node_path)
    assert zk.exists(f"{node_path}/c", watch=lambda e: None) is None  # exists watch on a missing node
    zk.get_children(node_path, watch=lambda e: None)
    with kazoo_client(server) as writer:
        writer.create(f"{node_path}/c", b"x")
        log.wait_for(
            lambda events: {RawEvent(CREATED, f"{node_path}/c"), RawEvent(CHILD, node_path)} <= set(events),
            EVENT_DEADLINE,
            "NodeCreated and NodeChildrenChanged",
        )
        zk.get(f"{node_path}/c", watch=lambda e: None)
        writer.set(f"{node_path}/c", b"y")
        log.wait_for(lambda events: RawEvent(CHANGED, f"{node_path}/c") in events, EVENT_DEADLINE, "NodeDataChanged")
        writer.create(f"{node_path}/d")  # child watch already fired: no new event
        zk.sync(node_path)
        zk.get_children(node_path)  # a later reply on zk comes after any event for the earlier write
    assert log.for_path(node_path) == [RawEvent(CHILD, node_path)]


def test_delete_sends_one_event_per_connection(zk: KazooClient, node_path: str) -> None:
    log = record_events(zk)
    zk.create(node_path)
    zk.create(f"{node_path}/kid")
    zk.get(node_path, watch=lambda e: None)
    zk.get_children(node_path, watch=lambda e: None)
    zk.exists(node_path, watch=lambda e: None)
    zk.delete(f"{node_path}/kid")
    assert log.for_path(node_path) == [RawEvent(CHILD, node_path)]
    zk.get_children(node_path, watch=lambda e: None)
    zk.delete(node_path)
    assert log.for_path(node_path) == [RawEvent(CHILD, node_path), RawEvent(DELETED, node_path)]


def test_top_level_create_notifies_root(zk: KazooClient, node_path: str) -> None:
    log = record_events(zk)
    zk.get_children("/", watch=lambda e: None)
    zk.create(node_path)
    assert RawEvent(CHILD, "/") in log.snapshot()


def test_persistent_watch(zk: KazooClient, node_path: str) -> None:
    log = record_events(zk)
    zk.create(node_path)
    kazoo_call(zk, AddWatch(node_path, AddWatch.PERSISTENT))
    zk.set(node_path, b"1")
    zk.set(node_path, b"2")
    zk.create(f"{node_path}/c")
    zk.set(f"{node_path}/c", b"not watched")
    zk.delete(f"{node_path}/c")
    assert log.snapshot() == [
        RawEvent(CHANGED, node_path),
        RawEvent(CHANGED, node_path),
        RawEvent(CHILD, node_path),
        RawEvent(CHILD, node_path),
    ]


def test_persistent_recursive_watch(zk: KazooClient, node_path: str) -> None:
    log = record_events(zk)
    zk.create(node_path)
    kazoo_call(zk, AddWatch(node_path, AddWatch.PERSISTENT_RECURSIVE))
    zk.create(f"{node_path}/a")
    zk.create(f"{node_path}/a/b", b"0")
    zk.set(f"{node_path}/a/b", b"1")
    zk.delete(f"{node_path}/a/b")
    zk.set(node_path, b"top")
    # recursive watches never report NodeChildrenChanged
    assert log.snapshot() == [
        RawEvent(CREATED, f"{node_path}/a"),
        RawEvent(CREATED, f"{node_path}/a/b"),
        RawEvent(CHANGED, f"{node_path}/a/b"),
        RawEvent(DELETED, f"{node_path}/a/b"),
        RawEvent(CHANGED, node_path),
    ]


# ---- ACLs and authentication ----------------------------------------------------


def test_digest_acl_requires_auth(server: ServerProcess, zk: KazooClient, node_path: str) -> None:
    zk.add_auth("digest", "alice:pw")
    zk.create(node_path, b"secret", acl=[make_digest_acl("alice", "pw", all=True)])
    with kazoo_client(server) as anonymous:
        assert anonymous.exists(node_path) is not None  # exists needs no permission
        with pytest.raises(NoAuthError):
            anonymous.get(node_path)
        with pytest.raises(NoAuthError):
            anonymous.set(node_path, b"x")
        with pytest.raises(NoAuthError):
            anonymous.get_acls(node_path)
        with pytest.raises(NoAuthError):
            anonymous.create(f"{node_path}/child")
        anonymous.add_auth("digest", "alice:pw")
        assert anonymous.get(node_path)[0] == b"secret"
    with kazoo_client(server, auth_data=[("digest", "bob:pw")]) as bob:
        with pytest.raises(NoAuthError):
            bob.get(node_path)


def test_get_acl_masks_digest_without_admin(server: ServerProcess, zk: KazooClient, node_path: str) -> None:
    acl = [make_digest_acl("alice", "pw", all=True), make_acl("world", "anyone", read=True)]
    zk.create(node_path, b"v", acl=acl)
    hashed = make_digest_acl_credential("alice", "pw")
    acls, stat = zk.get_acls(node_path)
    assert [(a.perms, a.id.scheme, a.id.id) for a in acls] == [(31, "digest", "alice:x"), (1, "world", "anyone")]
    assert stat.aversion == 0
    with kazoo_client(server, auth_data=[("digest", "alice:pw")]) as alice:
        acls, _ = alice.get_acls(node_path)
        assert [(a.perms, a.id.scheme, a.id.id) for a in acls] == [(31, "digest", hashed), (1, "world", "anyone")]


def test_set_acl_checks_aversion(zk: KazooClient, node_path: str) -> None:
    zk.create(node_path)
    stat = zk.set_acls(node_path, [make_acl("world", "anyone", read=True, write=True, admin=True)], version=0)
    assert stat.aversion == 1 and stat.version == 0
    with pytest.raises(BadVersionError):
        zk.set_acls(node_path, [make_acl("world", "anyone", all=True)], version=0)
    with pytest.raises(NoAuthError):
        zk.create(f"{node_path}/child")  # CREATE was dropped


def test_creator_acl_uses_authenticated_ids(server: ServerProcess, zk: KazooClient, node_path: str) -> None:
    with pytest.raises(InvalidACLError):
        zk.create(node_path, acl=CREATOR_ALL_ACL)  # no authenticated id to expand "auth" to
    with kazoo_client(server, auth_data=[("digest", "carol:pw")]) as carol:
        carol.create(node_path, acl=CREATOR_ALL_ACL)
        acls, _ = carol.get_acls(node_path)
        expected = make_digest_acl_credential("carol", "pw")
        assert [(a.perms, a.id.scheme, a.id.id) for a in acls] == [(31, "digest", expected)]
    with pytest.raises(NoAuthError):
        zk.get(node_path)


def test_super_digest_bypasses_acls(server: ServerProcess, zk: KazooClient, node_path: str) -> None:
    zk.add_auth("digest", "dave:pw")
    zk.create(node_path, b"locked", acl=[make_digest_acl("dave", "pw", all=True)])
    with kazoo_client(server, auth_data=[("digest", SUPER_PASSWORD)]) as superuser:
        assert superuser.get(node_path)[0] == b"locked"
        superuser.set(node_path, b"opened")
        superuser.delete(node_path)


def test_unknown_auth_scheme_fails(server: ServerProcess) -> None:
    with kazoo_client(server) as client:
        with pytest.raises(AuthFailedError):
            client.add_auth("no-such-scheme", "whatever")


def test_who_am_i(zk: KazooClient) -> None:
    assert kazoo_call(zk, WhoAmI()) == [("ip", "127.0.0.1")]
    zk.add_auth("digest", "erin:pw")
    assert sorted(kazoo_call(zk, WhoAmI())) == [("digest", "erin"), ("ip", "127.0.0.1")]


# ---- containers, TTL, ephemeral listing, descendant count ----------------------


def test_container_is_removed_after_last_child(server: ServerProcess, zk: KazooClient, node_path: str) -> None:
    path, stat = kazoo_call(zk, CreateContainer(node_path, b"c"))
    assert path == node_path
    assert stat.ephemeralOwner == 0 and stat.dataLength == 1
    zk.create(f"{node_path}/child")
    deleted = threading.Event()
    zk.exists(node_path, watch=lambda event: deleted.set() if event.type == EventType.DELETED else None)
    zk.delete(f"{node_path}/child")
    assert deleted.wait(EVENT_DEADLINE), "container with no children left should be deleted"
    assert zk.exists(node_path) is None


def test_ttl_node_expires(zk: KazooClient, node_path: str) -> None:
    path, stat = kazoo_call(zk, CreateTTL(node_path, ttl_ms=200, data=b"t"))
    assert path == node_path
    assert stat.ephemeralOwner == 0  # TTL is stored in ephemeralOwner but not shown to clients
    seq_path, _ = kazoo_call(zk, CreateTTL(f"{node_path}-s-", ttl_ms=60_000, sequential=True))
    assert seq_path == f"{node_path}-s-" + seq_path[-10:] and seq_path[-10:].isdigit()
    deleted = threading.Event()
    zk.exists(node_path, watch=lambda event: deleted.set() if event.type == EventType.DELETED else None)
    assert deleted.wait(EVENT_DEADLINE), "TTL node should be deleted after its TTL"
    assert zk.exists(seq_path) is not None


def test_ttl_arguments_are_checked(zk: KazooClient, node_path: str) -> None:
    with pytest.raises(BadArgumentsError):
        kazoo_call(zk, CreateTTL(node_path, ttl_ms=0))
    with pytest.raises(BadArgumentsError):
        kazoo_call(zk, CreateTTL(node_path, ttl_ms=1000, flags=0))  # non-TTL mode via createTTL
    assert zk.exists(node_path) is None


def test_get_ephemerals_and_all_children_number(server: ServerProcess, zk: KazooClient, node_path: str) -> None:
    zk.create(node_path)
    zk.create(f"{node_path}/e1", ephemeral=True)
    zk.create(f"{node_path}/p/e2", ephemeral=True, makepath=True)
    with kazoo_client(server) as other:
        other.create(f"{node_path}/other", ephemeral=True)
        assert sorted(kazoo_call(zk, GetEphemerals(node_path))) == [f"{node_path}/e1", f"{node_path}/p/e2"]
        assert kazoo_call(other, GetEphemerals(node_path)) == [f"{node_path}/other"]
        assert kazoo_call(zk, GetAllChildrenNumber(node_path)) == 4
        assert kazoo_call(zk, GetAllChildrenNumber(f"{node_path}/p")) == 1
        with pytest.raises(NoNodeError):
            kazoo_call(zk, GetAllChildrenNumber(f"{node_path}/nope"))



# ---- sessions: negotiation, expiry, resume ----------------------------------------


def test_session_timeout_is_negotiated(server: ServerProcess) -> None:
    # tickTime=2000: the server clamps into [2*tick, 20*tick]
    for requested, granted in ((1000, 4000), (6000, 6000), (10_000_000, 40_000)):
        raw = RawSession.connect(server, timeout_ms=requested)
        try:
            assert raw.timeout_ms == granted
            assert raw.session_id != 0 and len(raw.password) == 16
            assert raw.close_session() == 0
            assert raw.wait_closed_by_server(EVENT_DEADLINE)
        finally:
            raw.close()


def test_silent_session_expires(server: ServerProcess, zk: KazooClient, node_path: str) -> None:
    raw = RawSession.connect(server, timeout_ms=4000)
    try:
        assert raw.create(node_path, b"e", flags=1) == (0, node_path)
        created_at = time.monotonic()
        deleted = threading.Event()
        stat = zk.exists(node_path, watch=lambda event: deleted.set() if event.type == EventType.DELETED else None)
        assert stat is not None and stat.ephemeralOwner == raw.session_id
        # The raw connection sends nothing more, not even pings.
        assert deleted.wait(EVENT_DEADLINE), "session should expire and take its ephemeral node along"
        assert time.monotonic() - created_at >= 3.5, "session expired before its 4000 ms timeout"
        assert zk.exists(node_path) is None
        assert raw.wait_closed_by_server(EVENT_DEADLINE), "server should drop the expired session's connection"
    finally:
        raw.close()
    again = RawSession.connect(server, timeout_ms=4000, session_id=raw.session_id, password=raw.password)
    try:
        assert (again.timeout_ms, again.session_id, again.password) == (0, 0, bytes(16))
        assert again.wait_closed_by_server(EVENT_DEADLINE)
    finally:
        again.close()


def test_session_resumes_on_new_connection(server: ServerProcess, zk: KazooClient, node_path: str) -> None:
    first = RawSession.connect(server, timeout_ms=30_000)
    second = None
    try:
        assert first.create(node_path, flags=1) == (0, node_path)
        second = RawSession.connect(server, timeout_ms=30_000, session_id=first.session_id, password=first.password)
        assert (second.session_id, second.password, second.timeout_ms) == (
            first.session_id,
            first.password,
            30_000,
        )
        assert first.wait_closed_by_server(EVENT_DEADLINE), "the session's old connection should be closed"
        assert second.create(f"{node_path}-2", flags=1) == (0, f"{node_path}-2")
        stat = zk.exists(node_path)
        assert stat is not None and stat.ephemeralOwner == first.session_id
        assert second.close_session() == 0
        # closeSession removes the ephemerals before it is acknowledged
        assert zk.exists(node_path) is None and zk.exists(f"{node_path}-2") is None
    finally:
        first.close()
        if second is not None:
            second.close()


def test_wrong_password_is_refused(server: ServerProcess) -> None:
    owner = RawSession.connect(server, timeout_ms=30_000)
    try:
        wrong = bytes(b ^ 0xFF for b in owner.password)
        intruder = RawSession.connect(server, timeout_ms=30_000, session_id=owner.session_id, password=wrong)
        try:
            assert (intruder.timeout_ms, intruder.session_id) == (0, 0)
            assert intruder.wait_closed_by_server(EVENT_DEADLINE)
        finally:
            intruder.close()
        rightful = RawSession.connect(server, timeout_ms=30_000, session_id=owner.session_id, password=owner.password)
        try:
            assert rightful.session_id == owner.session_id  # the session itself survived
            assert rightful.close_session() == 0
        finally:
            rightful.close()
    finally:
        owner.close()


def test_invalid_paths_are_rejected(server: ServerProcess, node_path: str) -> None:
    """ZooKeeper looks up the parent (text before the last '/') before validating the whole path."""
    raw = RawSession.connect(server, timeout_ms=10_000)
    try:
        assert raw.create(node_path) == (0, node_path)
        bad_arguments = ["", "no-slash", f"{node_path}/", f"{node_path}/.", f"{node_path}/..",
                         f"{node_path}/a\x01b", f"{node_path}/a\x00b", f"{node_path}/a\ufff5b"]
        for bad in bad_arguments:
            assert raw.create(bad)[0] == BadArgumentsError.code, repr(bad)
        missing_parent = [f"{node_path}//x", f"{node_path}/./x", f"{node_path}/../x", f"{node_path}/x/", "/no-such-parent/"]
        for bad in missing_parent:
            assert raw.create(bad)[0] == NoNodeError.code, repr(bad)
        assert raw.create(f"{node_path}/.x") == (0, f"{node_path}/.x")
        # a sequential create may end in '/': the suffix makes the name valid
        assert raw.create(f"{node_path}/", flags=2) == (0, f"{node_path}/0000000001")
        assert raw.create("/zookeeper")[0] == NodeExistsError.code
        assert raw.close_session() == 0
    finally:
        raw.close()


def test_kazoo_resumes_session_after_connection_drop(server: ServerProcess, node_path: str) -> None:
    with kazoo_client(server) as client, kazoo_client(server) as writer:
        states: list[str] = []
        reconnected = threading.Event()

        def on_state(state: str) -> None:
            states.append(state)
            if state == KazooState.CONNECTED:
                reconnected.set()

        session = client.client_id
        client.create(node_path, b"0", ephemeral=True)
        changed = threading.Event()
        client.get(node_path, watch=lambda event: changed.set())
        client.add_listener(on_state)
        client._connection._socket.shutdown(socket.SHUT_RDWR)
        writer.set(node_path, b"1")  # while client is (probably) away: SetWatches must report it
        assert reconnected.wait(EVENT_DEADLINE), f"kazoo did not reconnect; states {states}"
        assert changed.wait(EVENT_DEADLINE), "the data watch should survive the reconnect"
        assert states == [KazooState.SUSPENDED, KazooState.CONNECTED]
        assert client.client_id == session
        stat = client.exists(node_path)
        assert stat is not None and stat.ephemeralOwner == session[0]
        assert client.get(node_path)[0] == b"1"
