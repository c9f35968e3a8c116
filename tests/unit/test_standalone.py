"""StandaloneServer as a whole: session expiry and resumption, containers and TTLs,
pipelining and durability ordering, all on an explicitly advanced Clock."""
from __future__ import annotations


import pytest
from twisted.internet.task import Clock

from tests.unit.fakes import (
    OPEN_ACL,
    Event,
    FakeClient,
    RecordingTxnLog,
    Reply,
    assert_consistent,
    connected_client,
    make_server,
)
from zabd.jute.errors import Code
from zabd.jute.opcodes import EventType, OpCode
from zabd.jute.records import (
    Create2Response,
    CreateRequest,
    CreateResponse,
    CreateTTLRequest,
    DeleteRequest,
    GetDataResponse,
    PathWatchRequest,
    SetDataRequest,
)
from zabd.pipeline.context import Settings
from zabd.serving.standalone import StandaloneServer

TICK = 2000


@pytest.fixture
def server(clock: Clock) -> StandaloneServer:
    return make_server(clock, tick_ms=TICK)[0]


def create(c: FakeClient, path: str, flags: int = 0, op: int = OpCode.create) -> int:
    return c.call(op, CreateRequest(path, b"", OPEN_ACL, flags)).err


def advance_ms(clock: Clock, ms: int) -> None:
    clock.advance(ms / 1000)


def events(c: FakeClient) -> list[tuple[int, str | None]]:
    return [(e.type, e.path) for e in c.events()]


# ---- session expiry ------------------------------------------------------------------------


def test_session_expires_when_the_clock_passes_its_timeout(server: StandaloneServer, clock: Clock) -> None:
    doomed = connected_client(server, timeout=4000)
    other = connected_client(server, timeout=40000)
    assert create(doomed, "/e", flags=1) == 0
    assert create(doomed, "/keep") == 0
    assert other.call(OpCode.exists, PathWatchRequest("/e", True)).err == 0
    # Expiry is rounded up to the next tick: (0 + 4000) // 2000 + 1 ticks = 6000 ms.
    assert server.next_expiry_ms() == 6000
    advance_ms(clock, 5999)
    server.expire_sessions()
    assert not doomed.lost and server.ctx.sessions.is_alive(doomed.session_id)
    advance_ms(clock, 1)
    server.expire_sessions()
    assert doomed.lost
    assert doomed.session_id not in server.ctx.sessions
    assert server.ctx.tree.get("/e") is None and server.ctx.tree.get("/keep") is not None
    assert server.ctx.tree.ephemerals_of(doomed.session_id) == set()
    assert events(other) == [(EventType.NodeDeleted, "/e")]
    assert not other.lost
    # The expired session cannot come back.
    again = FakeClient(server).handshake(session_id=doomed.session_id, passwd=doomed.password)
    assert again is not None and (again.timeOut, again.sessionId) == (0, 0)
    assert_consistent(server.ctx.tree)


def test_any_packet_refreshes_the_session(server: StandaloneServer, clock: Clock) -> None:
    client = connected_client(server, timeout=4000)
    for _ in range(5):
        advance_ms(clock, 3000)
        assert client.call(OpCode.ping, xid=-2).err == 0
        server.expire_sessions()
    assert not client.lost
    advance_ms(clock, 3000)
    client.call(OpCode.exists, PathWatchRequest("/", False))
    # Last packet at 18000: expires at (18000 + 4000) // 2000 + 1 ticks = 24000.
    assert server.ctx.sessions.expiry_of(client.session_id) == 24000
    advance_ms(clock, 6000)
    server.expire_sessions()
    assert client.lost


def test_disconnected_session_lives_until_its_timeout(server: StandaloneServer, clock: Clock) -> None:
    client = connected_client(server, timeout=4000)
    assert create(client, "/eph", flags=1) == 0
    client.disconnect()
    advance_ms(clock, 3000)
    back = FakeClient(server)
    assert back.handshake(session_id=client.session_id, passwd=client.password, timeout=4000).timeOut == 4000  # type: ignore[union-attr]
    advance_ms(clock, 5000)
    server.expire_sessions()
    # Resuming touched it at 3000 (expiry 8000): gone now.
    assert back.lost and server.ctx.tree.get("/eph") is None


