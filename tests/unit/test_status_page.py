"""The status page: mntr/srvr parsing, the peers asked, the HTML, and the resource in memory.

The ensemble rows come from real peers on the simulated ensemble: each peer's
``EnsembleView`` renders the words, and a fake ``ask`` hands those texts to
the page as if they came over the client port. No sockets anywhere; the one
TCP path (ask_four_letter_word) runs on a MemoryReactorClock.
"""
from __future__ import annotations

from collections.abc import Mapping
from html.parser import HTMLParser
from typing import Any

from treq.testing import StubTreq
from twisted.internet import defer
from twisted.internet.error import ConnectionDone, ConnectionRefusedError
from twisted.internet.testing import MemoryReactorClock, StringTransport
from twisted.python.failure import Failure

from tests.unit.test_ensemble_service import views
from tests.unit.test_fourletter import FakeView, as_view
from zabd.views.admin.peers import peer_targets
from zabd.admin.peers_query import ask_four_letter_word
from zabd.admin.status import StatusPage
from zabd.views.admin.status_figures import (
    PeerFigures,
    PeerTarget,
    Reach,
    figures_from_answers,
    lag_behind,
    parse_mntr,
    parse_srvr,
)
from zabd.views.admin.status_html import PageContext, render_status_page
from zabd.config.zoocfg import ZabdConfig, parse_config
from zabd.views.fourletter import NOT_SERVING, render
from zabd.views.fourletter_view import ServerView
from zabd.testing.ensemble import SimEnsemble

WORDS = frozenset({"srvr", "mntr"})
SRVR = """Zookeeper version: 3.8.0-zabd-0.1.0, built on 2025-01-01 00:00 UTC
Latency min/avg/max: 0/1.5/7
Received: 10
Sent: 10
Connections: 2
Outstanding: 0
Zxid: 0x200000005
Mode: follower
Node count: 9
"""
MNTR = ("zk_version\t3.8.0-zabd\nzk_server_state\tfollower\nzk_avg_latency\t1.25\nzk_max_latency\t7\n"
        "zk_min_latency\t0\nzk_num_alive_connections\t2\nzk_outstanding_requests\t0\n"
        "zk_znode_count\t9\nzk_global_sessions\t3\nzk_local_sessions\t0\n")
CONTEXT = PageContext("server 1", "2025-01-01 00:00:00 UTC", 5)


class Cards(HTMLParser):
    """The attributes of every peer card (``<section class="peer ...">``) and the page's text."""

    def __init__(self, page: bytes) -> None:
        super().__init__()
        self.cards: list[dict[str, str | None]] = []
        self.text: list[str] = []
        self.feed(page.decode("utf-8"))

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        found = dict(attrs)
        if tag == "section" and "peer" in (found.get("class") or "").split():
            self.cards.append(found)

    def handle_data(self, data: str) -> None:
        self.text.append(data)

    def roles(self) -> list[str | None]:
        return [card["data-role"] for card in self.cards]


def ensemble_config(myid: int, hosts: Mapping[int, str] | None = None) -> ZabdConfig:
    """Three server lines with client parts on 127.0.0.1:1881-1883 (the simulated peers' addresses)."""
    lines = [f"server.{sid}=127.0.0.1:{2887 + sid}:{3887 + sid};{(hosts or {}).get(sid, '127.0.0.1')}:{1880 + sid}"
             for sid in (1, 2, 3)]
    return parse_config("dataDir=/var/zabd\ntickTime=200\ninitLimit=10\nsyncLimit=5\n" + "\n".join(lines) + "\n",
                        myid=str(myid))


def answering(by_port: Mapping[int, ServerView], refused: frozenset[int] = frozenset()) -> Any:
    """An ``ask`` that answers from the views, by client port; ports in ``refused`` refuse."""
    asked: list[tuple[str, int, str]] = []

    def ask(host: str, port: int, word: str, timeout: float) -> defer.Deferred[str]:
        asked.append((host, port, word))
        if port in refused:
            return defer.fail(ConnectionRefusedError())
        return defer.succeed(render(word, by_port[port], WORDS))
    ask.asked = asked  # type: ignore[attr-defined]
    return ask


def page_of(resource: StatusPage) -> bytes:
    got: list[PeerFigures] = []
    resource.figures().addCallback(got.extend)
    return render_status_page(got, CONTEXT)


def settled_sim() -> tuple[SimEnsemble, int, dict[int, ServerView]]:
    ensemble = SimEnsemble(11)
    ensemble.start()
    leader = ensemble.settle()
    ensemble.write(4)
    ensemble.sim.run_for(1_000)
    return ensemble, leader, {1880 + sid: view for sid, view in views(ensemble).items()}


# ---- parsing -----------------------------------------------------------------


