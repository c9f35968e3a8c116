"""The request throttler (3.8's RequestThrottler): waits, wake-ups, stale drops and throttled ops, on a Clock."""
from __future__ import annotations

import dataclasses
import struct

from twisted.internet.address import IPv4Address
from twisted.internet.task import Clock
from twisted.internet.testing import StringTransport

from tests.unit.fakes import (
    OPEN_ACL, FakeClient, RecordingTxnLog, connect_request, connected_client, frame, make_server,
)
from zabd.core.datatree import DataTree
from zabd.jute.errors import Code
from zabd.jute.opcodes import OpCode, PING_XID
from zabd.jute.records import CreateRequest, PathWatchRequest, SetDataRequest
from zabd.jute.schema import encode
from zabd.metrics.server import ServerMetrics
from zabd.server.client_port import ClientPortFactory
from zabd.server.quorum_port import ReactorScheduler
from zabd.serving.following import FollowerServer
from zabd.config.overload_settings import RequestThrottleSettings
from zabd.serving.readonly import ReadOnlyServer
from zabd.serving.standalone import ServerOptions, StandaloneServer
from zabd.testing.ensemble import SimEnsemble


def throttled_server(clock: Clock, log: RecordingTxnLog | None = None, **settings: object) -> StandaloneServer:
    throttle = RequestThrottleSettings(**settings)  # type: ignore[arg-type]
    return make_server(clock, txn_log=log, request_throttle=throttle, scheduler=ReactorScheduler(clock))[0]


def create(client: FakeClient, path: str) -> int:
    return client.send(OpCode.create, CreateRequest(path, b"", OPEN_ACL, 0))


def get(client: FakeClient, path: str) -> int:
    return client.send(OpCode.getData, PathWatchRequest(path, False))


def replies(client: FakeClient) -> list[tuple[int, int]]:
    """(xid, err) of every reply written since the last call."""
    return [(m.xid, m.err) for m in client.messages() if hasattr(m, "xid")]


def metrics(server: StandaloneServer) -> ServerMetrics:
    return server.ctx.metrics


def test_off_by_default_every_request_goes_straight_on(clock: Clock) -> None:
    server = make_server(clock)[0]
    client = connected_client(server)
    xid = create(client, "/a")
    assert replies(client) == [(xid, 0)]
    m = metrics(server)
    assert m.request_throttle_wait_count.value == 0
    # Every request is timed in the queue, as in 3.8 (createSession and the create, 0 ms each).
    assert (m.request_throttle_queue_time.count, m.request_throttle_queue_time.total) == (2, 0)
    assert server.ctx.stats.in_process == 0 and server.throttler.inflight == 0


def test_requests_wait_while_max_requests_are_in_process_and_go_on_in_order(clock: Clock) -> None:
    log = RecordingTxnLog()
    server = throttled_server(clock, log, max_requests=2)
    client = connected_client_on_slow_log(server, log)
    first, second, third = create(client, "/a"), create(client, "/b"), get(client, "/")
    assert len(log.appended) == 3  # createSession, /a, /b: the read waits in the throttler
    assert (server.ctx.stats.in_process, server.throttler.inflight) == (2, 1)
    assert metrics(server).request_throttle_wait_count.value == 1
    log.make_durable()
    assert replies(client) == [(first, 0), (second, 0)]
    # The wake-up comes on the next turn, never inside the final stage.
    clock.advance(0)
    assert replies(client) == [(third, 0)]
    assert (server.ctx.stats.in_process, server.throttler.inflight) == (0, 0)
    assert metrics(server).request_throttle_wait_count.value == 1


def test_a_wait_ends_after_the_stall_time_and_counts_again(clock: Clock) -> None:
    log = RecordingTxnLog()
    server = throttled_server(clock, log, max_requests=1, stall_time_ms=100)
    client = connected_client_on_slow_log(server, log)
    create(client, "/a")
    later = get(client, "/")
    clock.advance(0.099)
    assert metrics(server).request_throttle_wait_count.value == 1
    clock.advance(0.001)  # still one in process: it waits again
    assert metrics(server).request_throttle_wait_count.value == 2
    log.make_durable()
    clock.advance(0)
    assert replies(client)[-1] == (later, 0)
    # 3.8 times the wait from queueing to leaving: 100 ms here.
    assert metrics(server).request_throttle_queue_time.high == 100