def test_resumed_session_expires_on_the_newly_negotiated_timeout(server: StandaloneServer, clock: Clock) -> None:
    client = connected_client(server, timeout=4000)
    client.disconnect()
    advance_ms(clock, 3000)
    back = FakeClient(server)
    assert back.handshake(session_id=client.session_id, passwd=client.password, timeout=10000).timeOut == 10000  # type: ignore[union-attr]
    # ZooKeeper touches with the connection's negotiated timeout (revalidateSession and
    # touch(cnxn)): the session now expires at (3000 + 10000) // 2000 + 1 ticks = 14000.
    advance_ms(clock, 8000)  # t = 11000: past the old 4000 ms, within the new 10000 ms
    server.expire_sessions()
    assert not back.lost and server.ctx.sessions.is_alive(client.session_id)
    assert back.call(OpCode.ping, xid=-2).err == 0


def test_requests_of_an_expiring_session_fail(clock: Clock) -> None:
    log = RecordingTxnLog()
    server = make_server(clock, log, tick_ms=TICK)[0]
    client = FakeClient(server)
    client.send_connect(timeout=4000)
    log.make_durable()
    assert client.read_connect_response() is not None
    advance_ms(clock, 6000)
    server.expire_sessions()  # closeSession prepared, not yet durable
    read = client.send(OpCode.exists, PathWatchRequest("/", False))
    write = client.send(OpCode.create, CreateRequest("/late", b"", OPEN_ACL, 0))
    close_txn = log.appended[1]
    assert (close_txn.header.clientId, close_txn.header.cxid, close_txn.header.type) == (
        client.session_id, 0, OpCode.closeSession)
    assert log.appended[2].header.type == OpCode.error  # the create: SESSIONEXPIRED
    log.make_durable()
    # The connection is closed when the closeSession applies; anything answered is SESSIONEXPIRED.
    assert client.lost
    replies = [m for m in client.messages() if isinstance(m, Reply)]
    assert all(r.err == Code.SESSIONEXPIRED for r in replies) and {r.xid for r in replies} <= {read, write}
    assert server.ctx.tree.get("/late") is None


def test_resumed_session_closes_the_old_connection(server: StandaloneServer) -> None:
    first = connected_client(server)
    watcher_events_before = server.ctx.watches.count()
    second = FakeClient(server)
    assert second.handshake(session_id=first.session_id, passwd=first.password) is not None
    assert first.lost and first.transport.lose_calls == 1
    first.disconnect()  # Twisted then reports the old connection lost
    assert server.by_session[first.session_id] is second.conn
    assert server.ctx.watches.count() == watcher_events_before
    assert create(second, "/still-works") == 0


# ---- containers and TTL nodes -----------------------------------------------------------------


def test_collect_containers_deletes_used_empty_containers(server: StandaloneServer) -> None:
    client = connected_client(server)
    watcher = connected_client(server)
    assert create(client, "/used", flags=4, op=OpCode.createContainer) == 0
    assert create(client, "/fresh", flags=4, op=OpCode.createContainer) == 0
    assert create(client, "/used/child") == 0
    watcher.call(OpCode.exists, PathWatchRequest("/used", True))
    server.collect_containers()
    assert server.ctx.tree.get("/used") is not None  # it has a child
    assert client.call(OpCode.delete, DeleteRequest("/used/child", -1)).err == 0
    server.collect_containers()
    assert server.ctx.tree.get("/used") is None
    assert server.ctx.tree.get("/fresh") is not None  # never used
    assert events(watcher) == [(EventType.NodeDeleted, "/used")]
    server.collect_containers()  # nothing left to do, nothing breaks
    assert_consistent(server.ctx.tree)