def test_mntr_and_srvr_parse_into_their_figures() -> None:
    assert parse_mntr(MNTR)["global_sessions"] == "3"
    assert parse_mntr(MNTR)["server_state"] == "follower"
    assert parse_mntr(NOT_SERVING + "\n") == {}
    assert parse_mntr("mntr is not executed because it is not in the whitelist.\n") == {}
    fields = parse_srvr(SRVR)
    assert fields["Zxid"] == "0x200000005" and fields["Mode"] == "follower" and fields["Node count"] == "9"
    target = PeerTarget(2, "10.0.0.2", 2181)
    row = figures_from_answers(target, MNTR, SRVR)
    assert (row.reach, row.role, row.zxid, row.epoch) == (Reach.SERVING, "follower", 0x200000005, 2)
    assert (row.sessions, row.connections, row.znodes) == (3, 2, 9)
    assert (row.latency_min_ms, row.latency_avg_ms, row.latency_max_ms) == (0, 1.25, 7)  # mntr's, not srvr's


def test_a_peer_that_refuses_mntr_still_shows_its_srvr_figures() -> None:
    refused = "mntr is not executed because it is not in the whitelist.\n"
    row = figures_from_answers(PeerTarget(2, "h", 1), refused, SRVR)
    assert (row.role, row.znodes, row.latency_avg_ms, row.sessions) == ("follower", 9, 1.5, None)
    idle = figures_from_answers(PeerTarget(2, "h", 1), NOT_SERVING + "\n", NOT_SERVING + "\n")
    assert idle.reach is Reach.NOT_SERVING and idle.zxid is None
    assert figures_from_answers(PeerTarget(2, "h", 1), "", "").reach is Reach.UNREACHABLE


def test_lag_counts_zxids_of_the_leaders_epoch_only() -> None:
    follower = figures_from_answers(PeerTarget(2, "h", 1), "", SRVR)
    assert lag_behind(0x200000009, follower) == 4
    assert lag_behind(0x200000004, follower) == 0  # read a moment after the leader: not negative
    assert lag_behind(0x300000001, follower) is None  # still in epoch 2
    assert lag_behind(None, follower) is None


# ---- which peers ---------------------------------------------------------------


def test_targets_come_from_the_server_lines_client_parts() -> None:
    targets = peer_targets(ensemble_config(2, hosts={3: "0.0.0.0"}))
    assert [(t.sid, t.host, t.port, t.this_server) for t in targets] == [
        (1, "127.0.0.1", 1881, False), (2, "127.0.0.1", 1882, True), (3, "127.0.0.1", 1883, False)]
    standalone = peer_targets(parse_config("dataDir=/d\nclientPort=2999\nclientPortAddress=127.0.0.1\n"))
    assert [(t.sid, t.address, t.this_server) for t in standalone] == [(None, "127.0.0.1:2999", True)]


def test_without_client_parts_the_clientport_is_guessed_on_other_hosts_only() -> None:
    text = ("dataDir=/d\ninitLimit=10\nsyncLimit=5\nclientPort=2181\n"
            "server.1=10.0.0.1:2888:3888\nserver.2=10.0.0.2:2888:3888\nserver.3=10.0.0.1:2889:3889\n")
    targets = peer_targets(parse_config(text, myid="1"))
    assert [(t.sid, t.host, t.port) for t in targets] == [(1, "10.0.0.1", 2181), (2, "10.0.0.2", 2181),
                                                         (3, None, 2181)]
    assert "assumed clientPort 2181" in targets[1].note
    assert "this server's own" in targets[2].note


# ---- the page ------------------------------------------------------------------


def test_a_leader_with_two_followers_from_the_simulated_ensemble() -> None:
    ensemble, leader, by_port = settled_sim()
    me = next(sid for sid in ensemble.sids if sid != leader)
    ask = answering(by_port)
    resource = StatusPage(by_port[1880 + me], ensemble_config(me), MemoryReactorClock(), ask=ask)
    page = page_of(resource)
    cards = Cards(page)
    assert sorted(str(r) for r in cards.roles()) == ["follower", "follower", "leader"]
    assert [c["data-sid"] for c in cards.cards] == ["1", "2", "3"]
    assert next(c for c in cards.cards if c["data-role"] == "leader")["data-sid"] == str(leader)
    assert "this" in (cards.cards[me - 1]["class"] or "").split()
    # Every other peer was asked both words, at its own client port; this peer none.
    assert sorted(ask.asked) == sorted(("127.0.0.1", 1880 + sid, word) for sid in ensemble.sids if sid != me
                                       for word in ("mntr", "srvr"))
    zxid = by_port[1880 + leader].last_zxid
    text = "".join(cards.text)
    assert f"0x{zxid:x}" in text and "0 zxids" in text
    assert f"leader: server {leader}" in text
    assert b'http-equiv="refresh" content="5"' in page and b'name="viewport"' in page


def test_an_unreachable_peer_is_shown_not_hidden() -> None:
    ensemble, leader, by_port = settled_sim()
    down = next(sid for sid in ensemble.sids if sid != leader)
    ask = answering(by_port, refused=frozenset({1880 + down}))
    resource = StatusPage(by_port[1880 + leader], ensemble_config(leader), MemoryReactorClock(), ask=ask)
    cards = Cards(page_of(resource))
    assert len(cards.cards) == 3
    gone = cards.cards[down - 1]
    assert (gone["data-role"], gone["data-reach"]) == ("unreachable", "unreachable")
    assert "connection refused" in "".join(cards.text)
    assert sorted(str(r) for r in cards.roles()) == ["follower", "leader", "unreachable"]