def test_a_stale_request_is_dropped_with_the_rest_of_its_connection(clock: Clock) -> None:
    log = RecordingTxnLog()
    server = throttled_server(clock, log, max_requests=1)
    busy = connected_client_on_slow_log(server, log)
    gone = connected_client_on_slow_log(server, log)
    create(busy, "/a")
    get(gone, "/")
    get(gone, "/zookeeper")
    gone.disconnect()
    clock.advance(0.1)  # the stall ends: the head is stale
    m = metrics(server)
    assert m.stale_requests_dropped.value == 1  # the second went with it, uncounted
    assert server.throttler.inflight == 0
    log.make_durable()
    clock.advance(0)
    assert m.stale_requests.value == 0 and server.ctx.stats.in_process == 0


def test_dropping_a_stale_request_closes_its_connection(clock: Clock) -> None:
    log = RecordingTxnLog()
    server = throttled_server(clock, log, max_requests=1, stale_latency_check=True)
    busy = connected_client_on_slow_log(server, log)
    slow = connected_client_on_slow_log(server, log, timeout=4000)
    create(busy, "/a")
    get(slow, "/")
    clock.advance(4.1)  # older than its session timeout: stale with the latency check on
    assert metrics(server).stale_requests_dropped.value == 1
    assert slow.lost and not busy.lost
    log.make_durable()
    clock.advance(0)


def test_without_drop_stale_a_stale_request_still_goes_on(clock: Clock) -> None:
    log = RecordingTxnLog()
    server = throttled_server(clock, log, max_requests=1, drop_stale=False)
    busy = connected_client_on_slow_log(server, log)
    gone = connected_client_on_slow_log(server, log)
    create(busy, "/a")
    create(gone, "/b")
    gone.disconnect()
    log.make_durable()
    clock.advance(0)
    m = metrics(server)
    assert (m.stale_requests_dropped.value, m.stale_requests.value) == (0, 1)
    assert len(log.appended) == 4  # two createSessions, /a, then /b after all
    log.make_durable()
    assert m.stale_replies.value == 1  # answered to nobody
    assert server.ctx.stats.in_process == 0


def test_a_new_session_s_held_requests_reach_the_chain_in_order(clock: Clock) -> None:
    """Requests sent before the session is settled wait in the connection, then queue behind."""
    log = RecordingTxnLog()
    server = throttled_server(clock, log, max_requests=1)
    client = FakeClient(server)
    client.send_connect()
    pipelined = [get(client, "/"), get(client, "/zookeeper")]
    assert server.throttler.inflight == 0  # held by the connection, not yet submitted
    log.make_durable()  # the session: its held reads queue behind the limit of one
    for _ in pipelined:
        clock.advance(0)
    assert client.read_connect_response() is not None
    assert [xid for xid, _ in replies(client)] == pipelined


def test_throttled_ops_are_answered_throttledop_without_a_txn(clock: Clock) -> None:
    log = RecordingTxnLog()
    server = throttled_server(clock, log, max_requests=1, throttled_op_wait_time_ms=50)
    client = connected_client_on_slow_log(server, log)
    create(client, "/a")
    late_write = client.send(OpCode.setData, SetDataRequest("/a", b"x", -1))
    late_read = get(client, "/")
    ping = client.send(OpCode.ping, b"", xid=PING_XID)
    last_zxid = server.ctx.last_zxid
    clock.advance(0.06)
    log.make_durable()
    for _ in range(3):
        clock.advance(0)
    assert replies(client)[1:] == [(late_write, Code.THROTTLEDOP), (late_read, Code.THROTTLEDOP), (ping, 0)]
    assert server.ctx.last_zxid == last_zxid  # no zxid for a throttled write
    assert metrics(server).throttled_ops.value == 2


def test_a_stopped_throttler_drops_what_waits_and_closes_those_connections(clock: Clock) -> None:
    log = RecordingTxnLog()
    server = throttled_server(clock, log, max_requests=1)
    busy = connected_client_on_slow_log(server, log)
    waiting = connected_client_on_slow_log(server, log)
    create(busy, "/a")
    get(waiting, "/")
    server.throttler.stop()
    assert waiting.lost and server.throttler.inflight == 0
    get(busy, "/")  # nothing more goes on
    assert busy.lost
    log.make_durable()


