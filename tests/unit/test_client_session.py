"""The client's connection and session handling against scripted fake servers on a fake clock."""
from __future__ import annotations

from zabd.client import (
    ConnectionLoss, KazooState, KeeperState, OperationTimeoutError, SessionExpiredError, ZooKeeperClient,
)
from zabd.client.hosts import Chroot, parse_connect_string
from zabd.jute.opcodes import AUTH_XID, PING_XID, SET_WATCHES_XID, EventType, OpCode
from zabd.jute.records import AuthPacket, PathWatchRequest, SetWatches2
from zabd.jute.schema import decode
from zabd.testing.fakezk import parse_connect
from tests.unit.client_helpers import failure, make_client, pending, result, scripted

PASSWORD = bytes(range(16))


def connect(net, server, client: ZooKeeperClient, timeout: int = 6000, session: int = 0x1234) -> None:
    """Pump the dial, answer the handshake on ``server``'s newest connection."""
    net.pump()
    server.last.accept_session(timeout, session, PASSWORD)
    net.pump()


def test_connect_string_hosts_and_chroot() -> None:
    parsed = parse_connect_string("a:1,b,[::1]:3/app/x/")
    assert [str(h) for h in parsed.hosts] == ["a:1", "b:2181", "[::1]:3"]
    assert parsed.chroot == Chroot("/app/x")
    assert parsed.chroot.to_server("/") == "/app/x" and parsed.chroot.to_server("/n") == "/app/x/n"
    assert parsed.chroot.to_client("/app/x/n") == "/n" and parsed.chroot.to_client("/app/x") == "/"
    assert parse_connect_string("a:1").chroot.to_server("/n") == "/n"


def test_handshake_negotiates_the_timeout_and_reports_connected() -> None:
    net, (zk,) = scripted("zk1:2181")
    client = make_client(net, "zk1:2181", timeout=10.0)
    states: list[KazooState] = []
    client.add_listener(states.append)
    started = client.start()
    net.pump()
    request, read_only = parse_connect(zk.last.frames[0])
    assert (request.timeOut, request.sessionId, request.lastZxidSeen, read_only) == (10000, 0, 0, False)
    assert pending(started) and client.state is KazooState.LOST
    zk.last.accept_session(6000, 0x1234, PASSWORD)
    net.pump()
    assert result(started) is None
    assert states == [KazooState.CONNECTED] and client.client_state is KeeperState.CONNECTED
    assert client.session_timeout == 6000 and client.client_id == (0x1234, PASSWORD)


def test_pings_after_a_third_of_the_session_timeout_and_silence_drops_the_connection() -> None:
    net, (zk,) = scripted("zk1:2181")
    client = make_client(net, "zk1:2181")
    client.start()
    connect(net, zk, client, timeout=6000)
    net.advance(1.999)
    assert zk.last.requests() == []
    net.advance(0.001)  # read timeout 4000 ms; a ping after half of it idle
    assert zk.last.requests() == [(PING_XID, OpCode.ping, b"")]
    zk.last.reply(PING_XID, 5)
    net.advance(2.0)
    assert len(zk.last.requests()) == 2  # the next ping
    net.advance(1.999)
    assert client.state is KazooState.CONNECTED
    net.advance(0.001)  # 4000 ms without a word from the server: the connection is dead
    assert client.state is KazooState.SUSPENDED and zk.connections[0].closed
    net.advance(0.2)  # the only host failed: a backoff (100 ms, jittered), then again
    assert len(zk.connections) == 2


def test_loss_before_the_connect_reply_tries_the_next_host_and_queued_requests_follow() -> None:
    net, (a, b) = scripted("a:1", "b:2")
    client = make_client(net, "a:1,b:2")
    client.start()
    got = client.get("/x")
    net.pump()
    a.last.drop()
    net.pump()
    assert net.dials == [("a", 1), ("b", 2)] and client.state is KazooState.LOST and pending(got)
    b.last.accept_session(6000, 0x99, PASSWORD)
    net.pump()
    xid, opcode, body = b.last.requests()[0]
    assert opcode == OpCode.getData and decode(PathWatchRequest, body).path == "/x" and xid == 1


