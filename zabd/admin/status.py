# -*- test-case-name: tests.unit.test_status_page -*-
"""The status page at ``/`` on the admin port: the ensemble at a glance.

On each GET the page asks every other member for ``mntr`` and ``srvr`` over
its client port, all at once, and renders when the last has answered or its
deadline has passed; this peer's own row comes from its view, through the
same four-letter-word text. Nothing runs between requests, so there is no
service to start or stop. The figures are parsed in ``status_figures``, the
HTML is built in ``status_html`` and the addresses chosen in ``peers``.
"""
from __future__ import annotations

import time
from dataclasses import replace
from typing import Any

from twisted.internet.defer import Deferred, gatherResults
from twisted.logger import Logger
from twisted.python.failure import Failure
from twisted.web.resource import Resource
from twisted.web.server import NOT_DONE_YET, Request

from zabd.views.admin.peers import peer_targets
from zabd.admin.peers_query import AskWord, ask_four_letter_word, ask_peer
from zabd.views.admin.status_figures import PeerFigures, PeerTarget, Reach, figures_from_answers
from zabd.views.admin.status_html import PageContext, render_status_page
from zabd.config.zoocfg import ZabdConfig
from zabd.views.fourletter import render
from zabd.views.fourletter_view import ServerView

log = Logger()

#: Seconds between reloads of the page.
REFRESH_SECONDS = 5
#: Seconds each peer gets to answer a word.
PEER_TIMEOUT_SECONDS = 1.0
_OWN_WORDS = frozenset({"mntr", "srvr"})


def own_figures(view: ServerView, target: PeerTarget) -> PeerFigures:
    """This peer's row, from the text its own ``mntr`` and ``srvr`` print (whatever its whitelist)."""
    figures = figures_from_answers(target, render("mntr", view, _OWN_WORDS), render("srvr", view, _OWN_WORDS))
    if figures.reach is Reach.NOT_SERVING:
        # Only this peer can say what it does instead (looking, for one).
        return replace(figures, problem=f"not serving requests ({view.mode})")
    return figures


def rendered_at(seconds: float) -> str:
    """Epoch seconds as ``YYYY-MM-DD HH:MM:SS UTC``."""
    return time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime(seconds))


class StatusPage(Resource):
    """
    GET ``/``: the status page. Mount it at the root (the site's ``b""`` child).

    :param view: this server's figures.
    :param config: the server's config; its ensemble names the other peers.
    :param reactor: IReactorTCP and IReactorTime (connections, deadlines, the time shown).
    :param ask: asks a peer one word (tests pass a fake); by default over TCP.
    """

    isLeaf = True

    def __init__(self, view: ServerView, config: ZabdConfig, reactor: Any, *,
                 ask: AskWord | None = None, refresh_seconds: int = REFRESH_SECONDS,
                 peer_timeout: float = PEER_TIMEOUT_SECONDS) -> None:
        super().__init__()
        self.view = view
        self.targets = peer_targets(config)
        self.reactor = reactor
        self.ask: AskWord = ask or (lambda host, port, word, timeout: ask_four_letter_word(
            reactor, host, port, word, timeout))
        self.refresh_seconds = refresh_seconds
        self.peer_timeout = peer_timeout
        me = next(t for t in self.targets if t.this_server)
        self.server_name = "standalone" if me.sid is None else f"server {me.sid}"

    def figures(self) -> Deferred[list[PeerFigures]]:
        """Every peer's row, in server id order, once all have answered or timed out."""
        rows: list[Deferred[PeerFigures]] = []
        for target in self.targets:
            if target.this_server:
                own: Deferred[PeerFigures] = Deferred()
                own.callback(own_figures(self.view, target))
                rows.append(own)
            else:
                rows.append(ask_peer(self.ask, target, self.peer_timeout))
        return gatherResults(rows)

    def render(self, request: Request) -> bytes | int:
        # Answered here rather than by Resource.render, whose 405 page is deprecated.
        if request.method not in (b"GET", b"HEAD"):
            return _plain(request, 405, b"The status page answers GET only.\n", allow=b"GET, HEAD")
        if request.postpath not in ([], [b""]):
            return _plain(request, 404, b"No such page.\n")
        return self.render_GET(request)

    def render_GET(self, request: Request) -> bytes | int:
        finished = False

        def gone(_: object) -> None:
            nonlocal finished
            finished = True

        request.notifyFinish().addBoth(gone)

        def write(peers: list[PeerFigures]) -> None:
            if finished:
                return  # the browser went away while the peers answered
            context = PageContext(self.server_name, rendered_at(self.reactor.seconds()), self.refresh_seconds)
            request.setHeader(b"content-type", b"text/html; charset=utf-8")
            request.setHeader(b"cache-control", b"no-store")
            request.write(render_status_page(peers, context))
            request.finish()

        def failed(failure: Failure) -> None:
            log.failure("Status page failed", failure)
            if not finished:
                request.setResponseCode(500)
                request.write(b"The status page failed; see the server log.\n")
                request.finish()

        self.figures().addCallback(write).addErrback(failed)
        return NOT_DONE_YET


def _plain(request: Request, code: int, body: bytes, allow: bytes | None = None) -> bytes:
    request.setResponseCode(code)
    request.setHeader(b"content-type", b"text/plain; charset=utf-8")
    if allow is not None:
        request.setHeader(b"allow", allow)
    return body