def test_ttl_nodes_expire_with_extended_types(clock: Clock) -> None:
    server = make_server(clock, tick_ms=TICK, settings=Settings(extended_types=True))[0]
    client = connected_client(server, timeout=40000)
    reply = client.call(OpCode.createTTL, CreateTTLRequest("/ttl", b"", OPEN_ACL, 5, 1000))
    assert reply.decode(Create2Response).path == "/ttl"
    client.call(OpCode.createTTL, CreateTTLRequest("/ttl-busy", b"", OPEN_ACL, 5, 1000))
    assert create(client, "/ttl-busy/kid") == 0
    advance_ms(clock, 1000)
    server.collect_containers()
    assert server.ctx.tree.get("/ttl") is not None  # now - mtime must exceed the ttl
    advance_ms(clock, 2)  # (Clock seconds are floats: 1.001 s reads as 1000 ms)
    server.collect_containers()
    assert server.ctx.tree.get("/ttl") is None
    assert server.ctx.tree.get("/ttl-busy") is not None
    # A setData moves mtime, and so the deadline.
    client.call(OpCode.createTTL, CreateTTLRequest("/ttl2", b"", OPEN_ACL, 5, 1000))
    advance_ms(clock, 900)
    assert client.call(OpCode.setData, SetDataRequest("/ttl2", b"x", -1)).err == 0
    advance_ms(clock, 900)
    server.collect_containers()
    assert server.ctx.tree.get("/ttl2") is not None


def test_collection_limit_per_run(clock: Clock) -> None:
    server = make_server(clock, max_containers_per_minute=2)[0]
    client = connected_client(server)
    for name in "abc":
        create(client, f"/{name}", flags=4, op=OpCode.createContainer)
        create(client, f"/{name}/x")
        client.call(OpCode.delete, DeleteRequest(f"/{name}/x", -1))
    server.collect_containers()
    assert sum(server.ctx.tree.get(f"/{n}") is None for n in "abc") == 2
    server.collect_containers()
    assert all(server.ctx.tree.get(f"/{n}") is None for n in "abc")


# ---- pipelining and the sync stage ---------------------------------------------------------------


def test_pipelined_dependent_creates_both_succeed_in_order(clock: Clock) -> None:
    log = RecordingTxnLog()
    server = make_server(clock, log)[0]
    client = FakeClient(server)
    client.send_connect()
    log.make_durable()
    assert client.read_connect_response() is not None
    x1 = client.send(OpCode.create, CreateRequest("/a", b"", OPEN_ACL, 0))
    x2 = client.send(OpCode.create, CreateRequest("/a/b", b"", OPEN_ACL, 0))
    x3 = client.send(OpCode.create, CreateRequest("/a/b", b"", OPEN_ACL, 0))
    assert client.messages() == []
    assert len(log.appended) == 4  # createSession + three creates, prepared ahead of the tree
    log.make_durable()
    replies = [m for m in client.messages() if isinstance(m, Reply)]
    assert [(r.xid, r.err) for r in replies] == [(x1, 0), (x2, 0), (x3, Code.NODEEXISTS)]
    assert replies[1].decode(CreateResponse).path == "/a/b"
    assert [r.zxid for r in replies] == [t.header.zxid for t in log.appended[1:]]


def _slow_client(clock: Clock) -> tuple[StandaloneServer, RecordingTxnLog, FakeClient]:
    log = RecordingTxnLog()
    server = make_server(clock, log)[0]
    client = FakeClient(server)
    client.send_connect()
    log.make_durable()
    assert client.read_connect_response() is not None
    return server, log, client


def test_pipelined_writes_validate_against_outstanding_changes(clock: Clock) -> None:
    server, log, client = _slow_client(clock)
    sent = [
        client.send(OpCode.create, CreateRequest("/s", b"", OPEN_ACL, 0)),
        client.send(OpCode.create, CreateRequest("/s/n-", b"", OPEN_ACL, 2)),
        client.send(OpCode.create, CreateRequest("/s/n-", b"", OPEN_ACL, 2)),
        client.send(OpCode.delete, DeleteRequest("/s/n-0000000000", 0)),
        client.send(OpCode.create, CreateRequest("/s/n-0000000000", b"", OPEN_ACL, 0)),
        client.send(OpCode.setData, SetDataRequest("/s", b"v", 0)),
        client.send(OpCode.setData, SetDataRequest("/s", b"w", 0)),  # version is 1 by then
        client.send(OpCode.delete, DeleteRequest("/s", -1)),  # still has children
    ]
    assert client.messages() == []
    log.make_durable()
    replies = [m for m in client.messages() if isinstance(m, Reply)]
    assert [(r.xid, r.err) for r in replies] == list(zip(sent, [0, 0, 0, 0, 0, 0, Code.BADVERSION, Code.NOTEMPTY]))
    assert [replies[i].decode(CreateResponse).path for i in (1, 2)] == ["/s/n-0000000000", "/s/n-0000000001"]
    assert len(server.ctx.pending) == 0
    assert_consistent(server.ctx.tree)