def test_a_silent_peer_is_unreachable_after_the_deadline() -> None:
    reactor = MemoryReactorClock()
    view = as_view(FakeView(mode="leader"))
    resource = StatusPage(view, ensemble_config(1), reactor, peer_timeout=1.0)
    got: list[PeerFigures] = []
    resource.figures().addCallback(got.extend)
    assert len(reactor.tcpClients) == 4 and got == []  # mntr and srvr to peers 2 and 3, at once
    reactor.advance(1.0)
    assert [(p.target.sid, p.reach) for p in got] == [
        (1, Reach.SERVING), (2, Reach.UNREACHABLE), (3, Reach.UNREACHABLE)]
    assert got[1].problem == "no answer within 1 s"


def test_ask_four_letter_word_sends_the_word_and_reads_to_eof() -> None:
    reactor = MemoryReactorClock()
    answer = ask_four_letter_word(reactor, "127.0.0.1", 1881, "mntr", 1.0)
    host, port, factory, _, _ = reactor.tcpClients[0]
    protocol = factory.buildProtocol(None)
    assert protocol is not None
    transport = StringTransport()
    protocol.makeConnection(transport)
    assert (host, port, transport.value()) == ("127.0.0.1", 1881, b"mntr")
    got: list[str] = []
    answer.addCallback(got.append)
    protocol.dataReceived(b"zk_version\t3.8.0\n")
    protocol.dataReceived(b"zk_server_state\tleader\n")
    protocol.connectionLost(Failure(ConnectionDone()))
    assert got == ["zk_version\t3.8.0\nzk_server_state\tleader\n"]
    reactor.advance(5.0)  # the deadline passing later changes nothing
    assert got == ["zk_version\t3.8.0\nzk_server_state\tleader\n"]


def test_a_standalone_server_shows_one_row() -> None:
    config = parse_config("dataDir=/d\nclientPort=2999\nclientPortAddress=127.0.0.1\n")
    resource = StatusPage(as_view(FakeView()), config, MemoryReactorClock())
    page = page_of(resource)
    cards = Cards(page)
    assert cards.roles() == ["standalone"] and "data-sid" not in cards.cards[0]
    assert "standalone server, serving" in "".join(cards.text)
    assert "127.0.0.1:2999" in "".join(cards.text)


def test_everything_from_outside_is_escaped() -> None:
    hostile = ("zk_version\t<script>alert(1)</script>\nzk_server_state\tleader\"><img src=x>\n"
               "zk_znode_count\t5\n")
    row = figures_from_answers(PeerTarget(7, "<b>host</b>", 1), hostile, "")
    unreachable_row = PeerFigures(PeerTarget(8, None, 1, note="<i>no address</i>"), Reach.NO_ADDRESS)
    page = render_status_page([row, unreachable_row], PageContext("<server>", "&now", 5))
    assert b"<script>" not in page and b"<img" not in page and b"<b>" not in page and b"<i>" not in page
    assert b"leader&quot;&gt;&lt;img src=x&gt;" in page
    assert b"&lt;b&gt;host&lt;/b&gt;:1" in page and b"&lt;i&gt;no address&lt;/i&gt;" in page
    assert b"&lt;server&gt;" in page and b"&amp;now" in page
    cards = Cards(page)
    assert cards.roles() == ['leader"><img src=x>', "no client address"]  # one attribute, intact


# ---- the resource over HTTP, in memory -------------------------------------------


def _get(stub: Any, url: str, method: str = "GET") -> tuple[int, dict[bytes, list[bytes]], bytes]:
    responses: list[Any] = []
    (stub.post(url) if method == "POST" else stub.get(url)).addCallback(responses.append)
    stub.flush()
    response = responses[0]
    bodies: list[bytes] = []
    response.content().addCallback(bodies.append)
    stub.flush()
    return response.code, dict(response.headers.getAllRawHeaders()), bodies[0]


def test_the_resource_through_stub_treq() -> None:
    ensemble, leader, by_port = settled_sim()
    reactor = MemoryReactorClock()
    reactor.advance(1_735_689_600)  # 2025-01-01 00:00:00 UTC
    stub = StubTreq(StatusPage(by_port[1880 + leader], ensemble_config(leader), reactor, ask=answering(by_port)))
    code, headers, body = _get(stub, "http://admin/")
    assert code == 200 and headers[b"Content-Type"] == [b"text/html; charset=utf-8"]
    assert headers[b"Cache-Control"] == [b"no-store"]
    assert sorted(str(r) for r in Cards(body).roles()) == ["follower", "follower", "leader"]
    assert b"2025-01-01 00:00:00 UTC" in body and f"server {leader}".encode() in body
    assert _get(stub, "http://admin/elsewhere")[0] == 404
    assert _get(stub, "http://admin/", "POST")[0] == 405
