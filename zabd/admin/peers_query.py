# -*- test-case-name: tests.unit.test_status_page -*-
"""Asking another peer a four-letter word over its client port, on Twisted.

The four-letter-word way: connect, send the word, read until the peer
closes. Each question has its own deadline, so one silent peer delays the
status page by that deadline at most and never hides the others.
"""
from __future__ import annotations

from collections.abc import Callable
from typing import Any

from twisted.internet import defer, error
from twisted.internet.defer import Deferred, gatherResults
from twisted.internet.endpoints import HostnameEndpoint, connectProtocol
from twisted.internet.interfaces import ITransport
from twisted.internet.protocol import Protocol, connectionDone
from twisted.python.failure import Failure

from zabd.views.admin.status_figures import PeerFigures, PeerTarget, figures_from_answers, unreachable

#: An answer longer than this is cut off (mntr is a few kilobytes).
MAX_ANSWER_BYTES = 1 << 20

#: (host, port, word, timeout seconds) -> the answer text.
AskWord = Callable[[str, int, str, float], "Deferred[str]"]


class _WordAsker(Protocol):
    """Sends one word on connect and collects the answer until the connection closes."""

    def __init__(self, word: str, answered: Deferred[str]) -> None:
        self.word = word
        self.answered = answered
        self.chunks: list[bytes] = []
        self.size = 0

    def connectionMade(self) -> None:
        assert self.transport is not None
        self.transport.write(self.word.encode("ascii"))

    def dataReceived(self, data: bytes) -> None:
        self.size += len(data)
        if self.size > MAX_ANSWER_BYTES:
            self.abort()
            return
        self.chunks.append(data)

    def connectionLost(self, reason: Failure = connectionDone) -> None:
        # ZooKeeper may reset rather than close after answering; what came is the answer.
        if not self.answered.called:
            self.answered.callback(b"".join(self.chunks).decode("utf-8", errors="replace"))

    def abort(self) -> None:
        transport: ITransport | None = self.transport
        if transport is not None:
            transport.abortConnection()  # type: ignore[attr-defined]


def ask_four_letter_word(reactor: Any, host: str, port: int, word: str, timeout: float) -> Deferred[str]:
    """
    ``word``'s answer from ``host:port``; fails with TimeoutError after ``timeout`` s.

    :param reactor: an IReactorTCP and IReactorTime provider.
    """
    protocol: _WordAsker
    cancelled = False

    def cancel(answer: Deferred[str]) -> None:
        # ``answer`` then fails with CancelledError, which addTimeout turns into TimeoutError.
        nonlocal cancelled
        cancelled = True
        connecting.cancel()
        protocol.abort()

    answer: Deferred[str] = Deferred(canceller=cancel)
    protocol = _WordAsker(word, answer)
    connecting = connectProtocol(HostnameEndpoint(reactor, host, port, timeout=timeout), protocol)

    def not_connected(failure: Failure) -> None:
        if not answer.called and not cancelled:
            answer.errback(failure)

    connecting.addErrback(not_connected)
    answer.addTimeout(timeout, reactor)
    return answer


def _reason(failure: Failure, timeout: float) -> str:
    if failure.check(TimeoutError, defer.TimeoutError):
        return f"no answer within {timeout:g} s"
    if failure.check(ConnectionRefusedError, error.ConnectionRefusedError):
        return "connection refused"
    return f"no answer: {str(failure.value).strip() or type(failure.value).__name__}"


def ask_peer(ask: AskWord, target: PeerTarget, timeout: float) -> Deferred[PeerFigures]:
    """
    ``target``'s row from its ``mntr`` and ``srvr``, asked at once; never fails.

    A word that fails counts as no answer; the peer is unreachable only when
    both fail (a peer that refuses mntr still shows its srvr figures).
    """
    if target.host is None:
        done: Deferred[PeerFigures] = Deferred()
        done.callback(unreachable(target, target.note or "client address unknown"))
        return done
    host = target.host
    failures: list[Failure] = []

    def word(name: str) -> Deferred[str]:
        def failed(failure: Failure) -> str:
            failures.append(failure)
            return ""
        return ask(host, target.port, name, timeout).addErrback(failed)

    def figures(answers: list[str]) -> PeerFigures:
        if len(failures) == 2:
            return unreachable(target, _reason(failures[0], timeout))
        return figures_from_answers(target, answers[0], answers[1])

    return gatherResults([word("mntr"), word("srvr")]).addCallback(figures)