def test_outstanding_requests_fail_with_connection_loss_and_the_session_resumes_elsewhere() -> None:
    net, (a, b) = scripted("a:1", "b:2")
    client = make_client(net, "a:1,b:2")
    states: list[KazooState] = []
    client.add_listener(states.append)
    client.start()
    connect(net, a, client)
    first, second = client.get("/x"), client.exists("/y")
    net.pump()
    a.last.reply(1, zxid=0x500, err=-101)  # the first is answered (NONODE), the second is not
    a.last.drop()
    net.pump()
    assert type(failure(first)).__name__ == "NoNodeError"
    assert isinstance(failure(second), ConnectionLoss)
    request, _ = parse_connect(b.last.frames[0])
    assert (request.sessionId, request.passwd, request.lastZxidSeen) == (0x1234, PASSWORD, 0x500)
    b.last.accept_session(6000, 0x1234, PASSWORD)
    net.pump()
    assert states == [KazooState.CONNECTED, KazooState.SUSPENDED, KazooState.CONNECTED]


def test_listeners_hear_suspended_before_a_request_fails_with_connection_loss() -> None:
    # A lock holder whose write fails must already know the connection went.
    net, (a, _) = scripted("a:1", "b:2")
    client = make_client(net, "a:1,b:2")
    heard: list[str] = []
    client.add_listener(lambda state: heard.append(state.value))
    client.start()
    connect(net, a, client)
    client.set("/x", b"v").addErrback(lambda f: heard.append(type(f.value).__name__))
    net.pump()
    a.last.drop()
    net.pump()
    assert heard == ["CONNECTED", "SUSPENDED", "ConnectionLoss"]


def test_session_expiry_is_lost_and_fails_requests_then_a_new_session_starts() -> None:
    net, (a, b) = scripted("a:1", "b:2")
    client = make_client(net, "a:1,b:2")
    states: list[KazooState] = []
    client.add_listener(states.append)
    client.start()
    connect(net, a, client)
    a.last.drop()
    net.pump()
    queued = client.create("/e", ephemeral=True)
    b.last.accept_session(0, 0, bytes(16))  # the ensemble says: expired
    net.pump()
    assert isinstance(failure(queued), SessionExpiredError)
    assert states[-1] is KazooState.LOST and client.client_id is None
    assert b.last.closed
    net.advance(0.2)  # both hosts were tried in this round: a backoff first
    assert len(a.connections) == 2
    request, _ = parse_connect(a.last.frames[0])  # the next attempt asks for a new session
    assert request.sessionId == 0 and request.lastZxidSeen == 0
    a.last.accept_session(6000, 0x777, PASSWORD)
    net.pump()
    assert states[-1] is KazooState.CONNECTED and client.client_id == (0x777, PASSWORD)


def test_no_server_for_the_whole_session_timeout_is_lost() -> None:
    net, (a, b) = scripted("a:1", "b:2")
    client = make_client(net, "a:1,b:2")
    client.start()
    connect(net, a, client, timeout=6000)
    a.mode = b.mode = "refuse"
    a.last.drop()
    net.pump()
    assert client.state is KazooState.SUSPENDED
    for _ in range(59):
        net.advance(0.1)
    assert client.state is KazooState.SUSPENDED
    net.advance(0.2)
    assert client.state is KazooState.LOST and client.client_id is None
    assert len(net.dials) > 4  # it kept trying, with backoff between rounds


def test_connect_timeout_moves_to_the_next_host() -> None:
    net, (a, b) = scripted("a:1", "b:2")
    a.mode = "silent"
    client = make_client(net, "a:1,b:2", timeout=10.0)
    client.start()
    net.pump()
    net.advance(4.999)  # connect timeout: 10 s over two hosts
    assert net.dials == [("a", 1)]
    net.advance(0.001)
    assert net.dials == [("a", 1), ("b", 2)]


def test_start_times_out_and_stops() -> None:
    net, (a,) = scripted("a:1")
    a.mode = "refuse"
    client = make_client(net, "a:1")
    started = client.start(timeout=3.0)
    net.advance(3.0)
    assert isinstance(failure(started), OperationTimeoutError)
    dials = len(net.dials)
    net.advance(10.0)
    assert len(net.dials) == dials and net.getDelayedCalls() == []