def test_close_session_removes_ephemerals_still_being_written(clock: Clock) -> None:
    server, log, client = _slow_client(clock)
    client.send(OpCode.create, CreateRequest("/e1", b"", OPEN_ACL, 1))
    client.send(OpCode.create, CreateRequest("/e2", b"", OPEN_ACL, 1))
    client.send(OpCode.closeSession)
    close_txn = log.appended[-1]
    assert close_txn.header.type == OpCode.closeSession
    assert sorted(close_txn.body.paths2Delete) == ["/e1", "/e2"]  # type: ignore[union-attr]
    log.make_durable()
    assert server.ctx.tree.get("/e1") is None and server.ctx.tree.get("/e2") is None
    assert client.lost and len(server.ctx.pending) == 0
    assert_consistent(server.ctx.tree)


def test_read_waits_behind_an_undurable_write(clock: Clock) -> None:
    log = RecordingTxnLog()
    server = make_server(clock, log)[0]
    writer, watcher = FakeClient(server), FakeClient(server)
    for c in (writer, watcher):
        c.send_connect()
        log.make_durable()
        assert c.read_connect_response() is not None
    watcher.send(OpCode.exists, PathWatchRequest("/w", True))
    assert len(watcher.messages()) == 1
    w = writer.send(OpCode.create, CreateRequest("/w", b"v", OPEN_ACL, 0))
    r = writer.send(OpCode.getData, PathWatchRequest("/w", False))
    ping = writer.send(OpCode.ping, xid=-2)
    # Nothing (not the read, not the watch event) leaves before the write is durable.
    assert writer.messages() == [] and watcher.messages() == []
    assert server.ctx.tree.get("/w") is None
    log.make_durable(log.appended[-1].header.zxid - 1)
    assert writer.messages() == []
    log.make_durable()
    assert [(e.type, e.path) for e in watcher.messages() if isinstance(e, Event)] == [(EventType.NodeCreated, "/w")]
    replies = writer.messages()
    assert [m.xid for m in replies if isinstance(m, Reply)] == [w, r, ping]
    assert isinstance(replies[1], Reply) and replies[1].decode(GetDataResponse).data == b"v"


def test_reads_with_nothing_pending_are_answered_at_once(clock: Clock) -> None:
    log = RecordingTxnLog()
    server = make_server(clock, log)[0]
    client = FakeClient(server)
    client.send_connect()
    log.make_durable()
    client.read_connect_response()
    assert client.call(OpCode.exists, PathWatchRequest("/", False)).err == 0


def test_closing_connection_before_the_write_is_durable(clock: Clock) -> None:
    log = RecordingTxnLog()
    server = make_server(clock, log)[0]
    client = FakeClient(server)
    client.send_connect()
    log.make_durable()
    client.read_connect_response()
    client.send(OpCode.create, CreateRequest("/orphan-reply", b"", OPEN_ACL, 0))
    client.send(OpCode.getData, PathWatchRequest("/orphan-reply", True))
    client.conn.close()
    client.disconnect()
    log.make_durable()
    # The write still applies; no reply goes out and no watch is left for the dead connection.
    assert server.ctx.tree.get("/orphan-reply") is not None
    assert server.ctx.watches.count() == 0
    assert server.ctx.stats.outstanding == 0


def test_outstanding_and_packet_counters(server: StandaloneServer) -> None:
    client = connected_client(server)
    create(client, "/n")
    client.call(OpCode.getData, PathWatchRequest("/n", False))
    stats = server.ctx.stats
    assert stats.outstanding == 0
    assert stats.packets_received == 2 and stats.packets_sent == 2
    metrics = server.ctx.metrics  # createSession + two requests were timed
    assert (metrics.update_latency.count, metrics.read_latency.count) == (2, 1)