def test_expiry_closes_are_queued_but_never_counted_in_process(clock: Clock) -> None:
    log = RecordingTxnLog()
    server = throttled_server(clock, log, max_requests=1)
    connected_client_on_slow_log(server, log, timeout=4000)
    clock.advance(10)
    server.expire_sessions()
    assert log.appended[-1].header.type == OpCode.closeSession
    assert server.ctx.stats.in_process == 0
    log.make_durable()


def test_queued_requests_count_towards_the_global_outstanding_limit(clock: Clock) -> None:
    log = RecordingTxnLog()
    server = throttled_server(clock, log, max_requests=1)
    factory = ClientPortFactory(server, lambda word, argument: "", {}, 4096, 0, outstanding_limit=3, clock=clock)
    proto = factory.buildProtocol(IPv4Address("TCP", "127.0.0.1", 1))
    transport = StringTransport()
    assert proto is not None
    proto.makeConnection(transport)
    proto.dataReceived(frame(connect_request()))
    log.make_durable()
    creates = (struct.pack(">ii", xid, OpCode.create) + encode(CreateRequest(f"/n{xid}", b"", OPEN_ACL, 0))
               for xid in range(1, 6))
    proto.dataReceived(b"".join(frame(body) for body in creates))
    # One in process, three queued: at the limit of three, the fifth waits unread and the connection pauses.
    assert (server.ctx.stats.outstanding, server.throttler.inflight) == (1, 3)
    assert transport.producerState == "paused"
    log.make_durable()
    clock.advance(0)
    assert transport.producerState == "producing"
    for _ in range(5):
        log.make_durable()
        clock.advance(0)
    assert server.ctx.stats.outstanding == 0 and server.throttler.inflight == 0


class ThrottledEnsemble(SimEnsemble):
    """Every peer's servers let one client request in at a time; a wait of over 1 ms is answered THROTTLEDOP."""

    def server_options(self, sid: int) -> ServerOptions:
        throttle = RequestThrottleSettings(max_requests=1, throttled_op_wait_time_ms=1)
        return dataclasses.replace(super().server_options(sid), request_throttle=throttle, scheduler=self.scopes[sid])


def test_a_follower_answers_a_throttled_write_itself_in_order() -> None:
    ensemble = ThrottledEnsemble(1)
    ensemble.start()
    leader = ensemble.settle()
    follower = next(sid for sid in ensemble.sids if sid != leader)
    server = ensemble.server(follower)
    assert isinstance(server, FollowerServer)
    client = FakeClient(server)
    client.send_connect(timeout=4000)
    assert ensemble.run_until(lambda: client.read_connect_response() is not None, 5_000)
    answered: list[tuple[int, int]] = []

    def replies_to(*xids: int) -> bool:
        answered.extend(replies(client))
        return [xid for xid, _ in answered] == list(xids)

    first = create(client, "/a")
    late = client.send(OpCode.setData, SetDataRequest("/a", b"late", -1))  # waits for the create to commit
    assert ensemble.run_until(lambda: replies_to(first, late), 5_000)
    assert answered == [(first, 0), (late, Code.THROTTLEDOP)]
    # Never sent to the leader: /a keeps its data on every peer.
    trees = [ensemble.replica(sid).tree for sid in ensemble.live_peers()]
    assert ensemble.run_until(lambda: all("/a" in tree.nodes for tree in trees), 1_000)
    assert all(tree.nodes["/a"].data == b"" for tree in trees)
    answered.clear()
    again = client.send(OpCode.setData, SetDataRequest("/a", b"now", -1))  # nothing in process: no wait
    assert ensemble.run_until(lambda: replies_to(again), 5_000)
    assert answered == [(again, 0)]


def test_writes_a_read_only_server_refuses_give_their_place_back(clock: Clock) -> None:
    options = ServerOptions(request_throttle=RequestThrottleSettings(max_requests=1), scheduler=ReactorScheduler(clock))
    server = ReadOnlyServer(options, clock.seconds, DataTree(), (), lambda: True)
    client = FakeClient(server)
    assert client.handshake(read_only=True) is not None
    refused = client.send(OpCode.setData, SetDataRequest("/", b"x", -1))
    read = get(client, "/")
    assert replies(client) == [(refused, Code.NOTREADONLY), (read, 0)]
    assert server.ctx.stats.in_process == 0


def connected_client_on_slow_log(server: StandaloneServer, log: RecordingTxnLog, timeout: int = 10000) -> FakeClient:
    client = FakeClient(server)
    client.send_connect(timeout=timeout)
    log.make_durable()
    assert client.read_connect_response() is not None
    return client