def test_auth_is_replayed_and_watches_are_rearmed_before_queued_requests() -> None:
    net, (a, b) = scripted("a:1", "b:2")
    client = make_client(net, "a:1,b:2/app")
    client.start()
    connect(net, a, client)
    authed = client.add_auth("digest", "u:p")
    events: list[object] = []
    got = client.get("/w", watch=events.append)
    net.pump()
    a.last.reply(AUTH_XID)
    a.last.reply(1, zxid=0x42, record=_data_reply())
    net.pump()
    assert result(authed) is None and result(got)[0] == b"v"
    a.last.drop()
    net.pump()
    later = client.exists("/z")
    b.last.accept_session(6000, 0x1234, PASSWORD)
    net.pump()
    xids = [(xid, op) for xid, op, _ in b.last.requests()]
    assert xids == [(AUTH_XID, OpCode.auth), (SET_WATCHES_XID, OpCode.setWatches2), (2, OpCode.exists)]
    assert decode(AuthPacket, b.last.requests()[0][2]) == AuthPacket(0, "digest", b"u:p")
    rearm = decode(SetWatches2, b.last.requests()[1][2])
    assert rearm == SetWatches2(0x42, ["/app/w"], [], [], [], [])
    b.last.reply(SET_WATCHES_XID)
    b.last.event(EventType.NodeDataChanged, "/app/w")  # changed while we were away
    net.pump()
    assert [(e.type.value, e.path) for e in events] == [("CHANGED", "/w")]  # type: ignore[attr-defined]
    assert pending(later)


def test_read_only_server() -> None:
    net, (a,) = scripted("a:1")
    client = make_client(net, "a:1", read_only=True)
    client.start()
    net.pump()
    _, read_only = parse_connect(a.last.frames[0])
    assert read_only is True
    a.last.accept_session(6000, 0x5, PASSWORD, read_only=True)
    net.pump()
    assert client.connected and client.read_only and client.client_state is KeeperState.CONNECTED_RO


def test_read_only_client_moves_to_a_read_write_server_when_one_answers() -> None:
    # As 3.8's pingRwServer: isro to the other hosts, 100 ms then doubling; "rw" is where to go.
    net, (a, b) = scripted("a:1", "b:2")
    client = make_client(net, "a:1,b:2", read_only=True)
    states: list[KazooState] = []
    client.add_listener(states.append)
    client.start()
    net.pump()
    a.last.accept_session(6000, 0x5, PASSWORD, read_only=True)
    net.pump()
    assert client.read_only and len(b.connections) == 0
    net.advance(0.1)
    assert b.last.unframed == b"isro"
    b.last.write(b"ro")
    b.last.drop()
    net.pump()
    net.advance(0.15)
    assert len(b.connections) == 1  # the next probe waits twice as long
    net.advance(0.06)
    assert len(b.connections) == 2 and b.last.unframed == b"isro"
    b.last.write(b"rw")
    b.last.drop()
    net.pump()
    assert a.last.closed and len(b.connections) == 3
    request, read_only = parse_connect(b.last.frames[0])
    # The read-only server's session was its own: a client that never saw a
    # read-write server starts a new session there (3.8's seenRwServerBefore).
    assert (request.sessionId, read_only) == (0, True)
    b.last.accept_session(6000, 0x77, PASSWORD, read_only=False)
    net.pump()
    assert not client.read_only and client.client_id == (0x77, PASSWORD)
    assert states == [KazooState.CONNECTED, KazooState.SUSPENDED, KazooState.CONNECTED]
    net.advance(1.5)  # longer than the probes' waits so far, shorter than a ping's
    assert len(b.connections) == 3 and len(a.connections) == 1  # no more probes once read-write


def test_a_session_that_saw_a_read_write_server_resumes_on_the_next_one() -> None:
    net, (a, b) = scripted("a:1", "b:2")
    client = make_client(net, "a:1,b:2", read_only=True)
    client.start()
    connect(net, a, client)  # read-write first
    a.last.drop()
    net.pump()
    b.last.accept_session(6000, 0x1234, PASSWORD, read_only=True)  # then cut off: read-only
    net.pump()
    assert client.read_only
    net.advance(0.11)
    assert a.last.unframed == b"isro"
    a.last.write(b"rw")
    a.last.drop()
    net.pump()
    request, _ = parse_connect(a.last.frames[0])
    assert (request.sessionId, request.passwd) == (0x1234, PASSWORD)


def test_stop_sends_close_session_and_later_calls_fail() -> None:
    net, (a,) = scripted("a:1")
    client = make_client(net, "a:1")
    states: list[KazooState] = []
    client.add_listener(states.append)
    client.start()
    connect(net, a, client)
    stopped = client.stop()
    net.pump()
    assert a.last.requests() == [(1, OpCode.closeSession, b"")]
    a.last.reply(1)
    net.pump()
    assert result(stopped) is None and states[-1] is KazooState.LOST and a.last.closed
    assert type(failure(client.get("/x"))).__name__ == "ConnectionClosedError"
    assert net.getDelayedCalls() == []


def _data_reply() -> object:
    from zabd.jute.records import GetDataResponse, Stat
    return GetDataResponse(b"v", Stat(1, 2, 0, 0, 0, 0, 0, 0, 1, 0, 1))
